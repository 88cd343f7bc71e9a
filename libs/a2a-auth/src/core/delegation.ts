import { AuthError } from './errors';

/**
 * One acting party of a delegated token: the members of one `act` claim (RFC 8693 §4.1) that identify it. Other
 * members of `act` are not kept (RFC 8693 §4.1 leaves them to the issuer; none of them is an identity).
 */
export interface A2AActor {
  /** `act.sub`: the subject of the actor. */
  readonly sub?: string;
  /** `act.client_id`: the OAuth 2.0 client acting (RFC 8693 §4.3 names the claim). */
  readonly client_id?: string;
  /** `act.iss`: the issuer of the actor's identity, when it differs from the token's. */
  readonly iss?: string;
}

/** Delegation policy (RFC 8693 §4.1 `act`), module-wide in the `delegation` option and per route with `@Delegation()`. */
export interface DelegationOptions {
  /**
   * Accept tokens that carry an `act` claim. Default false: a delegated token is refused (403 `delegation_not_allowed`)
   * unless delegation was configured, so an agent never runs on a third party's behalf without saying so.
   */
  accept?: boolean;
  /** Most actors a chain may hold (the `act` nesting depth). Default 2; an integer from 1 to {@link MAX_ACT_DEPTH}. */
  maxChainLength?: number;
  /**
   * The current actor (the outermost `act`) must name one of these as its `client_id` or `sub`. Default: any actor.
   * Only the current actor counts: RFC 8693 §4.1 makes the nested, prior actors informational only.
   */
  trustedActors?: string[];
}

/** A {@link DelegationOptions} with its defaults applied. */
export interface DelegationPolicy {
  readonly accept: boolean;
  readonly maxChainLength: number;
  readonly trustedActors?: ReadonlySet<string>;
}

/** Deepest `act` nesting the verifier reads (a deeper one is a malformed token, 401): it bounds the work per token. */
export const MAX_ACT_DEPTH = 16;

/** The policy when nothing is configured: delegated tokens are refused (fail closed). */
export const DEFAULT_DELEGATION: DelegationPolicy = Object.freeze({ accept: false, maxChainLength: 2 });

const NO_ACTORS: readonly A2AActor[] = Object.freeze([]);

/**
 * The actor chain of verified claims, nearest actor first (the outermost `act`, then the one nested in it, …).
 * Empty (and shared) when the token has no `act`.
 * @throws AuthError `malformed_token` (401) when `act` (at any depth) is not a JSON object, when its `sub`,
 *   `client_id` or `iss` is not a string, when an actor names none of `sub`/`client_id`, or when it nests deeper than
 *   {@link MAX_ACT_DEPTH}.
 */
export function actorsOf(claims: Readonly<Record<string, unknown>>): readonly A2AActor[] {
  if (claims.act === undefined) return NO_ACTORS;
  const out: A2AActor[] = [];
  let act: unknown = claims.act;
  while (act !== undefined) {
    if (out.length === MAX_ACT_DEPTH) throw new AuthError('malformed_token', `act nests deeper than ${MAX_ACT_DEPTH}`);
    if (typeof act !== 'object' || act === null || Array.isArray(act)) throw new AuthError('malformed_token', 'act is not a JSON object');
    const a = act as Record<string, unknown>;
    const actor: { sub?: string; client_id?: string; iss?: string } = {};
    for (const k of ['sub', 'client_id', 'iss'] as const) {
      const v = a[k];
      if (v === undefined) continue;
      if (typeof v !== 'string' || v === '') throw new AuthError('malformed_token', `act.${k} is not a non-empty string`);
      actor[k] = v;
    }
    if (actor.sub === undefined && actor.client_id === undefined) throw new AuthError('malformed_token', 'an actor names neither sub nor client_id');
    out.push(Object.freeze(actor));
    act = a.act;
  }
  return Object.freeze(out);
}

/**
 * Checks {@link DelegationOptions} and applies defaults over `base`.
 * @throws Error naming the field, for a non-boolean `accept`, a `maxChainLength` outside 1..{@link MAX_ACT_DEPTH} or a
 *   `trustedActors` that is not a list of non-empty strings. The module wraps it in its config error.
 */
export function resolveDelegation(o: DelegationOptions | undefined, base: DelegationPolicy = DEFAULT_DELEGATION): DelegationPolicy {
  if (o === undefined) return base;
  if (typeof o !== 'object' || o === null) throw new Error('must be an object');
  if (o.accept !== undefined && typeof o.accept !== 'boolean') throw new Error('accept must be a boolean');
  const max = o.maxChainLength;
  if (max !== undefined && (!Number.isInteger(max) || max < 1 || max > MAX_ACT_DEPTH)) {
    throw new Error(`maxChainLength must be an integer from 1 to ${MAX_ACT_DEPTH}, got ${String(max)}`);
  }
  const t = o.trustedActors;
  if (t !== undefined && (!Array.isArray(t) || t.some((x) => typeof x !== 'string' || x === ''))) {
    throw new Error('trustedActors must be a list of non-empty strings (client ids or subjects)');
  }
  return Object.freeze({
    accept: o.accept ?? base.accept,
    maxChainLength: max ?? base.maxChainLength,
    trustedActors: t !== undefined ? new Set(t) : base.trustedActors,
  });
}

const merged = new WeakMap<DelegationPolicy, WeakMap<object, DelegationPolicy>>();

/**
 * The policy of one route: its `@Delegation()` fields over the module-wide policy (memoized per pair, so the request
 * path does not allocate).
 */
export function delegationFor(module: DelegationPolicy, route: DelegationOptions | undefined): DelegationPolicy {
  if (route === undefined) return module;
  let byRoute = merged.get(module);
  if (!byRoute) merged.set(module, (byRoute = new WeakMap()));
  let p = byRoute.get(route);
  if (!p) byRoute.set(route, (p = resolveDelegation(route, module)));
  return p;
}

/**
 * The delegation decision for one verified caller: a token without `act` always passes; a delegated one must be
 * accepted, no longer than `maxChainLength`, and its current actor trusted.
 * @throws AuthError 403 `delegation_not_allowed`, `delegation_too_deep` or `untrusted_actor`.
 */
export function assertDelegation(actors: readonly A2AActor[] | undefined, policy: DelegationPolicy): void {
  if (!actors || actors.length === 0) return;
  if (!policy.accept) throw new AuthError('delegation_not_allowed', 'delegated tokens are not accepted here');
  if (actors.length > policy.maxChainLength) {
    throw new AuthError('delegation_too_deep', `delegation chain of ${actors.length} actors exceeds ${policy.maxChainLength}`);
  }
  const trusted = policy.trustedActors;
  if (trusted) {
    const a = actors[0];
    if (!(a.client_id !== undefined && trusted.has(a.client_id)) && !(a.sub !== undefined && trusted.has(a.sub))) {
      throw new AuthError('untrusted_actor', 'the current actor is not in trustedActors');
    }
  }
}
