import { AuthError } from './errors';

/** A custom claim check: return `true`/`undefined` to accept; `false` or a string (the audit detail) to reject. */
export type ClaimValidator = (claims: Readonly<Record<string, unknown>>, header: Readonly<Record<string, unknown>>) => boolean | string | void;

/** Post-signature claim policy (the checks jsonwebtoken does not make). */
export interface ClaimPolicy {
  /** Allowed clock skew in seconds (RFC 7519 §4.1.4 "small leeway"). */
  clockTolerance: number;
  /** Maximum age in seconds since `iat`; `undefined` = no limit. */
  maxTokenAge?: number;
  /** RFC 9068 strict profile: `typ` `at+jwt`, and `exp`, `iat`, `sub`, `client_id`, `jti` required. */
  strict: boolean;
  /** The audience(s) this token's issuer must name (per-issuer audience). */
  audience: readonly string[];
  /** Extra user checks. */
  validators: readonly ClaimValidator[];
}

const RFC9068_TYP = new Set(['at+jwt', 'application/at+jwt']);
const STRICT_CLAIMS = ['exp', 'iat', 'sub', 'client_id', 'jti'] as const;

function isNum(v: unknown): v is number {
  return typeof v === 'number' && Number.isFinite(v);
}

/**
 * Checks a signature-verified token's claims against the policy.
 * `exp` is always required (RFC 9068 §2.2; jsonwebtoken accepts tokens without it).
 *
 * @param nowSeconds current time in seconds since the epoch.
 * The `cnf` claim (RFC 7800) is not checked here: the sender binding (RFC 8705 certificate, RFC 9449 DPoP key) is the
 * verifier's, on every request, cache hits included.
 *
 * @throws AuthError `missing_claim`, `expired`, `issued_in_future`, `token_too_old`, `invalid_typ`,
 *   `invalid_audience`, `claim_validation_failed` (all 401 `invalid_token`).
 */
export function checkClaims(header: Record<string, unknown>, claims: Record<string, unknown>, policy: ClaimPolicy, nowSeconds: number): void {
  const tol = policy.clockTolerance;
  if (!isNum(claims.exp)) throw new AuthError('missing_claim', 'exp is required');
  if (nowSeconds >= claims.exp + tol) throw new AuthError('expired', 'exp passed');
  if (claims.nbf !== undefined && (!isNum(claims.nbf) || claims.nbf > nowSeconds + tol)) {
    throw new AuthError('not_yet_valid', 'nbf is in the future');
  }
  if (claims.iat !== undefined) {
    if (!isNum(claims.iat)) throw new AuthError('missing_claim', 'iat is not a number');
    if (claims.iat > nowSeconds + tol) throw new AuthError('issued_in_future', 'iat is in the future');
  }
  if (typeof claims.iss !== 'string') throw new AuthError('missing_claim', 'iss is required');
  // RFC 7519 §4.1.2 / RFC 9068 §2.2: identities are strings. A `sub` or `client_id` of another type would be ignored when
  // the caller is built, and two users of one client could then share one identity (and one A2A task owner).
  for (const c of ['sub', 'client_id', 'azp'] as const) {
    if (claims[c] !== undefined && typeof claims[c] !== 'string') throw new AuthError('missing_claim', `${c} is not a string`);
  }
  const aud = claims.aud;
  const auds = typeof aud === 'string' ? [aud] : Array.isArray(aud) ? aud : [];
  if (!auds.some((a) => typeof a === 'string' && policy.audience.includes(a))) {
    throw new AuthError('invalid_audience', 'aud does not name this resource');
  }
  if (policy.maxTokenAge !== undefined) {
    if (!isNum(claims.iat)) throw new AuthError('missing_claim', 'iat is required when maxTokenAge is set');
    if (nowSeconds - claims.iat > policy.maxTokenAge + tol) throw new AuthError('token_too_old', `token older than ${policy.maxTokenAge}s`);
  }
  if (policy.strict) {
    const typ = typeof header.typ === 'string' ? header.typ.toLowerCase() : '';
    if (!RFC9068_TYP.has(typ)) throw new AuthError('invalid_typ', 'typ must be at+jwt (RFC 9068 §2.1)');
    for (const c of STRICT_CLAIMS) {
      if (claims[c] === undefined || claims[c] === null || claims[c] === '') throw new AuthError('missing_claim', `${c} is required (RFC 9068 §2.2)`);
    }
  }
  for (const v of policy.validators) {
    let r: ReturnType<ClaimValidator>;
    try {
      r = v(claims, header);
    } catch (e) {
      throw new AuthError('claim_validation_failed', `validator threw: ${(e as Error)?.message ?? 'error'}`);
    }
    if (r === false) throw new AuthError('claim_validation_failed', 'custom claim validator rejected the token');
    if (typeof r === 'string') throw new AuthError('claim_validation_failed', r);
  }
}
