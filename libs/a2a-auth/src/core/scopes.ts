import { AuthError } from './errors';

/** Default claims read for scopes: RFC 8693 §4.2 / RFC 9068 §2.2.3 `scope`, and `scp` (Entra ID, Okta). */
export const DEFAULT_SCOPE_CLAIMS: readonly string[] = Object.freeze(['scope', 'scp']);

/**
 * Reads granted scopes from JWT claims.
 * Each named claim may be a space-delimited string (RFC 6749 §3.3) or an array of strings
 * (e.g. Auth0 `permissions`). Other types are ignored. Duplicates are removed; order is kept.
 *
 * @param claims the verified JWT payload.
 * @param claimNames claim names to read, default {@link DEFAULT_SCOPE_CLAIMS}.
 */
export function extractScopes(claims: Record<string, unknown>, claimNames: readonly string[] = DEFAULT_SCOPE_CLAIMS): string[] {
  const out = new Set<string>();
  for (const name of claimNames) {
    const v = claims[name];
    if (typeof v === 'string') {
      for (const s of v.split(' ')) if (s) out.add(s);
    } else if (Array.isArray(v)) {
      for (const s of v) if (typeof s === 'string' && s) for (const p of s.split(' ')) if (p) out.add(p);
    }
  }
  return [...out];
}

/**
 * The one scope check of the library (the guard, the A2A skill checks and in-task checks all call it): every required
 * scope must be granted (AND semantics, RFC 6749 §3.3). A route needs a scope or two and a token grants a handful, so
 * the passing case is a plain loop without allocation; only a refusal builds the error.
 *
 * @param granted the caller's scopes.
 * @param required the scopes the route or skill requires.
 * @throws AuthError `insufficient_scope` (403), naming all required scopes for the `scope` challenge parameter (RFC 6750 §3.1).
 */
export function assertScopes(granted: ReadonlySet<string> | readonly string[], required: readonly string[]): void {
  if (!grantsScopes(granted, required)) refuse(granted instanceof Set ? (granted as ReadonlySet<string>) : new Set(granted), required);
}

/**
 * The same rule as {@link assertScopes} as a predicate, for places that decide what to show rather than refuse (the
 * per-caller extended Agent Card): `true` when every required scope is granted (AND semantics, RFC 6749 §3.3).
 * @param granted the caller's scopes.
 * @param required the scopes a route or skill requires; empty: always `true`.
 */
export function grantsScopes(granted: ReadonlySet<string> | readonly string[], required: readonly string[]): boolean {
  const set = granted instanceof Set ? (granted as ReadonlySet<string>) : undefined;
  const list = granted as readonly string[];
  for (let i = 0; i < required.length; i++) {
    if (set ? !set.has(required[i]) : !list.includes(required[i])) return false;
  }
  return true;
}

/**
 * The required scopes the caller is not granted, in the order required: what a refusal names (the audit text, an
 * in-task status message, the client's step-up). Empty when {@link grantsScopes} is `true`.
 */
export function missingScopes(granted: ReadonlySet<string> | readonly string[], required: readonly string[]): string[] {
  const set = granted instanceof Set ? (granted as ReadonlySet<string>) : new Set(granted);
  return required.filter((s) => !set.has(s));
}

function refuse(granted: ReadonlySet<string>, required: readonly string[]): never {
  throw new AuthError('insufficient_scope', `missing scopes: ${missingScopes(granted, required).join(' ')}`, required);
}
