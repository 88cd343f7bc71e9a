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
 * Checks that every required scope was granted (AND semantics).
 * @throws AuthError `insufficient_scope` (403) naming all required scopes (RFC 6750 §3.1).
 */
export function assertScopes(granted: ReadonlySet<string> | readonly string[], required: readonly string[]): void {
  if (required.length === 0) return;
  const set = granted instanceof Set ? granted : new Set(granted as readonly string[]);
  const missing = required.filter((s) => !set.has(s));
  if (missing.length) throw new AuthError('insufficient_scope', `missing scopes: ${missing.join(' ')}`, required);
}
