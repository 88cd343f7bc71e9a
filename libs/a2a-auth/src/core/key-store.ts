import { createPublicKey, KeyObject } from 'node:crypto';
import { JwksClient } from 'jwks-rsa';
import { AuthError } from './errors';
import { fetchJson } from './fetch-json';

/** One verification key, parsed once into a `KeyObject`. */
export interface VerificationKey {
  /** JWK `kid`, if the JWKS gave one. */
  kid?: string;
  /** JWK `alg`, if the JWKS gave one (a token must then use exactly this alg). */
  alg?: string;
  /** Parsed public key; verifying with it costs no PEM parsing. */
  key: KeyObject;
}

/** Timing for a {@link JwksKeyStore}. All durations in seconds. */
export interface KeyStoreTiming {
  /** Total deadline of one key-set load (discovery + JWKS fetch together), seconds. Default 5. */
  timeout: number;
  /**
   * Minimum time between two refetches triggered by unknown `kid`s, shared by all kids, counted from the end of
   * the previous attempt; also spaces out background refreshes of a stale set during an outage. Seconds. Default 30.
   */
  cooldown: number;
  /** Age after which the key set is refreshed in the background, seconds. Default 600. */
  maxAge: number;
}

/** Where a key set comes from: a fixed `jwksUri`, or the issuer's metadata (OIDC Discovery §4 / RFC 8414 §3). */
export interface KeySource {
  issuer: string;
  jwksUri?: string;
}

/**
 * The signing keys of one issuer.
 *
 * - Keys come from the JWKS (RFC 7517), fetched through jwks-rsa with a bounded fetcher, and are
 *   parsed once into `KeyObject`s.
 * - Concurrent fetches are single-flight; one deadline (`timeout`) covers discovery and the JWKS fetch.
 * - An unknown `kid` triggers at most one refetch per `cooldown`, shared by all kids; a request for a kid
 *   that arrives while a refetch runs waits for it.
 * - A stale set (older than `maxAge`) is refreshed in the background, at most once per `cooldown`.
 * - Failures are never cached; known keys keep working while the key server is down.
 * - Keys that disappear from the JWKS are reported through `onKeysRemoved` (e.g. to drop cached tokens).
 */
export class JwksKeyStore {
  private keys = new Map<string, VerificationKey>();
  private all: VerificationKey[] = [];
  private loadedAt = 0;
  private lastRefetch = 0;
  private inflight?: Promise<void>;
  private resolvedJwksUri?: string;
  /** Number of completed JWKS HTTP fetch attempts (for tests and metrics). */
  fetchCount = 0;

  constructor(
    private readonly source: KeySource,
    private readonly timing: KeyStoreTiming,
    private readonly onKeysRemoved?: (issuer: string, kids: string[]) => void,
    private readonly now: () => number = Date.now,
  ) {}

  /** The issuer this store serves. */
  get issuer(): string {
    return this.source.issuer;
  }

  /**
   * Returns the key for a token header.
   * - With a `kid`: that key; an unknown kid refetches at most once per cooldown.
   * - Without a `kid`: the only signing key, if the JWKS holds exactly one (else `missing_kid`).
   *
   * @throws AuthError `unknown_kid` (401), `missing_kid` (401), `unsupported_alg` (401, JWK `alg` differs),
   *   `jwks_unavailable` (503) when the keys cannot be fetched and no known key fits.
   */
  async getKey(kid: string | undefined, alg: string): Promise<KeyObject> {
    const t = this.now();
    const cooled = t - this.lastRefetch >= this.timing.cooldown * 1000;
    if (this.loadedAt === 0) {
      // No keys yet: every request may (single-flight) try, so a failure is never cached.
      this.lastRefetch = t;
      await this.refresh();
    } else if (t - this.loadedAt > this.timing.maxAge * 1000 && cooled && !this.inflight) {
      // Background refresh of a stale set; stale keys keep serving. Limited by the cooldown so an
      // outage does not turn every request into a fetch.
      this.lastRefetch = t;
      this.refresh().catch(() => undefined);
    }
    let k = this.find(kid);
    if (!k && kid !== undefined) {
      if (this.inflight) {
        // A refetch is already running (maybe for this very kid): wait for it instead of failing early.
        await this.inflight.catch(() => undefined);
        k = this.find(kid);
      } else if (t - this.lastRefetch >= this.timing.cooldown * 1000) {
        this.lastRefetch = t;
        await this.refresh();
        k = this.find(kid);
      }
    }
    if (!k) {
      if (kid === undefined) throw new AuthError('missing_kid', `token has no kid and the JWKS holds ${this.all.length} keys`);
      throw new AuthError('unknown_kid', 'no key with this kid');
    }
    if (k.alg && k.alg !== alg) throw new AuthError('unsupported_alg', `key ${kid ?? ''} is for ${k.alg}`);
    return k.key;
  }

  private find(kid: string | undefined): VerificationKey | undefined {
    if (kid === undefined) return this.all.length === 1 ? this.all[0] : undefined;
    return this.keys.get(kid);
  }

  /** Fetches the JWKS now (single-flight). @throws AuthError `jwks_unavailable` (503). */
  refresh(): Promise<void> {
    if (!this.inflight) {
      this.inflight = this.load().finally(() => {
        this.inflight = undefined;
        // The cooldown runs from the end of an attempt: a fetch that timed out does not let the next one start at once.
        this.lastRefetch = Math.max(this.lastRefetch, this.now());
      });
    }
    return this.inflight;
  }

  private async load(): Promise<void> {
    let fetched: VerificationKey[];
    // One deadline for discovery + JWKS together, so the caller waits at most `timeout` seconds.
    const deadline = Date.now() + this.timing.timeout * 1000;
    const remaining = () => {
      const ms = deadline - Date.now();
      if (ms <= 0) throw new Error(`timed out after ${this.timing.timeout} s`);
      return ms;
    };
    try {
      const uri = await this.jwksUri(remaining);
      this.fetchCount++;
      const client = new JwksClient({ jwksUri: uri, fetcher: (u: string) => fetchJwks(u, remaining()) } as never);
      const signingKeys = await client.getSigningKeys();
      fetched = signingKeys.map((sk) => ({
        kid: (sk as { kid?: string }).kid,
        alg: (sk as { alg?: string }).alg,
        key: createPublicKey(sk.getPublicKey()),
      }));
    } catch (e) {
      if (e instanceof AuthError) throw e;
      throw new AuthError('jwks_unavailable', `JWKS fetch for ${this.source.issuer} failed: ${(e as Error)?.message ?? 'error'}`);
    }
    const next = new Map<string, VerificationKey>();
    const unnamed: VerificationKey[] = [];
    for (const k of fetched) {
      if (k.kid === undefined) unnamed.push(k);
      else if (!next.has(k.kid)) next.set(k.kid, k);
    }
    const removed = [...this.keys.keys()].filter((kid) => !next.has(kid));
    this.keys = next;
    this.all = [...next.values(), ...unnamed];
    this.loadedAt = this.now();
    if (removed.length && this.onKeysRemoved) this.onKeysRemoved(this.source.issuer, removed);
  }

  private async jwksUri(remaining: () => number): Promise<string> {
    if (this.source.jwksUri) return this.source.jwksUri;
    if (this.resolvedJwksUri) return this.resolvedJwksUri;
    const uri = await discoverJwksUri(this.source.issuer, remaining);
    this.resolvedJwksUri = uri;
    return uri;
  }
}

async function fetchJwks(uri: string, timeoutMs: number): Promise<{ keys: unknown[] }> {
  const doc = await fetchJson(uri, timeoutMs);
  if (!doc || typeof doc !== 'object' || !Array.isArray((doc as { keys?: unknown }).keys)) {
    throw new Error('not a JWK Set');
  }
  // Drop entries that are not objects, so jwks-rsa never sees garbage.
  return { keys: (doc as { keys: unknown[] }).keys.filter((k) => k && typeof k === 'object' && !Array.isArray(k)) };
}

/**
 * Finds `jwks_uri` from the issuer's metadata: OpenID Connect Discovery 1.0 §4
 * (`{issuer}/.well-known/openid-configuration`), then RFC 8414 §3.1
 * (`/.well-known/oauth-authorization-server` inserted before the issuer's path).
 * The metadata's `issuer` must equal the configured issuer (RFC 8414 §3.3).
 *
 * @param timeoutMs total deadline for all attempts, milliseconds; or a function returning the
 *   milliseconds left (it throws when none are left).
 * @throws AuthError `jwks_unavailable` (503) when neither document yields a `jwks_uri` in time.
 */
export async function discoverJwksUri(issuer: string, timeoutMs: number | (() => number)): Promise<string> {
  let remaining: () => number;
  if (typeof timeoutMs === 'number') {
    const deadline = Date.now() + timeoutMs;
    remaining = () => {
      const ms = deadline - Date.now();
      if (ms <= 0) throw new Error(`timed out after ${timeoutMs} ms`);
      return ms;
    };
  } else {
    remaining = timeoutMs;
  }
  const u = new URL(issuer);
  const path = u.pathname === '/' ? '' : u.pathname.replace(/\/$/, '');
  const candidates = [`${issuer.replace(/\/$/, '')}/.well-known/openid-configuration`, `${u.origin}/.well-known/oauth-authorization-server${path}`];
  const errors: string[] = [];
  for (const url of candidates) {
    try {
      const meta = (await fetchJson(url, remaining())) as { issuer?: unknown; jwks_uri?: unknown };
      if (meta?.issuer !== issuer) {
        errors.push(`${url}: issuer mismatch`);
        continue;
      }
      if (typeof meta.jwks_uri === 'string' && /^https?:\/\//.test(meta.jwks_uri)) return meta.jwks_uri;
      errors.push(`${url}: no jwks_uri`);
    } catch (e) {
      errors.push(`${url}: ${(e as Error).message}`);
    }
  }
  throw new AuthError('jwks_unavailable', `metadata discovery failed: ${errors.join('; ')}`);
}
