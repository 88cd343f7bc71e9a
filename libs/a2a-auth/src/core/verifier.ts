import { createHash, X509Certificate, type KeyObject } from 'node:crypto';
import { callerFromClaims, type A2ACaller } from './caller';
import { checkClaims, type ClaimPolicy, type ClaimValidator } from './claims';
import { decodeForVerification, type DecodedToken } from './decode';
import type { TokenScheme } from './bearer';
import { createDPoPChecker, type DPoPChecker, type DPoPRequest } from './dpop';
import { AuthError } from './errors';
import { isJwtShaped, type IntrospectionResult, type TokenIntrospector } from './introspection';
import type { DPoPMode } from './options';
import type { DPoPReplayCache } from './replay-cache';
import { keyFitsAlgorithm, verifyJwsSignature, verifyJwsSignatureAsync } from './jws';
import { extractScopes } from './scopes';
import { cacheNotAfter, tokenHash, type VerifiedTokenCache } from './token-cache';

/** What the verifier needs to know about the token policy; {@link ResolvedOptions} satisfies it. */
export interface VerifierPolicy {
  /** Allowed JWS algorithms (never `none` or HMAC). */
  readonly algorithms: readonly string[];
  /** Trusted issuers, each with the audiences its tokens must name. */
  readonly issuers: ReadonlyArray<{ readonly issuer: string; readonly audience: readonly string[] }>;
  /** Clock skew tolerance, seconds. */
  readonly clockTolerance: number;
  /** Maximum age since `iat`, seconds; `undefined` for no limit. */
  readonly maxTokenAge?: number;
  /** RFC 9068 strict profile. */
  readonly strict: boolean;
  /** Claims that carry scopes. */
  readonly scopeClaims: readonly string[];
  /** Extra claim checks. */
  readonly claimValidators: readonly ClaimValidator[];
  /** RFC 8705 certificate binding: with `requireBoundTokens`, every token must be bound to the TLS client certificate. */
  readonly mtls?: { readonly requireBoundTokens: boolean };
  /** Check signatures on libuv's thread pool instead of the event loop. Default false (see the `verifyOffThread` option). */
  readonly verifyOffThread?: boolean;
  /**
   * RFC 9449 DPoP: the module-wide mode (a route may override it through {@link VerificationContext.dpopMode}) and the
   * proof rules. Default: mode `'off'`, no proof is ever accepted.
   */
  readonly dpop?: {
    readonly mode: DPoPMode;
    /** Allowed proof algorithms. */
    readonly algorithms: readonly string[];
    /** How old a proof's `iat` may be, seconds. */
    readonly iatWindow: number;
    /** Most entries of the default in-memory replay cache. */
    readonly maxReplayEntries: number;
    readonly replayCache?: DPoPReplayCache;
    /** Server-provided nonces: the HMAC key and the window length in seconds. */
    readonly nonce?: { readonly secret: Buffer; readonly rotateSeconds: number };
  };
}

/** Where the verifier gets a key for a token: one key set per trusted issuer ({@link KeyRegistry}). */
export interface KeyResolver {
  /**
   * The key for `kid` (or the single key when the token has none) at `issuer`.
   * @throws AuthError `invalid_issuer`, `unknown_kid`, `missing_kid`, `unsupported_alg`, `jwks_unavailable`.
   */
  getKey(issuer: string, kid: string | undefined, alg: string): Promise<KeyObject>;
}

/**
 * Facts of the request a token arrived on, for sender-constrained tokens. Read lazily, only when a check needs them.
 */
export interface VerificationContext {
  /**
   * The DER bytes of the TLS client certificate, only if the TLS stack verified it (RFC 8705 §2); else `undefined`.
   */
  clientCertificate?: () => Buffer | undefined;
  /** The scheme the token came with (RFC 6750 `Bearer`, RFC 9449 §7.1 `DPoP`). Default `Bearer`. */
  scheme?: TokenScheme;
  /** The route's DPoP mode (its route policy); default the verifier's module-wide mode. */
  dpopMode?: DPoPMode;
  /** The request facts a DPoP proof must match (RFC 9449 §4.3); read only for the `DPoP` scheme. */
  dpopRequest?: () => DPoPRequest;
}

/** What is known about a token so far; filled as the verifier goes, for the audit event. */
export interface VerifyAttempt {
  /** SHA-256 of the token (base64url, 43 characters). Never the token itself. */
  hash?: string;
  /** The unverified header and payload, once decoded. */
  decoded?: DecodedToken;
  /** Whether the caller came from the verified-token cache. */
  cacheHit?: boolean;
}

/** The per-token decision: see {@link createVerifier}. */
export interface Verifier {
  /**
   * The whole decision for one token: cache lookup, decode once, key choice, signature, every claim check once, the
   * sender binding, the caller, the cache entry. Synchronous on a cache hit.
   * @returns the verified caller.
   * @throws AuthError with its reason code (401 for a bad token, 503 `jwks_unavailable` when keys cannot be had).
   */
  verify(token: string, ctx?: VerificationContext, attempt?: VerifyAttempt): A2ACaller | Promise<A2ACaller>;
  /**
   * Step 1 for adapters that check the signature themselves (the passport-jwt strategy): decode and pre-check.
   * @throws AuthError `malformed_token`, `unsupported_alg`, `invalid_issuer`, `missing_claim`.
   */
  decode(token: string): DecodedToken;
  /**
   * Step 2 for adapters: the verification key of a decoded token, checked to fit its `alg`.
   * @throws AuthError as {@link KeyResolver.getKey}, and `unsupported_alg` when the key type does not fit.
   */
  keyFor(decoded: DecodedToken): Promise<KeyObject>;
  /**
   * Step 3 for adapters, after the signature verified: every claim check, the sender binding (the RFC 8705
   * certificate, the RFC 9449 proof), the caller. Synchronous unless a DPoP replay cache answers asynchronously.
   * @param token the access token as sent: needed for the DPoP scheme (the proof's `ath`), which fails without it.
   * @throws AuthError `expired`, `invalid_audience`, `certificate_mismatch`, `dpop_*`, … (401).
   */
  accept(decoded: Pick<DecodedToken, 'header' | 'payload'>, ctx?: VerificationContext, token?: string): A2ACaller | Promise<A2ACaller>;
  /** The DPoP nonce the server currently hands out (RFC 9449 §9), when nonces are on. */
  dpopNonce(): string | undefined;
}

/** RFC 8705 §3.1 `x5t#S256`: base64url SHA-256 of a certificate's DER. Accepts DER bytes or an `X509Certificate`. */
export function certificateThumbprint(cert: Buffer | X509Certificate): string {
  const der = cert instanceof X509Certificate ? cert.raw : cert;
  return createHash('sha256').update(der).digest('base64url');
}

const NO_CONTEXT: VerificationContext = Object.freeze({});

/**
 * Creates the one verifier that every entry point calls (the global guard, the `'a2a-jwt'` Passport strategy, the
 * extended card, the A2A bindings). It makes the whole per-token decision and returns the caller or throws an
 * {@link AuthError} with a reason code; no error is ever mapped from another library's message text.
 *
 * - Decoding ({@link decodeForVerification}) refuses malformed tokens, algorithms outside the allow-list and untrusted
 *   issuers before any key lookup or network call.
 * - The key comes from the issuer's key set and must fit the algorithm; the signature is checked with Node's crypto on
 *   a parsed `KeyObject`.
 * - Claims are checked once ({@link checkClaims}): `exp` required, `nbf`/`iat` with tolerance, per-issuer audience,
 *   `maxTokenAge`, RFC 9068 strict mode, custom validators.
 * - The sender binding is checked on every request, cache hits too: the RFC 8705 certificate (`cnf["x5t#S256"]`), and
 *   the RFC 9449 DPoP proof (`cnf.jkt`, {@link createDPoPChecker}) for the `DPoP` scheme. A DPoP-bound token sent as
 *   `Bearer` is refused, and so is an unbound one sent as `DPoP`; the scheme must fit the route's DPoP mode.
 * - With a cache, verified callers are kept by token hash until `exp` (and `iat + maxTokenAge`); failures never are.
 * - With an introspector, a token that is not JWT-shaped is asked about (RFC 7662) instead; an active answer's claims go
 *   through the same claim checks (RFC 9068 strict mode aside: it describes JWTs), binding check and caller as a JWT's.
 *
 * @param policy token rules (the resolved module options satisfy this).
 * @param keys key sets by issuer.
 * @param cache optional verified-token cache.
 * @param introspector optional RFC 7662 client for opaque tokens (it caches its own answers).
 */
export function createVerifier(policy: VerifierPolicy, keys: KeyResolver, cache?: VerifiedTokenCache, introspector?: TokenIntrospector): Verifier {
  const issuerNames = policy.issuers.map((i) => i.issuer);
  const claimPolicies = new Map<string, ClaimPolicy>(
    policy.issuers.map((i) => [
      i.issuer,
      {
        clockTolerance: policy.clockTolerance,
        maxTokenAge: policy.maxTokenAge,
        strict: policy.strict,
        audience: i.audience,
        validators: policy.claimValidators,
      },
    ]),
  );
  // RFC 9068 (strict) profiles JWTs: it has no say over an introspection answer, whose other checks stay the same.
  const introspectedPolicies = new Map<string, ClaimPolicy>([...claimPolicies].map(([iss, p]) => [iss, { ...p, strict: false }]));
  const requireCertificate = policy.mtls?.requireBoundTokens === true;
  const useCache = cache !== undefined && cache.enabled;
  const offThread = policy.verifyOffThread === true;
  const dpopMode: DPoPMode = policy.dpop?.mode ?? 'off';
  // Built even with the module-wide mode off: a route may turn DPoP on.
  const dpop: DPoPChecker | undefined = policy.dpop ? createDPoPChecker({ ...policy.dpop, clockTolerance: policy.clockTolerance }) : undefined;

  // The scheme against the route's mode, before any work on the token.
  function checkScheme(ctx: VerificationContext): void {
    const mode = ctx.dpopMode ?? dpopMode;
    if (ctx.scheme === 'DPoP') {
      if (mode === 'off' || !dpop) throw new AuthError('unsupported_scheme', 'scheme DPoP is not supported');
    } else if (mode === 'required') {
      throw new AuthError('dpop_required', 'Bearer token where DPoP is required');
    }
  }

  function checkBinding(caller: A2ACaller, ctx: VerificationContext, token: string | undefined): void | Promise<void> {
    const cnf = caller.claims.cnf as Record<string, unknown> | undefined;
    const dpopScheme = ctx.scheme === 'DPoP';
    // A DPoP-bound token (RFC 9449 §7.1) must not be usable as a plain bearer token: a thief could replay it.
    if (!dpopScheme && cnf !== undefined && (typeof cnf !== 'object' || cnf === null || 'jkt' in cnf)) {
      if ((ctx.dpopMode ?? dpopMode) === 'off' || !(typeof cnf === 'object' && cnf !== null && 'jkt' in cnf)) {
        throw new AuthError('unsupported_token_binding', 'DPoP-bound token (cnf.jkt) presented as a Bearer token');
      }
      throw new AuthError('dpop_bound_token_as_bearer', 'DPoP-bound token (cnf.jkt) presented as a Bearer token');
    }
    if (requireCertificate) {
      const want = cnf && typeof cnf === 'object' ? cnf['x5t#S256'] : undefined;
      if (typeof want !== 'string') throw new AuthError('certificate_mismatch', 'token has no cnf x5t#S256');
      const der = ctx.clientCertificate?.();
      if (!der) throw new AuthError('certificate_mismatch', 'no verified client certificate');
      if (certificateThumbprint(der) !== want) throw new AuthError('certificate_mismatch', 'certificate thumbprint differs');
    }
    if (dpopScheme) {
      const jkt = cnf && typeof cnf === 'object' ? cnf.jkt : undefined;
      if (typeof jkt !== 'string') throw new AuthError('dpop_unbound_token', 'DPoP scheme with a token that has no cnf.jkt');
      const req = ctx.dpopRequest?.();
      if (!req || token === undefined) throw new AuthError('dpop_proof_missing', 'no request facts for the DPoP proof');
      return dpop!.check(token, jkt, req);
    }
  }

  function decode(token: string): DecodedToken {
    return decodeForVerification(token, policy.algorithms, issuerNames);
  }

  async function keyFor(decoded: DecodedToken): Promise<KeyObject> {
    const alg = decoded.header.alg as string;
    const key = await keys.getKey(decoded.payload.iss as string, decoded.header.kid as string | undefined, alg);
    if (!keyFitsAlgorithm(alg, key)) throw new AuthError('unsupported_alg', `the key does not fit alg ${alg}`);
    return key;
  }

  function accept(decoded: Pick<DecodedToken, 'header' | 'payload'>, ctx: VerificationContext = NO_CONTEXT, token?: string): A2ACaller | Promise<A2ACaller> {
    checkScheme(ctx);
    const { header, payload } = decoded;
    const claimPolicy = claimPolicies.get(payload.iss as string);
    if (!claimPolicy) throw new AuthError('invalid_issuer', 'untrusted issuer');
    checkClaims(header, payload, claimPolicy, Date.now() / 1000);
    const caller = callerFromClaims(payload, extractScopes(payload, policy.scopeClaims), header.kid as string | undefined);
    const bound = checkBinding(caller, ctx, token);
    return bound ? bound.then(() => caller) : caller;
  }

  async function verifyMiss(token: string, decoded: DecodedToken, ctx: VerificationContext, attempt: VerifyAttempt): Promise<A2ACaller> {
    const key = await keyFor(decoded);
    if (offThread) await verifyJwsSignatureAsync(decoded.header.alg as string, key, decoded.signingInput, decoded.signature);
    else verifyJwsSignature(decoded.header.alg as string, key, decoded.signingInput, decoded.signature);
    const caller = await accept(decoded, ctx, token);
    if (useCache) cache.set((attempt.hash ??= tokenHash(token)), caller, cacheNotAfter(caller.claims, policy.clockTolerance, policy.maxTokenAge));
    return caller;
  }

  function acceptIntrospected(r: IntrospectionResult, ctx: VerificationContext, token: string): A2ACaller | Promise<A2ACaller> {
    if (!r.active) throw new AuthError('inactive_token', 'introspection: active false');
    const claimPolicy = introspectedPolicies.get(r.claims.iss as string);
    if (!claimPolicy) throw new AuthError(typeof r.claims.iss === 'string' ? 'invalid_issuer' : 'missing_claim', 'introspection: iss is not a trusted issuer');
    checkClaims({}, r.claims as Record<string, unknown>, claimPolicy, Date.now() / 1000);
    const caller = callerFromClaims(r.claims as Record<string, unknown>, extractScopes(r.claims as Record<string, unknown>, policy.scopeClaims));
    const bound = checkBinding(caller, ctx, token);
    return bound ? bound.then(() => caller) : caller;
  }

  function verifyOpaque(token: string, ctx: VerificationContext, attempt: VerifyAttempt, intro: TokenIntrospector): A2ACaller | Promise<A2ACaller> {
    const hash = (attempt.hash ??= tokenHash(token));
    const hit = intro.cached(hash);
    if (hit) {
      attempt.cacheHit = true;
      const accepted = acceptIntrospected(hit, ctx, token);
      return accepted instanceof Promise ? accepted.catch((e: unknown) => failed(token, attempt, e)) : accepted;
    }
    return intro
      .introspect(token, hash)
      .then((r) => acceptIntrospected(r, ctx, token))
      .catch((e: unknown) => failed(token, attempt, e));
  }

  function verify(token: string, ctx: VerificationContext = NO_CONTEXT, attempt: VerifyAttempt = {}): A2ACaller | Promise<A2ACaller> {
    try {
      checkScheme(ctx);
      if (introspector && !isJwtShaped(token)) return verifyOpaque(token, ctx, attempt, introspector);
      if (useCache) {
        const hash = (attempt.hash = tokenHash(token));
        const hit = cache.get(hash);
        if (hit) {
          attempt.cacheHit = true;
          const bound = checkBinding(hit, ctx, token);
          return bound ? bound.then(() => hit).catch((e: unknown) => failed(token, attempt, e)) : hit;
        }
      }
      const decoded = (attempt.decoded = decode(token));
      return verifyMiss(token, decoded, ctx, attempt).catch((e: unknown) => failed(token, attempt, e));
    } catch (e) {
      return failed(token, attempt, e);
    }
  }

  return { verify, decode, keyFor, accept, dpopNonce: () => dpop?.nonce() };
}

// A failed token still gets an audit id (its hash) even with the cache off; anything that is not an AuthError is a bug
// somewhere below, and fails closed as an invalid token.
function failed(token: string, attempt: VerifyAttempt, e: unknown): never {
  attempt.hash ??= tokenHash(token);
  if (e instanceof AuthError) throw e;
  throw new AuthError('invalid_signature', 'verification failed unexpectedly');
}
