import { createHash, X509Certificate } from 'node:crypto';
import { Inject, Injectable } from '@nestjs/common';
import { A2A_AUTH_RESOLVED_OPTIONS } from '../constants';
import type { ResolvedOptions } from '../../core/options';
import { A2AJwtStrategy, DECODED_SLOT, TOKEN_SLOT } from '../passport/a2a-jwt.strategy';
import { extractBearerToken } from '../../core/bearer';
import type { A2ACaller } from '../../core/caller';
import { decodeForVerification, type DecodedToken } from '../../core/decode';
import { AuthError } from '../../core/errors';
import { reasonFromJwtError } from '../../core/claims';
import { cacheNotAfter, tokenHash, VerifiedTokenCache } from '../../core/token-cache';
import { countAuthorizationHeaders, socketOf, type HttpRequestLike } from '../http/request-info';

/** What is known about a request's token so far; filled during {@link A2AAuthenticator.authenticate} for the audit event. */
export interface AuthAttempt {
  /** SHA-256 of the token (base64url). */
  hash?: string;
  /** Unverified header and payload, once decoded. */
  decoded?: DecodedToken;
  /** Whether the caller came from the verified-token cache. */
  cacheHit?: boolean;
}

/**
 * Authenticates one HTTP request: bearer extraction, the verified-token cache, then the Passport
 * strategy on a miss, then per-request bindings (RFC 8705 certificate binding).
 * Shared by the global guard, the extended card and the A2A skill checks.
 */
@Injectable()
export class A2AAuthenticator {
  constructor(
    @Inject(A2A_AUTH_RESOLVED_OPTIONS) private readonly opts: ResolvedOptions,
    private readonly strategy: A2AJwtStrategy,
    readonly cache: VerifiedTokenCache,
  ) {}

  /**
   * @returns the verified caller (synchronously on a cache hit).
   * @throws AuthError (400/401/503; see {@link REASONS}).
   */
  authenticate(req: HttpRequestLike, attempt: AuthAttempt = {}): A2ACaller | Promise<A2ACaller> {
    const token = extractBearerToken(
      {
        authorization: req.headers.authorization,
        authorizationCount: countAuthorizationHeaders(req),
        // Express 5 parses the query string on every `req.query` read; without a `?` there is none.
        queryToken: req.url === undefined || req.url.includes('?') ? (req.query?.access_token as string | string[] | undefined) : undefined,
      },
      { allowQueryToken: this.opts.allowQueryToken, maxTokenLength: this.opts.maxTokenLength },
    );
    const cache = this.cache;
    if (cache.enabled) {
      const hash = (attempt.hash = tokenHash(token));
      const hit = cache.get(hash);
      if (hit) {
        attempt.cacheHit = true;
        this.checkBinding(req, hit);
        return hit;
      }
    }
    // On failure the audit event needs a token id even with the cache off; hash only then (never keep the token).
    const fail = (e: unknown): never => {
      attempt.hash ??= tokenHash(token);
      throw e;
    };
    let decoded: DecodedToken;
    try {
      decoded = attempt.decoded = decodeForVerification(token, this.opts.algorithms, this.opts.issuerNames);
    } catch (e) {
      return fail(e);
    }
    return this.verify(req, token, decoded).then((caller) => {
      this.checkBinding(req, caller);
      if (cache.enabled) cache.set(attempt.hash!, caller, cacheNotAfter(caller.claims, this.opts.clockTolerance, this.opts.maxTokenAge));
      return caller;
    }, fail);
  }

  /** Runs the Passport strategy per Passport's strategy contract (success / fail / error), without the middleware. */
  private verify(req: HttpRequestLike, token: string, decoded: DecodedToken): Promise<A2ACaller> {
    // passport-jwt reads the request only through the strategy's jwtFromRequest and secretOrKeyProvider, which take the
    // token and its decoded form from these slots. A small view carries them instead of the request: adding and then
    // deleting properties on the real request costs microseconds and leaves it in V8's slow dictionary mode.
    const view = { headers: req.headers, [TOKEN_SLOT]: token, [DECODED_SLOT]: decoded };
    return new Promise<A2ACaller>((resolve, reject) => {
      const s = Object.create(this.strategy) as {
        success: (u: A2ACaller) => void;
        fail: (info?: unknown) => void;
        error: (e: unknown) => void;
        pass: () => void;
        redirect: () => void;
        authenticate: (req: unknown, o: unknown) => void;
      };
      s.success = (u) => resolve(u);
      s.fail = (info) => reject(reasonFromJwtError(info));
      s.error = (e) => reject(reasonFromJwtError(e));
      s.pass = () => reject(new AuthError('missing_token'));
      s.redirect = () => reject(new AuthError('missing_token'));
      try {
        s.authenticate(view, { session: false });
      } catch (e) {
        reject(reasonFromJwtError(e));
      }
    });
  }

  /** RFC 8705 §3: the token's `cnf["x5t#S256"]` must equal the SHA-256 of the client certificate (DER). */
  private checkBinding(req: HttpRequestLike, caller: A2ACaller): void {
    if (!this.opts.mtls?.requireBoundTokens) return;
    const cnf = caller.claims.cnf as Record<string, unknown> | undefined;
    const want = cnf && typeof cnf === 'object' ? cnf['x5t#S256'] : undefined;
    if (typeof want !== 'string') throw new AuthError('certificate_mismatch', 'token has no cnf x5t#S256');
    const sock = socketOf(req);
    const cert = sock?.getPeerCertificate?.(false) as { raw?: Buffer } | undefined;
    if (!sock?.authorized || !cert?.raw) throw new AuthError('certificate_mismatch', 'no verified client certificate');
    if (certificateThumbprint(cert.raw) !== want) throw new AuthError('certificate_mismatch', 'certificate thumbprint differs');
  }
}

/** RFC 8705 §3.1 `x5t#S256`: base64url SHA-256 of a certificate's DER. Accepts DER bytes or an `X509Certificate`. */
export function certificateThumbprint(cert: Buffer | X509Certificate): string {
  const der = cert instanceof X509Certificate ? cert.raw : cert;
  return createHash('sha256').update(der).digest('base64url');
}
