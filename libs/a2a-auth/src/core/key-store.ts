import { createPublicKey, KeyObject } from 'node:crypto';
import { JwksClient } from 'jwks-rsa';
import { AuthError } from './errors';
import { keyFitsAlgorithm } from './jws';
import { fetchJson } from './fetch-json';
import { describeKid, jwkRefusal, keyMaterialId, publicKeyRefusal } from './key-policy';
import { SUPPORTED_ALGORITHMS } from './options';

/** One verification key, parsed once into a `KeyObject`. */
export interface VerificationKey {
  /** JWK `kid`, if the JWKS gave one. */
  kid?: string;
  /** JWK `alg`, if the JWKS gave one (a token must then use exactly this alg). */
  alg?: string;
  /** Parsed public key; verifying with it costs no PEM parsing. */
  key: KeyObject;
  /** Identity of the key material: base64url SHA-256 of the SPKI DER ({@link keyMaterialId}). */
  materialId: string;
}

/** Where the key store reports refused keys. Nest's `Logger` fits as is. */
export interface KeyStoreLogger {
  /** One line per refused key: the issuer, the `kid` and the reason; never key material. */
  warn(message: string): void;
}

/** What a {@link JwksKeyStore} accepts and whom it tells about changes. */
export interface KeyStoreOptions {
  /**
   * The JWS algorithms tokens may use. A JWK that none of them can use (by `kty`/`crv`, or its own `alg`) is refused
   * at load. Default: every algorithm this library verifies (RS/PS/ES 256/384/512, EdDSA).
   */
  algorithms?: readonly string[];
  /** Gets one warning per refused key, the first time a load sees it refused. Default: none. */
  logger?: KeyStoreLogger;
  /**
   * Called after a successful load whose keys differ from the previous set (a key added or gone, new material under
   * a kid, another `alg`). Cached verifications should then be checked against {@link JwksKeyStore.peek}.
   */
  onChange?: (issuer: string) => void;
  /** Called with the kids whose key left the JWKS or now has other material. */
  onKeysRemoved?: (issuer: string, kids: string[]) => void;
}

// The first failed attempt to load a key set that was never loaded waits this long before the next; each further
// failure doubles the wait, up to the cooldown. Milliseconds.
const COLD_BACKOFF_START_MS = 1000;

/** Timing for a {@link JwksKeyStore}. All durations in seconds. */
export interface KeyStoreTiming {
  /** Total deadline of one key-set load (discovery + JWKS fetch together), seconds. Default 5. */
  timeout: number;
  /**
   * Minimum time between two refetches triggered by unknown `kid`s, shared by all kids, counted from the end of
   * the previous attempt; also spaces out background refreshes of a stale set during an outage, and caps the backoff
   * between failed attempts to load a set that was never loaded (1 s, doubling per failure). Seconds. Default 30.
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
 * - Keys that cannot be trusted are refused at load, each with one logged reason ({@link jwkRefusal},
 *   {@link publicKeyRefusal}): private members, `use` other than `sig`, `key_ops` without `verify`, a `kty`/`crv`
 *   or `alg` outside the allowed algorithms, RSA under 2048 bits or with a bad public exponent.
 * - Concurrent fetches are single-flight; one deadline (`timeout`) covers discovery and the JWKS fetch.
 * - Before the first successful load, a failed attempt is followed by a backoff (1 s, doubling per failure, at most
 *   `cooldown`); requests during it fail at once with `jwks_unavailable` and cause no fetch.
 * - An unknown `kid` triggers at most one refetch per `cooldown`, shared by all kids; a request for a kid
 *   that arrives while a refetch runs waits for it.
 * - A stale set (older than `maxAge`) is refreshed in the background, at most once per `cooldown`.
 * - Failures are never cached as keys; known keys keep working while the key server is down.
 * - Changes are reported through `onChange` (any difference, keys identified by their material) and
 *   `onKeysRemoved` (kids that left or changed material), e.g. to drop cached tokens.
 */
export class JwksKeyStore {
  // RFC 7517 §4.5: several keys may share a `kid` (another `alg` or `kty`); the token's `alg` picks among them.
  private keys = new Map<string, VerificationKey[]>();
  private all: VerificationKey[] = [];
  private loadedAt = 0;
  private lastRefetch = 0;
  private inflight?: Promise<void>;
  private resolvedJwksUri?: string;
  /** Failed attempts in a row while the set was never loaded, and when the next one may start (ms since the epoch). */
  private coldFailures = 0;
  private coldRetryAt = 0;
  /** `kid` + reason of every key the previous load refused, so each is logged once rather than at every load. */
  private refusedBefore = new Set<string>();
  private readonly algorithms: readonly string[];
  /** Number of completed JWKS HTTP fetch attempts (for tests and metrics). */
  fetchCount = 0;

  /**
   * @param timing durations in seconds.
   * @param options allowed algorithms, logger, change listeners.
   * @param now clock in milliseconds since the epoch (injectable for tests).
   */
  constructor(
    private readonly source: KeySource,
    private readonly timing: KeyStoreTiming,
    private readonly options: KeyStoreOptions = {},
    private readonly now: () => number = Date.now,
  ) {
    this.algorithms = options.algorithms ?? SUPPORTED_ALGORITHMS;
  }

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
   *   `jwks_unavailable` (503) when the keys cannot be fetched and no known key fits, or at once (no fetch) while
   *   the backoff after a failed first load runs.
   */
  async getKey(kid: string | undefined, alg: string): Promise<KeyObject> {
    const t = this.now();
    const cooled = t - this.lastRefetch >= this.timing.cooldown * 1000;
    if (this.loadedAt === 0) {
      // No keys yet. Requests join a running attempt; otherwise they start one only when the backoff after the last
      // failure has run out, so an outage at start-up costs the key server one fetch per backoff, not one per request.
      if (!this.inflight && t < this.coldRetryAt) {
        throw new AuthError('jwks_unavailable', `JWKS for ${this.source.issuer} unavailable; next attempt in ${Math.ceil((this.coldRetryAt - t) / 1000)} s`);
      }
      this.lastRefetch = t;
      await this.refresh();
    } else if (t - this.loadedAt > this.timing.maxAge * 1000 && cooled && !this.inflight) {
      // Background refresh of a stale set; stale keys keep serving. Limited by the cooldown so an
      // outage does not turn every request into a fetch.
      this.lastRefetch = t;
      this.refresh().catch(() => undefined);
    }
    let cands = this.candidates(kid);
    if (cands.length === 0 && kid !== undefined) {
      if (this.inflight) {
        // A refetch is already running (maybe for this very kid): wait for it instead of failing early.
        await this.inflight.catch(() => undefined);
        cands = this.candidates(kid);
      } else if (t - this.lastRefetch >= this.timing.cooldown * 1000) {
        this.lastRefetch = t;
        await this.refresh();
        cands = this.candidates(kid);
      }
    }
    if (cands.length === 0) {
      if (kid === undefined) throw new AuthError('missing_kid', `token has no kid and the JWKS holds ${this.all.length} keys`);
      throw new AuthError('unknown_kid', 'no key with this kid');
    }
    const k = cands.find((c) => (!c.alg || c.alg === alg) && keyFitsAlgorithm(alg, c.key));
    if (!k) throw new AuthError('unsupported_alg', `no key ${kid ?? '(without kid)'} fits ${alg}`);
    return k.key;
  }

  /** The keys a token with this `kid` (or none: the single key of the set) may be verified with. */
  private candidates(kid: string | undefined): readonly VerificationKey[] {
    if (kid === undefined) return this.all.length === 1 ? this.all : [];
    return this.keys.get(kid) ?? [];
  }

  /**
   * Identity of the keys a token with this `kid` (or none) would be checked against in the current set, without
   * fetching (the SHA-256 of each SPKI DER plus its JWK `alg`, in JWKS order); `undefined` when there is none. It
   * changes whenever one of those keys is replaced, added or removed.
   */
  identity(kid: string | undefined): string | undefined {
    const cands = this.candidates(kid);
    return cands.length ? cands.map((k) => `${k.materialId}.${k.alg ?? ''}`).join('+') : undefined;
  }

  /** Fetches the JWKS now (single-flight). @throws AuthError `jwks_unavailable` (503). */
  refresh(): Promise<void> {
    if (!this.inflight) {
      this.inflight = this.load().then(
        () => {
          this.coldFailures = 0;
          this.settled();
        },
        (e: unknown) => {
          this.settled();
          if (this.loadedAt === 0) {
            this.coldFailures++;
            const backoff = Math.min(COLD_BACKOFF_START_MS * 2 ** Math.min(this.coldFailures - 1, 30), this.timing.cooldown * 1000);
            this.coldRetryAt = this.now() + backoff;
          }
          throw e;
        },
      );
    }
    return this.inflight;
  }

  private settled(): void {
    this.inflight = undefined;
    // The cooldown runs from the end of an attempt: a fetch that timed out does not let the next one start at once.
    this.lastRefetch = Math.max(this.lastRefetch, this.now());
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
    const refused = new Map<string, { kid: string; reason: string }>();
    const refuse = (kid: unknown, reason: string) => refused.set(`${describeKid(kid)}\n${reason}`, { kid: describeKid(kid), reason });
    let screened = false;
    try {
      const uri = await this.jwksUri(remaining);
      this.fetchCount++;
      // jwks-rsa fetches and parses; what it may use is decided here first, per JWK, so each refusal has a reason.
      const fetcher = async (u: string) => {
        const doc = await fetchJwks(u, remaining());
        screened = true;
        return {
          keys: doc.keys.filter((jwk) => {
            const why = jwkRefusal(jwk, this.algorithms);
            if (why) refuse(jwk.kid, why);
            return !why;
          }),
        };
      };
      const client = new JwksClient({ jwksUri: uri, fetcher } as never);
      fetched = [];
      for (const sk of await client.getSigningKeys()) {
        const kid = (sk as { kid?: string }).kid;
        const key = createPublicKey(sk.getPublicKey());
        const why = publicKeyRefusal(key);
        if (why) refuse(kid, why);
        else fetched.push({ kid, alg: (sk as { alg?: string }).alg, key, materialId: keyMaterialId(key) });
      }
      if (fetched.length === 0) throw new Error('the JWKS holds no usable signing key');
    } catch (e) {
      if (e instanceof AuthError) throw e;
      throw new AuthError('jwks_unavailable', `JWKS fetch for ${this.source.issuer} failed: ${(e as Error)?.message ?? 'error'}`);
    } finally {
      // Only a JWKS that was actually read says which keys are refused; a failed fetch says nothing about them.
      if (screened) this.logRefused(refused);
    }
    const next = new Map<string, VerificationKey[]>();
    const unnamed: VerificationKey[] = [];
    for (const k of fetched) {
      if (k.kid === undefined) unnamed.push(k);
      else next.set(k.kid, [...(next.get(k.kid) ?? []), k]);
    }
    const previous = this.all;
    const ids = (ks: readonly VerificationKey[] | undefined) => (ks ?? []).map((k) => `${k.materialId}.${k.alg ?? ''}`).join('+');
    const removed = [...this.keys.entries()].filter(([kid, ks]) => ids(next.get(kid)) !== ids(ks)).map(([kid]) => kid);
    this.keys = next;
    this.all = [...[...next.values()].flat(), ...unnamed];
    this.loadedAt = this.now();
    if (removed.length && this.options.onKeysRemoved) this.options.onKeysRemoved(this.source.issuer, removed);
    if (previous.length && setSignature(previous) !== setSignature(this.all)) this.options.onChange?.(this.source.issuer);
  }

  // Each refused key is logged when a load first sees it refused, not again at every refetch while it stays published.
  private logRefused(refused: Map<string, { kid: string; reason: string }>): void {
    for (const [id, { kid, reason }] of refused) {
      if (!this.refusedBefore.has(id)) this.options.logger?.warn(`JWKS key ${kid} of ${this.source.issuer} refused: ${reason}`);
    }
    this.refusedBefore = new Set(refused.keys());
  }

  private async jwksUri(remaining: () => number): Promise<string> {
    if (this.source.jwksUri) return this.source.jwksUri;
    if (this.resolvedJwksUri) return this.resolvedJwksUri;
    const uri = await discoverJwksUri(this.source.issuer, remaining);
    this.resolvedJwksUri = uri;
    return uri;
  }
}

// What a token could be verified with, in lookup order: kid, alg and material of every key.
function setSignature(keys: readonly VerificationKey[]): string {
  return JSON.stringify(keys.map((k) => [k.kid ?? null, k.alg ?? null, k.materialId]));
}

async function fetchJwks(uri: string, timeoutMs: number): Promise<{ keys: Record<string, unknown>[] }> {
  const doc = await fetchJson(uri, timeoutMs);
  if (!doc || typeof doc !== 'object' || !Array.isArray((doc as { keys?: unknown }).keys)) {
    throw new Error('not a JWK Set');
  }
  // Drop entries that are not objects, so jwks-rsa never sees garbage.
  return { keys: (doc as { keys: unknown[] }).keys.filter((k): k is Record<string, unknown> => !!k && typeof k === 'object' && !Array.isArray(k)) };
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
