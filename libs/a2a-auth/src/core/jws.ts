import { constants, verify as cryptoVerify, type KeyObject, type VerifyKeyObjectInput } from 'node:crypto';
import { AuthError } from './errors';

// RFC 7518 §3.1 / RFC 8037 §3.1: the digest of each JWS algorithm (`null` for EdDSA, which hashes internally).
const DIGEST: Readonly<Record<string, string | null>> = Object.freeze({
  RS256: 'sha256',
  RS384: 'sha384',
  RS512: 'sha512',
  PS256: 'sha256',
  PS384: 'sha384',
  PS512: 'sha512',
  ES256: 'sha256',
  ES384: 'sha384',
  ES512: 'sha512',
  EdDSA: null,
});

// RFC 7518 §3.4: the curve of each ECDSA algorithm, and the length of its R || S signature in bytes.
const EC_CURVE: Readonly<Record<string, [curve: string, sigBytes: number]>> = Object.freeze({
  ES256: ['prime256v1', 64],
  ES384: ['secp384r1', 96],
  ES512: ['secp521r1', 132],
});

/**
 * Whether `key` may verify `alg` (RFC 7518 §3.1, RFC 8037): RSA keys for RS* and PS*, the algorithm's own curve for
 * ES*, Ed25519 or Ed448 for EdDSA. A key of another type is never tried, so an RSA key cannot be abused as an HMAC
 * secret and an EC key of the wrong curve is refused before any signature math.
 */
export function keyFitsAlgorithm(alg: string, key: KeyObject): boolean {
  const type = key.asymmetricKeyType;
  if (alg.startsWith('RS')) return type === 'rsa';
  if (alg.startsWith('PS')) return type === 'rsa' || type === 'rsa-pss';
  const ec = EC_CURVE[alg];
  if (ec) return type === 'ec' && key.asymmetricKeyDetails?.namedCurve === ec[0];
  if (alg === 'EdDSA') return type === 'ed25519' || type === 'ed448';
  return false;
}

function verifyInput(alg: string, key: KeyObject): KeyObject | VerifyKeyObjectInput {
  if (EC_CURVE[alg]) return { key, dsaEncoding: 'ieee-p1363' };
  if (alg.startsWith('PS')) return { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_DIGEST };
  return key;
}

function precheck(alg: string, signature: Buffer): string | null {
  const digest = DIGEST[alg];
  if (digest === undefined) throw new AuthError('unsupported_alg', `alg ${alg} is not supported`);
  const ec = EC_CURVE[alg];
  // A wrong-length ECDSA signature is refused outright (CVE-2022-21449 class: r or s of zero, truncated encodings).
  if (ec && signature.length !== ec[1]) throw new AuthError('invalid_signature', 'ECDSA signature has the wrong length');
  return digest;
}

/**
 * Verifies a JWS compact signature (RFC 7515 §5.2) with a parsed public key, on the calling thread.
 * The key must already fit the algorithm ({@link keyFitsAlgorithm}); `alg` must be one of the supported algorithms.
 *
 * @param signingInput `BASE64URL(header) "." BASE64URL(payload)`, exactly as received.
 * @param signature the base64url-decoded signature.
 * @throws AuthError `invalid_signature` (401) when the signature does not verify; `unsupported_alg` for an unknown alg.
 */
export function verifyJwsSignature(alg: string, key: KeyObject, signingInput: string, signature: Buffer): void {
  const digest = precheck(alg, signature);
  let ok: boolean;
  try {
    ok = cryptoVerify(digest, Buffer.from(signingInput, 'latin1'), verifyInput(alg, key), signature);
  } catch {
    ok = false;
  }
  if (!ok) throw new AuthError('invalid_signature', 'signature does not verify');
}

/**
 * {@link verifyJwsSignature} on libuv's thread pool (Node's `crypto.verify` with a callback), so the event loop keeps
 * serving other requests while the signature is checked.
 * @throws AuthError (as a rejection) `invalid_signature` (401), `unsupported_alg`.
 */
export function verifyJwsSignatureAsync(alg: string, key: KeyObject, signingInput: string, signature: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    let digest: string | null;
    try {
      digest = precheck(alg, signature);
    } catch (e) {
      return reject(e);
    }
    try {
      cryptoVerify(digest, Buffer.from(signingInput, 'latin1'), verifyInput(alg, key), signature, (err, ok) =>
        err || !ok ? reject(new AuthError('invalid_signature', 'signature does not verify')) : resolve(),
      );
    } catch {
      reject(new AuthError('invalid_signature', 'signature does not verify'));
    }
  });
}
