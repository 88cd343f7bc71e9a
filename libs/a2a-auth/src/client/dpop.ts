import { createHash, randomBytes, type KeyObject } from 'node:crypto';
import { calculateJwkThumbprint, exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK } from 'jose';
import { ClientCredentialsError } from './errors';

/** JWS algorithms a calling agent may sign DPoP proofs with (RFC 9449 §4.2: asymmetric only, never `none`). */
export const DPOP_PROOF_ALGORITHMS = Object.freeze(['ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519', 'PS256', 'RS256'] as const);
/** One of {@link DPOP_PROOF_ALGORITHMS}. */
export type DPoPProofAlgorithm = (typeof DPOP_PROOF_ALGORITHMS)[number];

/** A DPoP key pair: WebCrypto `CryptoKey`s (as jose's `generateKeyPair` makes them) or Node `KeyObject`s. */
export interface DPoPKeyPair {
  /** Signs the proofs. Never leaves the process and is never logged. */
  privateKey: CryptoKey | KeyObject;
  /** Sent in every proof's `jwk` header (only its public members). */
  publicKey: CryptoKey | KeyObject;
}

/** DPoP (RFC 9449) settings of a calling agent: `dpop: true` for the defaults, or this object. */
export interface DPoPClientOptions {
  /** Proof signing algorithm. Default `'ES256'` (the one every DPoP server must support in practice). */
  alg?: DPoPProofAlgorithm;
  /** The key pair. Default: one generated in memory on first use with jose `generateKeyPair(alg)`, per provider. */
  keyPair?: DPoPKeyPair;
  /** Most origins whose `DPoP-Nonce` is remembered (oldest forgotten first). Default 100. */
  maxNonceOrigins?: number;
}

/** What one proof is for (RFC 9449 §4.2). */
export interface DPoPProofRequest {
  /** `htm`: the HTTP method of the request, e.g. `POST`. */
  htm: string;
  /** The request URL; `htu` is this URL without query and fragment. */
  url: string;
  /** The access token the request carries: the proof then has `ath` = base64url(SHA-256(token)) (§4.2). Omit at the token endpoint. */
  accessToken?: string;
}

// RFC 9449 §8.1: nonce = 1*NQCHAR; NQCHAR = %x21 / %x23-5B / %x5D-7E. Capped so a server cannot grow our proofs without bound.
const NONCE = /^[\x21\x23-\x5b\x5d-\x7e]{1,512}$/;
const PUBLIC_MEMBERS = ['kty', 'crv', 'x', 'y', 'n', 'e'] as const;

/**
 * The DPoP proof signer of one calling agent (RFC 9449): one key pair, a fresh proof JWT for every HTTP request, and
 * the server nonces it has been given, one per origin.
 *
 * - A proof is a JWS with header `typ: dpop+jwt`, `alg`, `jwk` (the public key) and claims `jti` (random, 128 bits),
 *   `htm`, `htu` (the URL without query and fragment), `iat` (seconds), `ath` when an access token goes with it, and
 *   `nonce` once the origin has supplied one (§4.2, §8, §9).
 * - A nonce is remembered per origin (the authorization server and each resource server have their own, §8 and §9) from
 *   any `DPoP-Nonce` response header; values that are not RFC 9449 §8.1 `nonce` syntax (or are longer than 512
 *   characters) are ignored.
 * - The key pair is generated lazily (jose `generateKeyPair`, asynchronous) and shared by concurrent first callers.
 *
 * @throws ClientCredentialsError from the constructor for an algorithm outside {@link DPOP_PROOF_ALGORITHMS}; from
 *   {@link proof} and {@link thumbprint} when a given key pair does not fit the algorithm.
 */
export class DPoPProofSigner {
  /** The proof signing algorithm. */
  readonly alg: DPoPProofAlgorithm;
  private keys?: Promise<{ privateKey: CryptoKey | KeyObject; jwk: JWK; jkt: string }>;
  private readonly given?: DPoPKeyPair;
  private readonly nonces = new Map<string, string>();
  private readonly maxOrigins: number;

  constructor(options: DPoPClientOptions = {}) {
    const alg = options.alg ?? 'ES256';
    if (!(DPOP_PROOF_ALGORITHMS as readonly string[]).includes(alg)) {
      throw new ClientCredentialsError(`dpop.alg ${JSON.stringify(alg)} is not allowed; allowed: ${DPOP_PROOF_ALGORITHMS.join(', ')}`);
    }
    this.alg = alg;
    this.given = options.keyPair;
    this.maxOrigins = Math.max(1, options.maxNonceOrigins ?? 100);
    Object.defineProperty(this, 'given', { enumerable: false });
    Object.defineProperty(this, 'keys', { enumerable: false, writable: true });
  }

  /** RFC 7638 JWK SHA-256 thumbprint of the public key: the `cnf.jkt` of the tokens bound to it (RFC 9449 §6.1). */
  async thumbprint(): Promise<string> {
    return (await this.keyMaterial()).jkt;
  }

  /** The public key as a JWK (public members only). */
  async publicJwk(): Promise<JWK> {
    return { ...(await this.keyMaterial()).jwk };
  }

  /**
   * A fresh proof for one request: a new `jti` and `iat` every call, the origin's nonce when one is known.
   * @throws ClientCredentialsError for a URL that is not absolute http(s), or a key that cannot sign with `alg`.
   */
  async proof(req: DPoPProofRequest): Promise<string> {
    const htu = dpopHtu(req.url);
    const { privateKey, jwk } = await this.keyMaterial();
    const claims: Record<string, unknown> = { htm: req.htm.toUpperCase(), htu, jti: randomBytes(16).toString('base64url') };
    if (req.accessToken !== undefined) claims.ath = createHash('sha256').update(req.accessToken).digest('base64url');
    const nonce = this.nonces.get(new URL(req.url).origin);
    if (nonce !== undefined) claims.nonce = nonce;
    try {
      return await new SignJWT(claims).setProtectedHeader({ typ: 'dpop+jwt', alg: this.alg, jwk }).setIssuedAt().sign(privateKey);
    } catch (e) {
      throw new ClientCredentialsError(`cannot sign a DPoP proof with ${this.alg}: ${(e as Error)?.message ?? 'error'}`);
    }
  }

  /** The nonce remembered for a URL's origin, if any. */
  nonceFor(url: string): string | undefined {
    return this.nonces.get(originOf(url) ?? '');
  }

  /**
   * Remembers the `DPoP-Nonce` of a response for its origin (RFC 9449 §8.2: a server may supply a new nonce on any
   * response). Returns whether a valid nonce was found.
   */
  observe(url: string, headers: Headers): boolean {
    const nonce = headers.get('dpop-nonce');
    const origin = originOf(url);
    if (nonce === null || origin === undefined || !NONCE.test(nonce)) return false;
    this.nonces.delete(origin);
    this.nonces.set(origin, nonce);
    if (this.nonces.size > this.maxOrigins) this.nonces.delete(this.nonces.keys().next().value as string);
    return true;
  }

  /** Never shows the key when inspected. */
  toJSON(): Record<string, unknown> {
    return { alg: this.alg };
  }

  private keyMaterial(): Promise<{ privateKey: CryptoKey | KeyObject; jwk: JWK; jkt: string }> {
    this.keys ??= this.load().catch((e: unknown) => {
      this.keys = undefined; // a failed generation is not remembered
      throw e;
    });
    return this.keys;
  }

  private async load(): Promise<{ privateKey: CryptoKey | KeyObject; jwk: JWK; jkt: string }> {
    let pair: DPoPKeyPair;
    try {
      pair = this.given ?? (await generateKeyPair(this.alg, { extractable: false }));
    } catch (e) {
      throw new ClientCredentialsError(`cannot generate a DPoP key for ${this.alg}: ${(e as Error)?.message ?? 'error'}`);
    }
    let exported: JWK;
    try {
      exported = await exportJWK(pair.publicKey);
    } catch (e) {
      throw new ClientCredentialsError(`dpop.keyPair.publicKey cannot be exported as a JWK: ${(e as Error)?.message ?? 'error'}`);
    }
    // Only the public members: a private key passed as `publicKey` by mistake must not travel in every proof.
    const jwk: JWK = {};
    for (const m of PUBLIC_MEMBERS) if (exported[m] !== undefined) jwk[m] = exported[m];
    if (!jwk.kty) throw new ClientCredentialsError('dpop.keyPair.publicKey is not an asymmetric public key');
    return { privateKey: pair.privateKey, jwk, jkt: await calculateJwkThumbprint(jwk, 'sha256') };
  }
}

/** RFC 9449 §4.2 `htu`: the request URL without query and fragment. @throws ClientCredentialsError for a non-http(s) URL. */
export function dpopHtu(url: string): string {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new ClientCredentialsError('a DPoP proof needs an absolute request URL');
  }
  if (u.protocol !== 'https:' && u.protocol !== 'http:') throw new ClientCredentialsError(`a DPoP proof needs an http(s) URL, got ${u.protocol}`);
  u.search = '';
  u.hash = '';
  return u.href;
}

function originOf(url: string): string | undefined {
  try {
    return new URL(url).origin;
  } catch {
    return undefined;
  }
}

/**
 * Whether a 401 from a resource server is the RFC 9449 §9 nonce challenge: `WWW-Authenticate: DPoP error="use_dpop_nonce"`
 * together with a `DPoP-Nonce` header.
 */
export function isUseDpopNonceChallenge(res: Response): boolean {
  if (res.status !== 401 || !res.headers.get('dpop-nonce')) return false;
  const challenge = res.headers.get('www-authenticate') ?? '';
  return /(?:^|,)\s*DPoP\b/i.test(challenge) && /\berror\s*=\s*"?use_dpop_nonce"?/i.test(challenge);
}
