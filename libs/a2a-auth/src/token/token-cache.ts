import { createHash } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import type { A2ACaller } from './caller';

/**
 * SHA-256 of a token, base64url (43 chars). The cache key and the basis of the audit `tokenId`;
 * a token is never stored.
 */
export function tokenHash(token: string): string {
  return createHash('sha256').update(token).digest('base64url');
}

interface Entry {
  caller: A2ACaller;
  kid?: string;
}

/**
 * Cache of verified callers keyed by the SHA-256 of the token (never the token).
 *
 * - An entry ends at the earliest of `exp` (+ clock tolerance), `iat + maxTokenAge`, and `maxTtl`.
 * - At most `maxEntries` entries (LRU); each costs about 2–3 KiB (the claims plus the 43-char key).
 * - Failures are never cached.
 * - Entries signed by a key that left the JWKS are dropped ({@link dropKeys}).
 */
export class VerifiedTokenCache {
  private readonly lru?: LRUCache<string, Entry>;

  /**
   * @param maxEntries maximum entries; 0 disables the cache.
   * @param maxTtlSeconds upper bound of an entry's lifetime, seconds.
   */
  constructor(maxEntries: number, private readonly maxTtlSeconds: number, private readonly now: () => number = Date.now) {
    if (maxEntries > 0 && maxTtlSeconds > 0) {
      this.lru = new LRUCache<string, Entry>({ max: maxEntries, ttlAutopurge: false });
    }
  }

  /** Whether the cache is on. */
  get enabled(): boolean {
    return this.lru !== undefined;
  }

  /** Number of entries. */
  get size(): number {
    return this.lru?.size ?? 0;
  }

  /** The cached caller for a token hash, or `undefined` (miss or expired). */
  get(hash: string): A2ACaller | undefined {
    return this.lru?.get(hash)?.caller;
  }

  /**
   * Stores a verified caller.
   * @param notAfterSeconds latest moment the entry may live, seconds since the epoch (min of exp+tolerance, iat+maxTokenAge).
   */
  set(hash: string, caller: A2ACaller, notAfterSeconds: number): void {
    if (!this.lru) return;
    const ttlMs = Math.min(notAfterSeconds * 1000 - this.now(), this.maxTtlSeconds * 1000);
    if (!(ttlMs >= 1)) return;
    this.lru.set(hash, { caller, kid: caller.keyId }, { ttl: Math.floor(ttlMs) });
  }

  /** Drops entries signed by removed keys of an issuer. */
  dropKeys(issuer: string, kids: readonly string[]): void {
    if (!this.lru) return;
    const gone = new Set(kids);
    for (const [k, v] of this.lru.entries()) {
      if (v.caller.issuer === issuer && v.kid !== undefined && gone.has(v.kid)) this.lru.delete(k);
    }
  }

  /** Removes everything. */
  clear(): void {
    this.lru?.clear();
  }
}
