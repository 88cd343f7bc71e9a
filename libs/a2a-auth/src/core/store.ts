import { LRUCache } from 'lru-cache';

/**
 * Shared state of one agent, possibly across several instances (the `store` option): in memory by default, Redis
 * when configured. Keys are given without the agent's prefix; the store adds it.
 *
 * Every method may reject with {@link StoreUnavailableError} (store down, or slower than `store.timeoutMs`). The caller
 * decides what that means for its kind of state:
 * - a replay check (`setIfAbsent`) must fail closed (answer 503, never accept the proof);
 * - a cache (`get`/`set`) treats it as a miss and carries on without caching;
 * - rate limits do not use this interface: they use @nestjs/throttler's storage, which fails open (see the module).
 */
export interface SharedStore {
  /** `'memory'` (one instance only) or `'redis'` (shared). */
  readonly kind: 'memory' | 'redis';
  /**
   * Stores `key` for `ttlSeconds` seconds unless it exists. Resolves `true` when this call stored it (first use),
   * `false` when it was already there (a replay). Atomic across instances sharing the store.
   */
  setIfAbsent(key: string, ttlSeconds: number): Promise<boolean>;
  /** The value of `key`, or `undefined` when absent or expired. */
  get(key: string): Promise<string | undefined>;
  /** Stores `value` under `key` for `ttlSeconds` seconds, replacing any previous value. */
  set(key: string, value: string, ttlSeconds: number): Promise<void>;
}

/** A {@link SharedStore} call failed: the store is unreachable, refused the command or did not answer within `store.timeoutMs`. */
export class StoreUnavailableError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'StoreUnavailableError';
  }
}

/**
 * Settles like `promise`, or rejects with {@link StoreUnavailableError} after `timeoutMs` milliseconds: a slow store
 * must not hold a request longer than that. Other rejections become a {@link StoreUnavailableError} too, with the
 * original as `cause`.
 */
export function withStoreTimeout<T>(promise: Promise<T>, timeoutMs: number, what: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new StoreUnavailableError(`${what}: no answer within ${timeoutMs} ms`)), timeoutMs);
    timer.unref?.();
    promise.then(
      (v) => {
        clearTimeout(timer);
        resolve(v);
      },
      (e: unknown) => {
        clearTimeout(timer);
        reject(e instanceof StoreUnavailableError ? e : new StoreUnavailableError(`${what}: ${e instanceof Error ? e.message : String(e)}`, { cause: e }));
      },
    );
  });
}

/**
 * The in-memory {@link SharedStore} (the default): state of this process only, so several instances do not share it.
 * At most `maxEntries` keys (default 100,000); the least recently used key goes first, which for a replay cache means
 * an old proof could be accepted again once that many newer ones arrived within its lifetime.
 */
export class InMemoryStore implements SharedStore {
  readonly kind = 'memory' as const;
  private readonly entries: LRUCache<string, string>;

  constructor(
    private readonly prefix = '',
    maxEntries = 100_000,
  ) {
    this.entries = new LRUCache<string, string>({ max: maxEntries, ttlAutopurge: false });
  }

  setIfAbsent(key: string, ttlSeconds: number): Promise<boolean> {
    const k = this.prefix + key;
    if (this.entries.has(k)) return Promise.resolve(false);
    this.entries.set(k, '1', { ttl: ttlMs(ttlSeconds) });
    return Promise.resolve(true);
  }

  get(key: string): Promise<string | undefined> {
    return Promise.resolve(this.entries.get(this.prefix + key));
  }

  set(key: string, value: string, ttlSeconds: number): Promise<void> {
    this.entries.set(this.prefix + key, value, { ttl: ttlMs(ttlSeconds) });
    return Promise.resolve();
  }
}

function ttlMs(ttlSeconds: number): number {
  return Math.max(1, Math.ceil(ttlSeconds * 1000));
}

/**
 * The default key prefix of an agent: `a2a:<host><path>:` of its public URL (`card.url`, else the RFC 9728 resource),
 * so that several agents can share one Redis. Without a usable URL it is `a2a:<audiences>:` (the configured
 * audiences, sorted, joined with `,`): an agent is the audience its tokens name, so two agents never share one
 * namespace (rate-limit budgets, replay and introspection caches) by default; `a2a:` only when neither is given.
 */
export function defaultKeyPrefix(publicUrl: string | undefined, audience: readonly string[] = []): string {
  const fallback = audience.length ? `a2a:${[...audience].sort().join(',')}:` : 'a2a:';
  if (!publicUrl) return fallback;
  try {
    const u = new URL(publicUrl);
    return `a2a:${u.host}${u.pathname.replace(/\/+$/, '')}:`;
  } catch {
    return fallback;
  }
}
