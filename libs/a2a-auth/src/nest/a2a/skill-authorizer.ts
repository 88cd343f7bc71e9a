import { Inject, Injectable } from '@nestjs/common';
import { A2AAuthGuard } from '../guard/a2a-auth.guard';
import { ClientRateLimiter } from '../guard/client-rate-limiter';
import type { HttpRequestLike } from '../http/request-info';
import { AuthAuditService } from '../audit/auth-audit.service';
import { SkillRegistry, type RegisteredSkill } from '../card/skill-registry';
import type { A2ACaller } from '../../core/caller';
import { AuthError } from '../../core/errors';
import { delegationFor } from '../../core/delegation';
import type { ResolvedOptions } from '../../core/options';
import { assertAuthorized } from '../../core/route-policy';
import { A2A_AUTH_RESOLVED_OPTIONS } from '../constants';
import {
  checkPendingAnswer,
  InMemoryPendingAuthorizationStore,
  type PendingAuthorization,
  type PendingAuthorizationStore,
} from '../../core/in-task-authorization';

/** The metadata key that names the skill of an A2A message: `message.metadata.skillId` (or request-level `metadata.skillId`). */
export const A2A_SKILL_ID_KEY = 'skillId';

/** A2A v1.0 JSON-RPC methods that carry a message and so run a skill. */
export const A2A_MESSAGE_METHODS: readonly string[] = Object.freeze(['SendMessage', 'SendStreamingMessage']);

/**
 * The message could not be routed to a skill. Sent as an A2A "invalid params" error: JSON-RPC `-32602`
 * (HTTP 200, as for every JSON-RPC error envelope) or HTTP+JSON `400 INVALID_ARGUMENT`.
 * `reason`: `missing_skill_id` (several skills and no `skillId`), `unknown_skill` (no such skill),
 * `invalid_skill_id` (not a non-empty string of at most 128 characters), `conflicting_skill_id` (message and request name different skills).
 */
export class A2ASkillResolutionError extends Error {
  /** JSON-RPC error code (`-32602`, invalid params). */
  readonly jsonRpcCode = -32602;
  /** HTTP status for the HTTP+JSON binding. */
  readonly httpStatus = 400;

  constructor(
    readonly reason: 'missing_skill_id' | 'unknown_skill' | 'invalid_skill_id' | 'conflicting_skill_id',
    message: string,
  ) {
    super(message);
    this.name = 'A2ASkillResolutionError';
  }
}

/** The outcome of {@link A2ASkillAuthorizer.authorize}. */
export interface AuthorizedSkill {
  /** The skill the message runs. */
  skillId: string;
  /** The registry entry (declaring class and method, required scopes). */
  skill: RegisteredSkill;
  /** The verified caller; `undefined` for an anonymous message to a `@Public()` skill. */
  caller?: A2ACaller;
}

/** The outcome of {@link A2ASkillAuthorizer.authorizeJsonRpc}: the skill for message methods, and the caller. */
export interface AuthorizedCall {
  /** Set for `SendMessage` / `SendStreamingMessage`. */
  skill?: AuthorizedSkill;
  /** The verified caller; `undefined` only for an anonymous message to a public skill. */
  caller?: A2ACaller;
}

type Json = Record<string, unknown>;
const isObj = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * The skill id an A2A `SendMessageRequest` (ProtoJSON body of `SendMessage` / `POST /message:send`) names:
 * `message.metadata.skillId`, else request-level `metadata.skillId`. `undefined` when neither is set.
 * @throws A2ASkillResolutionError `invalid_skill_id` / `conflicting_skill_id`.
 */
export function skillIdOf(params: unknown): string | undefined {
  if (!isObj(params)) return undefined;
  const read = (meta: unknown): string | undefined => {
    if (!isObj(meta) || !(A2A_SKILL_ID_KEY in meta)) return undefined;
    const v = meta[A2A_SKILL_ID_KEY];
    if (typeof v !== 'string' || v === '' || v.length > 128) {
      throw new A2ASkillResolutionError('invalid_skill_id', 'metadata.skillId must be a non-empty string of at most 128 characters');
    }
    return v;
  };
  const fromMessage = isObj(params.message) ? read(params.message.metadata) : undefined;
  const fromRequest = read(params.metadata);
  if (fromMessage !== undefined && fromRequest !== undefined && fromMessage !== fromRequest) {
    throw new A2ASkillResolutionError('conflicting_skill_id', 'message.metadata.skillId and metadata.skillId name different skills');
  }
  return fromMessage ?? fromRequest;
}

function callerOn(req: HttpRequestLike): A2ACaller | undefined {
  const u = req.user as A2ACaller | undefined;
  return u && Array.isArray(u.scopes) ? u : undefined;
}

/**
 * Per-skill scopes inside A2A calls (DESIGN §6). Call it from the controller that serves an A2A binding, after the
 * guard has authenticated the request and before the SDK runs the executor.
 *
 * - The skill comes from `message.metadata.skillId` (or request-level `metadata.skillId`); an agent with exactly one
 *   skill also accepts a message without one. With several skills, a message without one goes to the executor, which
 *   routes it and asks `A2AInTaskAuthorization.authorizeSkill` ({@link decideSkill}: the same policy) before it acts.
 * - A follow-up message on a task that waits for more scopes is checked against that task's pending operation
 *   ({@link authorizeFollowUp}).
 * - It is looked up in the {@link SkillRegistry}: the same `@AgentSkill` / `@RequireScopes` / `@Public` metadata that the
 *   guard enforces on REST routes and the card advertises.
 * - A delegation chain (`act`, RFC 8693 §4.1) the skill's `@Delegation()` over the module-wide `delegation` option
 *   refuses: HTTP 403 `insufficient_scope` (reasons `delegation_not_allowed`, `delegation_too_deep`, `untrusted_actor`).
 *   Calls that run no skill follow the module-wide policy.
 * - Missing scopes: HTTP 403 with the guard's `WWW-Authenticate: Bearer …, error="insufficient_scope", scope="…"` and
 *   body (RFC 6750 §3.1), and a failure audit event carrying the skill id.
 * - Unknown or missing skill id: {@link A2ASkillResolutionError} (an A2A invalid-params error, not an auth failure).
 * - The skill handler's own `@ClientRateLimit()` ({@link authorizeMessage}): HTTP 429 with `Retry-After`, after the
 *   scope check, counted per verified client in the `store`.
 * - No verified caller on the request (the guard did not run): HTTP 401 (fail closed).
 */
@Injectable()
export class A2ASkillAuthorizer {
  /**
   * Operations of tasks waiting for more scopes (`A2AInTaskAuthorization.requireScopes`), one per task, in this
   * process's memory (several instances would need a shared store and a way to reach the waiting executor: not yet).
   */
  readonly pending: PendingAuthorizationStore = new InMemoryPendingAuthorizationStore();

  /**
   * Messages without a skill id go to the executor (several skills). Set when the app provides
   * `A2AInTaskAuthorization` (the executor can then ask `authorizeSkill`); otherwise such a message is the
   * `missing_skill_id` invalid-params error, as an executor that cannot route would only fail. Default false.
   */
  executorRouting = false;

  constructor(
    private readonly skills: SkillRegistry,
    private readonly guard: A2AAuthGuard,
    private readonly audit: AuthAuditService,
    @Inject(A2A_AUTH_RESOLVED_OPTIONS) private readonly opts: ResolvedOptions,
    private readonly limiter: ClientRateLimiter,
  ) {}

  /**
   * Resolves the skill of one message and applies its route policy: a `@Public()` skill runs without a token; any other
   * needs a verified caller holding every scope of its `@RequireScopes` (the library's one scope check). Records the
   * decision in the audit trail (one event per call). Synchronous, so it does not count the skill's own
   * `@ClientRateLimit()`: the A2A bindings use {@link authorizeMessage}, which does.
   * @param params the `SendMessageRequest` JSON (JSON-RPC `params`, or the HTTP+JSON body).
   * @throws HttpException 401 (no token for a protected skill) or 403 `insufficient_scope` (headers already set on
   *   `res`); A2ASkillResolutionError for a missing or unknown skill id.
   */
  authorize(req: HttpRequestLike, res: unknown, params: unknown): AuthorizedSkill {
    const s = this.decide(req, res, params);
    if (s.caller) this.audit.success(req, s.caller, {}, { skillId: s.skillId, requiredScopes: s.skill.scopes });
    return s;
  }

  /**
   * A message (`SendMessage` / `SendStreamingMessage`).
   * - With `metadata.skillId` (or on a single-skill agent, or without {@link executorRouting}): {@link authorize}, then
   *   the skill handler's own `@ClientRateLimit()` (class or method; the module-wide `clientRateLimit` was already
   *   counted by the guard for the request), per verified client, in the shared store: past it HTTP 429 with
   *   `Retry-After` (seconds) and the guard's `rate_limited` body on both bindings (A2A v1.0 defines no rate-limit
   *   error of its own). Anonymous messages to a public skill are not counted.
   * - Without one on an agent with several skills, the executor routes it and must call
   *   `A2AInTaskAuthorization.authorizeSkill` before it publishes a result (the library's executor wrapper refuses
   *   otherwise), so here only the caller is checked (module-wide delegation policy; anonymous only when the agent has
   *   public skills).
   * One audit event per call.
   * @throws as {@link authorize}, and HttpException 429 (headers already set on `res`).
   */
  async authorizeMessage(req: HttpRequestLike, res: unknown, params: unknown): Promise<AuthorizedCall> {
    if (skillIdOf(params) !== undefined || this.skills.all().length === 1 || !this.executorRouting) {
      const s = this.decide(req, res, params);
      const limits = s.caller ? this.limiter.ownLimitsFor(s.skill.cls, s.skill.cls.prototype[s.skill.methodName]) : [];
      if (limits.length > 0) {
        const wait = await this.limiter.consume(s.caller!, limits);
        if (wait !== undefined) throw this.guard.rateLimited(req, res, wait, { skillId: s.skillId, requiredScopes: s.skill.scopes }, s.caller!);
      }
      if (s.caller) this.audit.success(req, s.caller, {}, { skillId: s.skillId, requiredScopes: s.skill.scopes });
      return { skill: s, caller: s.caller };
    }
    const caller = this.precheck(req, res);
    if (!caller) return {};
    try {
      assertAuthorized(caller, [], this.opts.delegation);
    } catch (e) {
      this.refuse(req, res, e as AuthError, {}, caller);
    }
    this.audit.success(req, caller, {}, {});
    return { caller };
  }

  // The decision of authorize() without its audit event.
  private decide(req: HttpRequestLike, res: unknown, params: unknown): AuthorizedSkill {
    const caller = this.precheck(req, res);
    const { skillId, skill } = this.resolve(params);
    const route = { skillId, requiredScopes: skill.scopes };
    const err = this.check(caller, skillId, skill);
    if (err) this.refuse(req, res, err, route, caller);
    return { skillId, skill, caller };
  }

  /**
   * The in-task decision on a skill the executor chose (same policy and scope check as {@link authorize}), recorded in
   * the audit trail. Returns the refusal instead of answering HTTP: the task is answered in A2A terms.
   * @throws Error for a skill id the agent does not have (a bug in the executor, not the caller's fault).
   */
  decideSkill(req: HttpRequestLike | object, caller: A2ACaller | undefined, skillId: string): { skill: RegisteredSkill; error?: AuthError } {
    const skill = this.skills.get(skillId);
    if (!skill) throw new Error(`authorizeSkill: this agent has no skill ${JSON.stringify(skillId)}`);
    const route = { skillId, requiredScopes: skill.scopes };
    const error = this.check(caller, skillId, skill);
    if (error) this.audit.failure(req as HttpRequestLike, error, {}, route, caller);
    else if (caller) this.audit.success(req as HttpRequestLike, caller, {}, route);
    return { skill, error };
  }

  /**
   * The in-task decision on extra scopes for one operation (the same delegation and scope check), recorded in the
   * audit trail. The skill's own `@Delegation()` applies when `skillId` names one.
   * @returns the refusal, or `undefined` when the caller has them.
   */
  decideScopes(req: HttpRequestLike | object, caller: A2ACaller, scopes: readonly string[], skillId?: string): AuthError | undefined {
    const skill = skillId === undefined ? undefined : this.skills.get(skillId);
    const route = { skillId, requiredScopes: scopes };
    try {
      assertAuthorized(caller, scopes, delegationFor(this.opts.delegation, skill?.delegation));
    } catch (e) {
      this.audit.failure(req as HttpRequestLike, e as AuthError, {}, route, caller);
      return e as AuthError;
    }
    this.audit.success(req as HttpRequestLike, caller, {}, route);
    return undefined;
  }

  /**
   * A follow-up message on a task that waits for more scopes (`A2AInTaskAuthorization.requireScopes`): the caller must
   * be the task's owner and its token must grant the pending scopes ({@link checkPendingAnswer}); recorded in the audit
   * trail. Nothing is changed on the task when it is refused.
   * @returns the pending record it answers, `undefined` when the task waits for none (an ordinary message), or
   *   `'not_owner'` (answer as for an unknown task).
   * @throws HttpException 403 `insufficient_scope` with the pending scopes in the challenge.
   */
  async authorizeFollowUp(
    req: HttpRequestLike,
    res: unknown,
    params: unknown,
    caller: A2ACaller | undefined,
  ): Promise<PendingAuthorization | 'not_owner' | undefined> {
    const taskId = isObj(params) && isObj(params.message) && typeof params.message.taskId === 'string' ? params.message.taskId : '';
    if (!taskId) return undefined;
    const p = await this.pending.get(taskId);
    if (!p) return undefined;
    const route = { skillId: p.skillId, requiredScopes: p.scopes };
    if (!caller) this.refuse(req, res, new AuthError('missing_token', 'the task waits for a token with more scopes'), route);
    const skill = p.skillId === undefined ? undefined : this.skills.get(p.skillId);
    let verdict: 'not_owner' | undefined;
    try {
      verdict = checkPendingAnswer(p, caller!, delegationFor(this.opts.delegation, skill?.delegation));
    } catch (e) {
      this.refuse(req, res, e as AuthError, route, caller);
    }
    if (verdict) {
      this.audit.failure(req, new AuthError('insufficient_scope', 'follow-up from another owner than the task'), {}, route, caller);
      return verdict;
    }
    this.audit.success(req, caller!, {}, route);
    return p;
  }

  /** The one policy decision of a skill for a caller (anonymous: `undefined`). */
  private check(caller: A2ACaller | undefined, skillId: string, skill: RegisteredSkill): AuthError | undefined {
    if (!skill.isPublic && !caller) return new AuthError('missing_token', `skill ${skillId} needs a token`);
    if (!caller) return undefined;
    // A public skill still refuses a delegation chain its policy does not accept: the executor would act for it.
    try {
      assertAuthorized(caller, skill.isPublic ? [] : skill.scopes, delegationFor(this.opts.delegation, skill.delegation));
    } catch (e) {
      return e as AuthError;
    }
    return undefined;
  }

  /**
   * Any A2A call that runs no skill (`GetTask`, `CancelTask`, `ListTasks`, `GetExtendedAgentCard`, …): it needs a
   * verified caller. Records the decision in the audit trail.
   * @throws HttpException 401 with the bare `WWW-Authenticate` challenge when there is none; 403 for a delegation chain
   *   the module-wide `delegation` policy refuses.
   */
  authorizeCall(req: HttpRequestLike, res: unknown): A2ACaller {
    const caller = callerOn(req);
    if (!caller) this.refuse(req, res, new AuthError('missing_token', 'this A2A call needs a token'), {});
    try {
      assertAuthorized(caller!, [], this.opts.delegation);
    } catch (e) {
      this.refuse(req, res, e as AuthError, {}, caller);
    }
    this.audit.success(req, caller!, {}, {});
    return caller!;
  }

  /**
   * Refuses an anonymous call at once when no public skill could serve it, before the body is read, so an agent
   * without public skills answers exactly as the guard would.
   * @returns the verified caller, or `undefined` (anonymous, and the agent has public skills).
   * @throws HttpException 401.
   */
  precheck(req: HttpRequestLike, res: unknown): A2ACaller | undefined {
    const caller = callerOn(req);
    if (!caller && !this.skills.hasPublic()) this.refuse(req, res, new AuthError('missing_token', 'A2A call without a token'), {});
    return caller;
  }

  /**
   * For a JSON-RPC request body: `SendMessage` / `SendStreamingMessage` go through {@link authorizeMessage} (scopes and
   * the skill's own limit); every other method through {@link authorizeCall}.
   * @throws A2ASkillResolutionError `invalid_skill_id` when the body is not a parsed JSON object: the SDK would parse a
   *   string body itself, after this check had nothing to read. Otherwise as {@link authorize}.
   */
  async authorizeJsonRpc(req: HttpRequestLike, res: unknown, body: unknown): Promise<AuthorizedCall> {
    if (!isObj(body)) throw new A2ASkillResolutionError('invalid_skill_id', 'the JSON-RPC request must be a parsed JSON object');
    if (typeof body.method !== 'string' || !A2A_MESSAGE_METHODS.includes(body.method)) return { caller: this.authorizeCall(req, res) };
    return this.authorizeMessage(req, res, body.params);
  }

  private refuse(
    req: HttpRequestLike,
    res: unknown,
    err: AuthError,
    route: { skillId?: string; requiredScopes?: readonly string[] },
    caller?: A2ACaller,
  ): never {
    this.audit.failure(req, err, {}, route, caller);
    throw this.guard.toHttpException(res, err);
  }

  /**
   * The skill a message names, or the only skill when it names none.
   * @throws A2ASkillResolutionError
   */
  resolve(params: unknown): { skillId: string; skill: RegisteredSkill } {
    const id = skillIdOf(params);
    if (id === undefined) {
      const all = this.skills.all();
      if (all.length === 1) return { skillId: all[0].skill.id, skill: all[0] };
      throw new A2ASkillResolutionError('missing_skill_id', 'message.metadata.skillId is required: this agent has several skills');
    }
    const skill = this.skills.get(id);
    if (!skill) throw new A2ASkillResolutionError('unknown_skill', 'message.metadata.skillId names no skill of this agent');
    return { skillId: id, skill };
  }
}
