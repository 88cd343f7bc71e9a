import { randomUUID } from 'node:crypto';
import { Inject, Injectable, Logger, Optional } from '@nestjs/common';
import type { Message, Part, Task, TaskState } from '@a2a-js/sdk';
import type { ExecutionEventBus, RequestContext } from '@a2a-js/sdk/server';
import { A2ASkillNotAuthorizedError, holdTask, resultsRefused } from './in-task-auth';
import { a2aTaskOwner } from './a2a-user';
import { CibaClient, type CibaApprovalToken, type CibaClientOptions, type CibaOutcome } from '../../client/ciba';
import { sdkRoot, sdkServer } from '../../client/sdk';

/**
 * URI of the A2A extension (A2A v1.0 §4.6) that describes a pending human approval. Status messages of a task waiting
 * for, or ended by, an approval list it in `message.extensions` and carry one `data` part `{ humanApproval: {...} }`
 * ({@link HumanApprovalData}).
 */
export const HUMAN_APPROVAL_EXTENSION_URI = 'urn:nestjs-a2a-auth:extension:human-approval:v1';
/** Name of the field of the `data` part that holds {@link HumanApprovalData}. */
export const HUMAN_APPROVAL_FIELD = 'humanApproval';
/** Injection token of {@link HumanApprovalOptions}. */
export const A2A_HUMAN_APPROVAL_OPTIONS = Symbol('A2A_HUMAN_APPROVAL_OPTIONS');

/** Default upper bound of one approval wait, milliseconds (the request's `expires_in` may end it sooner). */
export const DEFAULT_APPROVAL_TIMEOUT_MS = 300_000;
/** Default cap on approvals waiting at the same time, over all tasks. */
export const DEFAULT_MAX_PENDING_APPROVALS = 1000;
/** Default cap on approvals waiting at the same time for the tasks of one owner (`a2aTaskOwner`). */
export const DEFAULT_MAX_PENDING_APPROVALS_PER_OWNER = 10;
/** Longest accepted `loginHint`, characters (Unicode code points). */
export const MAX_LOGIN_HINT_LENGTH = 256;
/**
 * Longest accepted `bindingMessage`, characters (Unicode code points). CIBA Core 1.0 §7.1: it SHOULD be relatively
 * short and use a limited set of plain text characters, since it is shown on the user's device.
 */
export const MAX_BINDING_MESSAGE_LENGTH = 256;

// C0/C1 controls, line/paragraph separators and bidirectional overrides/isolates: they could break a log line or
// make the binding message the user reads differ from the one the client sees.
const FORBIDDEN_CHARS = /[\p{Cc}\u2028\u2029\u202a-\u202e\u2066-\u2069]/u;

/**
 * An {@link ApprovalRequest} the service refuses before anything is published or sent to the authorization server:
 * `field` is `loginHint` or `bindingMessage`, `reason` is `empty` (loginHint only), `too_long` (over
 * {@link MAX_LOGIN_HINT_LENGTH} / {@link MAX_BINDING_MESSAGE_LENGTH}) or `control_character`. The message names the
 * field and the rule, never the value.
 */
export class HumanApprovalInputError extends Error {
  override readonly name = 'HumanApprovalInputError';
  constructor(
    readonly field: 'loginHint' | 'bindingMessage',
    readonly reason: 'empty' | 'too_long' | 'control_character',
  ) {
    const max = field === 'loginHint' ? MAX_LOGIN_HINT_LENGTH : MAX_BINDING_MESSAGE_LENGTH;
    super(
      reason === 'empty'
        ? `the approval request has an empty ${field}`
        : reason === 'too_long'
          ? `the approval request's ${field} is longer than ${max} characters`
          : `the approval request's ${field} contains a control character`,
    );
  }
}

/** @throws HumanApprovalInputError */
function checkApprovalInput(loginHint: unknown, bindingMessage: unknown): void {
  if (typeof loginHint !== 'string' || loginHint === '') throw new HumanApprovalInputError('loginHint', 'empty');
  if ([...loginHint].length > MAX_LOGIN_HINT_LENGTH) throw new HumanApprovalInputError('loginHint', 'too_long');
  if (FORBIDDEN_CHARS.test(loginHint)) throw new HumanApprovalInputError('loginHint', 'control_character');
  if (bindingMessage === undefined) return;
  if (typeof bindingMessage !== 'string') throw new HumanApprovalInputError('bindingMessage', 'empty');
  if ([...bindingMessage].length > MAX_BINDING_MESSAGE_LENGTH) throw new HumanApprovalInputError('bindingMessage', 'too_long');
  if (FORBIDDEN_CHARS.test(bindingMessage)) throw new HumanApprovalInputError('bindingMessage', 'control_character');
}

/** Options of {@link HumanApprovalService}. */
export interface HumanApprovalOptions {
  /** The CIBA client (or its options): the agent's own client, registered for the CIBA grant in poll mode. */
  ciba: CibaClient | CibaClientOptions;
  /** Upper bound of one wait, milliseconds. Default {@link DEFAULT_APPROVAL_TIMEOUT_MS}; `expires_in` ends it sooner. */
  timeoutMs?: number;
  /** `requested_expiry` sent with each request, seconds. Default: the authorization server's choice. */
  requestedExpirySeconds?: number;
  /** Approvals waiting at the same time; beyond it a request ends the task `TASK_STATE_FAILED` at once. Default 1000. */
  maxPending?: number;
  /**
   * Approvals waiting at the same time for the tasks of one owner (`a2aTaskOwner`: issuer and subject of the token),
   * so that one client cannot take every slot of `maxPending`; beyond it a request of that owner ends the task
   * `TASK_STATE_FAILED` (`too_many_pending_approvals`) at once. Default {@link DEFAULT_MAX_PENDING_APPROVALS_PER_OWNER}.
   */
  maxPendingPerOwner?: number;
}

/** What {@link HumanApprovalService.requestApproval} needs. */
export interface ApprovalRequest {
  /** The executor's request context (task id, context id, the user message). */
  context: RequestContext;
  /** The executor's event bus; the status updates are published on it. */
  eventBus: ExecutionEventBus;
  /**
   * Whose approval is asked: CIBA `login_hint`. It is shown to the client in the status message. Non-empty, at most
   * {@link MAX_LOGIN_HINT_LENGTH} characters, no control characters, else {@link HumanApprovalInputError}.
   */
  loginHint: string;
  /**
   * CIBA `binding_message`, shown to the user on their device and to the client: say what is approved. At most
   * {@link MAX_BINDING_MESSAGE_LENGTH} characters, no control characters, else {@link HumanApprovalInputError}.
   */
  bindingMessage?: string;
  /** Scopes of the approval's access token (`openid` is added). */
  scopes: readonly string[];
  /** Names the operation approved (e.g. `submit-expense`); the approval authorizes only it, on this task. */
  operation: string;
  /** RFC 8707 `resource` of the approval's access token. Default: the authorization server's. */
  resource?: string | readonly string[];
  /** Overrides {@link HumanApprovalOptions.timeoutMs} for this wait, milliseconds. */
  timeoutMs?: number;
  /**
   * The executor already published this task's `Task` event (the SDK requires a `task` or `message` event first).
   * Default false: the service publishes the task (state `TASK_STATE_WORKING`, the user message as history) first.
   */
  taskPublished?: boolean;
}

/**
 * The machine-readable part of every status message about an approval (field {@link HUMAN_APPROVAL_FIELD} of a `data`
 * part; extension {@link HUMAN_APPROVAL_EXTENSION_URI}).
 */
export interface HumanApprovalData {
  /** `pending` (task in `TASK_STATE_AUTH_REQUIRED`), `approved` (back to `TASK_STATE_WORKING`), `denied` (`TASK_STATE_REJECTED`), `expired` / `failed` (`TASK_STATE_FAILED`), `canceled` (`TASK_STATE_CANCELED`). */
  status: 'pending' | 'approved' | 'denied' | 'expired' | 'failed' | 'canceled';
  /** How it is asked: `openid-ciba` (OpenID Connect CIBA Core 1.0, poll mode). */
  method: 'openid-ciba';
  /** Whose approval (the `login_hint`). */
  loginHint: string;
  /** The operation it authorizes. */
  operation: string;
  /** The `binding_message` the user sees. */
  bindingMessage?: string;
  /** Scopes asked for. */
  scopes: string[];
  /** `pending` only: seconds until the request expires (`expires_in`). */
  expiresIn?: number;
  /** `denied`, `expired`, `failed`: the CIBA / OAuth error code (`access_denied`, `expired_token`, `timeout`, `unavailable`, `unknown_user_id`, …). */
  error?: string;
}

/**
 * A granted approval: bound to one task and one operation. {@link token} gives the approval's access token while the
 * operation runs; {@link release} drops it (call it when the operation ends, e.g. in `finally`). Never logged: the
 * token is not an enumerable field.
 */
export class TaskApproval {
  #token?: CibaApprovalToken;

  /** @internal */
  constructor(
    /** The task it belongs to. */
    readonly taskId: string,
    /** The operation it authorizes. */
    readonly operation: string,
    /** Who approved (the `login_hint` the request named). */
    readonly loginHint: string,
    /** Granted scopes. */
    readonly scopes: readonly string[],
    token: CibaApprovalToken,
    private readonly onRelease: () => void,
  ) {
    this.#token = token;
  }

  /** When it was granted, milliseconds since the epoch. */
  readonly approvedAt = Date.now();

  /** Still usable: not released and the token not expired. */
  get active(): boolean {
    return this.#token !== undefined && this.#token.expiresAt > Date.now();
  }

  /**
   * The approval's access token, for this task and operation only.
   * @throws Error when released or expired.
   */
  token(): CibaApprovalToken {
    if (!this.active) throw new Error(`the approval of ${this.operation} on task ${this.taskId} has been released or has expired`);
    return this.#token!;
  }

  /** Drops the token; later {@link token} calls throw. Idempotent. */
  release(): void {
    if (!this.#token) return;
    this.#token = undefined;
    this.onRelease();
  }

  /** What logs may show. */
  toJSON(): Record<string, unknown> {
    return { taskId: this.taskId, operation: this.operation, loginHint: this.loginHint, scopes: this.scopes, active: this.active };
  }
}

/** The outcome of {@link HumanApprovalService.requestApproval}. */
export type ApprovalResult =
  | { readonly approved: true; readonly approval: TaskApproval }
  | {
      readonly approved: false;
      /** The state the task was ended in: `TASK_STATE_REJECTED` (denied), `TASK_STATE_FAILED` (expired, timeout, outage, refused request), `TASK_STATE_CANCELED`. */
      readonly state: 'TASK_STATE_REJECTED' | 'TASK_STATE_FAILED' | 'TASK_STATE_CANCELED';
      /** The status text sent to the client. */
      readonly reason: string;
      /** The CIBA outcome (`denied`, `expired`, `failed`, `aborted`). */
      readonly outcome: Exclude<CibaOutcome['status'], 'approved'>;
    };

interface PendingRecord {
  operation: string;
  /** What every status message of this approval says about it. */
  base: Omit<HumanApprovalData, 'status'>;
  abort: AbortController;
  eventBus: ExecutionEventBus;
  contextId: string;
  loginHint: string;
  /** `a2aTaskOwner` of the task; `undefined` for a context built outside the library (only `maxPending` applies). */
  owner?: string;
  canceled?: boolean;
  /** Ends the hold on the task ({@link holdTask}): messages on it are refused while the approval is pending. */
  unhold: () => void;
}

/**
 * Human approval inside a task (A2A v1.0 §7.6, OpenID Connect CIBA): an executor asks a named user to approve the
 * operation it is about to run, and continues when they do.
 *
 * {@link requestApproval}:
 * 1. starts a CIBA request (`login_hint`, `binding_message`, `scope`) at the authorization server;
 * 2. publishes `TASK_STATE_AUTH_REQUIRED` with a status message naming whose approval is awaited (text, and a `data`
 *    part {@link HumanApprovalData} with status `pending`); streams stay open, and a blocking `SendMessage` returns this
 *    snapshot (the SDK keeps draining the task in the background; §7.6.1: the agent MAY continue without a follow-up);
 * 3. polls at the server's `interval` (honouring `slow_down`), bounded by `expires_in`, `timeoutMs` and a cancel;
 * 4. approved: publishes `TASK_STATE_WORKING` ("Approved by …") and resolves with a {@link TaskApproval} bound to this
 *    task and operation; denied: ends the task `TASK_STATE_REJECTED`; expired, timeout, outage or a refused request:
 *    `TASK_STATE_FAILED`; each with the reason in the status message. The executor must then return without
 *    publishing anything else.
 *
 * {@link cancel} (call it from the executor's `cancelTask`) stops the wait and ends the task `TASK_STATE_CANCELED`.
 * Tokens are never logged, never stored beyond the {@link TaskApproval}, never handed to another task.
 */
@Injectable()
export class HumanApprovalService {
  private readonly logger = new Logger('HumanApproval');
  private readonly ciba: CibaClient;
  private readonly pending = new Map<string, PendingRecord>();
  private readonly granted = new Map<string, TaskApproval>();
  private readonly opts: HumanApprovalOptions;

  /** @throws Error without options (provide {@link A2A_HUMAN_APPROVAL_OPTIONS} or construct it with them). */
  constructor(@Optional() @Inject(A2A_HUMAN_APPROVAL_OPTIONS) options?: HumanApprovalOptions) {
    if (!options?.ciba) throw new Error('HumanApprovalService needs options with a ciba client (A2A_HUMAN_APPROVAL_OPTIONS)');
    this.opts = options;
    this.ciba = options.ciba instanceof CibaClient ? options.ciba : new CibaClient(options.ciba);
  }

  /** Number of approvals waiting now. */
  get pendingCount(): number {
    return this.pending.size;
  }

  /**
   * Asks `loginHint` to approve `operation` and waits (see the class description). Never throws for an
   * authorization-server problem: that ends the task `TASK_STATE_FAILED`.
   * @throws HumanApprovalInputError for a `loginHint` or `bindingMessage` out of bounds (nothing is published or
   *   sent; the executor should end the task, e.g. `TASK_STATE_REJECTED` with the error's message);
   *   Error when the task already waits for an approval (one at a time per task); A2ASkillNotAuthorizedError
   *   when the executor runs under the library and no skill is authorized for the message yet (fail closed: nobody is
   *   asked, nothing is published).
   */
  async requestApproval(r: ApprovalRequest): Promise<ApprovalResult> {
    const taskId = r.context.taskId;
    const contextId = r.context.contextId;
    checkApprovalInput(r.loginHint, r.bindingMessage);
    if (this.pending.has(taskId)) throw new Error(`task ${taskId} already waits for an approval`);
    // Fail closed before anyone is asked: the waiting status could not be published for an unauthorized message.
    if (resultsRefused(r.context)) throw new A2ASkillNotAuthorizedError();
    const base: Omit<HumanApprovalData, 'status'> = {
      method: 'openid-ciba',
      loginHint: r.loginHint,
      operation: r.operation,
      ...(r.bindingMessage ? { bindingMessage: r.bindingMessage } : {}),
      scopes: [...r.scopes],
    };
    const publish = (state: keyof typeof TaskState, text: string, data: HumanApprovalData) => this.publish(r.eventBus, taskId, contextId, state, text, data);
    if (!r.taskPublished) this.publishTask(r);

    const record: PendingRecord = {
      operation: r.operation,
      base,
      abort: new AbortController(),
      eventBus: r.eventBus,
      contextId,
      loginHint: r.loginHint,
      owner: r.context.context ? a2aTaskOwner(r.context.context) : undefined,
      unhold: () => undefined,
    };
    const end = (outcome: Exclude<CibaOutcome, { status: 'approved' }>): ApprovalResult => {
      this.pending.delete(taskId);
      record.unhold();
      if (outcome.status === 'aborted' || record.canceled) {
        return { approved: false, state: 'TASK_STATE_CANCELED', reason: canceledText(r.loginHint), outcome: 'aborted' };
      }
      const [state, reason] = endText(outcome, r.loginHint);
      this.logger.log(`approval of ${r.operation} on task ${taskId}: ${outcome.status} (${outcome.error})`);
      publish(state, reason, { ...base, status: outcome.status, error: outcome.error });
      return { approved: false, state, reason, outcome: outcome.status };
    };

    if (this.pending.size >= (this.opts.maxPending ?? DEFAULT_MAX_PENDING_APPROVALS) || this.ownerFull(record.owner)) {
      return end({ status: 'failed', error: 'too_many_pending_approvals' });
    }
    this.pending.set(taskId, record);
    record.unhold = holdTask(r.context);
    try {
      return await this.wait(r, record, end, publish);
    } catch (e) {
      // A publish that threw (the bus, the executor wrapper): forget the wait so it does not count against maxPending.
      if (this.pending.get(taskId) === record) this.pending.delete(taskId);
      record.unhold();
      record.abort.abort();
      throw e;
    }
  }

  /** Whether `owner` already has `maxPendingPerOwner` approvals waiting (bounded by `maxPending`, so a scan is cheap). */
  private ownerFull(owner: string | undefined): boolean {
    if (owner === undefined) return false;
    const max = this.opts.maxPendingPerOwner ?? DEFAULT_MAX_PENDING_APPROVALS_PER_OWNER;
    let n = 0;
    for (const p of this.pending.values()) if (p.owner === owner && ++n >= max) return true;
    return false;
  }

  /** The CIBA request and its polling, once the wait is recorded. */
  private async wait(
    r: ApprovalRequest,
    record: PendingRecord,
    end: (outcome: Exclude<CibaOutcome, { status: 'approved' }>) => ApprovalResult,
    publish: (state: keyof typeof TaskState, text: string, data: HumanApprovalData) => void,
  ): Promise<ApprovalResult> {
    const taskId = r.context.taskId;
    const base = record.base;
    this.granted.get(taskId)?.release(); // a new request on the task replaces an earlier approval

    let started;
    try {
      started = await this.ciba.start({
        loginHint: r.loginHint,
        bindingMessage: r.bindingMessage,
        scopes: r.scopes,
        resource: r.resource,
        requestedExpirySeconds: this.opts.requestedExpirySeconds,
      });
    } catch (e) {
      return end({ status: 'failed', error: (e as { error?: string }).error ?? 'invalid_response' });
    }
    if (record.canceled) return end({ status: 'aborted' });
    this.logger.log(`approval of ${r.operation} on task ${taskId} asked from ${r.loginHint} (expires in ${started.expiresIn} s)`);
    publish('TASK_STATE_AUTH_REQUIRED', pendingText(r.loginHint, r.bindingMessage), { ...base, status: 'pending', expiresIn: started.expiresIn });

    const outcome = await this.ciba.poll(started, {
      timeoutMs: r.timeoutMs ?? this.opts.timeoutMs ?? DEFAULT_APPROVAL_TIMEOUT_MS,
      signal: record.abort.signal,
    });
    if (outcome.status !== 'approved') return end(outcome);
    this.pending.delete(taskId);
    record.unhold();
    if (record.canceled) return end({ status: 'aborted' });
    const approval = new TaskApproval(
      taskId,
      r.operation,
      r.loginHint,
      outcome.token.scopes.length ? outcome.token.scopes : [...r.scopes],
      outcome.token,
      () => {
        if (this.granted.get(taskId) === approval) this.granted.delete(taskId);
      },
    );
    this.granted.set(taskId, approval);
    this.logger.log(`approval of ${r.operation} on task ${taskId}: approved by ${r.loginHint}`);
    publish('TASK_STATE_WORKING', `Approved by ${r.loginHint}`, { ...base, status: 'approved' });
    return { approved: true, approval };
  }

  /**
   * The approval granted for exactly this task and operation, while it is active; `undefined` otherwise (another
   * task, another operation, released, expired).
   */
  approvalFor(taskId: string, operation: string): TaskApproval | undefined {
    const a = this.granted.get(taskId);
    return a && a.operation === operation && a.active ? a : undefined;
  }

  /**
   * Stops the wait of a task (CancelTask): polling ends at once and the task goes to `TASK_STATE_CANCELED`. Also
   * releases an approval already granted to it. Call it from the executor's `cancelTask`.
   * @returns `true` when the task was waiting for an approval (and so was canceled here).
   */
  cancel(taskId: string, eventBus?: ExecutionEventBus): boolean {
    this.granted.get(taskId)?.release();
    const p = this.pending.get(taskId);
    if (!p) return false;
    p.canceled = true;
    p.abort.abort();
    this.pending.delete(taskId);
    p.unhold();
    this.logger.log(`approval of ${p.operation} on task ${taskId}: canceled`);
    this.publish(eventBus ?? p.eventBus, taskId, p.contextId, 'TASK_STATE_CANCELED', canceledText(p.loginHint), { ...p.base, status: 'canceled' });
    return true;
  }

  private publishTask(r: ApprovalRequest): void {
    const { AgentEvent } = sdkServer();
    const task: Task = {
      id: r.context.taskId,
      contextId: r.context.contextId,
      status: { state: stateOf('TASK_STATE_WORKING'), message: undefined, timestamp: new Date().toISOString() },
      artifacts: [],
      history: [r.context.userMessage],
      metadata: undefined,
    };
    r.eventBus.publish(AgentEvent.task(task));
  }

  private publish(bus: ExecutionEventBus, taskId: string, contextId: string, state: keyof typeof TaskState, text: string, data: HumanApprovalData): void {
    const { AgentEvent } = sdkServer();
    bus.publish(
      AgentEvent.statusUpdate({
        taskId,
        contextId,
        status: { state: stateOf(state), message: statusMessage(taskId, contextId, text, data), timestamp: new Date().toISOString() },
        metadata: undefined,
      }),
    );
  }
}

function stateOf(name: keyof typeof TaskState): TaskState {
  return sdkRoot().TaskState[name];
}

/** An agent message with a text part and the {@link HumanApprovalData} part. */
function statusMessage(taskId: string, contextId: string, text: string, data: HumanApprovalData): Message {
  const parts: Part[] = [
    { content: { $case: 'text', value: text }, metadata: undefined, filename: '', mediaType: 'text/plain' },
    { content: { $case: 'data', value: { [HUMAN_APPROVAL_FIELD]: data } }, metadata: undefined, filename: '', mediaType: 'application/json' },
  ];
  return {
    messageId: randomUUID(),
    contextId,
    taskId,
    role: sdkRoot().Role.ROLE_AGENT,
    parts,
    metadata: undefined,
    extensions: [HUMAN_APPROVAL_EXTENSION_URI],
    referenceTaskIds: [],
  };
}

/** Text of the `TASK_STATE_AUTH_REQUIRED` status message. */
function pendingText(loginHint: string, bindingMessage?: string): string {
  return `Waiting for ${loginHint} to approve${bindingMessage ? `: ${bindingMessage}` : ''}`;
}

function canceledText(loginHint: string): string {
  return `Canceled while waiting for ${loginHint}'s approval`;
}

function endText(o: Exclude<CibaOutcome, { status: 'approved' | 'aborted' }>, loginHint: string): ['TASK_STATE_REJECTED' | 'TASK_STATE_FAILED', string] {
  switch (o.status) {
    case 'denied':
      return ['TASK_STATE_REJECTED', `${loginHint} denied the approval (${o.error})`];
    case 'expired':
      return ['TASK_STATE_FAILED', `No approval from ${loginHint} in time (${o.error})`];
    default:
      return ['TASK_STATE_FAILED', `The approval request to ${loginHint} could not be completed (${o.error})`];
  }
}
