import { AuthError } from './errors';

/** An unverified JWS compact token, split and decoded for routing (issuer and key choice) only. */
export interface DecodedToken {
  /** The JOSE header (RFC 7515 §4). */
  header: Record<string, unknown>;
  /** The claims (RFC 7519 §4), not yet verified. */
  payload: Record<string, unknown>;
  /** `BASE64URL(header) "." BASE64URL(payload)`, the JWS signing input (RFC 7515 §5.2 step 8). */
  signingInput: string;
  /** The decoded signature bytes. */
  signature: Buffer;
}

const B64URL = /^[A-Za-z0-9_-]+$/;

function isCanonicalB64url(seg: string): boolean {
  const rem = seg.length % 4;
  if (rem === 1) return false;
  if (rem === 0) return true;
  // The last character may only use its high bits: 4 for a 2-char tail, 2 for a 3-char tail.
  const v = B64_ALPHABET.indexOf(seg[seg.length - 1]);
  return (v & (rem === 2 ? 0x0f : 0x03)) === 0;
}

const B64_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

function part(seg: string, what: string): Record<string, unknown> {
  if (!B64URL.test(seg)) throw new AuthError('malformed_token', `${what} is not base64url`);
  let v: unknown;
  try {
    v = JSON.parse(Buffer.from(seg, 'base64url').toString('utf8'));
  } catch {
    throw new AuthError('malformed_token', `${what} is not JSON`);
  }
  if (!v || typeof v !== 'object' || Array.isArray(v)) throw new AuthError('malformed_token', `${what} is not a JSON object`);
  return v as Record<string, unknown>;
}

/**
 * Splits and decodes a JWS compact serialization (RFC 7515 §7.1) without verifying it,
 * and applies the checks that must happen before any key lookup or network call:
 * exactly three non-empty segments, JSON header and payload, `alg` in the allow-list
 * (never `none` or HMAC), a string `kid` if present, and `iss` among the trusted issuers.
 *
 * @throws AuthError `malformed_token`, `unsupported_alg`, `invalid_issuer`, `missing_claim` (all 401).
 */
export function decodeForVerification(token: string, algorithms: readonly string[], trustedIssuers: readonly string[]): DecodedToken {
  const segs = token.split('.');
  if (segs.length !== 3) throw new AuthError('malformed_token', `expected 3 segments, got ${segs.length}`);
  if (!segs[0]) throw new AuthError('malformed_token', 'empty segment');
  const header = part(segs[0], 'header');
  const alg = header.alg;
  // Checked before the empty-signature test so that an `alg: none` token is reported as such.
  if (typeof alg !== 'string' || !algorithms.includes(alg)) {
    throw new AuthError('unsupported_alg', `alg ${typeof alg === 'string' ? JSON.stringify(alg.slice(0, 16)) : typeof alg} is not allowed`);
  }
  if (!segs[1] || !segs[2]) throw new AuthError('malformed_token', 'empty segment');
  if (header.crit !== undefined) throw new AuthError('malformed_token', 'crit header parameters are not supported');
  if (header.kid !== undefined && typeof header.kid !== 'string') throw new AuthError('malformed_token', 'kid is not a string');
  if (!B64URL.test(segs[2])) throw new AuthError('malformed_token', 'signature is not base64url');
  // Canonical base64url only: the decoder ignores the unused low bits of the last character, so without
  // this check several token strings would carry the same signature (token ids and cache keys would differ).
  if (!isCanonicalB64url(segs[2])) throw new AuthError('malformed_token', 'signature is not canonical base64url');
  const payload = part(segs[1], 'payload');
  if (typeof payload.iss !== 'string') throw new AuthError('missing_claim', 'iss is required');
  if (!trustedIssuers.includes(payload.iss)) throw new AuthError('invalid_issuer', 'untrusted issuer');
  return { header, payload, signingInput: token.slice(0, segs[0].length + 1 + segs[1].length), signature: Buffer.from(segs[2], 'base64url') };
}
