import * as crypto from 'node:crypto';
import { LRUCache } from 'lru-cache';
import type { A2ACaller } from './caller';

/**
 * SHA-256 of a token, base64url (43 chars). The cache key and the basis of the audit `tokenId`;
 * a token is never stored. Uses the one-shot `crypto.hash` (Node ≥ 20.12), about twice as fast as
 * `createHash` for a token-sized input.
 */
export function tokenHash(token: string): string {
  return crypto.hash('sha256', token, 'base64url');
}

/**
 * The latest moment a verified token may be served from the cache, in seconds since the epoch:
 * `exp + clockTolerance`, or earlier `iat + maxTokenAge + clockTolerance` when `maxTokenAge` is set
 * (the same bounds the verifier applies, so a hit is never accepted where a fresh check would fail).
 * The cache further caps this at insertion + `maxTtl`.
 *
 * @param claims verified claims (`exp`, `iat` in seconds).
 * @param clockTolerance seconds.
 * @param maxTokenAge seconds since `iat`, or `undefined` for no limit.
 */
export function cacheNotAfter(claims: Readonly<Record<string, unknown>>, clockTolerance: number, maxTokenAge?: number): number {
  let notAfter = (claims.exp as number) + clockTolerance;
  if (maxTokenAge !== undefined && typeof claims.iat === 'number') notAfter = Math.min(notAfter, claims.iat + maxTokenAge + clockTolerance);
  return notAfter;
}

interface Entry {
  caller: A2ACaller;
  /** End of life, milliseconds since the epoch (on the cache's clock). */
  until: number;
  /** Identity of the key material that verified the token (from the key resolver), if one is set. */
  key?: string;
}

/**
 * Identity of the key material a token of `issuer` with this `kid` (or none) would be verified with now, or
 * `undefined` when no current key fits ({@link KeyRegistry.keyMaterial}).
 */
export type KeyMaterialResolver = (issuer: string, kid: string | undefined) => string | undefined;

/**
 * Cache of verified callers keyed by the SHA-256 of the token (never the token).
 *
 * - An entry ends at the earliest of `exp` (+ clock tolerance), `iat + maxTokenAge` (+ tolerance) and
 *   insertion + `maxTtl`. Expiry is checked on every read against the injected clock, so an expired
 *   entry is never served even before it is purged.
 * - At most `maxEntries` entries (LRU). Measured cost: about 1.1 KiB of heap per entry for a typical
 *   client-credentials token (the frozen claims, the scopes and the 43-char key); see docs/performance.md.
 * - Failures are never cached (only {@link set} with a verified caller adds an entry).
 * - With a key resolver, each entry records the key material that verified it; when the key set changes,
 *   {@link recheckKeys} drops every entry whose token would now get other material or none (a key removed, new
 *   material under the same `kid`, a kid-less key replaced or joined by a second key). Without one, entries are
 *   dropped by `kid` only ({@link dropKeys}).
 */
export class VerifiedTokenCache {
  private readonly lru?: LRUCache<string, Entry>;

  /**
   * @param maxEntries maximum entries (LRU); 0 disables the cache.
   * @param maxTtlSeconds upper bound of an entry's lifetime, seconds; 0 disables the cache.
   * @param now clock in milliseconds since the epoch. Default `Date.now` (injectable for tests).
   * @param keyMaterial the current key material for an issuer and `kid`; entries then follow key changes.
   */
  constructor(
    maxEntries: number,
    private readonly maxTtlSeconds: number,
    private readonly now: () => number = Date.now,
    private readonly keyMaterial?: KeyMaterialResolver,
  ) {
    if (maxEntries > 0 && maxTtlSeconds > 0) {
      this.lru = new LRUCache<string, Entry>({ max: maxEntries });
    }
  }

  /** Whether the cache is on. */
  get enabled(): boolean {
    return this.lru !== undefined;
  }

  /** Number of entries (expired ones included until they are read or evicted). */
  get size(): number {
    return this.lru?.size ?? 0;
  }

  /** The cached caller for a token hash, or `undefined` (miss or expired; an expired entry is removed). */
  get(hash: string): A2ACaller | undefined {
    const e = this.lru?.get(hash);
    if (e === undefined) return undefined;
    if (this.now() >= e.until) {
      this.lru!.delete(hash);
      return undefined;
    }
    return e.caller;
  }

  /**
   * Stores a verified caller. Nothing is stored when the computed lifetime is under 1 ms.
   * @param notAfterSeconds latest moment the entry may live, seconds since the epoch
   *   (min of `exp` + tolerance and `iat` + maxTokenAge + tolerance).
   */
  set(hash: string, caller: A2ACaller, notAfterSeconds: number): void {
    if (!this.lru) return;
    const t = this.now();
    const until = Math.min(notAfterSeconds * 1000, t + this.maxTtlSeconds * 1000);
    if (!(until - t >= 1)) return;
    let key: string | undefined;
    if (this.keyMaterial) {
      key = this.keyMaterial(caller.issuer, caller.keyId);
      // The key left the set while the token was being verified: nothing could tie the entry to its material.
      if (key === undefined) return;
    }
    this.lru.set(hash, { caller, until, key });
  }

  /**
   * Drops the entries of `issuer` whose token would not be verified with the material recorded at insertion any more
   * (called after every change of that issuer's key set). No-op without a key resolver.
   */
  recheckKeys(issuer: string): void {
    if (!this.lru || !this.keyMaterial) return;
    const doomed: string[] = [];
    const now = new Map<string | undefined, string | undefined>();
    for (const [k, v] of this.lru.entries()) {
      if (v.caller.issuer !== issuer) continue;
      const kid = v.caller.keyId;
      if (!now.has(kid)) now.set(kid, this.keyMaterial(issuer, kid));
      if (now.get(kid) !== v.key) doomed.push(k);
    }
    for (const k of doomed) this.lru.delete(k);
  }

  /** Drops the entries of `issuer` whose token was verified with one of `kids` (called when those keys leave the JWKS). */
  dropKeys(issuer: string, kids: readonly string[]): void {
    if (!this.lru || kids.length === 0) return;
    const gone = new Set(kids);
    const doomed: string[] = [];
    for (const [k, v] of this.lru.entries()) {
      if (v.caller.issuer === issuer && v.caller.keyId !== undefined && gone.has(v.caller.keyId)) doomed.push(k);
    }
    for (const k of doomed) this.lru.delete(k);
  }

  /** Removes everything. */
  clear(): void {
    this.lru?.clear();
  }
}
