import { Inject, Injectable } from '@nestjs/common';
import { PassportStrategy } from '@nestjs/passport';
import { Strategy } from 'passport-jwt';
import type { A2ACaller } from '../../core/caller';
import type { DecodedToken } from '../../core/decode';
import { AuthError } from '../../core/errors';
import type { ResolvedOptions } from '../../core/options';
import type { Verifier } from '../../core/verifier';
import { assertDelegation, type DelegationPolicy } from '../../core/delegation';
import { AuthAuditService } from '../audit/auth-audit.service';
import { A2A_AUTH_RESOLVED_OPTIONS, A2A_JWT_STRATEGY, A2A_VERIFIER } from '../constants';
import { bearerTokenOf, verificationContextOf } from '../http/credentials';
import type { HttpRequestLike } from '../http/request-info';

/** What the strategy learnt about a request before passport-jwt took over (for the failure's reason code). */
interface Seen {
  refused?: AuthError;
  decoded?: DecodedToken;
}

type PassportSelf = { fail: (info?: unknown, status?: number) => void; error: (e: unknown) => void };

/**
 * The Passport JWT strategy `'a2a-jwt'`, for apps that use `@UseGuards(AuthGuard('a2a-jwt'))` (with `globalGuard: false`,
 * or beside the global guard). It is a passport-jwt strategy (with jwks-rsa behind the key sets) and an adapter over the
 * library's verifier, so it makes the same decision as the global guard, reason code included:
 *
 * - the token comes from the same bearer rules ({@link bearerTokenOf});
 * - the key comes from the verifier (`keyFor`: the issuer's key set, the key checked to fit `alg`);
 * - passport-jwt (jsonwebtoken) checks the signature, and nothing else: every claim, the RFC 8705 certificate binding
 *   and the caller are the verifier's (`accept`, with the request passed through, `passReqToCallback`).
 *
 * Failures are Nest's plain 401 (`AuthGuard` sends no RFC 6750 headers and no 503); each is recorded in the audit trail
 * with its precise reason. `validate` never throws, so no token can cause a 500.
 */
@Injectable()
export class A2AJwtStrategy extends PassportStrategy(Strategy, A2A_JWT_STRATEGY) {
  private readonly seen = new WeakMap<object, Seen>();
  private readonly mtls: boolean;
  private readonly delegation: DelegationPolicy;

  constructor(
    @Inject(A2A_AUTH_RESOLVED_OPTIONS) opts: ResolvedOptions,
    @Inject(A2A_VERIFIER) private readonly verifier: Verifier,
    private readonly audit: AuthAuditService,
  ) {
    const seen = new WeakMap<object, Seen>();
    super({
      jwtFromRequest: (req: HttpRequestLike) => {
        try {
          return bearerTokenOf(req, opts);
        } catch (e) {
          seen.set(req, { refused: e instanceof AuthError ? e : new AuthError('malformed_header') });
          return null;
        }
      },
      secretOrKeyProvider: (req: HttpRequestLike, rawJwt: string, done: (err: unknown, key?: unknown) => void) => {
        let decoded: DecodedToken;
        try {
          decoded = verifier.decode(rawJwt);
        } catch (e) {
          return done(e);
        }
        seen.set(req, { decoded });
        verifier.keyFor(decoded).then(
          (k) => done(null, k),
          (e) => done(e),
        );
      },
      passReqToCallback: true,
      algorithms: opts.algorithms,
      // The claims are the verifier's: jsonwebtoken must not check (and word) them differently.
      ignoreExpiration: true,
      jsonWebTokenOptions: { complete: true, ignoreNotBefore: true },
    } as never);
    this.seen = seen;
    this.mtls = opts.mtls?.requireBoundTokens === true;
    this.delegation = opts.delegation;
  }

  /**
   * Passport's entry point: passport-jwt's, with every refusal recorded in the audit trail under its reason code.
   * @internal
   */
  authenticate(req: HttpRequestLike, options?: unknown): void {
    const self = this as unknown as PassportSelf;
    const fail = self.fail;
    self.fail = (info?: unknown, status?: number) => {
      const s = this.seen.get(req);
      // passport-jwt reports a missing token and a bad signature with errors of its own: the reason comes from what
      // the adapter saw, never from their message text.
      const err = info instanceof AuthError ? info : (s?.refused ?? new AuthError(s?.decoded ? 'invalid_signature' : 'missing_token'));
      this.audit.failure(req, err, { decoded: s?.decoded }, {});
      fail.call(self, info, status);
    };
    (Strategy.prototype.authenticate as (this: unknown, r: unknown, o: unknown) => void).call(this, req, options);
  }

  /**
   * passport-jwt's verify callback (`complete: true`, request first): the verifier's checks after the signature.
   * Returns the {@link A2ACaller}, or `[false, AuthError]` so passport-jwt calls `fail()` (401) rather than `error()`.
   * @internal
   */
  validate(req: HttpRequestLike, decoded: { header: Record<string, unknown>; payload: Record<string, unknown> }): A2ACaller | [false, AuthError] {
    try {
      const caller = this.verifier.accept(decoded, verificationContextOf(req, this.mtls));
      // The strategy knows no route: it applies the module-wide delegation policy (fail closed).
      assertDelegation(caller.actors, this.delegation);
      this.audit.success(req, caller, { decoded: this.seen.get(req)?.decoded }, {});
      return caller;
    } catch (e) {
      return [false, e instanceof AuthError ? e : new AuthError('claim_validation_failed', 'claim check failed')];
    }
  }
}
