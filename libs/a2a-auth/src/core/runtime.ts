import { KeyRegistry } from './key-registry';
import type { ResolvedOptions } from './options';
import { VerifiedTokenCache } from './token-cache';
import { createVerifier, type Verifier } from './verifier';

/** The object graph behind every entry point: key sets, the verified-token cache and the verifier. */
export interface AuthRuntime {
  /** One key set per trusted issuer. */
  readonly keys: KeyRegistry;
  /** Verified callers by token hash (disabled when `tokenCache.enabled` is false). */
  readonly cache: VerifiedTokenCache;
  /** The per-token decision. */
  readonly verifier: Verifier;
}

/**
 * Builds the {@link AuthRuntime} from resolved options: the key registry (timeouts and cooldowns in seconds, as in
 * the options), the cache, the verifier, and the wiring that drops cached tokens when their key leaves the key set.
 * The Nest module and the benchmarks both build it here, so what is measured is what runs.
 */
export function createAuthRuntime(o: ResolvedOptions): AuthRuntime {
  const keys = new KeyRegistry(o.issuers, { timeout: o.jwksTimeout, cooldown: o.jwksCooldown, maxAge: o.jwksCacheMaxAge });
  const cache = new VerifiedTokenCache(o.tokenCache.enabled ? o.tokenCache.maxEntries : 0, o.tokenCache.maxTtl);
  keys.onKeysRemoved((issuer, kids) => cache.dropKeys(issuer, kids));
  return { keys, cache, verifier: createVerifier(o, keys, cache) };
}
