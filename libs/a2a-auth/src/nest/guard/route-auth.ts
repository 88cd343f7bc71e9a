import type { Reflector } from '@nestjs/core';
import { A2AAuthConfigError, type DPoPMode } from '../../core/options';
import { combineRoutePolicy, RoutePolicyError, type AgentSkillOptions, type RoutePolicy } from '../../core/route-policy';
import type { DelegationOptions } from '../../core/delegation';
import { A2A_ENDPOINT_KEY, AGENT_SKILL_KEY, DELEGATION_KEY, DPOP_MODE_KEY, IS_PUBLIC_KEY, REQUIRED_SCOPES_KEY } from '../constants';

const memo = new WeakMap<object, WeakMap<object, RoutePolicy>>();

/**
 * The {@link RoutePolicy} of a handler, from its class and method decorators (read once, then memoized). The guard,
 * the card's skill discovery and the A2A skill checks all read it here, so enforcement and advertisement cannot drift.
 * @throws A2AAuthConfigError for `@Public()` and `@RequireScopes()` on the same level (found at boot).
 */
export function routeAuth(reflector: Reflector, cls: object, handler: object): RoutePolicy {
  let byClass = memo.get(handler);
  if (!byClass) memo.set(handler, (byClass = new WeakMap()));
  let r = byClass.get(cls);
  if (r) return r;
  const read = (target: object) => ({
    isPublic: reflector.get<boolean>(IS_PUBLIC_KEY, target as never) === true,
    scopes: reflector.get<readonly string[]>(REQUIRED_SCOPES_KEY, target as never),
    a2aEndpoint: reflector.get<boolean>(A2A_ENDPOINT_KEY, target as never) === true,
    dpop: reflector.get<DPoPMode | undefined>(DPOP_MODE_KEY, target as never),
    delegation: reflector.get<DelegationOptions>(DELEGATION_KEY, target as never),
  });
  const where = `${(cls as { name?: string }).name ?? 'anonymous'}.${(handler as { name?: string }).name ?? 'handler'}`;
  try {
    r = combineRoutePolicy(read(cls), read(handler), reflector.get<AgentSkillOptions>(AGENT_SKILL_KEY, handler as never), where);
  } catch (e) {
    if (e instanceof RoutePolicyError) throw new A2AAuthConfigError(e.decorators, e.message);
    throw e;
  }
  byClass.set(cls, r);
  return r;
}
