import { TokenIntrospector } from './introspection';
import { SharedStoreReplayCache } from './replay-cache';
import type { SharedStore } from './store';
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
 * @param shared the agent's shared store and a (rate-limited) warning sink for its failures. Used only when the store
 *   is shared (`kind: 'redis'`): the DPoP replay cache becomes a {@link SharedStoreReplayCache} (unless
 *   `dpop.replayCache` is set: the user's own wins) and the introspection cache moves into the store. Default: none
 *   (everything in this process).
 */
export function createAuthRuntime(o: ResolvedOptions, logger?: KeyStoreLogger, shared?: { store: SharedStore; warn: (line: string) => void }): AuthRuntime {
  const keys = new KeyRegistry(
    o.issuers,
    { timeout: o.jwksTimeout, cooldown: o.jwksCooldown, maxAge: o.jwksCacheMaxAge },
    { algorithms: o.algorithms, logger },
  );
  const cache = new VerifiedTokenCache(o.tokenCache.enabled ? o.tokenCache.maxEntries : 0, o.tokenCache.maxTtl, Date.now, (iss, kid) =>
    keys.keyMaterial(iss, kid),
  );
  keys.onKeySetChanged((issuer) => cache.recheckKeys(issuer));
  const store = shared?.store.kind === 'redis' ? shared : undefined;
  const introspector = o.introspection ? new TokenIntrospector(o.introspection, Date.now, store) : undefined;
  const policy: ResolvedOptions = store && !o.dpop.replayCache ? { ...o, dpop: { ...o.dpop, replayCache: new SharedStoreReplayCache(store.store) } } : o;
  return { keys, cache, verifier: createVerifier(policy, keys, cache, introspector), introspector };
}
