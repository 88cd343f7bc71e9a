import type { AuthError } from './errors';

/** Inputs that stay the same for every challenge of one resource server. */
export interface ChallengeParams {
  /** `realm` auth-param (RFC 6750 §3). */
  realm?: string;
  /** RFC 9728 §5.1 `resource_metadata`: URL of the protected resource metadata document. */
  resourceMetadata?: string;
}

function quote(v: string): string {
  // RFC 7230 quoted-string: escape backslash and double quote, drop control characters.
  // eslint-disable-next-line no-control-regex -- control characters are exactly what must not reach a header
  return '"' + v.replace(/[\x00-\x1f\x7f]/g, '').replace(/["\\]/g, '\\$&') + '"';
}

/**
 * Builds `WWW-Authenticate` values (RFC 6750 §3, RFC 9728 §5.1).
 * The fixed prefix (`realm`, `resource_metadata`) is computed once; per-error parts are appended.
 */
export class ChallengeBuilder {
  private readonly prefix: string;
  private readonly cache = new Map<string, string>();

  constructor(params: ChallengeParams) {
    const parts: string[] = [];
    if (params.realm) parts.push(`realm=${quote(params.realm)}`);
    if (params.resourceMetadata) parts.push(`resource_metadata=${quote(params.resourceMetadata)}`);
    this.prefix = parts.length ? 'Bearer ' + parts.join(', ') : 'Bearer';
  }

  /**
   * The header value for an error, or `undefined` when none is sent (503 `jwks_unavailable`).
   * - no error code (missing or non-Bearer credentials): `Bearer realm="…", resource_metadata="…"` (RFC 6750 §3.1 ¶4);
   * - otherwise adds `error`, `error_description` and, for `insufficient_scope`, `scope` (RFC 6750 §3).
   */
  forError(err: AuthError): string | undefined {
    if (err.status === 503 || err.status === 429) return undefined;
    const scope = err.requiredScopes?.join(' ') ?? '';
    const key = `${err.reason}|${scope}`;
    let v = this.cache.get(key);
    if (v !== undefined) return v;
    if (!err.error) {
      v = this.prefix;
    } else {
      const parts = [`error=${quote(err.error)}`, `error_description=${quote(err.description)}`];
      if (err.error === 'insufficient_scope' && scope) parts.push(`scope=${quote(scope)}`);
      v = this.prefix === 'Bearer' ? `Bearer ${parts.join(', ')}` : `${this.prefix}, ${parts.join(', ')}`;
    }
    if (this.cache.size < 1024) this.cache.set(key, v);
    return v;
  }
}

/** The JSON error body (RFC 6750 §3 names): `{ error, error_description, scope? }`. */
export interface AuthErrorBody {
  /** RFC 6750 error code; `invalid_request` for a bare 401, `temporarily_unavailable` for 503. */
  error: string;
  /** Generic human-readable text. */
  error_description: string;
  /** Space-delimited required scopes, for `insufficient_scope`. */
  scope?: string;
}

/** The JSON body for an {@link AuthError}; never contains the token. */
export function errorBody(err: AuthError): AuthErrorBody {
  const body: AuthErrorBody = {
    error: err.error ?? (err.status === 503 ? 'temporarily_unavailable' : err.status === 429 ? 'rate_limited' : 'invalid_request'),
    error_description: err.description,
  };
  if (err.error === 'insufficient_scope' && err.requiredScopes?.length) body.scope = err.requiredScopes.join(' ');
  return body;
}
