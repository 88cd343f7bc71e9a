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
  | 'inactive_token'
  | 'introspection_unavailable'
  | 'dpop_required'
  | 'dpop_bound_token_as_bearer'
  | 'dpop_unbound_token'
  | 'dpop_jkt_mismatch'
  | 'dpop_proof_missing'
  | 'dpop_multiple_proofs'
  | 'dpop_malformed_proof'
  | 'dpop_invalid_typ'
  | 'dpop_unsupported_alg'
  | 'dpop_invalid_jwk'
  | 'dpop_invalid_signature'
  | 'dpop_missing_claim'
  | 'dpop_htm_mismatch'
  | 'dpop_htu_mismatch'
  | 'dpop_iat_too_old'
  | 'dpop_iat_in_future'
  | 'dpop_ath_mismatch'
  | 'dpop_replayed'
  | 'dpop_nonce_missing'
  | 'dpop_nonce_invalid'
  | 'dpop_replay_store_unavailable'
  | 'delegation_not_allowed'
  | 'delegation_too_deep'
  | 'untrusted_actor'
  | 'rate_limited';

/**
 * RFC 6750 §3.1 error codes, plus the RFC 9449 §7.1 / §9 DPoP ones (`invalid_dpop_proof`, `use_dpop_nonce`);
 * `undefined` = challenge without an error code (RFC 6750 §3.1 ¶4).
 */
export type BearerErrorCode = 'invalid_request' | 'invalid_token' | 'insufficient_scope' | 'invalid_dpop_proof' | 'use_dpop_nonce' | undefined;

/** Static facts for one reason code: HTTP status, RFC 6750 error and a generic, attacker-safe description. */
export interface ReasonInfo {
  /** HTTP status: 400, 401, 403, 429 or 503. */
  status: 400 | 401 | 403 | 429 | 503;
  /** RFC 6750 §3.1 error code sent in `WWW-Authenticate` and the JSON body. */
  error: BearerErrorCode;
  /** Generic text for `error_description`; never names the precise check that failed. */
  description: string;
}

const DELEGATION_REFUSED = 'The delegation chain of the access token (RFC 8693 act claim) is not accepted for this resource';

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
  // A refused delegation chain: the token is valid (so not invalid_token), but it does not grant acting here through
  // this chain. RFC 6750 §3.1 has one code for "requires higher privileges than provided by the access token", and
  // RFC 8693 defines none for resource servers. One description for all three, as the audit event has the precise one.
  delegation_not_allowed: { status: 403, error: 'insufficient_scope', description: DELEGATION_REFUSED },
  delegation_too_deep: { status: 403, error: 'insufficient_scope', description: DELEGATION_REFUSED },
  untrusted_actor: { status: 403, error: 'insufficient_scope', description: DELEGATION_REFUSED },
  jwks_unavailable: { status: 503, error: undefined, description: 'The authorization server keys are temporarily unavailable; retry later' },
  // RFC 7662 §2.2 `active: false`: revoked, expired, unknown, or not for this resource server; the answer does not say which.
  inactive_token: { status: 401, error: 'invalid_token', description: 'The access token is invalid' },
  introspection_unavailable: { status: 503, error: undefined, description: 'The authorization server cannot check the token right now; retry later' },
  // RFC 9449: the scheme and the token side (invalid_token), the proof (invalid_dpop_proof), the nonce (use_dpop_nonce).
  dpop_required: { status: 401, error: undefined, description: 'Authentication required: use the DPoP scheme with a DPoP proof' },
  dpop_bound_token_as_bearer: { status: 401, error: 'invalid_token', description: 'The access token is DPoP-bound: send it with the DPoP scheme and a proof' },
  dpop_unbound_token: { status: 401, error: 'invalid_token', description: 'The access token is not DPoP-bound' },
  dpop_jkt_mismatch: { status: 401, error: 'invalid_token', description: 'The access token is not bound to the DPoP proof key' },
  dpop_proof_missing: { status: 401, error: 'invalid_dpop_proof', description: 'The DPoP proof is missing' },
  dpop_multiple_proofs: { status: 401, error: 'invalid_dpop_proof', description: 'More than one DPoP proof was sent' },
  dpop_malformed_proof: { status: 401, error: 'invalid_dpop_proof', description: 'The DPoP proof is invalid' },
  dpop_invalid_typ: { status: 401, error: 'invalid_dpop_proof', description: 'The DPoP proof is invalid' },
  dpop_unsupported_alg: { status: 401, error: 'invalid_dpop_proof', description: 'The DPoP proof is invalid' },
  dpop_invalid_jwk: { status: 401, error: 'invalid_dpop_proof', description: 'The DPoP proof is invalid' },
  dpop_invalid_signature: { status: 401, error: 'invalid_dpop_proof', description: 'The DPoP proof is invalid' },
  dpop_missing_claim: { status: 401, error: 'invalid_dpop_proof', description: 'The DPoP proof is invalid' },
  dpop_htm_mismatch: { status: 401, error: 'invalid_dpop_proof', description: 'The DPoP proof does not match this request' },
  dpop_htu_mismatch: { status: 401, error: 'invalid_dpop_proof', description: 'The DPoP proof does not match this request' },
  dpop_iat_too_old: { status: 401, error: 'invalid_dpop_proof', description: 'The DPoP proof is too old or not yet valid' },
  dpop_iat_in_future: { status: 401, error: 'invalid_dpop_proof', description: 'The DPoP proof is too old or not yet valid' },
  dpop_ath_mismatch: { status: 401, error: 'invalid_dpop_proof', description: 'The DPoP proof is not bound to this access token' },
  dpop_replayed: { status: 401, error: 'invalid_dpop_proof', description: 'The DPoP proof was already used' },
  dpop_nonce_missing: { status: 401, error: 'use_dpop_nonce', description: 'Resource server requires nonce in DPoP proof' },
  dpop_nonce_invalid: { status: 401, error: 'use_dpop_nonce', description: 'Resource server requires nonce in DPoP proof' },
  dpop_replay_store_unavailable: { status: 503, error: undefined, description: 'The DPoP replay check is temporarily unavailable; retry later' },
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
  /** For `use_dpop_nonce` (RFC 9449 §9): the nonce to send back in the `DPoP-Nonce` response header. */
  readonly dpopNonce?: string;

  constructor(reason: AuthReason, detail?: string, requiredScopes?: readonly string[], dpopNonce?: string) {
    super(detail ?? reason);
    this.name = 'AuthError';
    this.reason = reason;
    const info = REASONS[reason];
    this.status = info.status;
    this.error = info.error;
    this.requiredScopes = requiredScopes;
    if (dpopNonce !== undefined) this.dpopNonce = dpopNonce;
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
