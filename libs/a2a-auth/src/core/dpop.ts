import { createHash, createHmac, createPublicKey, timingSafeEqual, type KeyObject } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import { AuthError } from './errors';
import { keyFitsAlgorithm, verifyJwsSignature } from './jws';
import { InMemoryReplayCache, type DPoPReplayCache } from './replay-cache';

/** Longest accepted `DPoP` header value, characters (an RSA-4096 proof is about 1.5 KiB). */
export const MAX_DPOP_PROOF_LENGTH = 8192;
/** Longest accepted proof `jti`, characters (it is a key of the replay cache). */
export const MAX_DPOP_JTI_LENGTH = 256;
/** Smallest RSA modulus accepted for a proof key, bits. */
const MIN_RSA_BITS = 2048;

/** The request a DPoP proof must match (RFC 9449 §4.3). */
export interface DPoPRequest {
  /** Every `DPoP` header line of the request, as received (exactly one is accepted). */
  proofs: readonly string[];
  /** The HTTP method, e.g. `GET`. */
  method: string;
  /** The absolute URI the client addressed (query and fragment are ignored); `undefined` when it cannot be known. */
  uri: string | undefined;
}

/** The proof rules; {@link ResolvedDPoPOptions} plus the clock tolerance satisfy it. */
export interface DPoPProofPolicy {
  /** Allowed proof algorithms (asymmetric only). */
  readonly algorithms: readonly string[];
  /** How old `iat` may be, seconds. */
  readonly iatWindow: number;
  /** Clock skew allowed on `iat` either way, seconds. */
  readonly clockTolerance: number;
  /** Most entries of the default in-memory replay cache. */
  readonly maxReplayEntries: number;
  /** A replay cache of your own; default {@link InMemoryReplayCache}. */
  readonly replayCache?: DPoPReplayCache;
  /** Server-provided nonces (RFC 9449 §9): the HMAC key and the window length in seconds. */
  readonly nonce?: { readonly secret: Buffer; readonly rotateSeconds: number };
}

// RFC 7638 §3.2: the required members of each key type, in lexicographic order.
const THUMBPRINT_MEMBERS: Readonly<Record<string, readonly string[]>> = Object.freeze({
  RSA: ['e', 'kty', 'n'],
  EC: ['crv', 'kty', 'x', 'y'],
  OKP: ['crv', 'kty', 'x'],
});
// RFC 7517 §9.3 / RFC 7518 §6: members that only a private (or symmetric) key has.
const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'];
const B64URL = /^[A-Za-z0-9_-]+$/;

/**
 * The RFC 7638 JWK thumbprint: base64url SHA-256 of the required members, in lexicographic order, with no whitespace.
 * This is what a DPoP-bound token names in `cnf.jkt` (RFC 9449 §6.1).
 * @returns `undefined` for a key type other than RSA, EC or OKP, or a required member that is not a string.
 */
export function jwkThumbprint(jwk: Readonly<Record<string, unknown>>): string | undefined {
  const members = typeof jwk.kty === 'string' ? THUMBPRINT_MEMBERS[jwk.kty] : undefined;
  if (!members) return undefined;
  const parts: string[] = [];
  for (const m of members) {
    const v = jwk[m];
    if (typeof v !== 'string' || v === '') return undefined;
    parts.push(`${JSON.stringify(m)}:${JSON.stringify(v)}`);
  }
  return createHash('sha256')
    .update(`{${parts.join(',')}}`)
    .digest('base64url');
}

/** RFC 9449 §4.2 `ath`: base64url SHA-256 of the ASCII access token. */
export function accessTokenHash(token: string): string {
  return createHash('sha256').update(token, 'ascii').digest('base64url');
}

function unreservedOrUpper(m: string): string {
  const c = String.fromCharCode(parseInt(m.slice(1), 16));
  return /[A-Za-z0-9\-._~]/.test(c) ? c : m.toUpperCase();
}

/**
 * An `htu` (or a request URI) normalised for comparison (RFC 9449 §4.3, RFC 3986 §6.2.2 and §6.2.3): scheme and host in
 * lower case, the default port dropped, dot segments removed, an empty path as `/`, percent-encoding of unreserved
 * characters decoded and other triplets in upper case; query and fragment dropped.
 * @returns `undefined` for anything but an absolute http(s) URI without user information.
 */
export function normalizeHtu(uri: string): string | undefined {
  let u: URL;
  try {
    u = new URL(uri);
  } catch {
    return undefined;
  }
  if ((u.protocol !== 'http:' && u.protocol !== 'https:') || u.username || u.password) return undefined;
  return `${u.protocol}//${u.host}${u.pathname.replace(/%[0-9a-fA-F]{2}/g, unreservedOrUpper)}`;
}

/**
 * Stateless server-provided nonces (RFC 9449 §9): `<window>.<HMAC-SHA256(secret, window)>`, where the window is the
 * time in seconds divided by `rotateSeconds`. The current and the previous window are accepted, so a nonce lives
 * between one and two windows, and instances that share the secret accept each other's nonces.
 */
export class DPoPNonces {
  private window = -1;
  private current = '';

  /**
   * @param secret HMAC key (at least 32 bytes).
   * @param rotateSeconds window length, seconds.
   */
  constructor(
    private readonly secret: Buffer,
    private readonly rotateSeconds: number,
  ) {}

  private mac(w: number): string {
    return createHmac('sha256', this.secret).update(`dpop-nonce:${w}`).digest('base64url').slice(0, 22);
  }

  /** The nonce to hand out at `nowSeconds` (seconds since the epoch). */
  issue(nowSeconds: number): string {
    const w = Math.floor(nowSeconds / this.rotateSeconds);
    if (w !== this.window) {
      this.current = `${w.toString(36)}.${this.mac(w)}`;
      this.window = w;
    }
    return this.current;
  }

  /** Whether `nonce` was issued in the current or the previous window. */
  accepts(nonce: unknown, nowSeconds: number): boolean {
    if (typeof nonce !== 'string' || !/^[0-9a-z]{1,11}\.[A-Za-z0-9_-]{22}$/.test(nonce)) return false;
    const [ws, mac] = nonce.split('.');
    const w = parseInt(ws, 36);
    const now = Math.floor(nowSeconds / this.rotateSeconds);
    if (w !== now && w !== now - 1) return false;
    return timingSafeEqual(Buffer.from(mac), Buffer.from(this.mac(w)));
  }
}

/** The DPoP proof check of one verifier: see {@link createDPoPChecker}. */
export interface DPoPChecker {
  /**
   * Checks the request's proof against the access token and the key it is bound to (RFC 9449 §4.3, §7.1).
   * Synchronous unless the replay cache answers asynchronously.
   * @param token the access token as sent (for `ath`).
   * @param jkt the token's `cnf.jkt`.
   * @throws AuthError with a `dpop_*` reason (401; 503 `dpop_replay_store_unavailable`).
   */
  check(token: string, jkt: string, req: DPoPRequest): void | Promise<void>;
  /** The nonce the server currently hands out, when nonces are on. */
  nonce(): string | undefined;
}

/**
 * Builds the proof check (RFC 9449 §4.3). In order: exactly one `DPoP` header; a compact JWS with JSON header and
 * claims; `typ` `dpop+jwt`; `alg` from the allow-list (never `none` or HMAC); `jwk` a public RSA (≥ 2048 bits), EC or
 * OKP key with no private member, fitting `alg`; the signature; `jti`, `htm`, `htu`, `iat` present; `htm` and `htu`
 * matching the request; `iat` within `iatWindow` (and not ahead), with `clockTolerance`; the nonce when nonces are on;
 * `ath` the hash of the token; the key's RFC 7638 thumbprint equal to `cnf.jkt`; and last, so that only a proof that
 * passed everything is remembered, `jti` never seen before (kept for `iatWindow + 2 × clockTolerance` seconds).
 * Parsed proof keys are kept by thumbprint (1,000 keys), so a client's key is parsed once; checked protected headers
 * and normalised URIs by their exact text (1,000 each).
 */
export function createDPoPChecker(policy: DPoPProofPolicy, now: () => number = Date.now): DPoPChecker {
  const replay = policy.replayCache ?? new InMemoryReplayCache(policy.maxReplayEntries);
  const nonces = policy.nonce ? new DPoPNonces(policy.nonce.secret, policy.nonce.rotateSeconds) : undefined;
  const keys = new LRUCache<string, KeyObject>({ max: 1000 });
  // A client sends the same protected header (typ, alg, jwk) in every proof: what it decides is kept by its exact
  // base64url text, so a proof from a known header costs one map lookup instead of a decode, a parse and a thumbprint.
  // Only headers that passed every header check are kept; the signature is still checked on every proof.
  const headers = new LRUCache<string, { alg: string; key: KeyObject; thumbprint: string }>({ max: 1000 });
  // Request URIs and htu values repeat too (one per route); their normal form is kept by the exact string.
  const htus = new LRUCache<string, string | 0>({ max: 1000 });
  const normalHtu = (uri: string): string | undefined => {
    if (uri.length > 2048) return normalizeHtu(uri);
    const hit = htus.get(uri);
    if (hit !== undefined) return hit === 0 ? undefined : hit;
    const n = normalizeHtu(uri);
    htus.set(uri, n ?? 0);
    return n;
  };
  const tol = policy.clockTolerance;
  const replayTtl = Math.ceil(policy.iatWindow + 2 * tol);

  function proofKey(jwk: unknown, alg: string): { key: KeyObject; thumbprint: string } {
    if (typeof jwk !== 'object' || jwk === null || Array.isArray(jwk)) throw new AuthError('dpop_invalid_jwk', 'jwk header is missing');
    const j = jwk as Record<string, unknown>;
    for (const m of PRIVATE_MEMBERS) if (m in j) throw new AuthError('dpop_invalid_jwk', 'jwk holds private key material');
    const thumbprint = jwkThumbprint(j);
    if (!thumbprint) throw new AuthError('dpop_invalid_jwk', 'jwk is not a public RSA, EC or OKP key');
    let key = keys.get(thumbprint);
    if (!key) {
      const pub: Record<string, unknown> = {};
      for (const m of THUMBPRINT_MEMBERS[j.kty as string]) pub[m] = j[m];
      try {
        key = createPublicKey({ key: pub as never, format: 'jwk' });
      } catch {
        throw new AuthError('dpop_invalid_jwk', 'jwk is not a usable public key');
      }
      if (key.asymmetricKeyType === 'rsa' && (key.asymmetricKeyDetails?.modulusLength ?? 0) < MIN_RSA_BITS) {
        throw new AuthError('dpop_invalid_jwk', `RSA key shorter than ${MIN_RSA_BITS} bits`);
      }
      keys.set(thumbprint, key);
    }
    if (!keyFitsAlgorithm(alg, key)) throw new AuthError('dpop_invalid_jwk', `jwk does not fit alg ${alg}`);
    return { key, thumbprint };
  }

  function nonceError(reason: 'dpop_nonce_missing' | 'dpop_nonce_invalid', nowSeconds: number): AuthError {
    return new AuthError(
      reason,
      reason === 'dpop_nonce_missing' ? 'proof has no nonce' : 'proof nonce is unknown or old',
      undefined,
      nonces!.issue(nowSeconds),
    );
  }

  function check(token: string, jkt: string, req: DPoPRequest): void | Promise<void> {
    if (req.proofs.length === 0) throw new AuthError('dpop_proof_missing', 'no DPoP header');
    if (req.proofs.length > 1) throw new AuthError('dpop_multiple_proofs', 'more than one DPoP header');
    const proof = req.proofs[0].trim();
    if (proof.length > MAX_DPOP_PROOF_LENGTH) throw new AuthError('dpop_malformed_proof', `proof longer than ${MAX_DPOP_PROOF_LENGTH} characters`);
    const segs = proof.split('.');
    // An empty signature is left to the alg and signature checks, so that `alg: none` is refused as an algorithm.
    if (segs.length !== 3 || !B64URL.test(segs[0]) || !B64URL.test(segs[1]) || (segs[2] !== '' && !B64URL.test(segs[2]))) {
      throw new AuthError('dpop_malformed_proof', 'proof is not a compact JWS');
    }
    let known = headers.get(segs[0]);
    if (!known) {
      const header = jsonObject(segs[0], 'header');
      if (typeof header.typ !== 'string' || header.typ.toLowerCase() !== 'dpop+jwt') throw new AuthError('dpop_invalid_typ', 'typ must be dpop+jwt');
      const alg = header.alg;
      if (typeof alg !== 'string' || !policy.algorithms.includes(alg)) {
        throw new AuthError('dpop_unsupported_alg', typeof alg === 'string' && alg.length <= 16 ? `alg ${alg} is not allowed` : 'alg is not allowed');
      }
      known = { alg, ...proofKey(header.jwk, alg) };
      headers.set(segs[0], known);
    }
    const { alg, key, thumbprint } = known;
    const claims = jsonObject(segs[1], 'claims');
    try {
      verifyJwsSignature(alg, key, `${segs[0]}.${segs[1]}`, Buffer.from(segs[2], 'base64url'));
    } catch {
      throw new AuthError('dpop_invalid_signature', 'proof signature does not verify');
    }

    const { jti, htm, htu, iat } = claims;
    if (typeof jti !== 'string' || jti === '' || jti.length > MAX_DPOP_JTI_LENGTH) throw new AuthError('dpop_missing_claim', 'jti is missing or too long');
    if (typeof htm !== 'string') throw new AuthError('dpop_missing_claim', 'htm is missing');
    if (typeof htu !== 'string') throw new AuthError('dpop_missing_claim', 'htu is missing');
    if (typeof iat !== 'number' || !Number.isFinite(iat)) throw new AuthError('dpop_missing_claim', 'iat is missing');
    if (htm !== req.method) throw new AuthError('dpop_htm_mismatch', 'htm differs from the request method');
    const want = req.uri === undefined ? undefined : normalHtu(req.uri);
    if (want === undefined || normalHtu(htu) !== want) throw new AuthError('dpop_htu_mismatch', 'htu differs from the request URI');
    const nowSeconds = now() / 1000;
    if (iat < nowSeconds - policy.iatWindow - tol) throw new AuthError('dpop_iat_too_old', `iat older than ${policy.iatWindow}s`);
    if (iat > nowSeconds + tol) throw new AuthError('dpop_iat_in_future', 'iat is in the future');
    if (nonces) {
      if (claims.nonce === undefined) throw nonceError('dpop_nonce_missing', nowSeconds);
      if (!nonces.accepts(claims.nonce, nowSeconds)) throw nonceError('dpop_nonce_invalid', nowSeconds);
    }
    if (claims.ath !== accessTokenHash(token)) throw new AuthError('dpop_ath_mismatch', 'ath is not the hash of the access token');
    if (thumbprint !== jkt) throw new AuthError('dpop_jkt_mismatch', 'the proof key is not the key the token is bound to');

    let fresh: boolean | Promise<boolean>;
    try {
      fresh = replay.checkAndStore(`${thumbprint}:${jti}`, replayTtl);
    } catch {
      throw new AuthError('dpop_replay_store_unavailable', 'replay cache refused the proof');
    }
    if (fresh === true) return;
    if (fresh === false) throw new AuthError('dpop_replayed', 'jti was already used');
    return Promise.resolve(fresh).then(
      (ok) => {
        if (ok !== true) throw new AuthError('dpop_replayed', 'jti was already used');
      },
      () => {
        throw new AuthError('dpop_replay_store_unavailable', 'replay cache failed');
      },
    );
  }

  return { check, nonce: () => nonces?.issue(now() / 1000) };
}

function jsonObject(seg: string, what: string): Record<string, unknown> {
  let v: unknown;
  try {
    v = JSON.parse(Buffer.from(seg, 'base64url').toString('utf8'));
  } catch {
    throw new AuthError('dpop_malformed_proof', `proof ${what} is not JSON`);
  }
  if (!v || typeof v !== 'object' || Array.isArray(v)) throw new AuthError('dpop_malformed_proof', `proof ${what} is not a JSON object`);
  return v as Record<string, unknown>;
}
