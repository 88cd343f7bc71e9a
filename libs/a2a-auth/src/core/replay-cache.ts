import type { SharedStore } from './store';

/**
 * Where the DPoP proof check remembers the proofs it accepted (RFC 9449 §11.1), so a proof is used once. Implement it
 * over a shared store (Redis `SET key 1 NX EX ttl`, for example) when several instances serve one resource.
 */
export interface DPoPReplayCache {
  /**
   * Atomically: whether `key` is new, remembering it for `ttlSeconds`.
   * @param key the proof's identity (the RFC 7638 thumbprint of its key and its `jti`); never a token or a proof.
   * @param ttlSeconds how long the proof could still be accepted, seconds (at least 1).
   * @returns `true` when the key was not seen within its lifetime (now stored), `false` for a replay.
   * @throws (or rejects) when the store cannot answer: the request then fails closed with 503 `dpop_replay_store_unavailable`.
   */
  checkAndStore(key: string, ttlSeconds: number): boolean | Promise<boolean>;
}

/**
 * The default {@link DPoPReplayCache}: in memory, per process, at most `maxEntries` live entries.
 *
 * When it is full of entries that have not yet expired it refuses new proofs (throws) rather than forgetting one that
 * could still be replayed: fail closed. Entries leave in insertion order, which is expiry order because every proof gets
 * the same lifetime, so purging is amortised O(1) per request.
 */
export class InMemoryReplayCache implements DPoPReplayCache {
  // key → expiry in milliseconds since the epoch; a Map iterates in insertion order.
  private readonly entries = new Map<string, number>();

  /**
   * @param maxEntries most entries kept at once (default 100,000).
   * @param now clock in milliseconds since the epoch. Default `Date.now` (injectable for tests).
   */
  constructor(
    private readonly maxEntries = 100_000,
    private readonly now: () => number = Date.now,
  ) {}

  /** Number of entries held (expired ones included until purged). */
  get size(): number {
    return this.entries.size;
  }

  /**
   * @returns `true` for a new key (stored for `ttlSeconds`), `false` for a key seen within its lifetime.
   * @throws Error when the cache is full of live entries.
   */
  checkAndStore(key: string, ttlSeconds: number): boolean {
    const t = this.now();
    const seen = this.entries.get(key);
    if (seen !== undefined && seen > t) return false;
    for (const [k, until] of this.entries) {
      if (until > t) break;
      this.entries.delete(k);
    }
    if (seen !== undefined) this.entries.delete(key);
    if (this.entries.size >= this.maxEntries) throw new Error('DPoP replay cache is full');
    this.entries.set(key, t + Math.max(1, ttlSeconds) * 1000);
    return true;
  }

  /** Removes everything. */
  clear(): void {
    this.entries.clear();
  }
}

/**
 * A {@link DPoPReplayCache} over the agent's {@link SharedStore} (`store.redis`): `SET <prefix>dpop:<thumbprint>:<jti>
 * 1 NX PX <ttl>`, so a proof accepted by one instance is a replay at every other one. The store bounds each call by
 * `store.timeoutMs` milliseconds and rejects with `StoreUnavailableError` on an outage; the proof check then fails
 * closed (503 `dpop_replay_store_unavailable`, with `Retry-After`), never accepting an unchecked proof.
 */
export class SharedStoreReplayCache implements DPoPReplayCache {
  constructor(private readonly store: SharedStore) {}

  /** Resolves `true` for a first use, `false` for a replay; rejects when the store cannot answer. */
  checkAndStore(key: string, ttlSeconds: number): Promise<boolean> {
    return this.store.setIfAbsent(`dpop:${key}`, Math.max(1, ttlSeconds));
  }
}
