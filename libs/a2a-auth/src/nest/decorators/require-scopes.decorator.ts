import { SetMetadata } from '@nestjs/common';
import { REQUIRED_SCOPES_KEY } from '../constants';

/**
 * Requires OAuth 2.0 scopes (RFC 6749 §3.3) on a handler or a controller. Every named scope is required (AND);
 * class-level and method-level requirements combine. A caller lacking one gets 403 with
 * `WWW-Authenticate: Bearer error="insufficient_scope", scope="…"` (RFC 6750 §3.1).
 * The same metadata drives the skill's `securityRequirements` in the Agent Card.
 *
 * @example `@RequireScopes('expense:submit')`
 * @throws Error at decoration time for an empty or whitespace-containing scope.
 */
export function RequireScopes(...scopes: string[]): MethodDecorator & ClassDecorator {
  for (const s of scopes) {
    if (typeof s !== 'string' || s === '' || /\s/.test(s)) throw new Error(`@RequireScopes: invalid scope ${JSON.stringify(s)}`);
  }
  return SetMetadata(REQUIRED_SCOPES_KEY, Object.freeze([...scopes]));
}
