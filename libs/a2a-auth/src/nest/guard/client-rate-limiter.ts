import { Inject, Injectable } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { getStorageToken, type ThrottlerStorage } from '@nestjs/throttler';
import { createHash } from 'node:crypto';
import type { A2ACaller } from '../../core/caller';
import type { ClientRateLimitOptions, ResolvedOptions } from '../../core/options';
import { A2A_AUTH_RESOLVED_OPTIONS, CLIENT_RATE_LIMIT_KEY } from '../constants';

/** One limit that applies to a route, with the bucket name it counts in. */
interface AppliedLimit {
  readonly bucket: string;
  readonly limit: number;
  readonly ttlMs: number;
}

/**
 * Per-client limits after authentication (A2A v1.0 §13.4): the module-wide `clientRateLimit` and a route's
 * `@ClientRateLimit()`, counted with @nestjs/throttler's storage `increment` (its fixed-window model: the first hit
 * opens a window of `ttl` seconds), i.e. in memory or in the shared Redis. The client is the verified `client_id`
 * (else `azp`), else `sub`, of its issuer; the bucket key is a hash of that, under the agent's key prefix.
 */
@Injectable()
export class ClientRateLimiter {
  private readonly memo = new WeakMap<object, WeakMap<object, readonly AppliedLimit[]>>();
  private readonly moduleWide?: AppliedLimit;

  constructor(
    private readonly reflector: Reflector,
    @Inject(getStorageToken()) private readonly storage: ThrottlerStorage,
    @Inject(A2A_AUTH_RESOLVED_OPTIONS) private readonly opts: ResolvedOptions,
  ) {
    const l = opts.clientRateLimit;
    if (l) this.moduleWide = { bucket: 'all', limit: l.limit, ttlMs: Math.ceil(l.ttl * 1000) };
  }

  /** The limits of a handler (memoized): module-wide first, then the route's own. Empty when none applies. */
  limitsFor(cls: object, handler: object): readonly AppliedLimit[] {
    let byClass = this.memo.get(handler);
    if (!byClass) this.memo.set(handler, (byClass = new WeakMap()));
    let r = byClass.get(cls);
    if (r) return r;
    const own = this.reflector.getAllAndOverride<ClientRateLimitOptions | undefined>(CLIENT_RATE_LIMIT_KEY, [handler as never, cls as never]);
    const route = `${(cls as { name?: string }).name ?? 'anonymous'}.${(handler as { name?: string }).name ?? 'handler'}`;
    r = [...(this.moduleWide ? [this.moduleWide] : []), ...(own ? [{ bucket: `route:${route}`, limit: own.limit, ttlMs: Math.ceil(own.ttl * 1000) }] : [])];
    byClass.set(cls, r);
    return r;
  }

  /** The handler's own `@ClientRateLimit()` (class or method), without the module-wide limit. Empty when it has none. */
  ownLimitsFor(cls: object, handler: object): readonly AppliedLimit[] {
    return this.limitsFor(cls, handler).filter((l) => l !== this.moduleWide);
  }

  /**
   * Counts one request of `caller` against every limit. Resolves `undefined` when all allow it, else the seconds to
   * wait (for `Retry-After`, at least 1). A store failure never rejects: the storage fails open.
   */
  async consume(caller: A2ACaller, limits: readonly AppliedLimit[]): Promise<number | undefined> {
    const who = createHash('sha256')
      .update(`${caller.issuer}\n${caller.clientId ?? ''}\n${caller.clientId ? '' : (caller.subject ?? '')}`)
      .digest('base64url')
      .slice(0, 22);
    let wait: number | undefined;
    for (const l of limits) {
      const key = `${this.opts.store.keyPrefix}client:${l.bucket}:${who}`;
      const r = await this.storage.increment(key, l.ttlMs, l.limit, l.ttlMs, 'client');
      if (r.isBlocked || r.totalHits > l.limit) wait = Math.max(wait ?? 1, r.isBlocked ? r.timeToBlockExpire : r.timeToExpire, 1);
    }
    return wait;
  }
}
