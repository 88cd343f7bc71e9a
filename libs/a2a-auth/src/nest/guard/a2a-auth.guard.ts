import { HttpException, Inject, Injectable, type CanActivate, type ExecutionContext } from '@nestjs/common';
import { HttpAdapterHost, Reflector } from '@nestjs/core';
import type { A2ACaller } from '../../core/caller';
import { protectedResourceMetadataUrl } from '../../core/card/resource-metadata';
import { ChallengeBuilder, errorBody } from '../../core/challenge';
import { AuthError } from '../../core/errors';
import type { ResolvedOptions } from '../../core/options';
import type { RoutePolicy } from '../../core/route-policy';
import { assertScopes } from '../../core/scopes';
import type { Verifier, VerifyAttempt } from '../../core/verifier';
import { AuthAuditService } from '../audit/auth-audit.service';
import { A2A_AUTH_RESOLVED_OPTIONS, A2A_VERIFIER } from '../constants';
import { bearerTokenOf, verificationContextOf } from '../http/credentials';
import type { HttpRequestLike } from '../http/request-info';
import { routeAuth } from './route-auth';
import { ClientRateLimiter } from './client-rate-limiter';

// Callers this guard has put on `request.user`. A request whose `user` is one of them was already authenticated here
// (global guard + a route-level @UseGuards). Kept beside the request rather than as a mark on it: adding a property
// to an Express 5 request costs about 2 µs, since Express swaps its prototype per request.
const AUTHORIZED_CALLERS = new WeakSet<object>();

/**
 * The one global guard (registered as `APP_GUARD` unless `globalGuard: false`).
 *
 * 1. `@Public()` handlers pass.
 * 2. Authenticates the bearer token (RFC 6750 §2.1); the caller lands on `request.user`.
 * 3. Authorizes: every scope of `@RequireScopes` (class + method) must be granted.
 * 4. Counts the request against the caller's limits (`clientRateLimit`, `@ClientRateLimit()`): 429 + `Retry-After`
 *    past them (RFC 6585 §4), JSON `{ error: "rate_limited", error_description }`, audit reason `rate_limited`.
 *
 * Responses (DESIGN §2): 400 `invalid_request`, 401 (bare challenge or `invalid_token`),
 * 403 `insufficient_scope` with `scope`, 503 + `Retry-After` when the key server is down.
 * Each 400/401/403 carries `WWW-Authenticate` (RFC 6750 §3) with `resource_metadata` (RFC 9728 §5.1),
 * and a JSON body `{ error, error_description }`. Every decision emits one audit event.
 */
@Injectable()
export class A2AAuthGuard implements CanActivate {
  private readonly challenges: ChallengeBuilder;
  private readonly retryAfter: string;
  private readonly mtls: boolean;

  constructor(
    private readonly reflector: Reflector,
    @Inject(A2A_VERIFIER) private readonly verifier: Verifier,
    private readonly audit: AuthAuditService,
    private readonly adapterHost: HttpAdapterHost,
    @Inject(A2A_AUTH_RESOLVED_OPTIONS) private readonly opts: ResolvedOptions,
    private readonly limiter: ClientRateLimiter,
  ) {
    this.challenges = new ChallengeBuilder({ realm: opts.realm, resourceMetadata: opts.resource ? protectedResourceMetadataUrl(opts.resource) : undefined });
    this.retryAfter = String(Math.max(1, Math.ceil(opts.jwksTimeout)));
    this.mtls = opts.mtls?.requireBoundTokens === true;
  }

  canActivate(ctx: ExecutionContext): boolean | Promise<boolean> {
    const route = routeAuth(this.reflector, ctx.getClass(), ctx.getHandler());
    if (route.isPublic) return true;
    if (ctx.getType() !== 'http') return false; // fail closed outside HTTP
    const http = ctx.switchToHttp();
    const req = http.getRequest<HttpRequestLike>();
    const res = http.getResponse<unknown>();
    const user = req.user;
    const done = typeof user === 'object' && user !== null && AUTHORIZED_CALLERS.has(user) ? (user as A2ACaller) : undefined;
    if (done) {
      // Already authenticated for this request (global guard + a route-level @UseGuards): authorize only.
      try {
        assertScopes(done.scopes, route.scopes);
      } catch (e) {
        throw this.reject(req, res, e, {}, route, done);
      }
      return true;
    }
    const attempt: VerifyAttempt = {};
    let result: A2ACaller | Promise<A2ACaller>;
    try {
      let token: string;
      try {
        token = bearerTokenOf(req, this.opts);
      } catch (e) {
        // An A2A binding without credentials: the transport decides per call (public skills run anonymously).
        if (route.a2aEndpoint && e instanceof AuthError && e.reason === 'missing_token') return true;
        throw e;
      }
      result = this.verifier.verify(token, verificationContextOf(req, this.mtls), attempt);
    } catch (e) {
      throw this.reject(req, res, e, attempt, route);
    }
    const limits = this.limiter.limitsFor(ctx.getClass(), ctx.getHandler());
    if (result instanceof Promise) {
      return result.then(
        (caller) => this.authorize(req, res, caller, attempt, route, limits),
        (e) => {
          throw this.reject(req, res, e, attempt, route);
        },
      );
    }
    return this.authorize(req, res, result, attempt, route, limits);
  }

  private authorize(
    req: HttpRequestLike,
    res: unknown,
    caller: A2ACaller,
    attempt: VerifyAttempt,
    route: RoutePolicy,
    limits: ReturnType<ClientRateLimiter['limitsFor']>,
  ): boolean | Promise<boolean> {
    try {
      assertScopes(caller.scopes, route.scopes);
    } catch (e) {
      throw this.reject(req, res, e, attempt, route, caller);
    }
    if (limits.length === 0) return this.admit(req, caller, attempt, route);
    return this.limiter.consume(caller, limits).then((wait) => {
      if (wait === undefined) return this.admit(req, caller, attempt, route);
      const err = new AuthError('rate_limited', `client limit reached; retry after ${wait} s`);
      this.audit.failure(req, err, attempt, { skillId: route.skill?.id, requiredScopes: route.scopes }, caller);
      const adapter = this.adapterHost.httpAdapter;
      if (res && adapter) {
        adapter.setHeader(res, 'Retry-After', String(wait));
        adapter.setHeader(res, 'Cache-Control', 'no-store');
      }
      throw new HttpException(errorBody(err), 429);
    });
  }

  private admit(req: HttpRequestLike, caller: A2ACaller, attempt: VerifyAttempt, route: RoutePolicy): true {
    req.user = caller;
    AUTHORIZED_CALLERS.add(caller);
    // On an A2A binding the transport records the call's one decision (the skill check); here it would be a second.
    if (!route.a2aEndpoint) this.audit.success(req, caller, attempt, { skillId: route.skill?.id, requiredScopes: route.scopes });
    return true;
  }

  /** Maps an error to the HTTP response: headers now, body via the thrown HttpException. */
  private reject(req: HttpRequestLike, res: unknown, e: unknown, attempt: VerifyAttempt, route: RoutePolicy, caller?: A2ACaller): HttpException {
    const err = e instanceof AuthError ? e : new AuthError('invalid_signature', 'unexpected failure');
    this.audit.failure(req, err, attempt, { skillId: route.skill?.id, requiredScopes: route.scopes }, caller);
    return this.toHttpException(res, err);
  }

  /**
   * Sets `WWW-Authenticate` (or `Retry-After` for 503) on the response and returns the exception to throw.
   * Exposed for the library's other entry points (extended card, A2A skill checks).
   */
  toHttpException(res: unknown, err: AuthError): HttpException {
    const adapter = this.adapterHost.httpAdapter;
    const challenge = this.challenges.forError(err);
    if (res && adapter) {
      if (challenge) adapter.setHeader(res, 'WWW-Authenticate', challenge);
      if (err.status === 503) adapter.setHeader(res, 'Retry-After', this.retryAfter);
      adapter.setHeader(res, 'Cache-Control', 'no-store');
    }
    return new HttpException(errorBody(err), err.status);
  }
}
