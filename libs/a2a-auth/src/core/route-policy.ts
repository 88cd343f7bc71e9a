import type { DPoPMode } from './options';
import type { A2ACaller } from './caller';
import { assertDelegation, type DelegationOptions, type DelegationPolicy } from './delegation';
import { assertScopes } from './scopes';

/** An A2A v1.0 `AgentSkill`, as declared on a handler. Its security requirement comes from `@RequireScopes`/`@Public`. */
export interface AgentSkillOptions {
  /** Unique skill id (A2A `AgentSkill.id`); also the `message.metadata.skillId` that routes A2A messages. */
  id: string;
  /** Human-readable name. */
  name: string;
  /** What the skill does. */
  description: string;
  /** Keywords. Default `[]`. */
  tags?: string[];
  /** Example prompts. */
  examples?: string[];
  /** Accepted media types; default: the card's `defaultInputModes`. */
  inputModes?: string[];
  /** Produced media types; default: the card's `defaultOutputModes`. */
  outputModes?: string[];
  /** Advertise only in the authenticated extended card. Default false. */
  extendedOnly?: boolean;
}

/** The auth decorators found at one level (the controller class, or the handler method). */
export interface RouteDecorators {
  /** `@Public()` at this level. */
  isPublic?: boolean;
  /** `@RequireScopes(...)` at this level. */
  scopes?: readonly string[];
  /** `@A2AEndpoint()` at this level: the route serves an A2A binding. */
  a2aEndpoint?: boolean;
  /** `@DPoP(mode)` at this level. */
  dpop?: DPoPMode;
  /** `@Delegation()` at this level. */
  delegation?: DelegationOptions;
}

/**
 * What a handler requires, once class and method decorators are combined. The guard enforces it, the card advertises
 * it and the A2A bindings apply it to the skill a message runs: one policy, three entry points.
 */
export interface RoutePolicy {
  /** No token needed. */
  readonly isPublic: boolean;
  /** Every one of these scopes is required (class and method combined, class first, no duplicates). Empty when public. */
  readonly scopes: readonly string[];
  /** The `@AgentSkill` of the handler, if any. */
  readonly skill?: AgentSkillOptions;
  /**
   * The route serves an A2A binding (`@A2AEndpoint()`): a request without credentials reaches the transport, which
   * decides per call with the same policy (a message to a public skill runs without a token; anything else needs one).
   * Credentials that are sent are always verified first.
   */
  readonly a2aEndpoint: boolean;
  /**
   * The route's RFC 9449 DPoP mode from `@DPoP(mode)` (the handler's over the controller's); `undefined` for the
   * module-wide `dpop` option. The guard, the `'a2a-jwt'` strategy and the A2A bindings (through the guard on their
   * endpoint) all pass it to the verifier.
   */
  readonly dpop?: DPoPMode;
  /**
   * The route's `@Delegation()` fields (the method's over the class's), applied over the module-wide `delegation`
   * option; `undefined` when neither level has one. On an A2A binding the skill's own policy applies to messages and
   * the module-wide one to every other call.
   */
  readonly delegation?: DelegationOptions;
}

/**
 * Combines class-level and method-level decorators into one {@link RoutePolicy}. The rule:
 *
 * 1. The more specific level wins: a method with `@RequireScopes` is protected even in a `@Public()` controller, and a
 *    method with `@Public()` is public even in a controller with `@RequireScopes`.
 * 2. Otherwise the class decides: a `@Public()` controller makes its plain methods public; its `@RequireScopes` apply to
 *    every method, combined (AND) with the method's own.
 * 3. `@Public()` and `@RequireScopes()` on the same level contradict each other: the app refuses to boot.
 * 4. `@DPoP(mode)`: the handler's wins over the controller's; neither means the module-wide mode.
 *
 * @param where names the handler in the boot error, e.g. `ExpensesController.submit`.
 * @throws Error (the module wraps it in its config error) for a same-level contradiction.
 */
export function combineRoutePolicy(cls: RouteDecorators, method: RouteDecorators, skill: AgentSkillOptions | undefined, where: string): RoutePolicy {
  for (const [level, d] of [
    ['controller', cls],
    ['handler', method],
  ] as const) {
    if (d.isPublic && d.scopes?.length) {
      throw new RoutePolicyError(`${where}: @Public() and @RequireScopes(${d.scopes.join(', ')}) on the same ${level} contradict each other`);
    }
  }
  let isPublic: boolean;
  let scopes: readonly string[];
  if (method.scopes?.length) {
    isPublic = false;
    scopes = cls.isPublic ? method.scopes : [...(cls.scopes ?? []), ...method.scopes];
  } else if (method.isPublic) {
    isPublic = true;
    scopes = [];
  } else {
    isPublic = cls.isPublic === true;
    scopes = cls.scopes ?? [];
  }
  const a2aEndpoint = method.a2aEndpoint === true || cls.a2aEndpoint === true;
  if (a2aEndpoint && (isPublic || scopes.length)) {
    throw new RoutePolicyError(`${where}: an @A2AEndpoint() takes its policy from the skills; remove @Public()/@RequireScopes() from it`);
  }
  if (a2aEndpoint && (cls.delegation || method.delegation)) {
    throw new RoutePolicyError(
      `${where}: an @A2AEndpoint() takes its delegation policy from the skills and the module; remove @Delegation() from it`,
      '@Delegation',
    );
  }
  const delegation = cls.delegation || method.delegation ? Object.freeze({ ...cls.delegation, ...method.delegation }) : undefined;
  const dpop = method.dpop ?? cls.dpop;
  return Object.freeze({ isPublic, scopes: Object.freeze([...new Set(scopes)]), skill, a2aEndpoint, delegation, ...(dpop ? { dpop } : {}) });
}

/**
 * The authorization of one verified caller against what a route or skill requires: first its delegation chain
 * ({@link assertDelegation}: who may act here), then its scopes (what it may do). The guard and the A2A skill checks
 * both decide here.
 * @param delegation the effective policy (`delegationFor(module, route.delegation)`).
 * @throws AuthError 403 `delegation_not_allowed`, `delegation_too_deep`, `untrusted_actor` or `insufficient_scope`.
 */
export function assertAuthorized(caller: Pick<A2ACaller, 'scopes' | 'actors'>, scopes: readonly string[], delegation: DelegationPolicy): void {
  assertDelegation(caller.actors, delegation);
  assertScopes(caller.scopes, scopes);
}

/** A contradiction between route decorators, found at boot by {@link combineRoutePolicy}. */
export class RoutePolicyError extends Error {
  /** @param decorators names the decorators at fault, for the config error. */
  constructor(
    message: string,
    readonly decorators = '@Public/@RequireScopes',
  ) {
    super(message);
    this.name = 'RoutePolicyError';
  }
}
