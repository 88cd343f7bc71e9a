import { HttpException, Inject, Injectable, Logger, type ExecutionContext } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { getOptionsToken, getStorageToken, ThrottlerGuard, type ThrottlerModuleOptions, type ThrottlerStorage } from '@nestjs/throttler';
import { A2A_AUTH_RESOLVED_OPTIONS } from '../constants';
import type { ResolvedOptions } from '../../core/options';
import { clientAddress, rateLimitKey, type HttpRequestLike } from '../http/request-info';
import { RateLimitedLog } from '../audit/rate-limited-log';
import { CARD_CORS_HEADERS } from '../http/http-response';

/**
 * @nestjs/throttler guard for the public card and metadata endpoints.
 * - One bucket per client address across all card endpoints.
 * - The client is the socket peer, or, behind `trustedProxyHops` proxies, the address that many hops from the
 *   right of `X-Forwarded-For` (a client rotating the left-most entry stays in its bucket). Brackets, ports and zone
 *   ids are stripped; an entry that is no IP address counts as the socket peer.
 * - IPv6 clients share one bucket per `card.throttle.ipv6Prefix` bits (default a /64, as @nestjs/throttler groups
 *   them itself); an IPv4-mapped IPv6 address shares its IPv4 address's bucket.
 * - Past the limit: 429, `Retry-After` (seconds), CORS `*`, JSON `{ error: "rate_limited", error_description }`.
 * - Throttled requests are logged at `warn`, at most 5 lines per second plus a summary (`a2a.card.throttled.suppressed`).
 */
@Injectable()
export class CardThrottlerGuard extends ThrottlerGuard {
  private readonly throttledLog = new RateLimitedLog(new Logger('A2AAgentCard'), 5, 'a2a.card.throttled.suppressed');

  constructor(
    @Inject(getOptionsToken()) options: ThrottlerModuleOptions,
    @Inject(getStorageToken()) storage: ThrottlerStorage,
    reflector: Reflector,
    @Inject(A2A_AUTH_RESOLVED_OPTIONS) private readonly opts: ResolvedOptions,
  ) {
    super(options, storage, reflector);
  }

  protected async getTracker(req: Record<string, unknown>): Promise<string> {
    const { trustedProxyHops, ipv6Prefix } = this.opts.throttle;
    return rateLimitKey(clientAddress(req as unknown as HttpRequestLike, trustedProxyHops), ipv6Prefix);
  }

  protected generateKey(_ctx: ExecutionContext, tracker: string, name: string): string {
    return `${this.opts.store.keyPrefix}card:${name}:${tracker}`;
  }

  protected async throwThrottlingException(ctx: ExecutionContext): Promise<void> {
    const http = ctx.switchToHttp();
    const req = http.getRequest<HttpRequestLike>();
    // Browsers must be able to read the 429 and its Retry-After, as they can read the card.
    const res = http.getResponse<{ header?: (k: string, v: string) => unknown; setHeader?: (k: string, v: string) => unknown }>();
    for (const [k, v] of Object.entries(CARD_CORS_HEADERS)) {
      if (typeof res.setHeader === 'function') res.setHeader(k, v);
      else res.header?.(k, v);
    }
    this.throttledLog.write('warn', () =>
      JSON.stringify({
        type: 'a2a.card.throttled',
        peer: clientAddress(req, this.opts.throttle.trustedProxyHops),
        path: req.url?.split('?')[0],
        time: new Date().toISOString(),
      }),
    );
    throw new HttpException({ error: 'rate_limited', error_description: 'Too many requests for this document; retry later' }, 429);
  }
}
