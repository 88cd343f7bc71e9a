import { randomUUID } from 'node:crypto';
import { Inject, Injectable } from '@nestjs/common';
import { Role, SendMessageRequest, type Message, type Part } from '@a2a-js/sdk';
import { AgentEvent, type AgentExecutor, type ExecutionEventBus, type RequestContext } from '@a2a-js/sdk/server';
import { AgentSkill, RequireScopes, TokenEndpointError, a2aCallerOf, authorizedSkillOf, connectA2AAgent } from 'nestjs-a2a-auth';
import { EXPENSE_SUBMIT_SKILL, FILE_EXPENSE_SCOPE, FILE_EXPENSE_SKILL, type AssistantSettings } from './config';
import { incomingCall } from './incoming-call';

/** Nest injection token of the {@link AssistantSettings}. */
export const ASSISTANT_SETTINGS = Symbol('ASSISTANT_SETTINGS');

/**
 * Deadline of each downstream step, milliseconds: reading the Expense agent's card, and its answer to the message
 * (the token requests have the providers' own 10 s deadline).
 */
export const DOWNSTREAM_TIMEOUT_MS = 15_000;

/** The Expense agent's refusal as the Assistant agent saw it on the wire (no token in it: a status and a challenge). */
export interface DownstreamRefusal {
  /** HTTP status of the Expense agent's answer. */
  status: number;
  /** Its `WWW-Authenticate` header (RFC 6750 §3), when it sent one. */
  wwwAuthenticate?: string;
}

/** JSON input of a message: the first `data` part, else a text part holding a JSON object. */
function jsonInput(msg: Message): Record<string, unknown> | undefined {
  for (const p of msg.parts) {
    const v = p.content?.$case === 'data' ? p.content.value : undefined;
    if (v && typeof v === 'object' && !Array.isArray(v)) return v as Record<string, unknown>;
  }
  for (const p of msg.parts) {
    if (p.content?.$case !== 'text' || !p.content.value.trim().startsWith('{')) continue;
    try {
      const v = JSON.parse(p.content.value) as unknown;
      if (v && typeof v === 'object' && !Array.isArray(v)) return v as Record<string, unknown>;
    } catch {
      /* not JSON */
    }
  }
  return undefined;
}

/**
 * The Assistant agent's executor: its one skill, `file-expense-for-me`, files the caller's expense with the Expense
 * agent **on the caller's behalf**:
 *
 * 1. takes the caller's bearer token from the request being served ({@link incomingCall}; never stored or logged);
 * 2. `connectA2AAgent({ onBehalfOf, sendActorToken: true })`: reads the Expense agent's card, exchanges the token at
 *    the card's token endpoint (RFC 8693: `subject_token` = the caller's token, `actor_token` = the Assistant agent's
 *    own client-credentials token, `resource` = the Expense agent, `scope` = exactly `submit-expense`'s scopes);
 * 3. calls `submit-expense` with the official SDK client on the binding the call came in on, and answers with one
 *    agent message whose `data` part is `{ expense, onBehalfOf }`.
 *
 * Failures answer `{ error: { status, message, downstream? } }`: the Expense agent's refusal (`downstream`: its HTTP
 * status and `WWW-Authenticate`, e.g. 403 for a delegation chain it does not accept), its business error (its status,
 * `downstream`: its answer, e.g. 400 for a bad amount), 502 when the token exchange is
 * refused (`message` names the RFC 6749 §5.2 error code) or the Expense agent cannot be reached, 400 for a message
 * without a JSON object.
 */
@Injectable()
export class AssistantExecutor implements AgentExecutor {
  constructor(@Inject(ASSISTANT_SETTINGS) private readonly settings: AssistantSettings) {}

  /** The skill, as advertised in the card and checked by the library before `execute` runs (never called directly). */
  @AgentSkill({
    id: FILE_EXPENSE_SKILL,
    name: 'File an expense for me',
    description:
      'Files an expense claim (amount, ISO 4217 currency, description) with the Expense Reimbursement Agent on your behalf; the Expense agent sees you as the subject and this agent as the actor (RFC 8693).',
    tags: ['expenses', 'assistant', 'delegation'],
    examples: ['{"amount": 12.9, "currency": "EUR", "description": "Lunch with a customer"}'],
  })
  @RequireScopes(FILE_EXPENSE_SCOPE)
  fileExpense(): void {
    /* the work is done in execute() */
  }

  execute = async (ctx: RequestContext, bus: ExecutionEventBus): Promise<void> => {
    const reply = (data: Record<string, unknown>) => {
      const part: Part = { content: { $case: 'data', value: data }, metadata: undefined, filename: '', mediaType: 'application/json' };
      const m: Message = {
        messageId: randomUUID(),
        contextId: ctx.contextId,
        taskId: '',
        role: Role.ROLE_AGENT,
        parts: [part],
        metadata: undefined,
        extensions: [],
        referenceTaskIds: [],
      };
      bus.publish(AgentEvent.message(m));
      bus.finished();
    };
    const caller = a2aCallerOf(ctx.context);
    const call = incomingCall.getStore();
    if (authorizedSkillOf(ctx.context)?.skillId !== FILE_EXPENSE_SKILL || !caller || !call) {
      return reply({ error: { status: 403, message: 'no authorized skill for this call' } });
    }
    const input = jsonInput(ctx.userMessage);
    if (!input) return reply({ error: { status: 400, message: 'send the expense as {"amount": …, "currency": "…", "description": "…"}' } });

    let refusal: DownstreamRefusal | undefined;
    // Sees the Expense agent's answers (not the token endpoint's: the exchange has its own fetch) to report a refusal.
    const observing: typeof fetch = async (url, init) => {
      const res = await fetch(url, init);
      if (res.status >= 400) refusal = { status: res.status, wwwAuthenticate: res.headers.get('www-authenticate') ?? undefined };
      return res;
    };
    const s = this.settings;
    try {
      const expense = await connectA2AAgent({
        agentUrl: s.expenseAgentUrl,
        credentials: { clientId: s.clientId, clientSecret: s.clientSecret, resource: s.expenseAudience },
        skillId: EXPENSE_SUBMIT_SKILL,
        onBehalfOf: call.token,
        sendActorToken: true,
        preferredTransports: [call.binding],
        fetch: observing,
        timeoutMs: DOWNSTREAM_TIMEOUT_MS,
      });
      const request = SendMessageRequest.fromJSON({
        message: { messageId: randomUUID(), role: 'ROLE_USER', parts: [{ data: input }], metadata: { skillId: EXPENSE_SUBMIT_SKILL } },
      });
      const answer = await expense.client.sendMessage(request, { signal: AbortSignal.timeout(DOWNSTREAM_TIMEOUT_MS) });
      const data = 'messageId' in answer && answer.parts[0]?.content?.$case === 'data' ? answer.parts[0].content.value : undefined;
      const onBehalfOf = caller.subject ?? caller.clientId;
      if (data && typeof data === 'object' && 'expense' in data) return reply({ expense: (data as { expense: unknown }).expense, onBehalfOf });
      // A business error of the Expense agent (e.g. 400 for a bad amount) keeps its status.
      const status = (data as { error?: { status?: unknown } } | undefined)?.error?.status;
      return reply({
        error: { status: typeof status === 'number' ? status : 502, message: 'the Expense agent did not file the expense', downstream: data ?? null },
      });
    } catch (e) {
      if (refusal) return reply({ error: { status: refusal.status, message: 'the Expense agent refused the call', downstream: refusal } });
      if (e instanceof TokenEndpointError) return reply({ error: { status: 502, message: `the token exchange was refused: ${e.error}` } });
      return reply({ error: { status: 502, message: 'the Expense agent could not be reached' } });
    }
  };

  cancelTask = async (): Promise<void> => {
    /* the skill answers at once with a message; there is no running task to cancel */
  };
}
