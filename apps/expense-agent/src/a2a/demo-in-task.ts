import { randomUUID } from 'node:crypto';
import { SendMessageRequest, TaskState, type Message, type Task } from '@a2a-js/sdk';
import { A2AAuthorizationRequiredError, connectA2AAgent } from 'nestjs-a2a-auth';
import type { A2ADemoOptions, A2ADemoOutcome } from './demo-a2a';

/** Amount the demo asks to approve: above the sample's default `EXPENSE_APPROVAL_LIMIT` (1000). */
export const DEMO_LARGE_AMOUNT = 5000;

/**
 * The in-task authorization part of `npm run demo` (A2A v1.0 §7.6), on each binding:
 *
 * 1. a generic client (no `metadata.skillId`; the agent routes by content) submits an expense as the submitter → a message with the expense;
 * 2. the same generic client sends `approve <id>` → `TASK_STATE_REJECTED`, naming the missing `expense:approve`;
 * 3. the approver approves an expense of {@link DEMO_LARGE_AMOUNT} with `stepUpScopes: ['expense:approve-large']` → the
 *    task waits in `TASK_STATE_AUTH_REQUIRED`, `connectA2AAgent` gets a token with that scope, sends the follow-up →
 *    `TASK_STATE_COMPLETED`;
 * 4. the approver without `stepUpScopes` → `A2AAuthorizationRequiredError` (the task stays in `TASK_STATE_AUTH_REQUIRED`).
 *
 * Outcomes use the HTTP status 200 of the A2A call; `detail` names the task state, `ok` says whether it was the one
 * expected. Never throws for an unexpected answer.
 */
export async function runInTaskDemo(o: Pick<A2ADemoOptions, 'agentUrl' | 'submitter' | 'approver' | 'bindings'>): Promise<A2ADemoOutcome[]> {
  const out: A2ADemoOutcome[] = [];
  for (const binding of o.bindings ?? (['JSONRPC', 'HTTP+JSON'] as const)) {
    const common = { agentUrl: o.agentUrl, preferredTransports: [binding] };
    const step = async (name: string, expected: string, call: () => Promise<string>) => {
      let seen: string;
      try {
        seen = await call();
      } catch (e) {
        seen = e instanceof A2AAuthorizationRequiredError ? `A2AAuthorizationRequiredError (${e.reason})` : `error: ${(e as Error).message}`;
      }
      out.push({ step: `${name} → ${seen}`, binding, expected: 200, status: seen.startsWith('error') ? 0 : 200, detail: seen, ok: seen.startsWith(expected) });
      return seen;
    };
    try {
      const generic = await connectA2AAgent({
        ...common,
        credentials: { clientId: o.submitter.id, clientSecret: o.submitter.secret },
        scopes: ['expense:submit', 'expense:read'],
      });
      const approver = await connectA2AAgent({
        ...common,
        credentials: { clientId: o.approver.id, clientSecret: o.approver.secret },
        skillId: 'approve-expense',
      });
      const stepping = await connectA2AAgent({
        ...common,
        credentials: { clientId: o.approver.id, clientSecret: o.approver.secret },
        skillId: 'approve-expense',
        stepUpScopes: ['expense:approve-large'],
      });

      let small = '';
      await step(`generic client (no skillId) submits as ${o.submitter.id}`, 'message', async () => {
        const r = await generic.client.sendMessage(request({ data: { amount: 18, currency: 'EUR', description: `Lunch (in-task demo, ${binding})` } }));
        small = (dataOf(r)?.expense as { id?: string } | undefined)?.id ?? '';
        return describe(r);
      });
      await step(`generic client sends "approve <id>" as ${o.submitter.id}`, 'TASK_STATE_REJECTED', async () =>
        describe(await generic.client.sendMessage(request({ text: `approve ${small}` }))),
      );
      const large = async () => {
        const r = await generic.client.sendMessage(
          request({ data: { amount: DEMO_LARGE_AMOUNT, currency: 'EUR', description: `Conference (in-task demo, ${binding})` } }),
        );
        return (dataOf(r)?.expense as { id?: string } | undefined)?.id ?? '';
      };
      const id1 = await large();
      await step(`approve ${DEMO_LARGE_AMOUNT} EUR as ${o.approver.id} with stepUpScopes expense:approve-large`, 'TASK_STATE_COMPLETED', async () =>
        describe(await stepping.sendMessage(request({ data: { id: id1 } }, 'approve-expense'))),
      );
      const id2 = await large();
      await step(`approve ${DEMO_LARGE_AMOUNT} EUR as ${o.approver.id} without stepUpScopes`, 'A2AAuthorizationRequiredError', async () =>
        describe(await approver.sendMessage(request({ data: { id: id2 } }, 'approve-expense'))),
      );
    } catch (e) {
      out.push({ step: 'in-task demo setup', binding, expected: 200, status: 0, detail: (e as Error).message, ok: false });
    }
  }
  return out;
}

function request(content: { data?: Record<string, unknown>; text?: string }, skillId?: string): SendMessageRequest {
  return SendMessageRequest.fromJSON({
    message: {
      messageId: randomUUID(),
      role: 'ROLE_USER',
      parts: [content.data ? { data: content.data } : { text: content.text }],
      ...(skillId ? { metadata: { skillId } } : {}),
    },
  });
}

function dataOf(r: Message | Task): Record<string, unknown> | undefined {
  const parts = 'messageId' in r ? r.parts : (r.status?.message?.parts ?? []);
  for (const p of parts) if (p.content?.$case === 'data') return p.content.value as Record<string, unknown>;
  return undefined;
}

/** `message`, or the task state and its status text. */
function describe(r: Message | Task): string {
  if ('messageId' in r) return 'message';
  const text = (r.status?.message?.parts ?? []).find((p) => p.content?.$case === 'text')?.content;
  return `${TaskState[r.status?.state ?? 0]}${text?.$case === 'text' ? `: ${text.value}` : ''}`;
}
