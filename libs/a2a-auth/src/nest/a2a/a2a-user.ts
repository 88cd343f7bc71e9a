import { randomUUID } from 'node:crypto';
import type { ServerCallContext, User } from '@a2a-js/sdk/server';
import type { A2ACaller } from '../../core/caller';
import type { A2AActor } from '../../core/delegation';
import type { AuthorizedSkill } from './skill-authorizer';

/** `ServerCallContext.state` key of the verified {@link A2ACaller}. */
export const A2A_CALLER_STATE_KEY = 'nestjs-a2a-auth:caller';
/** `ServerCallContext.state` key of the {@link AuthorizedSkill} (set for messages only). */
export const A2A_SKILL_STATE_KEY = 'nestjs-a2a-auth:skill';

/**
 * The verified caller as an `@a2a-js/sdk` `User` (what the SDK's `UserBuilder` produces), so the executor and the
 * task store see who called.
 *
 * - `isAuthenticated` is a getter: `true` with a verified caller (the SDK reads it as a value; a method would always be truthy).
 * - `userName`: `client_id`, else `sub`, else `'unknown'`.
 * - `caller`: the full {@link A2ACaller} (issuer, scopes, claims).
 * - `actors`: the delegation chain of the token (RFC 8693 §4.1 `act`), nearest actor first; empty when none.
 * - `ownerKey`: `iss` + `sub` (or client id), unique across issuers; see {@link a2aTaskOwner}.
 */
export class A2AUser implements User {
  /** @param caller the verified caller; `undefined` for an anonymous message to a `@Public()` skill. */
  constructor(readonly caller?: A2ACaller) {
    const who = caller?.subject ?? caller?.clientId;
    // Anonymous and unidentified callers get an owner key no other call shares: they cannot reach each other's tasks.
    this.ownerKey = caller && who ? `${caller.issuer} ${who}` : `${caller?.issuer ?? ''} \u0000unidentified:${randomUUID()}`;
  }

  get isAuthenticated(): boolean {
    return this.caller !== undefined;
  }

  /** The caller's delegation chain, nearest actor first (see {@link A2ACaller.actors}); empty when anonymous or direct. */
  get actors(): readonly A2AActor[] {
    return this.caller?.actors ?? [];
  }

  get userName(): string {
    return this.caller?.clientId ?? this.caller?.subject ?? (this.caller ? 'unknown' : 'anonymous');
  }

  /**
   * Owner identity for task scoping: `<iss> <sub or client_id>`. A token with neither, and an anonymous call, get a key
   * of their own that no other call shares (fail closed: such callers cannot reach each other's tasks, nor their own later).
   */
  readonly ownerKey: string;
}

/**
 * An `OwnerResolver` for the SDK's `InMemoryTaskStore` / push stores: tasks are scoped to `iss` + `sub`, so two
 * clients with the same id at different issuers never see each other's tasks. Unauthenticated calls (which the
 * guard does not let through) would share the `'unknown'` scope, as in the SDK's default.
 * @example new InMemoryTaskStore(a2aTaskOwner)
 */
export function a2aTaskOwner(context: ServerCallContext): string {
  const u = context.user;
  return u instanceof A2AUser ? u.ownerKey : u?.isAuthenticated ? u.userName : 'unknown';
}

/** The verified caller of an A2A call (from the executor's `RequestContext.context`), or `undefined`. */
export function a2aCallerOf(context: ServerCallContext): A2ACaller | undefined {
  return context.state.get(A2A_CALLER_STATE_KEY) as A2ACaller | undefined;
}

/**
 * The skill the library authorized for this message (from the executor's `RequestContext.context`). Executors should
 * dispatch on this, not re-read `metadata.skillId`, so what runs is exactly what was authorized.
 * `undefined` when the call did not go through the library's transport (fail closed: refuse to run).
 */
export function authorizedSkillOf(context: ServerCallContext): AuthorizedSkill | undefined {
  return context.state.get(A2A_SKILL_STATE_KEY) as AuthorizedSkill | undefined;
}
