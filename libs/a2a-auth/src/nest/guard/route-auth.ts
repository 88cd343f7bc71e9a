import type { Reflector } from '@nestjs/core';
import { AGENT_SKILL_KEY, IS_PUBLIC_KEY, REQUIRED_SCOPES_KEY } from '../constants';
import type { AgentSkillOptions } from '../decorators/agent-skill.decorator';

/** What a handler requires, from its decorators (class and method combined). */
export interface RouteAuth {
  /** `@Public()` on the handler or its class. */
  isPublic: boolean;
  /** Union of class-level and method-level `@RequireScopes`, class first, without duplicates. */
  scopes: readonly string[];
  /** The `@AgentSkill` declared on the handler, if any. */
  skill?: AgentSkillOptions;
}

const memo = new WeakMap<object, WeakMap<object, RouteAuth>>();

/**
 * Reads (once per class and handler, then memoized) the auth metadata of a handler.
 * The guard and the card generator both call this, so enforcement and advertisement cannot drift.
 */
export function routeAuth(reflector: Reflector, cls: object, handler: object): RouteAuth {
  let byClass = memo.get(handler);
  if (!byClass) memo.set(handler, (byClass = new WeakMap()));
  let r = byClass.get(cls);
  if (r) return r;
  const targets = [handler as never, cls as never];
  const isPublic = reflector.getAllAndOverride<boolean>(IS_PUBLIC_KEY, targets) === true;
  const classScopes = reflector.get<readonly string[]>(REQUIRED_SCOPES_KEY, cls as never) ?? [];
  const methodScopes = reflector.get<readonly string[]>(REQUIRED_SCOPES_KEY, handler as never) ?? [];
  const scopes = Object.freeze([...new Set([...classScopes, ...methodScopes])]);
  const skill = reflector.get<AgentSkillOptions>(AGENT_SKILL_KEY, handler as never);
  r = Object.freeze({ isPublic, scopes, skill });
  byClass.set(cls, r);
  return r;
}
