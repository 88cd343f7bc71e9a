import type { Logger } from '@nestjs/common';
import { StoreUnavailableError, withStoreTimeout, type SharedStore } from '../../core/store';
import { A2AAuthConfigError } from '../../core/options';

/** The part of an ioredis client the library uses. */
export interface RedisClientLike {
  set(key: string, value: string, ...args: Array<string | number>): Promise<string | null>;
  get(key: string): Promise<string | null>;
  status: string;
  on(event: 'error' | 'ready', listener: (...args: unknown[]) => void): unknown;
  once(event: 'ready', listener: () => void): unknown;
  quit(): Promise<unknown>;
  disconnect(reconnect?: boolean): void;
}

/** The ioredis module, loaded only when a Redis store is configured (it is an optional peer dependency). */
export function loadIoredis(): { Redis: new (url: string, options: object) => RedisClientLike; Cluster: new (...a: never[]) => unknown } {
  try {
    return require('ioredis') as never;
  } catch (e) {
    throw new A2AAuthConfigError('store.redis', `needs the optional peer dependency ioredis (npm install ioredis): ${(e as Error).message}`);
  }
}

/**
 * The connection behind a Redis store: opened from `store.redis.url` (and closed by {@link closeRedis}), or the
 * caller's own client (left open).
 * - No offline queue: while Redis is unreachable a command fails at once instead of waiting for a reconnection, so
 *   the outage behaviour of each kind of state applies immediately; ioredis keeps reconnecting in the background.
 * - Boot waits for the connection at most `waitMs` milliseconds, then goes on (a Redis outage must not stop the
 *   agent: rate limits fail open until it is back).
 * - Connection errors are logged as warnings (the caller's logger; never the URL, which may hold a password).
 */
export async function openRedis(
  redis: { url: string } | { client: unknown },
  waitMs: number,
  warn: (line: string) => void,
): Promise<{ client: RedisClientLike; owned: boolean }> {
  const io = loadIoredis();
  if ('client' in redis) {
    if (!(redis.client instanceof io.Redis) && !(redis.client instanceof io.Cluster)) {
      throw new A2AAuthConfigError('store.redis.client', 'must be an ioredis Redis or Cluster instance of the ioredis copy this library loads');
    }
    return { client: redis.client as RedisClientLike, owned: false };
  }
  const client = new io.Redis(redis.url, { enableOfflineQueue: false, maxRetriesPerRequest: 1, connectTimeout: 2000 });
  client.on('error', (e) => warn(JSON.stringify({ type: 'a2a.store.error', store: 'redis', error: (e as Error)?.message ?? String(e) })));
  if (client.status !== 'ready') {
    await new Promise<void>((resolve) => {
      const t = setTimeout(resolve, waitMs);
      t.unref?.();
      client.once('ready', () => {
        clearTimeout(t);
        resolve();
      });
    });
  }
  return { client, owned: true };
}

/**
 * Warns (once, at boot) when the Redis can evict keys before they expire: `maxmemory` set and a `maxmemory-policy`
 * other than `noeviction`. Under memory pressure such a Redis may drop a DPoP `jti` still within its lifetime, and the
 * replayed proof is then accepted; with `noeviction` a full Redis refuses the write instead, and the proof is refused
 * with 503 (fail closed). Says nothing when the server does not answer `CONFIG GET` (managed services often disable
 * it) within `timeoutMs` milliseconds, or is not connected yet.
 */
export async function warnIfEvicting(client: unknown, timeoutMs: number, warn: (line: string) => void): Promise<void> {
  const c = client as { status?: string; config?: (op: string, name: string) => Promise<unknown> };
  if (c.status !== 'ready' || typeof c.config !== 'function') return;
  try {
    // One round trip: `CONFIG GET maxmemory*` answers name/value pairs (maxmemory, maxmemory-policy, …).
    const r = await withStoreTimeout(c.config('GET', 'maxmemory*'), timeoutMs, 'redis CONFIG GET');
    const pairs = new Map<string, string>();
    if (Array.isArray(r)) for (let i = 0; i + 1 < r.length; i += 2) if (typeof r[i] === 'string' && typeof r[i + 1] === 'string') pairs.set(r[i], r[i + 1]);
    const maxmemory = pairs.get('maxmemory');
    const policy = pairs.get('maxmemory-policy');
    if (maxmemory === undefined || policy === undefined || maxmemory === '0' || policy === 'noeviction') return;
    warn(
      JSON.stringify({
        type: 'a2a.store.eviction_policy',
        store: 'redis',
        policy,
        detail:
          'this Redis may evict keys before they expire: a DPoP proof whose replay entry was evicted would be accepted again; use maxmemory-policy noeviction',
      }),
    );
  } catch {
    // Not allowed or not answered: nothing to say.
  }
}

/** Closes a connection {@link openRedis} opened (a caller's own client is left open). */
export async function closeRedis(c: { client: RedisClientLike; owned: boolean } | undefined, logger?: Logger): Promise<void> {
  if (!c?.owned) return;
  try {
    if (c.client.status === 'ready') await withStoreTimeout(c.client.quit(), 1000, 'redis quit');
    else c.client.disconnect(false);
  } catch (e) {
    logger?.warn(`Redis connection closed abruptly: ${(e as Error).message}`);
    c.client.disconnect(false);
  }
}

/**
 * The Redis {@link SharedStore}: `SET key value NX EX`, `GET`, `SET … EX` under the agent's key prefix, each bounded
 * by `timeoutMs` milliseconds; any failure rejects with {@link StoreUnavailableError}.
 */
export class RedisStore implements SharedStore {
  readonly kind = 'redis' as const;

  constructor(
    private readonly client: RedisClientLike,
    private readonly prefix: string,
    private readonly timeoutMs: number,
  ) {}

  async setIfAbsent(key: string, ttlSeconds: number): Promise<boolean> {
    const r = await withStoreTimeout(this.client.set(this.prefix + key, '1', 'PX', ttlMs(ttlSeconds), 'NX'), this.timeoutMs, 'redis SET NX');
    return r === 'OK';
  }

  async get(key: string): Promise<string | undefined> {
    const r = await withStoreTimeout(this.client.get(this.prefix + key), this.timeoutMs, 'redis GET');
    return r ?? undefined;
  }

  async set(key: string, value: string, ttlSeconds: number): Promise<void> {
    const r = await withStoreTimeout(this.client.set(this.prefix + key, value, 'PX', ttlMs(ttlSeconds)), this.timeoutMs, 'redis SET');
    if (r !== 'OK') throw new StoreUnavailableError(`redis SET answered ${String(r)}`);
  }
}

function ttlMs(ttlSeconds: number): number {
  return Math.max(1, Math.ceil(ttlSeconds * 1000));
}
