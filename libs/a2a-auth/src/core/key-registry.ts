import type { KeyObject } from 'node:crypto';
import { AuthError } from './errors';
import { JwksKeyStore, type KeyStoreLogger, type KeyStoreTiming } from './key-store';

/** What every key set of a {@link KeyRegistry} accepts, and where it reports refused keys. */
export interface KeyRegistryOptions {
  /** JWS algorithms tokens may use; keys none of them can use are refused at load. Default: all supported. */
  algorithms?: readonly string[];
  /** Gets one warning per refused key (issuer, `kid`, reason; never key material). Default: none. */
  logger?: KeyStoreLogger;
}

/**
 * One {@link JwksKeyStore} per trusted issuer (DESIGN §3 "Issuers").
 * A token is routed to its issuer's key set; an untrusted issuer never causes a fetch.
 */
export class KeyRegistry {
  private readonly stores = new Map<string, JwksKeyStore>();
  private removedListeners: Array<(issuer: string, kids: string[]) => void> = [];
  private changeListeners: Array<(issuer: string) => void> = [];

  /**
   * @param timing durations in seconds, shared by all issuers.
   * @param options allowed algorithms and the logger for refused keys.
   */
  constructor(issuers: ReadonlyArray<{ issuer: string; jwksUri?: string }>, timing: KeyStoreTiming, options: KeyRegistryOptions = {}) {
    for (const i of issuers) {
      this.stores.set(
        i.issuer,
        new JwksKeyStore(i, timing, {
          ...options,
          onKeysRemoved: (iss, kids) => this.removedListeners.forEach((l) => l(iss, kids)),
          onChange: (iss) => this.changeListeners.forEach((l) => l(iss)),
        }),
      );
    }
  }

  /** Subscribes to key removals: kids that left the JWKS or now name other key material. */
  onKeysRemoved(listener: (issuer: string, kids: string[]) => void): void {
    this.removedListeners.push(listener);
  }

  /** Subscribes to every change of an issuer's key set (used to re-check cached tokens against {@link keyMaterial}). */
  onKeySetChanged(listener: (issuer: string) => void): void {
    this.changeListeners.push(listener);
  }

  /**
   * The verification key for a token from `issuer`.
   * @throws AuthError `invalid_issuer` (untrusted; no network call), or any error of {@link JwksKeyStore.getKey}.
   */
  getKey(issuer: string, kid: string | undefined, alg: string): Promise<KeyObject> {
    const s = this.stores.get(issuer);
    if (!s) return Promise.reject(new AuthError('invalid_issuer', 'untrusted issuer'));
    return s.getKey(kid, alg);
  }

  /**
   * Identity of the key a token of `issuer` with this `kid` (or none) would be verified with now, without fetching:
   * the SHA-256 of its SPKI DER plus the JWK `alg`. `undefined` when no current key fits.
   */
  keyMaterial(issuer: string, kid: string | undefined): string | undefined {
    return this.stores.get(issuer)?.identity(kid);
  }

  /** Total JWKS fetches across issuers (tests and metrics). */
  get fetchCount(): number {
    let n = 0;
    for (const s of this.stores.values()) n += s.fetchCount;
    return n;
  }
}
