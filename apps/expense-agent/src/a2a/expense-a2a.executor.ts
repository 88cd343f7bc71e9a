import { randomUUID } from 'node:crypto';
import { HttpException, Inject, Injectable, Optional } from '@nestjs/common';
import { ModuleRef } from '@nestjs/core';
import { Role, TaskState, type Message, type Part } from '@a2a-js/sdk';
import { AgentEvent, type AgentExecutor, type ExecutionEventBus, type RequestContext } from '@a2a-js/sdk/server';
import { ConfigService } from '@nestjs/config';
import { A2AInTaskAuthorization, HumanApprovalInputError, a2aCallerOf, authorizedSkillOf } from 'nestjs-a2a-auth';
import { ENV } from '../config';
import { parseSubmitExpense } from '../expenses/expense';
import { ExpenseStore } from '../expenses/expense.store';
import { EXPENSE_APPROVAL, type ExpenseApproval } from './expense-approval';

/** JSON input of a message: the first `data` part, else a text part holding a JSON object. */
function jsonInput(msg: Message): Record<string, unknown> | undefined {
  for (const p of msg.parts) {
    if (p.content?.$case === 'data' && p.content.value && typeof p.content.value === 'object' && !Array.isArray(p.content.value)) {
      return p.content.value as Record<string, unknown>;
    }
  }
  for (const p of msg.parts) {
    if (p.content?.$case !== 'text') continue;
    const t = p.content.value.trim();
    if (!t.startsWith('{')) continue;
    try {
      const v = JSON.parse(t) as unknown;
      if (v && typeof v === 'object' && !Array.isArray(v)) return v as Record<string, unknown>;
    } catch {
      /* not JSON */
    }
  }
  return undefined;
}

/** The first text part, trimmed. */
function textInput(msg: Message): string | undefined {
  for (const p of msg.parts) if (p.content?.$case === 'text') return p.content.value.trim();
  return undefined;
}

/**
 * The skill a message without `metadata.skillId` asks for, from its content (so a generic A2A client, which never
 * sets `skillId`, can use the agent): a JSON `skill` field (`submit-expense`, `approve-expense`, `list-expenses`);
 * else JSON with an `amount` → submit; else a text command `submit …` / `approve <id>` / `list` / `show <id>`;
 * anything else → `list-expenses` (read-only).
 */
export function routeExpenseMessage(msg: Message): 'submit-expense' | 'approve-expense' | 'list-expenses' {
  const j = jsonInput(msg);
  const named = typeof j?.skill === 'string' ? j.skill : undefined;
  if (named === 'submit-expense' || named === 'approve-expense' || named === 'list-expenses') return named;
  if (j && 'amount' in j) return 'submit-expense';
  const t = j ? '' : (textInput(msg) ?? '').toLowerCase();
  if (/^submit\b/.test(t)) return 'submit-expense';
  if (/^approve\s+\S/.test(t)) return 'approve-expense';
  return 'list-expenses';
}

/** Default of `EXPENSE_APPROVAL_LIMIT`: approving an amount above it needs `expense:approve-large` as well. */
export const DEFAULT_APPROVAL_LIMIT = 1000;

/**
 * The Expense agent's A2A executor. It dispatches on the skill the library authorized
 * (`authorizedSkillOf(ctx.context)`, never a re-read of `metadata.skillId`), or, for a message that names no skill, on
 * the skill its content asks for ({@link routeExpenseMessage}) after `A2AInTaskAuthorization.authorizeSkill` allowed it
 * (refused: the library rejects the task, naming the missing scopes). It uses the same {@link ExpenseStore} as the
 * REST routes, and answers with one agent `Message` whose single `data` part is the result:
 *
 * - `submit-expense`: input `{ amount, currency, description }` (a data part, or a text part with that JSON)
 *   → `{ expense }`.
 * - `approve-expense`: input `{ id }` (or the id as text) → `{ expense }`.
 * - `list-expenses`: optional `{ id }` → `{ expense }`, else `{ expenses: [...] }`.
 * - Business errors → `{ error: { status, message } }` with the HTTP status the REST route would give
 *   (400 bad input, 404 unknown id, 409 already approved).
 * - `submit-expense` that needs the submitting user's approval (`metadata.requireApproval: true`, or an amount above
 *   `A2A_APPROVAL_THRESHOLD`): a task instead. The library's {@link HumanApprovalService} asks `metadata.loginHint`
 *   (else `A2A_APPROVAL_LOGIN_HINT`) through OpenID Connect CIBA, the task waits in `TASK_STATE_AUTH_REQUIRED`, and on
 *   approval the expense is stored and the task is `TASK_STATE_COMPLETED` with `{ expense, approvedBy }` as its status
 *   message; denial, expiry or an outage end it as the library says (`REJECTED` / `FAILED`).
 * - No authorized skill in the context (the call did not come through the library's transport): `{ error: { status: 403 } }`,
 *   nothing runs.
 */
@Injectable()
export class ExpenseA2AExecutor implements AgentExecutor {
  private store?: ExpenseStore;
  private limit?: number;

  constructor(
    private readonly moduleRef: ModuleRef,
    private readonly inTask: A2AInTaskAuthorization,
    @Optional() @Inject(EXPENSE_APPROVAL) private readonly approval: ExpenseApproval = {},
  ) {}

  /** `EXPENSE_APPROVAL_LIMIT` (an amount, in the expense's currency units), default {@link DEFAULT_APPROVAL_LIMIT}. */
  private approvalLimit(): number {
    if (this.limit === undefined) {
      const v = Number(this.moduleRef.get(ConfigService, { strict: false }).get<string>(ENV.approvalLimit) ?? DEFAULT_APPROVAL_LIMIT);
      this.limit = Number.isFinite(v) && v >= 0 ? v : DEFAULT_APPROVAL_LIMIT;
    }
    return this.limit;
  }

  /** The sample's store, shared with the REST controller (provided by the app module). */
  private expenses(): ExpenseStore {
    return (this.store ??= this.moduleRef.get(ExpenseStore, { strict: false }));
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
    /** Nothing was published yet: the task, ended `TASK_STATE_REJECTED` with why the approval could not be asked. */
    const reject = (e: HumanApprovalInputError) => {
      const text: Part = { content: { $case: 'text', value: e.message }, metadata: undefined, filename: '', mediaType: 'text/plain' };
      const data: Part = {
        content: { $case: 'data', value: { error: 'invalid_request', reason: e.reason, field: e.field } },
        metadata: undefined,
        filename: '',
        mediaType: 'application/json',
      };
      const status = {
        state: TaskState.TASK_STATE_REJECTED,
        message: { ...agentMessage(ctx, {}), parts: [text, data] },
        timestamp: new Date().toISOString(),
      };
      bus.publish(AgentEvent.task({ id: ctx.taskId, contextId: ctx.contextId, status, artifacts: [], history: [ctx.userMessage], metadata: undefined }));
      bus.finished();
    };
    const msg = ctx.userMessage;
    // The fast path (metadata.skillId) was checked before this runs; otherwise route, and ask the library first.
    const authorized = authorizedSkillOf(ctx.context) ?? (await this.inTask.authorizeSkill(ctx, routeExpenseMessage(msg)));
    const caller = a2aCallerOf(ctx.context);
    if (!caller) return reply({ error: { status: 403, message: 'no authorized skill for this call' } });
    const who = caller.clientId ?? caller.subject ?? 'unknown';
    try {
      switch (authorized.skillId) {
        case 'submit-expense': {
          const input = parseSubmitExpense(jsonInput(msg) ?? null);
          const meta = (msg.metadata ?? {}) as Record<string, unknown>;
          const needsApproval = meta.requireApproval === true || (this.approval.threshold !== undefined && input.amount > this.approval.threshold);
          if (!needsApproval) return reply({ expense: this.expenses().submit(input, who) });
          const service = this.approval.service;
          // Not trimmed or cut here: the library bounds it (HumanApprovalInputError) and the task is rejected with why.
          const loginHint = typeof meta.loginHint === 'string' && meta.loginHint ? meta.loginHint : this.approval.loginHint;
          if (!service || !loginHint) return reply({ error: { status: 503, message: 'this expense needs an approval, and human approval is not configured' } });
          let r;
          try {
            r = await service.requestApproval({
              context: ctx,
              eventBus: bus,
              loginHint,
              bindingMessage: `Submit expense ${input.amount} ${input.currency}`,
              scopes: ['expense:submit'],
              operation: 'submit-expense',
            });
          } catch (e) {
            if (!(e instanceof HumanApprovalInputError)) throw e;
            return reject(e);
          }
          if (!r.approved) return; // the library has ended the task (rejected, failed or canceled) with the reason
          try {
            const expense = this.expenses().submit(input, who);
            bus.publish(
              AgentEvent.statusUpdate({
                taskId: ctx.taskId,
                contextId: ctx.contextId,
                status: {
                  state: TaskState.TASK_STATE_COMPLETED,
                  message: agentMessage(ctx, { expense, approvedBy: loginHint }),
                  timestamp: new Date().toISOString(),
                },
                metadata: undefined,
              }),
            );
          } finally {
            r.approval.release(); // the approval covered this submission only
          }
          return;
        }
        case 'approve-expense': {
          const id = idOf(msg);
          if (!id) return reply({ error: { status: 400, message: 'send the expense id as {"id": "..."} or as text' } });
          const e = this.expenses().get(id);
          if (e.amount > this.approvalLimit() && e.status !== 'approved') {
            // Mid-task step-up: the task waits in TASK_STATE_AUTH_REQUIRED until the caller's follow-up brings a token
            // with expense:approve-large; that grant covers approving this expense only.
            const approver = await this.inTask.requireScopes(ctx, ['expense:approve-large'], {
              operation: `approve-expense:${id}`,
              reason: `approving ${e.amount} ${e.currency} (above ${this.approvalLimit()}) needs expense:approve-large`,
            });
            return reply({ expense: this.expenses().approve(id, approver.clientId ?? approver.subject ?? who) });
          }
          return reply({ expense: this.expenses().approve(id, who) });
        }
        case 'list-expenses': {
          const id = jsonInput(msg)?.id ?? (/^show\s+\S/i.test(textInput(msg) ?? '') ? idOf(msg) : undefined);
          if (typeof id === 'string' && id) return reply({ expense: this.expenses().get(id) });
          return reply({ expenses: this.expenses().list() });
        }
        default:
          return reply({ error: { status: 400, message: 'this skill is not available over A2A' } });
      }
    } catch (e) {
      if (e instanceof HttpException) {
        const r = e.getResponse() as { message?: unknown } | string;
        const message = typeof r === 'string' ? r : Array.isArray(r.message) ? r.message.join('; ') : String(r.message ?? e.message);
        return reply({ error: { status: e.getStatus(), message } });
      }
      throw e;
    }
  };

  /** Only a submission waiting for its approval is a running task: the wait stops and the task is `TASK_STATE_CANCELED`. */
  cancelTask = async (taskId: string, bus: ExecutionEventBus): Promise<void> => {
    this.approval.service?.cancel(taskId, bus);
  };
}

/** An agent message of the task with one JSON data part. */
function agentMessage(ctx: RequestContext, data: Record<string, unknown>): Message {
  return {
    messageId: randomUUID(),
    contextId: ctx.contextId,
    taskId: ctx.taskId,
    role: Role.ROLE_AGENT,
    parts: [{ content: { $case: 'data', value: data }, metadata: undefined, filename: '', mediaType: 'application/json' }],
    metadata: undefined,
    extensions: [],
    referenceTaskIds: [],
  };
}

function idOf(msg: Message): string | undefined {
  const j = jsonInput(msg);
  if (j) return typeof j.id === 'string' && j.id ? j.id.slice(0, 100) : undefined;
  const t = textInput(msg)?.replace(/^(approve|show)\s+(expense\s+)?/i, '');
  return t ? t.slice(0, 100) : undefined;
}
