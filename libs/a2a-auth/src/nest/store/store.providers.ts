import { Inject, Injectable, Logger, type OnModuleDestroy, type Provider } from '@nestjs/common';
import { getStorageToken, ThrottlerStorageService, type ThrottlerStorage } from '@nestjs/throttler';
import type { ResolvedOptions } from '../../core/options';
import { InMemoryStore, type SharedStore } from '../../core/store';
import { A2AAuthConfigError } from '../../core/options';
import { RateLimitedLog } from '../audit/rate-limited-log';
import { A2A_AUTH_RESOLVED_OPTIONS, A2A_REDIS_CONNECTION, A2A_SHARED_STORE } from '../constants';
import { FailOpenThrottlerStorage } from './fail-open-throttler-storage';
import { closeRedis, openRedis, RedisStore, warnIfEvicting, type RedisClientLike } from './redis-store';

type Connection = { client: RedisClientLike; owned: boolean } | undefined;

// Boot waits this long (milliseconds) for Redis before serving anyway: an outage must not keep the agent down.
const BOOT_WAIT_MS = 2000;

const storeLog = new Logger('A2AStore');

/** Closes the Redis connection the module opened from `store.redis.url` when the app closes. */
@Injectable()
export class A2AStoreLifecycle implements OnModuleDestroy {
  constructor(@Inject(A2A_REDIS_CONNECTION) private readonly connection: Connection) {}

  async onModuleDestroy(): Promise<void> {
    await closeRedis(this.connection, storeLog);
  }
}

function redisThrottlerStorage(client: RedisClientLike): ThrottlerStorage {
  let mod: { ThrottlerStorageRedisService: new (redis: unknown) => ThrottlerStorage };
  try {
    mod = require('@nest-lab/throttler-storage-redis') as never;
  } catch (e) {
    throw new A2AAuthConfigError(
      'store.redis',
      `needs the optional peer dependency @nest-lab/throttler-storage-redis (npm install @nest-lab/throttler-storage-redis): ${(e as Error).message}`,
    );
  }
  return new mod.ThrottlerStorageRedisService(client);
}

/** @internal The providers behind the `store` option: the connection, the {@link SharedStore}, the throttler storage. */
export const STORE_PROVIDERS: Provider[] = [
  {
    provide: A2A_REDIS_CONNECTION,
    useFactory: async (o: ResolvedOptions): Promise<Connection> => {
      if (!o.store.redis) return undefined;
      const log = new RateLimitedLog(storeLog, 5, 'a2a.store.error.suppressed');
      const c = await openRedis(o.store.redis, BOOT_WAIT_MS, (line) => log.write('warn', () => line));
      // The DPoP replay cache is only as good as Redis keeping its keys: say so at boot when it may evict them.
      await warnIfEvicting(c.client, 1000, (line) => storeLog.warn(line));
      return c;
    },
    inject: [A2A_AUTH_RESOLVED_OPTIONS],
  },
  {
    provide: A2A_SHARED_STORE,
    useFactory: (o: ResolvedOptions, c: Connection): SharedStore =>
      c ? new RedisStore(c.client, o.store.keyPrefix, o.store.timeoutMs) : new InMemoryStore(o.store.keyPrefix),
    inject: [A2A_AUTH_RESOLVED_OPTIONS, A2A_REDIS_CONNECTION],
  },
  {
    // One storage for the card limit (per address) and the per-client limits.
    provide: getStorageToken(),
    useFactory: (o: ResolvedOptions, c: Connection): ThrottlerStorage =>
      c
        ? new FailOpenThrottlerStorage(
            redisThrottlerStorage(c.client),
            o.store.timeoutMs,
            new RateLimitedLog(storeLog, 5, 'a2a.store.rate_limit_unavailable.suppressed'),
          )
        : new ThrottlerStorageService(),
    inject: [A2A_AUTH_RESOLVED_OPTIONS, A2A_REDIS_CONNECTION],
  },
  A2AStoreLifecycle,
];
