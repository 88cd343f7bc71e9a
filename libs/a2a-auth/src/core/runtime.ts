import { TokenIntrospector } from './introspection';
import { KeyRegistry } from './key-registry';
import type { KeyStoreLogger } from './key-store';
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
  /** The RFC 7662 client for opaque tokens, when `introspection` is configured. */
  readonly introspector?: TokenIntrospector;
}

/**
 * Builds the {@link AuthRuntime} from resolved options: the key registry (timeouts and cooldowns in seconds, as in
 * the options; keys the allowed `algorithms` cannot use are refused), the cache, the introspector (with `introspection`), the verifier, and the wiring that
 * drops a cached token as soon as a key-set change means it would be verified with other key material or none.
 * The Nest module and the benchmarks both build it here, so what is measured is what runs.
 *
 * @param logger receives one warning per refused JWKS key (the Nest module passes a Nest `Logger`). Default: none.
 */
export function createAuthRuntime(o: ResolvedOptions, logger?: KeyStoreLogger): AuthRuntime {
  const keys = new KeyRegistry(
    o.issuers,
    { timeout: o.jwksTimeout, cooldown: o.jwksCooldown, maxAge: o.jwksCacheMaxAge },
    { algorithms: o.algorithms, logger },
  );
  const cache = new VerifiedTokenCache(o.tokenCache.enabled ? o.tokenCache.maxEntries : 0, o.tokenCache.maxTtl, Date.now, (iss, kid) =>
    keys.keyMaterial(iss, kid),
  );
  keys.onKeySetChanged((issuer) => cache.recheckKeys(issuer));
  const introspector = o.introspection ? new TokenIntrospector(o.introspection) : undefined;
  return { keys, cache, verifier: createVerifier(o, keys, cache, introspector), introspector };
}
