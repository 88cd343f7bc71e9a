import { resolveClientAuth, type ClientAuthMethod, type ClientAuthOptions, type ResolvedClientAuth } from '../core/client-auth';
import { DPoPProofSigner, type DPoPClientOptions } from './dpop';
import { ClientCredentialsError, TokenEndpointUnavailableError } from './errors';
import { postTokenRequest, RESERVED_PARAMS } from './token-endpoint';

export { formEncode, type ClientAuthMethod } from '../core/client-auth';

/**
 * How a client authenticates at the token endpoint: `clientId` plus exactly one of `clientSecret`
 * (`client_secret_basic` by default, or `client_secret_post`) and `privateKey` (`private_key_jwt`, RFC 7523). Either may
 * be a function, called for every token request (never cached), so a rotated secret or key takes effect without a
 * restart; after an `invalid_client` answer the function is called again and the request retried once.
 * See {@link ClientAuthOptions} for each option and its default.
 */
export type ClientCredentialsAuth = ClientAuthOptions;

/** The {@link ClientAuthOptions} error of a provider constructor, named after the option. */
const configError = (option: string, problem: string) => new ClientCredentialsError(`${option} ${problem}`);

/** Validates the client authentication of a provider. @internal */
export function providerClientAuth(o: ClientAuthOptions): ResolvedClientAuth {
  return resolveClientAuth(o, configError);
}

/** Options of {@link ClientCredentialsTokenProvider}. */
export interface ClientCredentialsOptions extends ClientAuthOptions {
  /** Token endpoint (RFC 6749 §3.2). Must be `https:`, or `http:` on a loopback host (127.0.0.0/8, ::1, localhost), unless `allowInsecureHttp`. */
  tokenUrl: string;
  /** Default scopes to request (RFC 6749 §3.3); overridable per call. Default none (no `scope` parameter is sent). */
  scopes?: readonly string[];
  /** Default RFC 8707 `resource` indicator(s) (absolute URIs); overridable per call. */
  resource?: string | readonly string[];
  /** Default `audience` parameter (Auth0 and some others, instead of `resource`); overridable per call. */
  audience?: string;
  /**
   * Client authentication. Default `'private_key_jwt'` with `privateKey`, else `'client_secret_basic'` (RFC 6749 §2.3.1:
   * id and secret form-urlencoded, then Basic).
   */
  authMethod?: ClientAuthMethod;
  /** Deadline for one token request, milliseconds. Default 10,000. */
  timeoutMs?: number;
  /** Upper bound of the refresh margin, seconds. Default 60. */
  maxRefreshMarginSeconds?: number;
  /** Refresh margin as a fraction of the token lifetime. Default 0.1. */
  refreshMarginRatio?: number;
  /** Lifetime assumed when the response has no `expires_in` and the token is not a JWT with `exp`, seconds. Default 60. */
  defaultExpiresInSeconds?: number;
  /** Extra form parameters sent with every request (e.g. `{ organization: 'x' }`). Cannot override the grant or credentials. */
  extraParams?: Readonly<Record<string, string>>;
  /** Allow a plain-`http:` token endpoint on a non-loopback host. Default false: the secret would travel in clear. */
  allowInsecureHttp?: boolean;
  /** The `fetch` to use. Default the global `fetch`. */
  fetch?: typeof fetch;
  /**
   * Request DPoP-bound access tokens (RFC 9449): `true` for an ES256 key pair generated in memory, or the algorithm and/or
   * key pair to use. Every token request then carries a `DPoP` proof (§5), the token must come back with
   * `token_type: DPoP`, and resource requests need a fresh proof each ({@link a2aAuthFetch} signs them). Default off
   * (bearer tokens).
   */
  dpop?: boolean | DPoPClientOptions | DPoPProofSigner;
}

/** Per-call overrides of {@link ClientCredentialsTokenProvider.getToken}; each part of the cache key. */
export interface TokenRequest {
  /** Scopes to request. Default: the provider's `scopes`. Order does not matter (the cache key sorts them). */
  scopes?: readonly string[];
  /** RFC 8707 `resource`. Default: the provider's `resource`. */
  resource?: string | readonly string[];
  /** `audience`. Default: the provider's `audience`. */
  audience?: string;
}

/** An access token and what is known about it. */
export interface AccessToken {
  /** The access token (RFC 6750 bearer, or DPoP-bound per RFC 9449). Treat as a secret. */
  readonly accessToken: string;
  /** `token_type`: `Bearer`, or `DPoP` for a provider with `dpop` (RFC 9449 §5). Also the `Authorization` scheme to send it with. */
  readonly tokenType: 'Bearer' | 'DPoP';
  /** Granted scopes: the response `scope` when present (RFC 6749 §5.1), else the requested ones. */
  readonly scopes: readonly string[];
  /** When the token was requested, milliseconds since the epoch (lifetimes count from here, conservatively). */
  readonly obtainedAt: number;
  /** Expiry, milliseconds since the epoch: `obtainedAt + expires_in`. */
  readonly expiresAt: number;
  /** When the provider stops reusing it and fetches a new one, milliseconds since the epoch: `expiresAt - margin`. */
  readonly refreshAt: number;
}

interface CacheEntry {
  token?: AccessToken;
  inflight?: Promise<AccessToken>;
}

const DEFAULT_TIMEOUT_MS = 10_000;

/**
 * The refresh margin for a token lifetime, in seconds: `min(maxMargin, ratio × lifetime)`.
 * 3600 s → 60 s; 300 s → 30 s; 60 s → 6 s; 2 s → 0.2 s. So a short token is still reused for 90% of its life,
 * and a long one is refreshed a minute early (room for clock skew and the request itself).
 */
export function refreshMarginSeconds(lifetimeSeconds: number, maxMarginSeconds = 60, ratio = 0.1): number {
  return Math.max(0, Math.min(maxMarginSeconds, lifetimeSeconds * ratio));
}

/**
 * OAuth 2.0 client-credentials grant (RFC 6749 §4.4) for a calling agent, with a token cache.
 *
 * - `POST tokenUrl` with `grant_type=client_credentials`, `scope` (space-separated), optional `resource` (RFC 8707,
 *   repeatable) or `audience`; client authentication `client_secret_basic` (default), `client_secret_post` or
 *   `private_key_jwt` (RFC 7523, with `privateKey`).
 * - A `clientSecret` or `privateKey` function is called for every token request; after `invalid_client` (RFC 6749
 *   §5.2) it is called once more and the request retried once (rotation without a restart).
 * - Caches one token per (tokenUrl, clientId, sorted scopes, resource, audience); a provider has one tokenUrl and
 *   client, and {@link getToken} takes the rest per call.
 * - Reuses a token until `expiresAt - margin`, margin = {@link refreshMarginSeconds} (min(60 s, 10% of lifetime)).
 * - Concurrent callers of the same key share one in-flight request.
 * - If a refresh fails for a transient reason ({@link TokenEndpointUnavailableError}) while the cached token has not
 *   expired yet, the cached token is returned.
 * - {@link invalidate} drops a token the resource server rejected (HTTP 401), so the next call fetches a new one.
 * - Redirects from the token endpoint are never followed (credentials must not be replayed to another URL).
 * - With `dpop` (RFC 9449): one key pair per provider; every token request carries a fresh `DPoP` proof (htm `POST`, htu
 *   the token URL, no `ath`, §5); a `400 use_dpop_nonce` answer with a `DPoP-Nonce` header is retried once with that
 *   nonce, which is remembered for the next requests (§8); the answer must be `token_type: DPoP`. DPoP-bound and bearer
 *   tokens never share a cache entry.
 * - Logs nothing. Errors carry no secret and no token.
 *
 * @throws ClientCredentialsError from the constructor for a bad `tokenUrl` or missing credentials.
 */
export class ClientCredentialsTokenProvider {
  /** The token endpoint. */
  readonly tokenUrl: string;
  /** The client id. */
  readonly clientId: string;
  private readonly auth: ResolvedClientAuth;
  private readonly opts: Omit<ClientCredentialsOptions, 'clientSecret' | 'privateKey'>;
  private readonly cache = new Map<string, CacheEntry>();
  private readonly fetchImpl: typeof fetch;
  /** Number of token requests sent (for metrics and tests), nonce retries included. */
  requestCount = 0;
  /** The DPoP proof signer (its key pair and the nonces seen) when the provider requests DPoP-bound tokens; else `undefined`. */
  readonly dpop?: DPoPProofSigner;

  constructor(options: ClientCredentialsOptions) {
    this.auth = providerClientAuth(options);
    const url = parseTokenUrl(options.tokenUrl, options.allowInsecureHttp === true);
    this.tokenUrl = url;
    this.clientId = options.clientId;
    // Keep the credential out of `opts` so inspecting the provider (or logging it by mistake) does not show it.
    const { clientSecret: _s, privateKey: _k, ...rest } = options;
    void _s;
    void _k;
    this.opts = rest;
    this.fetchImpl = options.fetch ?? fetch;
    const d = options.dpop;
    if (d instanceof DPoPProofSigner) this.dpop = d;
    else if (d) this.dpop = new DPoPProofSigner(d === true ? {} : d);
    Object.defineProperty(this, 'auth', { enumerable: false });
  }

  /**
   * A valid access token for the request (from the cache when fresh).
   * @throws TokenEndpointError when the endpoint refuses (e.g. `invalid_client`, `invalid_scope`).
   * @throws TokenEndpointUnavailableError on network error, timeout, redirect or 5xx.
   */
  async getToken(req: TokenRequest = {}): Promise<AccessToken> {
    const p = this.params(req);
    const key = cacheKey(p, this.dpop ? 'DPoP' : 'Bearer');
    let e = this.cache.get(key);
    if (!e) this.cache.set(key, (e = {}));
    const now = Date.now();
    if (e.token && now < e.token.refreshAt) return e.token;
    if (e.inflight) return e.inflight;
    const entry = e;
    const stale = e.token;
    const inflight = this.request(p).then(
      (t) => {
        entry.token = t;
        return t;
      },
      (err: unknown) => {
        // A transient failure while the old token is still valid: keep serving it.
        if (err instanceof TokenEndpointUnavailableError && stale && Date.now() < stale.expiresAt) return stale;
        throw err;
      },
    );
    entry.inflight = inflight;
    try {
      return await inflight;
    } finally {
      if (entry.inflight === inflight) entry.inflight = undefined;
    }
  }

  /** The bearer token string only; see {@link getToken}. */
  async getAccessToken(req: TokenRequest = {}): Promise<string> {
    return (await this.getToken(req)).accessToken;
  }

  /**
   * Forgets a cached token, e.g. after the resource server answered 401 `invalid_token` (RFC 6750 §3.1).
   * With `rejected`, only a cached token equal to it is dropped, so many callers reporting the same rejected token
   * cause one refresh, not many. Without arguments, forgets every cached token.
   */
  invalidate(rejected?: string): void {
    for (const e of this.cache.values()) {
      if (rejected === undefined || e.token?.accessToken === rejected) e.token = undefined;
    }
  }

  private params(req: TokenRequest): { scopes: string[]; resource: string[]; audience?: string } {
    const scopes = [...new Set(req.scopes ?? this.opts.scopes ?? [])];
    for (const s of scopes) {
      // RFC 6749 §3.3 scope-token: %x21 / %x23-5B / %x5D-7E
      if (!/^[\x21\x23-\x5b\x5d-\x7e]+$/.test(s)) throw new ClientCredentialsError(`invalid scope ${JSON.stringify(s)}`);
    }
    const r = req.resource ?? this.opts.resource;
    const resource = r === undefined ? [] : typeof r === 'string' ? [r] : [...r];
    return { scopes, resource, audience: req.audience ?? this.opts.audience };
  }

  private async request(p: { scopes: string[]; resource: string[]; audience?: string }): Promise<AccessToken> {
    const form = new URLSearchParams();
    for (const [k, v] of Object.entries(this.opts.extraParams ?? {})) if (!RESERVED_PARAMS.includes(k)) form.set(k, v);
    form.set('grant_type', 'client_credentials');
    if (p.scopes.length) form.set('scope', p.scopes.join(' '));
    for (const r of p.resource) form.append('resource', r);
    if (p.audience) form.set('audience', p.audience);
    const {
      body,
      accessToken,
      obtainedAt,
      fail,
      clean: scrub,
    } = await postTokenRequest(
      {
        tokenUrl: this.tokenUrl,
        auth: this.auth,
        fetch: this.fetchImpl,
        timeoutMs: this.opts.timeoutMs ?? DEFAULT_TIMEOUT_MS,
        dpop: this.dpop,
        counted: () => this.requestCount++,
      },
      form,
    );
    const rawType = typeof body.token_type === 'string' ? body.token_type : 'Bearer';
    // RFC 9449 §5.1: a DPoP request must come back as token_type DPoP; a Bearer answer would silently drop the binding.
    const tokenType = this.dpop ? 'DPoP' : 'Bearer';
    if (rawType.toLowerCase() !== tokenType.toLowerCase()) {
      throw fail('invalid_token_response', `unsupported token_type ${JSON.stringify(scrub(rawType))}${this.dpop ? ' (a DPoP-bound token was requested)' : ''}`);
    }

    const lifetime = lifetimeSeconds(body.expires_in, accessToken, obtainedAt, this.opts.defaultExpiresInSeconds ?? 60);
    const margin = refreshMarginSeconds(lifetime, this.opts.maxRefreshMarginSeconds ?? 60, this.opts.refreshMarginRatio ?? 0.1);
    const granted = typeof body.scope === 'string' ? body.scope.split(' ').filter(Boolean) : p.scopes;
    return Object.freeze({
      accessToken,
      tokenType,
      scopes: Object.freeze(granted),
      obtainedAt,
      expiresAt: obtainedAt + lifetime * 1000,
      refreshAt: obtainedAt + (lifetime - margin) * 1000,
    });
  }

  /** Never shows the secret or tokens when inspected. */
  toJSON(): Record<string, unknown> {
    return { tokenUrl: this.tokenUrl, clientId: this.clientId };
  }
}

// The token type is part of the key: a DPoP-bound token and a bearer token for the same request are never interchangeable.
function cacheKey(p: { scopes: string[]; resource: string[]; audience?: string }, tokenType: 'Bearer' | 'DPoP'): string {
  return JSON.stringify([tokenType, [...p.scopes].sort(), [...p.resource].sort(), p.audience ?? null]);
}

/** The token endpoint URL, checked (absolute, no credentials, https or loopback http). Shared with the token exchange. @internal */
export function parseTokenUrl(raw: string, allowHttp: boolean): string {
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    throw new ClientCredentialsError(`tokenUrl is not an absolute URL: ${JSON.stringify(String(raw).slice(0, 200))}`);
  }
  if (u.username || u.password) throw new ClientCredentialsError('tokenUrl must not contain credentials');
  if (u.protocol === 'https:') return u.href;
  if (u.protocol === 'http:' && (allowHttp || isLoopback(u.hostname))) return u.href;
  throw new ClientCredentialsError(`tokenUrl must use https (got ${u.protocol}//${u.host}); http is only allowed on loopback or with allowInsecureHttp`);
}

/** Whether a URL host is a loopback address (127.0.0.0/8, ::1, localhost). */
export function isLoopback(hostname: string): boolean {
  const h = hostname.replace(/^\[|\]$/g, '').toLowerCase();
  return h === 'localhost' || h === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h);
}

/**
 * Token lifetime in seconds: `expires_in` (RFC 6749 §5.1) when it is a positive number, else the JWT `exp`
 * (read without verification, only to time the cache), else the default. Shared with the token-exchange provider.
 * @internal
 */
export function lifetimeSeconds(expiresIn: unknown, token: string, obtainedAt: number, fallback: number): number {
  const n = typeof expiresIn === 'string' && /^\d+$/.test(expiresIn) ? Number(expiresIn) : expiresIn;
  if (typeof n === 'number' && Number.isFinite(n) && n > 0) return n;
  const parts = token.split('.');
  if (parts.length === 3) {
    try {
      const exp = (JSON.parse(Buffer.from(parts[1], 'base64url').toString('utf8')) as { exp?: unknown }).exp;
      if (typeof exp === 'number' && exp * 1000 > obtainedAt) return exp - obtainedAt / 1000;
    } catch {
      /* not a JWT */
    }
  }
  return fallback;
}
