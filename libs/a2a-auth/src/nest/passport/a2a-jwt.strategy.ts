import { Inject, Injectable, type ExecutionContext } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { AuthGuard, PassportStrategy } from '@nestjs/passport';
import { Strategy } from 'passport-jwt';
import type { PresentedToken } from '../../core/bearer';
import type { A2ACaller } from '../../core/caller';
import type { DecodedToken } from '../../core/decode';
import { AuthError } from '../../core/errors';
import type { DPoPMode, ResolvedOptions } from '../../core/options';
import type { Verifier } from '../../core/verifier';
import { assertDelegation, type DelegationPolicy } from '../../core/delegation';
import { AuthAuditService } from '../audit/auth-audit.service';
import { A2A_AUTH_RESOLVED_OPTIONS, A2A_JWT_STRATEGY, A2A_VERIFIER } from '../constants';
import { credentialsOf, verificationContextOf, type ContextOptions } from '../http/credentials';
import type { HttpRequestLike } from '../http/request-info';
import { routeAuth } from '../guard/route-auth';

/** What the strategy learnt about a request before passport-jwt took over (for the failure's reason code). */
interface Seen {
  refused?: AuthError;
  decoded?: DecodedToken;
  presented?: PresentedToken;
  /** The route's DPoP mode, from its route policy. */
  mode?: DPoPMode;
}

/** The authenticate option that carries the route's DPoP mode from `AuthGuard('a2a-jwt')` to the strategy. */
const ROUTE_DPOP_OPTION = 'a2aRouteDPoPMode';

// Passport hands a strategy only the request and the authenticate options, never the handler. AuthGuard() is
// memoized per strategy name, so this is the class of every `AuthGuard('a2a-jwt')`: its options hook (which returns
// nothing by default) adds the route's DPoP mode from the route policy, so that the strategy applies the mode the
// global guard applies. A subclass that overrides getAuthenticateOptions without calling super gets the module's mode.
{
  const guard = AuthGuard(A2A_JWT_STRATEGY) as unknown as { prototype: { getAuthenticateOptions(ctx: ExecutionContext): unknown } };
  const reflector = new Reflector();
  const base = guard.prototype.getAuthenticateOptions;
  guard.prototype.getAuthenticateOptions = function (this: unknown, ctx: ExecutionContext) {
    const own = base.call(this, ctx);
    const dpop = ctx.getType() === 'http' ? routeAuth(reflector, ctx.getClass(), ctx.getHandler()).dpop : undefined;
    if (!dpop) return own;
    const add = (o: unknown) => ({ ...(o as object | undefined), [ROUTE_DPOP_OPTION]: dpop });
    return own instanceof Promise ? own.then(add) : add(own);
  };
}

type PassportSelf = { fail: (info?: unknown, status?: number) => void; error: (e: unknown) => void };

/**
 * The Passport JWT strategy `'a2a-jwt'`, for apps that use `@UseGuards(AuthGuard('a2a-jwt'))` (with `globalGuard: false`,
 * or beside the global guard). It is a passport-jwt strategy (with jwks-rsa behind the key sets) and an adapter over the
 * library's verifier, so it makes the same decision as the global guard, reason code included:
 *
 * - the token comes from the same credential rules ({@link credentialsOf}), with the route's DPoP mode (`@DPoP`, which
 *   `AuthGuard('a2a-jwt')` passes on) or the module's;
 * - the key comes from the verifier (`keyFor`: the issuer's key set, the key checked to fit `alg`);
 * - passport-jwt (jsonwebtoken) checks the signature, and nothing else: every claim, the RFC 8705 certificate binding,
 *   the RFC 9449 DPoP proof and the caller are the verifier's (`accept`, with the request passed through,
 *   `passReqToCallback`).
 *
 * Failures are Nest's plain 401 (`AuthGuard` sends no RFC 6750 headers and no 503); each is recorded in the audit trail
 * with its precise reason. `validate` never throws, so no token can cause a 500.
 */
@Injectable()
export class A2AJwtStrategy extends PassportStrategy(Strategy, A2A_JWT_STRATEGY) {
  private readonly seen = new WeakMap<object, Seen>();
  private readonly context: ContextOptions;
  private readonly delegation: DelegationPolicy;

  constructor(
    @Inject(A2A_AUTH_RESOLVED_OPTIONS) opts: ResolvedOptions,
    @Inject(A2A_VERIFIER) private readonly verifier: Verifier,
    private readonly audit: AuthAuditService,
  ) {
    const seen = new WeakMap<object, Seen>();
    super({
      jwtFromRequest: (req: HttpRequestLike) => {
        const s = seen.get(req) ?? {};
        seen.set(req, s);
        try {
          s.presented = credentialsOf(req, opts, s.mode ?? opts.dpop?.mode ?? 'off');
          return s.presented.token;
        } catch (e) {
          s.refused = e instanceof AuthError ? e : new AuthError('malformed_header');
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
        const s = seen.get(req) ?? {};
        seen.set(req, s);
        s.decoded = decoded;
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
    this.context = { mtls: opts.mtls?.requireBoundTokens === true, dpop: opts.dpop };
    this.delegation = opts.delegation;
  }

  /**
   * Passport's entry point: passport-jwt's, with every refusal recorded in the audit trail under its reason code.
   * @internal
   */
  authenticate(req: HttpRequestLike, options?: unknown): void {
    const mode = (options as Record<string, unknown> | undefined)?.[ROUTE_DPOP_OPTION] as DPoPMode | undefined;
    this.seen.set(req, mode ? { mode } : {});
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
  async validate(
    req: HttpRequestLike,
    decoded: { header: Record<string, unknown>; payload: Record<string, unknown> },
  ): Promise<A2ACaller | [false, AuthError]> {
    const s = this.seen.get(req);
    try {
      const p = s?.presented;
      const caller = await this.verifier.accept(decoded, verificationContextOf(req, this.context, p?.scheme, s?.mode), p?.token);
      // The strategy knows no route: it applies the module-wide delegation policy (fail closed).
      assertDelegation(caller.actors, this.delegation);
      this.audit.success(req, caller, { decoded: s?.decoded }, {});
      return caller;
    } catch (e) {
      return [false, e instanceof AuthError ? e : new AuthError('claim_validation_failed', 'claim check failed')];
    }
  }
}
