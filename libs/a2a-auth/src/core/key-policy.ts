import { hash, type KeyObject } from 'node:crypto';

/** Smallest RSA modulus accepted, in bits (RFC 7518 §3.3 and §3.5: "2048 bits or larger"). */
export const MIN_RSA_BITS = 2048;

/**
 * Largest RSA public exponent accepted, exclusive: 2^256 (FIPS 186-5 §A.1.1 bounds `e` below 2^256; real keys use
 * 65537, 3 or 17). The lower bound is 3 and `e` must be odd (RFC 8017 §3.1).
 */
export const MAX_RSA_EXPONENT = 1n << 256n;

// RFC 7517 §4.2: `use` "sig" is for signatures. RFC 7518 §6.2.2 / §6.3.2 / RFC 8037 §2: private members.
const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'] as const;

/** RFC 7518 §3.1 / RFC 8037 §3.1: the JWS algorithms a key of this `kty` (and `crv`) can verify. */
function algorithmsFor(kty: unknown, crv: unknown): readonly string[] {
  if (kty === 'RSA') return ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512'];
  if (kty === 'EC') return crv === 'P-256' ? ['ES256'] : crv === 'P-384' ? ['ES384'] : crv === 'P-521' ? ['ES512'] : [];
  if (kty === 'OKP') return crv === 'Ed25519' || crv === 'Ed448' ? ['EdDSA'] : [];
  return [];
}

// Printable, bounded kid for log lines: the JWKS is remote input, so no control characters and no novel-length lines.
function printable(v: string): string {
  return JSON.stringify(v.length > 64 ? `${v.slice(0, 64)}…` : v);
}

/** How a refused key is named in a log line: its `kid` (quoted, at most 64 characters) or `(no kid)`. */
export function describeKid(kid: unknown): string {
  return typeof kid === 'string' ? printable(kid) : '(no kid)';
}

/**
 * Why a JWK (RFC 7517) must not be used to verify tokens, or `undefined` when its parameters allow it. Checked
 * before parsing, on the JWK's members only:
 *
 * - `kid`, when present, must be a non-empty string (a non-string kid would otherwise turn into a kid-less key);
 * - private members (`d`, `p`, `q`, `dp`, `dq`, `qi`, `oth`, `k`) are refused: a published private key is compromised;
 * - `use`, when present, must be `sig` (RFC 7517 §4.2); `key_ops`, when present, must include `verify` (§4.3);
 * - `kty`/`crv` must fit one of the allowed algorithms, and a JWK `alg` must be one of them (RFC 7517 §4.4).
 *
 * @param algorithms the allow-list of JWS algorithms tokens may use.
 */
export function jwkRefusal(jwk: Readonly<Record<string, unknown>>, algorithms: readonly string[]): string | undefined {
  if ('kid' in jwk && (typeof jwk.kid !== 'string' || jwk.kid === '')) return 'kid is not a non-empty string';
  const priv = PRIVATE_MEMBERS.filter((m) => m in jwk);
  if (priv.length) return `private key members published (${priv.join(', ')})`;
  if ('use' in jwk && jwk.use !== 'sig') return `use is ${JSON.stringify(jwk.use)}, not "sig"`;
  if ('key_ops' in jwk && !(Array.isArray(jwk.key_ops) && jwk.key_ops.includes('verify'))) return 'key_ops does not include "verify"';
  const fits = algorithmsFor(jwk.kty, jwk.crv);
  const usable = fits.filter((a) => algorithms.includes(a));
  const kind = typeof jwk.kty === 'string' ? `kty ${printable(jwk.kty)}${jwk.crv === undefined ? '' : ` crv ${printable(String(jwk.crv))}`}` : 'no kty';
  if (usable.length === 0) return `${kind} fits none of the allowed algorithms (${algorithms.join(', ')})`;
  if ('alg' in jwk) {
    if (typeof jwk.alg !== 'string' || !fits.includes(jwk.alg)) return `alg ${printable(String(jwk.alg))} does not fit ${kind}`;
    if (!algorithms.includes(jwk.alg)) return `alg ${printable(jwk.alg)} is not allowed (${algorithms.join(', ')})`;
  }
  return undefined;
}

/**
 * Why a parsed public key must not be used, or `undefined`. RSA: modulus of at least {@link MIN_RSA_BITS} bits
 * (RFC 7518 §3.3); public exponent odd, at least 3 and below {@link MAX_RSA_EXPONENT}. With `e = 1` a "signature"
 * is the encoded message itself, so anyone could mint tokens; an even `e` is not an RSA key.
 */
export function publicKeyRefusal(key: KeyObject): string | undefined {
  if (key.type !== 'public') return 'not a public key';
  if (key.asymmetricKeyType === 'rsa' || key.asymmetricKeyType === 'rsa-pss') {
    const { modulusLength, publicExponent } = key.asymmetricKeyDetails ?? {};
    if (typeof modulusLength !== 'number' || modulusLength < MIN_RSA_BITS) {
      return `RSA modulus of ${modulusLength ?? 'unknown'} bits; at least ${MIN_RSA_BITS} are required (RFC 7518 §3.3)`;
    }
    if (typeof publicExponent !== 'bigint' || publicExponent < 3n || publicExponent % 2n === 0n || publicExponent >= MAX_RSA_EXPONENT) {
      return 'RSA public exponent is not odd, at least 3 and below 2^256';
    }
  }
  return undefined;
}

/**
 * The identity of a key's material: base64url SHA-256 of its SubjectPublicKeyInfo DER (43 characters). Two JWKs with
 * the same `kid` but other material have different identities; the same material with another `kid` has the same one.
 */
export function keyMaterialId(key: KeyObject): string {
  return hash('sha256', key.export({ type: 'spki', format: 'der' }), 'base64url');
}
