import type { OnApplicationShutdown } from '@nestjs/common';
import type { ThrottlerStorage } from '@nestjs/throttler';
import { withStoreTimeout } from '../../core/store';
import type { RateLimitedLog } from '../audit/rate-limited-log';

type ThrottlerStorageRecord = Awaited<ReturnType<ThrottlerStorage['increment']>>;

/**
 * A @nestjs/throttler storage (the Redis one) bounded by `timeoutMs` milliseconds that fails open: when the store
 * is down or slower than that, the request is counted as the first of its window and passes, with a warning
 * (`a2a.store.rate_limit_unavailable`, at most 5 lines a second). Availability wins for rate limits: an outage of
 * the shared store must not take every agent instance down with it. The card limit and the per-client limits both
 * count through this one storage, so both behave the same.
 */
export class FailOpenThrottlerStorage implements ThrottlerStorage, OnApplicationShutdown {
  constructor(
    private readonly inner: ThrottlerStorage,
    private readonly timeoutMs: number,
    private readonly log: RateLimitedLog,
  ) {}

  async increment(key: string, ttl: number, limit: number, blockDuration: number, throttlerName: string): Promise<ThrottlerStorageRecord> {
    try {
      return await withStoreTimeout(this.inner.increment(key, ttl, limit, blockDuration, throttlerName), this.timeoutMs, 'rate-limit store');
    } catch (e) {
      this.log.write('warn', () =>
        JSON.stringify({ type: 'a2a.store.rate_limit_unavailable', outcome: 'allowed', detail: (e as Error).message, time: new Date().toISOString() }),
      );
      return { totalHits: 0, timeToExpire: 0, isBlocked: false, timeToBlockExpire: 0 };
    }
  }

  onApplicationShutdown(): void {
    (this.inner as Partial<OnApplicationShutdown>).onApplicationShutdown?.();
  }
}
