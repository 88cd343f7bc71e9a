import type { KeyObject } from 'node:crypto';
import { AuthError } from './errors';
import { JwksKeyStore, type KeyStoreTiming } from './key-store';

/**
 * One {@link JwksKeyStore} per trusted issuer (DESIGN §3 "Issuers").
 * A token is routed to its issuer's key set; an untrusted issuer never causes a fetch.
 */
export class KeyRegistry {
  private readonly stores = new Map<string, JwksKeyStore>();
  private removedListeners: Array<(issuer: string, kids: string[]) => void> = [];

  constructor(issuers: ReadonlyArray<{ issuer: string; jwksUri?: string }>, timing: KeyStoreTiming) {
    for (const i of issuers) {
      this.stores.set(i.issuer, new JwksKeyStore(i, timing, (iss, kids) => this.removedListeners.forEach((l) => l(iss, kids))));
    }
  }

  /** Subscribes to key removals (used to drop cached tokens signed by removed keys). */
  onKeysRemoved(listener: (issuer: string, kids: string[]) => void): void {
    this.removedListeners.push(listener);
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

  /** Total JWKS fetches across issuers (tests and metrics). */
  get fetchCount(): number {
    let n = 0;
    for (const s of this.stores.values()) n += s.fetchCount;
    return n;
  }
}
