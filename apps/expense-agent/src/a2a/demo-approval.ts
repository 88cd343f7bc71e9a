import { randomUUID } from 'node:crypto';
import { SendMessageRequest, taskStateToJSON, type TaskStatus } from '@a2a-js/sdk';
import { connectA2AAgent } from 'nestjs-a2a-auth';

/** Options of {@link runApprovalDemo}. */
export interface ApprovalDemoOptions {
  /** Base URL of the agent. */
  agentUrl: string;
  /** Base URL of the dev authorization server, whose `/dev/ciba/*` endpoint plays the user's device. */
  devAuthUrl: string;
  /** The submitting client's credentials. */
  submitter: { id: string; secret: string };
  /** Whose approval is asked (`metadata.loginHint`). Default `alice`. */
  loginHint?: string;
  /** Bindings to try. Default both. */
  bindings?: Array<'JSONRPC' | 'HTTP+JSON'>;
}

/** One approval step of the demo. */
export interface ApprovalDemoOutcome {
  /** What was tried. */
  step: string;
  /** `JSONRPC` or `HTTP+JSON`. */
  binding: string;
  /** The final task state expected, e.g. `TASK_STATE_COMPLETED`. */
  expected: string;
  /** The task states seen on the stream, in order (status updates only). */
  states: string[];
  /** The status text of each of those updates. */
  texts: string[];
  /** The stream went through `TASK_STATE_AUTH_REQUIRED` and ended in `expected`. */
  ok: boolean;
}

/** Bound of one step (stream and answer together), milliseconds. */
const STEP_TIMEOUT_MS = 20_000;

/**
 * The human-approval part of `npm run demo`: on each binding, with the official SDK client (`connectA2AAgent`,
 * streaming), `submit-expense` with `metadata.requireApproval: true`:
 *
 * 1. the task goes to `TASK_STATE_AUTH_REQUIRED` ("Waiting for alice to approve: …"); the demo approves the pending
 *    CIBA request at `POST <devAuthUrl>/dev/ciba/<auth_req_id>/approve` → `TASK_STATE_WORKING` → `TASK_STATE_COMPLETED`;
 * 2. the same, denied (`/deny`) → `TASK_STATE_REJECTED` ("alice denied the approval (access_denied)").
 *
 * Never throws for an unexpected state: it reports it (`ok: false`). Throws only when the card or a token cannot be obtained.
 */
export async function runApprovalDemo(o: ApprovalDemoOptions): Promise<ApprovalDemoOutcome[]> {
  const out: ApprovalDemoOutcome[] = [];
  const user = o.loginHint ?? 'alice';
  for (const binding of o.bindings ?? (['JSONRPC', 'HTTP+JSON'] as const)) {
    const agent = await connectA2AAgent({
      agentUrl: o.agentUrl,
      preferredTransports: [binding],
      credentials: { clientId: o.submitter.id, clientSecret: o.submitter.secret },
      skillId: 'submit-expense',
    });
    for (const [action, expected] of [
      ['approve', 'TASK_STATE_COMPLETED'],
      ['deny', 'TASK_STATE_REJECTED'],
    ] as const) {
      const amount = action === 'approve' ? 1500 : 2500;
      const r: ApprovalDemoOutcome = {
        step: `submit-expense ${amount} EUR needing ${user}'s approval (streaming); ${user} ${action === 'approve' ? 'approves' : 'denies'}`,
        binding,
        expected,
        states: [],
        texts: [],
        ok: false,
      };
      const seenBefore = new Set((await pending(o.devAuthUrl)).map((p) => p.authReqId));
      const request = SendMessageRequest.fromJSON({
        message: {
          messageId: randomUUID(),
          role: 'ROLE_USER',
          parts: [{ data: { amount, currency: 'EUR', description: `Conference hotel (A2A demo, ${binding})` } }],
          metadata: { skillId: 'submit-expense', requireApproval: true, loginHint: user },
        },
      });
      try {
        const deadline = Date.now() + STEP_TIMEOUT_MS;
        for await (const ev of agent.client.sendMessageStream(request, { signal: AbortSignal.timeout(STEP_TIMEOUT_MS) })) {
          if (ev.payload?.$case !== 'statusUpdate') continue;
          const status: TaskStatus | undefined = ev.payload.value.status;
          const state = status ? taskStateToJSON(status.state) : 'unknown';
          r.states.push(state);
          const text = status?.message?.parts.find((p) => p.content?.$case === 'text')?.content?.value;
          r.texts.push(typeof text === 'string' ? text : '');
          if (state === 'TASK_STATE_AUTH_REQUIRED') await answer(o.devAuthUrl, user, seenBefore, action, deadline);
        }
        r.ok = r.states.includes('TASK_STATE_AUTH_REQUIRED') && r.states[r.states.length - 1] === expected;
      } catch (e) {
        r.texts.push(`error: ${(e as Error).message}`);
      }
      out.push(r);
    }
  }
  return out;
}

interface Pending {
  authReqId: string;
  user: string;
}

async function pending(devAuthUrl: string): Promise<Pending[]> {
  const res = await fetch(`${devAuthUrl}/dev/ciba/pending`, { signal: AbortSignal.timeout(5000) });
  if (!res.ok) throw new Error(`GET ${devAuthUrl}/dev/ciba/pending → HTTP ${res.status} (is this the embedded dev authorization server?)`);
  return ((await res.json()) as { pending: Pending[] }).pending;
}

/** Plays the user's device: finds the new request for `user` and approves or denies it. */
async function answer(devAuthUrl: string, user: string, seenBefore: Set<string>, action: 'approve' | 'deny', deadline: number): Promise<void> {
  while (Date.now() < deadline) {
    const p = (await pending(devAuthUrl)).find((x) => x.user === user && !seenBefore.has(x.authReqId));
    if (p) {
      const res = await fetch(`${devAuthUrl}/dev/ciba/${encodeURIComponent(p.authReqId)}/${action}`, { method: 'POST', signal: AbortSignal.timeout(5000) });
      if (!res.ok) throw new Error(`POST /dev/ciba/…/${action} → HTTP ${res.status}`);
      return;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`no pending CIBA request for ${user}`);
}
