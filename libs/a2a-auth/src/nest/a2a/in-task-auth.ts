import { randomUUID } from 'node:crypto';
import { Inject, Injectable, Logger, type OnModuleDestroy } from '@nestjs/common';
import type { Message, Part, Task, TaskState } from '@a2a-js/sdk';
import type { AgentExecutionEvent, AgentExecutor, ExecutionEventBus, ExecutionEventBusManager, RequestContext, ServerCallContext } from '@a2a-js/sdk/server';
import { sdkErrors, sdkServer } from '../../client/sdk';
import type { A2ACaller } from '../../core/caller';
import { protectedResourceMetadataUrl } from '../../core/card/resource-metadata';
import { IN_TASK_AUTH_EXTENSION_URI, taskOwnerOf, type A2AAuthorizationRequest, type PendingAuthorizationStore } from '../../core/in-task-authorization';
import type { ResolvedOptions } from '../../core/options';
import { missingScopes } from '../../core/scopes';
import { A2A_AUTH_RESOLVED_OPTIONS } from '../constants';
import { a2aCallerOf, a2aTaskOwner, authorizedSkillOf } from './a2a-user';
import { A2ASkillAuthorizer, type AuthorizedSkill } from './skill-authorizer';

// TaskState values (protobuf enum of A2A v1.0); read as numbers so this file needs no runtime import of the SDK.
const SUBMITTED = 1 as TaskState;
const WORKING = 2 as TaskState;
const COMPLETED = 3 as TaskState;
const CANCELED = 5 as TaskState;
const INPUT_REQUIRED = 6 as TaskState;
const REJECTED = 7 as TaskState;
const AUTH_REQUIRED = 8 as TaskState;
const TERMINAL = new Set<number>([3, 4, 5, 7]);
const ROLE_AGENT = 2;

/**
 * Thrown by {@link A2AInTaskAuthorization} to the executor after the library has answered the task itself (rejected it,
 * or it lapsed or was canceled while waiting). The executor should let it propagate: the library's executor wrapper
 * ends the execution quietly. `reason`: `rejected` (the caller may not run this), `expired`, `canceled`.
 */
export class A2ATaskInterruptedError extends Error {
  constructor(
    readonly reason: 'rejected' | 'expired' | 'canceled',
    message: string,
  ) {
    super(message);
    this.name = 'A2ATaskInterruptedError';
  }
}

/**
 * The executor published a result (a message, an artifact, or a state other than submitted / working) for a message
 * whose skill was never authorized (fail closed): the event is not delivered, and the task fails with the generic
 * executor failure text.
 */
export class A2ASkillNotAuthorizedError extends Error {
  constructor() {
    super('the executor published a result before the library authorized a skill for this message (call authorizeSkill first)');
    this.name = 'A2ASkillNotAuthorizedError';
  }
}

/** Options of {@link A2AInTaskAuthorization.requireScopes}. */
export interface RequireScopesOptions {
  /**
   * Id of the operation the scopes are for, e.g. `approve-expense:<id>`. The token of the follow-up authorizes this
   * operation of this task only (A2A §7.6.4).
   */
  operation: string;
  /** How long the task waits for the follow-up, milliseconds. Default 600000 (10 min); then the task is rejected. */
  timeoutMs?: number;
  /** Text of the status message, before the scopes. Default `this operation needs more authorization`. */
  reason?: string;
}

/** What the transport verified about a follow-up that answers a pending authorization. @internal */
interface StepUpGrant {
  taskId: string;
  operation: string;
  caller: A2ACaller;
  store: PendingAuthorizationStore;
}

/** One waiting `requireScopes` call. */
interface Waiter {
  operation: string;
  bus: ExecutionEventBus;
  resolve: (caller: A2ACaller) => void;
  interrupt: (reason: 'expired' | 'canceled') => void;
}

/** Per execution (one `execute` call) of the wrapped executor. */
interface Execution {
  bus: ExecutionEventBus;
  authorized: Set<string>;
  started: boolean;
  taskStarted: boolean;
  interrupted: boolean;
}

const executions = new WeakMap<RequestContext, Execution>();
const grants = new WeakMap<ServerCallContext, StepUpGrant>();
const requests = new WeakMap<ServerCallContext, object>();
// Keyed by task id (server-generated UUIDs): the executors waiting in this process.
const waiting = new Map<string, Waiter>();
// Task id → owner key (`a2aTaskOwner`) of the tasks whose execution is still running and waits for something other than
// a message (more scopes, a human approval): a message on such a task must not start a second execution of it.
const held = new Map<string, { owner: string; count: number }>();

/**
 * Marks the task of `ctx` as waiting inside its running execution (`TASK_STATE_AUTH_REQUIRED`: scopes, a human
 * approval) until the returned function is called (idempotent). While held, a message on the task from its owner that
 * does not answer a pending scope request is refused by the transport ({@link heldTaskRefusal}); the SDK would run a
 * second execution of the same task beside the waiting one, which could end the task while the wait goes on.
 * @internal
 */
export function holdTask(ctx: RequestContext): () => void {
  // A context built outside the library (no call context) has no owner a follow-up could match.
  const owner = ctx.context ? a2aTaskOwner(ctx.context) : `\u0000no-owner:${randomUUID()}`;
  const h = held.get(ctx.taskId);
  if (h && h.owner === owner) h.count++;
  else held.set(ctx.taskId, { owner, count: 1 });
  let done = false;
  return () => {
    if (done) return;
    done = true;
    const cur = held.get(ctx.taskId);
    if (cur && cur.owner === owner && --cur.count <= 0) held.delete(ctx.taskId);
  };
}

/**
 * The refusal of a message on a held task ({@link holdTask}) by its owner: the SDK's `UnsupportedOperationError` (as for
 * a message on a terminal task: JSON-RPC `-32004`, HTTP+JSON `400`). `undefined` when the task is not held, or is
 * another owner's (the SDK then answers "task not found" itself, so its existence is not revealed).
 * @internal
 */
export function heldTaskRefusal(taskId: string, ctx: ServerCallContext): Error | undefined {
  const h = taskId ? held.get(taskId) : undefined;
  if (!h || h.owner !== a2aTaskOwner(ctx)) return undefined;
  return new (sdkErrors().UnsupportedOperationError)(
    `Task ${taskId} is waiting for an authorization (TASK_STATE_AUTH_REQUIRED) and accepts no other message until it is answered or canceled`,
  );
}

/** Records the HTTP request of a call context, for the audit trail of in-task decisions (not put in `state`, which executors may log). @internal */
export function bindRequest(ctx: ServerCallContext, req: object): void {
  requests.set(ctx, req);
}

/**
 * Whether the library refuses results of this execution (fail closed: it came through `createA2ARequestHandler` and no
 * skill is authorized for its message yet). `false` for a context the library did not run.
 * @internal
 */
export function resultsRefused(ctx: RequestContext): boolean {
  const ex = executions.get(ctx);
  return ex !== undefined && ex.authorized.size === 0;
}

/** Marks a call context as the verified answer to a pending authorization of `taskId`. @internal */
export function bindStepUpGrant(ctx: ServerCallContext, grant: StepUpGrant): void {
  grants.set(ctx, grant);
}

/**
 * Whether an event carries a result. A `task` event counts when it is past `WORKING`, or when it brings artifacts or
 * agent messages the stored task (`known`, `RequestContext.task`) did not have: a "working" task can carry the result too.
 */
function isResult(ev: AgentExecutionEvent, known: Task | undefined): boolean {
  if (ev.kind === 'message' || ev.kind === 'artifactUpdate') return true;
  const state = ev.data.status?.state;
  if (state !== undefined && state !== SUBMITTED && state !== WORKING) return true;
  // A progress message is the agent talking about work it was not yet allowed to do: its text could carry a result.
  const said = ev.data.status?.message;
  if (said && (said.role as number) === ROLE_AGENT) return true;
  if (ev.kind !== 'task') return false;
  const artifacts = new Set((known?.artifacts ?? []).map((a) => a.artifactId));
  const messages = new Set((known?.history ?? []).map((m) => m.messageId));
  return (
    (ev.data.artifacts ?? []).some((a) => !artifacts.has(a.artifactId)) ||
    (ev.data.history ?? []).some((m) => (m.role as number) === ROLE_AGENT && !messages.has(m.messageId))
  );
}

/**
 * The executor as the library runs it (installed by `createA2ARequestHandler`):
 * - fail closed: until a skill is authorized for the message (by `metadata.skillId` before the executor runs, or by
 *   {@link A2AInTaskAuthorization.authorizeSkill}), the executor may only publish a task in `SUBMITTED` / `WORKING`
 *   without new artifacts or agent messages, and status updates without an agent message; any result throws {@link A2ASkillNotAuthorizedError} from `publish` and is not delivered;
 * - a follow-up message that answers a pending authorization (verified by the transport) resumes the waiting executor
 *   instead of running a second one, and relays its events to the follow-up's own answer;
 * - `cancelTask` of a task that waits for authorization ends the wait (`TASK_STATE_CANCELED`);
 * - {@link A2ATaskInterruptedError} ends the execution quietly (the library already answered the task).
 * @internal
 */
export function authorizingExecutor(executor: AgentExecutor): AgentExecutor {
  return {
    execute: async (ctx, bus) => {
      const grant = grants.get(ctx.context);
      if (grant && grant.taskId === ctx.taskId) return resume(ctx, bus, grant);
      const fast = authorizedSkillOf(ctx.context);
      const ex: Execution = { bus, authorized: new Set(fast ? [fast.skillId] : []), started: false, taskStarted: false, interrupted: false };
      executions.set(ctx, ex);
      const publish = (ev: AgentExecutionEvent): void => {
        if (ex.interrupted) return;
        if (ex.authorized.size === 0 && isResult(ev, ctx.task)) throw new A2ASkillNotAuthorizedError();
        if (ev.kind === 'message' && ex.taskStarted) {
          // A task exists (the library started one to wait for authorization): a reply message ends it, as a
          // message event would break the task's stream (A2A §3.1.2: a task stream carries status and artifact updates).
          const message = { ...ev.data, taskId: ctx.taskId, contextId: ctx.contextId };
          const status = { state: COMPLETED, message, timestamp: new Date().toISOString() };
          return bus.publish(sdkServer().AgentEvent.statusUpdate({ taskId: ctx.taskId, contextId: ctx.contextId, status, metadata: {} }));
        }
        if (ev.kind === 'task' || ev.kind === 'message') ex.started = true;
        if (ev.kind === 'task') ex.taskStarted = true;
        bus.publish(ev);
      };
      // Plain delegation (not a prototype chain): the SDK's bus is an EventTarget, whose methods need the real object.
      const guarded: ExecutionEventBus = {
        publish,
        finished: () => (ex.interrupted ? undefined : bus.finished()),
        on: (name: never, listener: never) => (bus.on(name, listener), guarded),
        off: (name: never, listener: never) => (bus.off(name, listener), guarded),
        once: (name: never, listener: never) => (bus.once(name, listener), guarded),
        removeAllListeners: (name?: never) => (bus.removeAllListeners(name), guarded),
      };
      try {
        await executor.execute(ctx, guarded);
      } catch (e) {
        if (e instanceof A2ATaskInterruptedError) return;
        throw e;
      }
    },
    cancelTask: async (taskId, bus) => {
      const w = waiting.get(taskId);
      if (w) w.interrupt('canceled');
      await executor.cancelTask(taskId, bus);
    },
  };
}

/**
 * The follow-up half of a step-up: takes the pending record (one follow-up wins), answers with the task, resumes the
 * waiting executor with the follow-up's caller and relays what it publishes until the task ends or is interrupted again.
 */
async function resume(ctx: RequestContext, bus: ExecutionEventBus, grant: StepUpGrant): Promise<void> {
  const w = waiting.get(ctx.taskId);
  const taken = w && w.operation === grant.operation ? await grant.store.take(ctx.taskId, grant.operation) : undefined;
  if (ctx.task) bus.publish(sdkServer().AgentEvent.task(ctx.task));
  if (!w || !taken || waiting.get(ctx.taskId) !== w) return; // lapsed or answered by a concurrent follow-up
  waiting.delete(ctx.taskId);
  await new Promise<void>((done) => {
    const stop = () => {
      w.bus.off('event', onEvent);
      w.bus.off('finished', stop);
      done();
    };
    const onEvent = (ev: AgentExecutionEvent) => {
      if (ev.kind === 'task') return; // the follow-up already answered with the task
      bus.publish(ev);
      const state = ev.kind === 'statusUpdate' ? ev.data.status?.state : undefined;
      if (ev.kind === 'message' || (state !== undefined && (TERMINAL.has(state) || state === AUTH_REQUIRED || state === INPUT_REQUIRED))) stop();
    };
    w.bus.on('event', onEvent);
    w.bus.on('finished', stop);
    w.resolve(grant.caller);
  });
}

/**
 * An `ExecutionEventBusManager` that gives the follow-up of a step-up a bus of its own: the waiting execution's bus
 * already carries a task event, and a second one would break the ordering of the stream still open on it (A2A §7.6.1:
 * the stream stays open while the task waits). Everything else is the SDK's default manager.
 * @internal
 */
export function inTaskBusManager(): ExecutionEventBusManager {
  const { DefaultExecutionEventBusManager, DefaultExecutionEventBus } = sdkServer();
  const inner = new DefaultExecutionEventBusManager();
  const side = new WeakSet<ExecutionEventBus>();
  return {
    createOrGetByTaskId(taskId, context) {
      if (context && grants.get(context)?.taskId === taskId) {
        const b = new DefaultExecutionEventBus();
        side.add(b);
        return b;
      }
      return inner.createOrGetByTaskId(taskId, context);
    },
    getByTaskId: (taskId, context) => inner.getByTaskId(taskId, context),
    cleanupByTaskId: (taskId, context) => inner.cleanupByTaskId(taskId, context),
    settleByTaskId(_taskId, bus) {
      if (!side.has(bus)) return false;
      bus.finished();
      return true;
    },
  };
}

function agentMessage(ctx: RequestContext, parts: Part[]): Message {
  return {
    messageId: randomUUID(),
    contextId: ctx.contextId,
    taskId: ctx.taskId,
    role: ROLE_AGENT as Message['role'],
    parts,
    metadata: undefined,
    extensions: [],
    referenceTaskIds: [],
  };
}
const text = (value: string): Part => ({ content: { $case: 'text', value }, metadata: undefined, filename: '', mediaType: 'text/plain' });
const data = (value: Record<string, unknown>): Part => ({
  content: { $case: 'data', value },
  metadata: undefined,
  filename: '',
  mediaType: 'application/json',
});

/**
 * Authorization decisions an A2A executor asks for while it runs a task (A2A v1.0 §7.6). Inject it into the executor.
 *
 * - {@link authorizeSkill}: the executor chose the skill of a message that named none (`metadata.skillId` is the fast
 *   path, checked before the executor runs). The skill's `@RequireScopes` / `@Public` / `@Delegation` are applied to the
 *   verified caller by the same code as the fast path, and recorded in the audit trail. Refused: the task goes to
 *   `TASK_STATE_REJECTED` (see below). Until a skill is authorized the library does not deliver results (fail closed).
 * - {@link requireScopes}: an operation needs scopes the message's token lacks: the task goes to
 *   `TASK_STATE_AUTH_REQUIRED` with an {@link A2AAuthorizationRequest}, and the call waits until the task's owner sends a
 *   follow-up message on the task with a token that grants them (checked by the transport before anything runs), then
 *   returns that caller. The grant covers this operation only.
 *
 * "Can never get the scopes" is decided simply: a refused skill is `TASK_STATE_REJECTED` (the message asked for
 * something its token does not allow; the client may send a new message with another token), an operation's extra
 * scopes are `TASK_STATE_AUTH_REQUIRED` (the executor asked for them, so it knows the caller may obtain them).
 */
@Injectable()
export class A2AInTaskAuthorization implements OnModuleDestroy {
  private readonly logger = new Logger('A2AInTaskAuthorization');
  /** The waits this instance started (ended at shutdown, so open streams and blocking calls do not hang). */
  private readonly mine = new Set<Waiter>();

  constructor(
    private readonly authorizer: A2ASkillAuthorizer,
    @Inject(A2A_AUTH_RESOLVED_OPTIONS) private readonly opts: ResolvedOptions,
  ) {
    // Providing this service is what lets messages without metadata.skillId reach the executor.
    authorizer.executorRouting = true;
  }

  /**
   * Authorizes the skill the executor chose for this message.
   * @returns the authorized skill (with the caller).
   * @throws A2ATaskInterruptedError `rejected` after moving the task to `TASK_STATE_REJECTED` with a status message that
   *   names the skill and the missing scopes (data part `{ error, skillId, requiredScopes, missingScopes }`).
   * @throws Error for a skill id the agent does not have, or a context that did not come through the library.
   */
  async authorizeSkill(ctx: RequestContext, skillId: string): Promise<AuthorizedSkill> {
    const ex = this.execution(ctx);
    const caller = a2aCallerOf(ctx.context);
    const d = this.authorizer.decideSkill(requests.get(ctx.context) ?? {}, caller, skillId);
    if (!d.error) {
      ex.authorized.add(skillId);
      return { skillId, skill: d.skill, caller };
    }
    const required = [...d.skill.scopes];
    const missing = missingScopes(caller?.scopes ?? [], required);
    const why =
      d.error.reason === 'insufficient_scope'
        ? `skill ${skillId} needs the scopes ${required.join(' ')}; the token lacks ${missing.join(' ')}`
        : d.error.reason === 'missing_token'
          ? `skill ${skillId} needs an access token with the scopes ${required.join(' ')}`
          : `skill ${skillId} refuses this caller: ${d.error.description}`;
    this.publishStatus(ctx, ex, REJECTED, [
      text(why),
      data({ error: d.error.error ?? d.error.reason, reason: d.error.reason, skillId, requiredScopes: required, missingScopes: missing }),
    ]);
    ex.interrupted = true;
    throw new A2ATaskInterruptedError('rejected', why);
  }

  /**
   * Requires more scopes for one operation of the running task. Returns at once with the message's caller when its
   * token already grants them; otherwise moves the task to `TASK_STATE_AUTH_REQUIRED` (status message: a text part and
   * a data part `{ authorizationRequest }`, see {@link A2AAuthorizationRequest}) and waits for the owner's follow-up.
   * A blocking `SendMessage` returns the task in that state; a stream stays open and carries the rest of the task.
   * @returns the verified caller of the follow-up whose token grants the scopes (or the message's own caller).
   * @throws A2ATaskInterruptedError `expired` (task then `TASK_STATE_REJECTED`) or `canceled`; `rejected` for an
   *   anonymous caller or a delegation chain the policy refuses.
   */
  async requireScopes(ctx: RequestContext, scopes: readonly string[], o: RequireScopesOptions): Promise<A2ACaller> {
    const ex = this.execution(ctx);
    const caller = a2aCallerOf(ctx.context);
    const skillId = [...ex.authorized][0];
    const req = requests.get(ctx.context) ?? {};
    if (!caller) {
      this.publishStatus(ctx, ex, REJECTED, [text(`this operation needs an access token with the scopes ${scopes.join(' ')}`)]);
      ex.interrupted = true;
      throw new A2ATaskInterruptedError('rejected', 'anonymous caller');
    }
    const e = this.authorizer.decideScopes(req, caller, scopes, skillId);
    if (!e) return caller;
    if (e.reason !== 'insufficient_scope') {
      this.publishStatus(ctx, ex, REJECTED, [text(`this operation refuses this caller: ${e.description}`)]);
      ex.interrupted = true;
      throw new A2ATaskInterruptedError('rejected', e.message);
    }
    const store = this.authorizer.pending;
    const timeoutMs = o.timeoutMs ?? 600_000;
    const expiresAt = Date.now() + timeoutMs;
    await store.put({ taskId: ctx.taskId, owner: taskOwnerOf(caller), scopes: [...scopes], operation: o.operation, skillId, expiresAt });
    const request: A2AAuthorizationRequest = {
      extension: IN_TASK_AUTH_EXTENSION_URI,
      type: 'oauth2_scopes',
      scopes: [...scopes],
      ...(this.opts.resource ? { resource: this.opts.resource, resourceMetadata: protectedResourceMetadataUrl(this.opts.resource) } : {}),
      operation: o.operation,
      expiresAt: new Date(expiresAt).toISOString(),
    };
    return new Promise<A2ACaller>((resolve, reject) => {
      const timer = setTimeout(() => w.interrupt('expired'), timeoutMs);
      timer.unref?.();
      const unhold = holdTask(ctx);
      const w: Waiter = {
        operation: o.operation,
        bus: ex.bus,
        resolve: (granted) => {
          clearTimeout(timer);
          unhold();
          this.mine.delete(w);
          this.publishStatus(ctx, ex, WORKING, [text(`authorized: ${o.operation}`)]);
          resolve(granted);
        },
        interrupt: (reason) => {
          clearTimeout(timer);
          unhold();
          this.mine.delete(w);
          if (waiting.get(ctx.taskId) === w) waiting.delete(ctx.taskId);
          void store.delete(ctx.taskId).catch(() => undefined);
          if (reason === 'expired') this.publishStatus(ctx, ex, REJECTED, [text(`authorization for ${o.operation} was not granted in time`)], true);
          else this.publishStatus(ctx, ex, CANCELED, [text('task canceled while waiting for authorization')], true);
          ex.interrupted = true;
          reject(new A2ATaskInterruptedError(reason, `authorization ${reason}`));
        },
      };
      waiting.get(ctx.taskId)?.interrupt('canceled');
      waiting.set(ctx.taskId, w);
      this.mine.add(w);
      this.publishStatus(ctx, ex, AUTH_REQUIRED, [
        text(
          `${o.reason ?? 'this operation needs more authorization'}: send a follow-up message on this task with a token that has the scopes ${scopes.join(' ')}`,
        ),
        data({ authorizationRequest: request }),
      ]);
      this.logger.debug?.(`task ${ctx.taskId} waits for scopes ${scopes.join(' ')} (${o.operation})`);
    });
  }

  /** Ends every wait this instance started with `TASK_STATE_CANCELED` (app shutdown). */
  onModuleDestroy(): void {
    for (const w of [...this.mine]) w.interrupt('canceled');
  }

  private execution(ctx: RequestContext): Execution {
    const ex = executions.get(ctx);
    if (!ex) throw new Error('this RequestContext did not come through the library (createA2ARequestHandler)');
    return ex;
  }

  /** Publishes a status (after the task itself when the execution has published nothing yet), bypassing the fail-closed check. */
  private publishStatus(ctx: RequestContext, ex: Execution, state: TaskState, parts: Part[], force = false): void {
    if (ex.interrupted && !force) return;
    const { AgentEvent } = sdkServer();
    const timestamp = new Date().toISOString();
    if (!ex.started) {
      const task: Task = ctx.task
        ? { ...ctx.task, history: [...(ctx.task.history ?? [])] }
        : {
            id: ctx.taskId,
            contextId: ctx.contextId,
            status: { state: SUBMITTED, message: undefined, timestamp },
            artifacts: [],
            history: [ctx.userMessage],
            metadata: {},
          };
      ex.bus.publish(AgentEvent.task(task));
      ex.started = ex.taskStarted = true;
    }
    ex.bus.publish(
      AgentEvent.statusUpdate({ taskId: ctx.taskId, contextId: ctx.contextId, status: { state, message: agentMessage(ctx, parts), timestamp }, metadata: {} }),
    );
  }
}
