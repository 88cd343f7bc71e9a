import { HttpException, Inject, Injectable, type CanActivate, type ExecutionContext } from '@nestjs/common';
import { HttpAdapterHost, Reflector } from '@nestjs/core';
import type { A2ACaller } from '../../core/caller';
import { protectedResourceMetadataUrl } from '../../core/card/resource-metadata';
import type { PresentedToken } from '../../core/bearer';
import { ChallengeBuilder, errorBody, type ChallengeView } from '../../core/challenge';
import { AuthError } from '../../core/errors';
import type { DPoPMode, ResolvedOptions } from '../../core/options';
import { assertAuthorized, type RoutePolicy } from '../../core/route-policy';
import { delegationFor } from '../../core/delegation';
import type { Verifier, VerifyAttempt } from '../../core/verifier';
import { AuthAuditService } from '../audit/auth-audit.service';
import { A2A_AUTH_RESOLVED_OPTIONS, A2A_VERIFIER } from '../constants';
import { credentialsOf, verificationContextOf, type ContextOptions } from '../http/credentials';
import type { HttpRequestLike } from '../http/request-info';
import { routeAuth } from './route-auth';
import { ClientRateLimiter } from './client-rate-limiter';

// Callers this guard has put on `request.user`. A request whose `user` is one of them was already authenticated here
// (global guard + a route-level @UseGuards). Kept beside the request rather than as a mark on it: adding a property
// to an Express 5 request costs about 2 µs, since Express swaps its prototype per request.
const AUTHORIZED_CALLERS = new WeakSet<object>();
// The challenge view (route DPoP mode, scheme used) of each response this guard handled with DPoP on, for answers
// given later on the same response (the A2A skill checks call toHttpException with the response only).
const CHALLENGE_VIEWS = new WeakMap<object, ChallengeView>();

/**
 * The one global guard (registered as `APP_GUARD` unless `globalGuard: false`).
 *
 * 1. `@Public()` handlers pass.
 * 2. Authenticates the access token (RFC 6750 §2.1 Bearer; RFC 9449 §7 DPoP with its proof, as the route's DPoP mode
 *    allows); the caller lands on `request.user`.
 * 3. Authorizes: the delegation chain (`act`, RFC 8693 §4.1) must fit the `delegation` option and `@Delegation()`,
 *    and every scope of `@RequireScopes` (class + method) must be granted.
 * 4. Counts the request against the caller's limits (`clientRateLimit`, `@ClientRateLimit()`): 429 + `Retry-After`
 *    past them (RFC 6585 §4), JSON `{ error: "rate_limited", error_description }`, audit reason `rate_limited`.
 *
 * Responses (DESIGN §2): 400 `invalid_request`, 401 (bare challenge or `invalid_token`),
 * 403 `insufficient_scope` with `scope`, 503 + `Retry-After` when the key server is down.
 * Each 400/401/403 carries `WWW-Authenticate` (RFC 6750 §3) with `resource_metadata` (RFC 9728 §5.1),
 * and a JSON body `{ error, error_description }`. With DPoP on for the route, the challenge names `DPoP` too
 * (RFC 9449 §7.1) and a `use_dpop_nonce` answer carries `DPoP-Nonce` (§9). Every decision emits one audit event.
 */
@Injectable()
export class A2AAuthGuard implements CanActivate {
  private readonly challenges: ChallengeBuilder;
  private readonly retryAfter: string;
  private readonly context: ContextOptions;
  private readonly dpopMode: DPoPMode;

  constructor(
    private readonly reflector: Reflector,
    @Inject(A2A_VERIFIER) private readonly verifier: Verifier,
    private readonly audit: AuthAuditService,
    private readonly adapterHost: HttpAdapterHost,
    @Inject(A2A_AUTH_RESOLVED_OPTIONS) private readonly opts: ResolvedOptions,
    private readonly limiter: ClientRateLimiter,
  ) {
    this.challenges = new ChallengeBuilder({
      realm: opts.realm,
      resourceMetadata: opts.resource ? protectedResourceMetadataUrl(opts.resource) : undefined,
      dpopAlgorithms: opts.dpop?.algorithms,
    });
    this.retryAfter = String(Math.max(1, Math.ceil(opts.jwksTimeout)));
    this.context = { mtls: opts.mtls?.requireBoundTokens === true, dpop: opts.dpop };
    this.dpopMode = opts.dpop?.mode ?? 'off';
  }

  canActivate(ctx: ExecutionContext): boolean | Promise<boolean> {
    const route = routeAuth(this.reflector, ctx.getClass(), ctx.getHandler());
    if (route.isPublic) return true;
    if (ctx.getType() !== 'http') return false; // fail closed outside HTTP
    const http = ctx.switchToHttp();
    const req = http.getRequest<HttpRequestLike>();
    const res = http.getResponse<unknown>();
    const mode = route.dpop ?? this.dpopMode;
    const view: ChallengeView | undefined = mode === 'off' && this.dpopMode === 'off' ? undefined : { mode };
    if (view && res !== null && typeof res === 'object') CHALLENGE_VIEWS.set(res, view);
    const user = req.user;
    const done = typeof user === 'object' && user !== null && AUTHORIZED_CALLERS.has(user) ? (user as A2ACaller) : undefined;
    if (done) {
      // Already authenticated for this request (global guard + a route-level @UseGuards): authorize only. An accepted
      // DPoP-bound token always came with the DPoP scheme (as Bearer it is refused).
      if (view && typeof (done.claims.cnf as { jkt?: unknown } | undefined)?.jkt === 'string') view.scheme = 'DPoP';
      try {
        this.check(done, route);
      } catch (e) {
        throw this.reject(req, res, e, {}, route, done, view);
      }
      return true;
    }
    const attempt: VerifyAttempt = {};
    let result: A2ACaller | Promise<A2ACaller>;
    try {
      let presented: PresentedToken;
      try {
        presented = credentialsOf(req, this.opts, mode);
      } catch (e) {
        // An A2A binding without credentials: the transport decides per call (public skills run anonymously).
        if (route.a2aEndpoint && e instanceof AuthError && e.reason === 'missing_token') return true;
        throw e;
      }
      if (view && presented.scheme === 'DPoP') view.scheme = 'DPoP';
      result = this.verifier.verify(presented.token, verificationContextOf(req, this.context, presented.scheme, mode), attempt);
    } catch (e) {
      throw this.reject(req, res, e, attempt, route, undefined, view);
    }
    const limits = this.limiter.limitsFor(ctx.getClass(), ctx.getHandler());
    if (result instanceof Promise) {
      return result.then(
        (caller) => this.authorize(req, res, caller, attempt, route, limits, view),
        (e) => {
          throw this.reject(req, res, e, attempt, route, undefined, view);
        },
      );
    }
    return this.authorize(req, res, result, attempt, route, limits, view);
  }

  private authorize(
    req: HttpRequestLike,
    res: unknown,
    caller: A2ACaller,
    attempt: VerifyAttempt,
    route: RoutePolicy,
    limits: ReturnType<ClientRateLimiter['limitsFor']>,
    view?: ChallengeView,
  ): boolean | Promise<boolean> {
    try {
      this.check(caller, route);
    } catch (e) {
      throw this.reject(req, res, e, attempt, route, caller, view);
    }
    if (limits.length === 0) return this.admit(req, caller, attempt, route);
    return this.limiter.consume(caller, limits).then((wait) => {
      if (wait === undefined) return this.admit(req, caller, attempt, route);
      throw this.rateLimited(req, res, wait, { skillId: route.skill?.id, requiredScopes: route.scopes }, caller, attempt);
    });
  }

  /**
   * The answer for a verified client past one of its limits (RFC 6585 §4): sets `Retry-After` (`wait`, seconds) and
   * `Cache-Control: no-store` on `res`, records the audit event `rate_limited`, and returns the 429 to throw (body
   * `{ error: "rate_limited", error_description }`, no `WWW-Authenticate`: the token was valid). Used for route limits
   * here and for skill limits inside A2A messages.
   */
  rateLimited(
    req: HttpRequestLike,
    res: unknown,
    wait: number,
    route: { skillId?: string; requiredScopes?: readonly string[] },
    caller: A2ACaller,
    attempt: VerifyAttempt = {},
  ): HttpException {
    const err = new AuthError('rate_limited', `client limit reached; retry after ${wait} s`);
    this.audit.failure(req, err, attempt, route, caller);
    const adapter = this.adapterHost.httpAdapter;
    if (res && adapter) {
      adapter.setHeader(res, 'Retry-After', String(wait));
      adapter.setHeader(res, 'Cache-Control', 'no-store');
    }
    return new HttpException(errorBody(err), 429);
  }

  private admit(req: HttpRequestLike, caller: A2ACaller, attempt: VerifyAttempt, route: RoutePolicy): true {
    req.user = caller;
    AUTHORIZED_CALLERS.add(caller);
    // On an A2A binding the transport records the call's one decision (the skill check); here it would be a second.
    if (!route.a2aEndpoint) this.audit.success(req, caller, attempt, { skillId: route.skill?.id, requiredScopes: route.scopes });
    return true;
  }

  // On an A2A binding the delegation policy is the skill's (messages) or the module's (other calls): the transport checks it.
  private check(caller: A2ACaller, route: RoutePolicy): void {
    if (route.a2aEndpoint) return;
    assertAuthorized(caller, route.scopes, delegationFor(this.opts.delegation, route.delegation));
  }

  /** Maps an error to the HTTP response: headers now, body via the thrown HttpException. */
  private reject(
    req: HttpRequestLike,
    res: unknown,
    e: unknown,
    attempt: VerifyAttempt,
    route: RoutePolicy,
    caller?: A2ACaller,
    view?: ChallengeView,
  ): HttpException {
    const err = e instanceof AuthError ? e : new AuthError('invalid_signature', 'unexpected failure');
    this.audit.failure(req, err, attempt, { skillId: route.skill?.id, requiredScopes: route.scopes }, caller);
    return this.toHttpException(res, err, view);
  }

  /**
   * Sets `WWW-Authenticate` (or `Retry-After` for 503, `DPoP-Nonce` for `use_dpop_nonce`) on the response and returns
   * the exception to throw. Exposed for the library's other entry points (extended card, A2A skill checks).
   * @param view the route's DPoP mode and the scheme used; default what this guard saw on this response, else the
   *   module-wide mode.
   */
  toHttpException(res: unknown, err: AuthError, view?: ChallengeView): HttpException {
    const adapter = this.adapterHost.httpAdapter;
    const v =
      view ??
      (res !== null && typeof res === 'object' ? CHALLENGE_VIEWS.get(res) : undefined) ??
      (this.dpopMode === 'off' ? undefined : { mode: this.dpopMode });
    const challenge = this.challenges.forError(err, v);
    if (res && adapter) {
      if (challenge) adapter.setHeader(res, 'WWW-Authenticate', challenge);
      if (err.status === 503) adapter.setHeader(res, 'Retry-After', this.retryAfter);
      if (err.dpopNonce) adapter.setHeader(res, 'DPoP-Nonce', err.dpopNonce);
      adapter.setHeader(res, 'Cache-Control', 'no-store');
    }
    return new HttpException(errorBody(err), err.status);
  }
}
