import type { TokenScheme } from './bearer';
import type { AuthError } from './errors';
import type { DPoPMode } from './options';

/** Inputs that stay the same for every challenge of one resource server. */
export interface ChallengeParams {
  /** `realm` auth-param (RFC 6750 §3). */
  realm?: string;
  /** RFC 9728 §5.1 `resource_metadata`: URL of the protected resource metadata document. */
  resourceMetadata?: string;
  /** RFC 9449 §7.1 `algs` of the `DPoP` challenge: the accepted proof algorithms. */
  dpopAlgorithms?: readonly string[];
}

/** Which challenges a response carries: the route's DPoP mode, and the scheme the request used (if known). */
export interface ChallengeView {
  /** `'off'`: `Bearer` only; `'allowed'`: `Bearer` and `DPoP`; `'required'`: `DPoP` only. */
  mode: DPoPMode;
  /** The scheme of the credentials the request sent; the error is attached to that challenge. */
  scheme?: TokenScheme;
}

// Reasons about a DPoP proof or binding: their error belongs to the DPoP challenge whatever the request sent.
function isDPoPReason(reason: string): boolean {
  return reason.startsWith('dpop_') && reason !== 'dpop_bound_token_as_bearer' && reason !== 'dpop_required';
}

function quote(v: string): string {
  // RFC 7230 quoted-string: escape backslash and double quote, drop control characters.
  // eslint-disable-next-line no-control-regex -- control characters are exactly what must not reach a header
  return '"' + v.replace(/[\x00-\x1f\x7f]/g, '').replace(/["\\]/g, '\\$&') + '"';
}

/**
 * Builds `WWW-Authenticate` values (RFC 6750 §3, RFC 9728 §5.1, RFC 9449 §7.1).
 * The fixed prefixes (`realm`, `resource_metadata`, and `algs` for DPoP) are computed once; per-error parts are appended.
 */
export class ChallengeBuilder {
  private readonly bearer: string;
  private readonly dpop: string;
  private readonly cache = new Map<string, string>();

  constructor(params: ChallengeParams) {
    const parts: string[] = [];
    if (params.realm) parts.push(`realm=${quote(params.realm)}`);
    if (params.resourceMetadata) parts.push(`resource_metadata=${quote(params.resourceMetadata)}`);
    this.bearer = parts.length ? 'Bearer ' + parts.join(', ') : 'Bearer';
    const algs = params.dpopAlgorithms?.length ? [`algs=${quote(params.dpopAlgorithms.join(' '))}`] : [];
    this.dpop = parts.length + algs.length ? 'DPoP ' + [...parts, ...algs].join(', ') : 'DPoP';
  }

  /**
   * The header value for an error, or `undefined` when none is sent (503 `jwks_unavailable`).
   * - no error code (missing or non-Bearer credentials): `Bearer realm="…", resource_metadata="…"` (RFC 6750 §3.1 ¶4);
   * - otherwise adds `error`, `error_description` and, for `insufficient_scope`, `scope` (RFC 6750 §3).
   *
   * With a DPoP `view` (RFC 9449 §7.1): mode `'allowed'` sends both challenges in one value, `Bearer …, DPoP …, algs="…"`
   * (one header line, so express and fastify send the same bytes); `'required'` only the `DPoP` one. The error goes on
   * the challenge of the scheme the request used, and on the `DPoP` one for every proof error. Without a view, or with
   * mode `'off'`, the answer is the Bearer-only one above.
   */
  forError(err: AuthError, view?: ChallengeView): string | undefined {
    if (err.status === 503 || err.status === 429) return undefined;
    const mode = view?.mode ?? 'off';
    const onDPoP = mode === 'required' || (mode === 'allowed' && (view?.scheme === 'DPoP' || isDPoPReason(err.reason)));
    const scope = err.requiredScopes?.join(' ') ?? '';
    const key = `${err.reason}|${scope}|${mode}|${onDPoP ? 'D' : 'B'}`;
    let v = this.cache.get(key);
    if (v !== undefined) return v;
    let errorParts = '';
    if (err.error) {
      const parts = [`error=${quote(err.error)}`, `error_description=${quote(err.description)}`];
      if (err.error === 'insufficient_scope' && scope) parts.push(`scope=${quote(scope)}`);
      errorParts = parts.join(', ');
    }
    const withError = (prefix: string) => (!errorParts ? prefix : prefix.includes(' ') ? `${prefix}, ${errorParts}` : `${prefix} ${errorParts}`);
    if (mode === 'off') v = withError(this.bearer);
    else if (mode === 'required') v = withError(this.dpop);
    else v = onDPoP ? `${this.bearer}, ${withError(this.dpop)}` : `${withError(this.bearer)}, ${this.dpop}`;
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
