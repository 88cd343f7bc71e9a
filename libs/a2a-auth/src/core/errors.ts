/**
 * Reason codes for every authentication or authorization decision.
 * Each maps to one HTTP status and one RFC 6750 §3.1 error code in {@link REASONS}.
 */
export type AuthReason =
  | 'missing_token'
  | 'malformed_header'
  | 'multiple_tokens'
  | 'unsupported_scheme'
  | 'token_too_large'
  | 'malformed_token'
  | 'invalid_signature'
  | 'expired'
  | 'not_yet_valid'
  | 'issued_in_future'
  | 'invalid_issuer'
  | 'invalid_audience'
  | 'unsupported_alg'
  | 'unknown_kid'
  | 'missing_kid'
  | 'missing_claim'
  | 'invalid_typ'
  | 'token_too_old'
  | 'claim_validation_failed'
  | 'certificate_mismatch'
  | 'unsupported_token_binding'
  | 'insufficient_scope'
  | 'jwks_unavailable'
  | 'rate_limited';

/** RFC 6750 §3.1 error codes (`undefined` = challenge without an error code, RFC 6750 §3.1 ¶4). */
export type BearerErrorCode = 'invalid_request' | 'invalid_token' | 'insufficient_scope' | undefined;

/** Static facts for one reason code: HTTP status, RFC 6750 error and a generic, attacker-safe description. */
export interface ReasonInfo {
  /** HTTP status: 400, 401, 403, 429 or 503. */
  status: 400 | 401 | 403 | 429 | 503;
  /** RFC 6750 §3.1 error code sent in `WWW-Authenticate` and the JSON body. */
  error: BearerErrorCode;
  /** Generic text for `error_description`; never names the precise check that failed. */
  description: string;
}

/**
 * The table that maps each {@link AuthReason} to its status and RFC 6750 error.
 * `error_description` is deliberately generic (DESIGN §2); the audit event carries the precise reason.
 */
export const REASONS: Readonly<Record<AuthReason, ReasonInfo>> = Object.freeze({
  missing_token: { status: 401, error: undefined, description: 'Authentication required: send an OAuth 2.0 bearer token in the Authorization header' },
  malformed_header: { status: 400, error: 'invalid_request', description: 'Malformed Authorization header' },
  multiple_tokens: { status: 400, error: 'invalid_request', description: 'More than one access token was sent' },
  unsupported_scheme: { status: 401, error: undefined, description: 'Authentication required: use the Bearer scheme' },
  token_too_large: { status: 401, error: 'invalid_token', description: 'The access token is invalid' },
  malformed_token: { status: 401, error: 'invalid_token', description: 'The access token is invalid' },
  invalid_signature: { status: 401, error: 'invalid_token', description: 'The access token is invalid' },
  expired: { status: 401, error: 'invalid_token', description: 'The access token expired' },
  not_yet_valid: { status: 401, error: 'invalid_token', description: 'The access token is not yet valid' },
  issued_in_future: { status: 401, error: 'invalid_token', description: 'The access token is not yet valid' },
  invalid_issuer: { status: 401, error: 'invalid_token', description: 'The access token is invalid' },
  invalid_audience: { status: 401, error: 'invalid_token', description: 'The access token is invalid' },
  unsupported_alg: { status: 401, error: 'invalid_token', description: 'The access token is invalid' },
  unknown_kid: { status: 401, error: 'invalid_token', description: 'The access token is invalid' },
  missing_kid: { status: 401, error: 'invalid_token', description: 'The access token is invalid' },
  missing_claim: { status: 401, error: 'invalid_token', description: 'The access token is invalid' },
  invalid_typ: { status: 401, error: 'invalid_token', description: 'The access token is invalid' },
  token_too_old: { status: 401, error: 'invalid_token', description: 'The access token is too old' },
  claim_validation_failed: { status: 401, error: 'invalid_token', description: 'The access token is invalid' },
  certificate_mismatch: { status: 401, error: 'invalid_token', description: 'The access token is not bound to this client certificate' },
  unsupported_token_binding: {
    status: 401,
    error: 'invalid_token',
    description: 'The access token is bound to a proof-of-possession key this resource does not accept',
  },
  insufficient_scope: { status: 403, error: 'insufficient_scope', description: 'The access token lacks a required scope' },
  jwks_unavailable: { status: 503, error: undefined, description: 'The authorization server keys are temporarily unavailable; retry later' },
  // RFC 6585 §4; not an RFC 6750 error, so no challenge: the token was fine.
  rate_limited: { status: 429, error: undefined, description: 'Too many requests from this client; retry later' },
});

/**
 * An authentication or authorization failure as a value.
 * Thrown by the framework-free core and mapped to HTTP by the guard (status, `WWW-Authenticate`, JSON body)
 * and to the audit event (`reason`, `detail`) in one place.
 *
 * `detail` is for the audit log only (never sent to the client, never contains a token).
 */
export class AuthError extends Error {
  /** The fixed reason code. */
  readonly reason: AuthReason;
  /** HTTP status from {@link REASONS}. */
  readonly status: 400 | 401 | 403 | 429 | 503;
  /** RFC 6750 error code, or `undefined` for a bare challenge. */
  readonly error: BearerErrorCode;
  /** For `insufficient_scope`: the scopes the resource requires (RFC 6750 §3 `scope`). */
  readonly requiredScopes?: readonly string[];

  constructor(reason: AuthReason, detail?: string, requiredScopes?: readonly string[]) {
    super(detail ?? reason);
    this.name = 'AuthError';
    this.reason = reason;
    const info = REASONS[reason];
    this.status = info.status;
    this.error = info.error;
    this.requiredScopes = requiredScopes;
  }

  /** Generic `error_description` for the response body and header. */
  get description(): string {
    return REASONS[this.reason].description;
  }
}

/** Type guard for {@link AuthError}. */
export function isAuthError(e: unknown): e is AuthError {
  return e instanceof AuthError;
}
