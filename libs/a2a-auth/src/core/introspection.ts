import { LRUCache } from 'lru-cache';
import { AuthError } from './errors';
import { ClientAuthenticationError, clientAuthentication, type ClientAuthOptions, type ResolvedClientAuth } from './client-auth';
import { fetchJson, HttpStatusError } from './fetch-json';
import type { SharedStore } from './store';

/** OAuth 2.0 Token Introspection (RFC 7662) for opaque access tokens: the `introspection` module option. */
export interface IntrospectionOptions extends ClientAuthOptions {
  /** The introspection endpoint (RFC 7662 §2). Default: `introspection_endpoint` from the issuer's metadata (RFC 8414 §2); required with several issuers. */
  endpoint?: string;
  /** This resource server's `client_id` at the authorization server (RFC 7662 §2.1: the caller must authenticate). */
  clientId: string;
  /**
   * Its `client_secret` (sent with `client_secret_basic`, RFC 6749 §2.3.1, or `client_secret_post`), or a function
   * returning it (called for each introspection call, so a rotated secret is picked up). Read it from the environment
   * or a secret store; it is never logged. Exactly one of `clientSecret` and `privateKey`.
   */
  clientSecret?: string | (() => string | Promise<string>);
  /**
   * Its private key for `private_key_jwt` (RFC 7523): PEM, private JWK, `KeyObject`, `{ key, kid?, alg? }`, or a function
   * returning one (called for each introspection call). The assertion's `aud` defaults to the issuer identifier with a
   * single issuer, else the introspection endpoint URL (`assertionAudience` overrides).
   */
  privateKey?: ClientAuthOptions['privateKey'];
  /** Deadline of one introspection call (metadata discovery included), seconds. Default 5. */
  timeout?: number;
  /** Longest an active result is reused, seconds; it also ends at the token's `exp`. Default 60. `0` turns the cache off. */
  cacheMaxTtl?: number;
  /** How long an `active: false` answer is reused, seconds (so a flood of one dead token is one call). Default 10. */
  inactiveCacheTtl?: number;
  /** Most results cached in memory (LRU). Default 10,000. With a Redis `store` the cache lives there instead. */
  cacheMaxEntries?: number;
}

/** {@link IntrospectionOptions} after defaults and validation. */
export interface ResolvedIntrospectionOptions {
  /** The endpoint, or `undefined` to discover it from {@link issuer}'s metadata. */
  endpoint?: string;
  /** The issuer whose metadata names the endpoint, and whose name an answer without `iss` gets; `undefined` with several issuers. */
  issuer?: string;
  /** `client_id`. */
  clientId: string;
  /** The client authentication (its credential is not enumerable: it never shows when the options are inspected). */
  auth: ResolvedClientAuth;
  /** Seconds. */
  timeout: number;
  /** Seconds. */
  cacheMaxTtl: number;
  /** Seconds. */
  inactiveCacheTtl: number;
  /** Entries. */
  cacheMaxEntries: number;
}

/** What the authorization server said about a token: inactive, or active with its claims (RFC 7662 §2.2, `active` removed). */
export type IntrospectionResult = { readonly active: false } | { readonly active: true; readonly claims: Readonly<Record<string, unknown>> };

const INACTIVE: IntrospectionResult = Object.freeze({ active: false });

interface Entry {
  result: IntrospectionResult;
  /** Milliseconds since the epoch. */
  until: number;
}

/**
 * Where introspection results are shared between instances (the Redis `store`): results go under
 * `<prefix>introspection:<token SHA-256>` as JSON (`{"active":false}` or `{"active":true,"claims":{…}}`, the answer's
 * members without `active`; never the token), for the same lifetimes as the in-process cache.
 */
export interface SharedIntrospectionCache {
  readonly store: SharedStore;
  /**
   * Called with one JSON log line when the store fails (the request then goes on without the cache: the endpoint is
   * called, the result is not shared). The caller rate-limits it.
   */
  readonly warn: (line: string) => void;
}

/** Whether a token has the shape of a JWS compact serialization (three dot-separated segments): those are verified locally, the rest introspected. */
export function isJwtShaped(token: string): boolean {
  const a = token.indexOf('.');
  if (a === -1) return false;
  const b = token.indexOf('.', a + 1);
  return b !== -1 && token.indexOf('.', b + 1) === -1;
}

/**
 * Asks the authorization server about opaque access tokens (RFC 7662) on behalf of the verifier.
 *
 * - `POST endpoint` with `token` and `token_type_hint=access_token` (§2.1), client authentication
 *   `client_secret_basic`, `client_secret_post` or `private_key_jwt` (RFC 7523); a credential given as a function is
 *   read for every call, and after a 400/401 answer read once more and the call retried once (rotation); one deadline (`timeout`) covers endpoint discovery and the call; a 1 MiB answer cap;
 *   redirects refused.
 * - Results are cached by the token's SHA-256 (never the token): an active one until the earliest of its `exp` and
 *   `cacheMaxTtl`, an inactive one for `inactiveCacheTtl`. Failures are never cached.
 * - With a {@link SharedIntrospectionCache} (Redis), that cache lives in the shared store instead of this process, so
 *   one instance's answer serves them all; a store failure or timeout means no caching for that request (the endpoint
 *   is called; a warning `a2a.store.cache_unavailable` is logged), never an error.
 * - Concurrent requests for one token in this process share one call (single-flight), store lookup included.
 * - A timeout, a network error, a non-2xx status, or an answer that is not an RFC 7662 response (a JSON object with a
 *   boolean `active`) is `introspection_unavailable` (503): the token's fate is unknown, so it is neither accepted nor
 *   blamed.
 * - An answer without `iss` is attributed to the configured issuer (only with a single issuer).
 */
export class TokenIntrospector {
  private readonly lru?: LRUCache<string, Entry>;
  private readonly inflight = new Map<string, Promise<IntrospectionResult>>();
  private endpoint?: string;
  /** Introspection calls sent (for tests and metrics). */
  callCount = 0;

  private readonly shared?: SharedIntrospectionCache;

  /**
   * @param options resolved options (durations in seconds).
   * @param now clock in milliseconds since the epoch. Default `Date.now`.
   * @param shared the shared cache (Redis) that replaces the in-process one. Default: none (in-process LRU).
   */
  constructor(
    private readonly options: ResolvedIntrospectionOptions,
    private readonly now: () => number = Date.now,
    shared?: SharedIntrospectionCache,
  ) {
    this.endpoint = options.endpoint;
    const caching = options.cacheMaxTtl > 0 && options.cacheMaxEntries > 0;
    if (caching && shared) this.shared = shared;
    else if (caching) this.lru = new LRUCache<string, Entry>({ max: options.cacheMaxEntries });
  }

  /** The result cached in this process for a token hash, or `undefined` (miss or expired; always with a shared cache). */
  cached(hash: string): IntrospectionResult | undefined {
    const e = this.lru?.get(hash);
    if (e === undefined) return undefined;
    if (this.now() >= e.until) {
      this.lru!.delete(hash);
      return undefined;
    }
    return e.result;
  }

  /**
   * The authorization server's answer for a token (from the cache when fresh; one shared call per token otherwise).
   * @param hash the token's SHA-256 (`tokenHash`), the cache key.
   * @throws AuthError `introspection_unavailable` (503).
   */
  introspect(token: string, hash: string): Promise<IntrospectionResult> {
    const hit = this.cached(hash);
    if (hit) return Promise.resolve(hit);
    let p = this.inflight.get(hash);
    if (!p) {
      p = this.shared
        ? this.viaShared(this.shared, token, hash)
        : this.call(token).then((r) => {
            this.store(hash, r);
            return r;
          });
      const settled = p;
      this.inflight.set(hash, settled);
      settled.then(
        () => this.inflight.delete(hash),
        () => this.inflight.delete(hash),
      );
    }
    return p;
  }

  /** Forgets every result cached in this process (not those in a shared store: they expire on their own). */
  clear(): void {
    this.lru?.clear();
  }

  /** How long a result may be reused, milliseconds (≤ 0: not at all). */
  private lifetimeMs(r: IntrospectionResult, t: number): number {
    let until = t + (r.active ? this.options.cacheMaxTtl : this.options.inactiveCacheTtl) * 1000;
    if (r.active && typeof r.claims.exp === 'number') until = Math.min(until, r.claims.exp * 1000);
    return until - t;
  }

  private store(hash: string, r: IntrospectionResult): void {
    if (!this.lru) return;
    const t = this.now();
    const ms = this.lifetimeMs(r, t);
    if (ms >= 1) this.lru.set(hash, { result: r, until: t + ms });
  }

  private async viaShared(shared: SharedIntrospectionCache, token: string, hash: string): Promise<IntrospectionResult> {
    const key = `introspection:${hash}`;
    let raw: string | undefined;
    try {
      raw = await shared.store.get(key);
    } catch (e) {
      this.storeFailed(shared, 'get', e);
    }
    const hit = raw === undefined ? undefined : parseShared(raw);
    if (hit) return hit;
    const r = await this.call(token);
    const ms = this.lifetimeMs(r, this.now());
    if (ms >= 1) {
      // Awaited (bounded by store.timeoutMs) so that the next request, at any instance, finds it.
      try {
        await shared.store.set(key, JSON.stringify(r), ms / 1000);
      } catch (e) {
        this.storeFailed(shared, 'set', e);
      }
    }
    return r;
  }

  private storeFailed(shared: SharedIntrospectionCache, op: string, e: unknown): void {
    shared.warn(
      JSON.stringify({
        type: 'a2a.store.cache_unavailable',
        cache: 'introspection',
        operation: op,
        outcome: 'uncached',
        detail: e instanceof Error ? e.message : String(e),
        time: new Date().toISOString(),
      }),
    );
  }

  private async call(token: string): Promise<IntrospectionResult> {
    const deadline = Date.now() + this.options.timeout * 1000;
    const remaining = () => {
      const ms = deadline - Date.now();
      if (ms <= 0) throw new AuthError('introspection_unavailable', `no answer within ${this.options.timeout} s`);
      return ms;
    };
    const endpoint = this.endpoint ?? (this.endpoint = await this.discover(remaining));
    let answer: unknown;
    for (let attempt = 0; ; attempt++) {
      let creds;
      try {
        creds = await clientAuthentication(this.options.auth, endpoint, remaining());
      } catch (e) {
        if (e instanceof ClientAuthenticationError) throw new AuthError('introspection_unavailable', `introspection client authentication: ${e.message}`);
        throw e;
      }
      const body = new URLSearchParams({ token, token_type_hint: 'access_token', ...creds.params }).toString();
      this.callCount++;
      try {
        answer = await fetchJson(endpoint, remaining(), { headers: { ...creds.headers, 'content-type': 'application/x-www-form-urlencoded' }, body });
        break;
      } catch (e) {
        if (e instanceof AuthError) throw e;
        // RFC 6749 §5.2 invalid_client is 401 (or 400): a rotated credential may already be in the store, so read it again once.
        if (e instanceof HttpStatusError && (e.status === 400 || e.status === 401) && this.options.auth.rotatable && attempt === 0) continue;
        // fetchJson's messages name the status, the deadline or the network failure; never the request.
        throw new AuthError('introspection_unavailable', `introspection at ${endpoint} failed: ${(e as Error)?.message ?? 'error'}`);
      }
    }
    if (!answer || typeof answer !== 'object' || Array.isArray(answer) || typeof (answer as { active?: unknown }).active !== 'boolean') {
      throw new AuthError('introspection_unavailable', `introspection at ${endpoint} gave no RFC 7662 response (no boolean active)`);
    }
    const { active, ...claims } = answer as Record<string, unknown>;
    if (active !== true) return INACTIVE;
    if (claims.iss === undefined && this.options.issuer !== undefined) claims.iss = this.options.issuer;
    return Object.freeze({ active: true, claims: Object.freeze(claims) });
  }

  /** `introspection_endpoint` from OIDC Discovery 1.0 §4, then RFC 8414 §3; the metadata's `issuer` must match (RFC 8414 §3.3). */
  private async discover(remaining: () => number): Promise<string> {
    const issuer = this.options.issuer;
    if (issuer === undefined) throw new AuthError('introspection_unavailable', 'no introspection endpoint configured');
    const u = new URL(issuer);
    const path = u.pathname === '/' ? '' : u.pathname.replace(/\/$/, '');
    const candidates = [`${issuer.replace(/\/$/, '')}/.well-known/openid-configuration`, `${u.origin}/.well-known/oauth-authorization-server${path}`];
    const errors: string[] = [];
    for (const url of candidates) {
      try {
        const meta = (await fetchJson(url, remaining())) as { issuer?: unknown; introspection_endpoint?: unknown };
        if (meta?.issuer !== issuer) {
          errors.push(`${url}: issuer mismatch`);
          continue;
        }
        const ep = meta.introspection_endpoint;
        if (typeof ep === 'string' && /^https?:\/\//.test(ep)) return ep;
        errors.push(`${url}: no introspection_endpoint`);
      } catch (e) {
        if (e instanceof AuthError) throw e;
        errors.push(`${url}: ${(e as Error).message}`);
      }
    }
    throw new AuthError('introspection_unavailable', `introspection endpoint discovery failed: ${errors.join('; ')}`);
  }
}

// What another instance stored; anything else (another version's format, a foreign key) is a miss, never trusted.
function parseShared(raw: string): IntrospectionResult | undefined {
  let v: unknown;
  try {
    v = JSON.parse(raw);
  } catch {
    return undefined;
  }
  if (!v || typeof v !== 'object') return undefined;
  const { active, claims } = v as { active?: unknown; claims?: unknown };
  if (active === false) return INACTIVE;
  if (active !== true || !claims || typeof claims !== 'object' || Array.isArray(claims)) return undefined;
  return Object.freeze({ active: true, claims: Object.freeze(claims as Record<string, unknown>) });
}
