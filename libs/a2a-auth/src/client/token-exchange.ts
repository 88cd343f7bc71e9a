import { createHash } from 'node:crypto';
import type { ClientAuthMethod, ClientAuthOptions, ResolvedClientAuth } from '../core/client-auth';
import { ClientCredentialsError } from './errors';
import { postTokenRequest } from './token-endpoint';
import {
  lifetimeSeconds,
  parseTokenUrl,
  providerClientAuth,
  refreshMarginSeconds,
  type AccessToken,
  type ClientCredentialsTokenProvider,
  type TokenRequest,
} from './token-provider';

/** RFC 8693 §2.1 `grant_type` of a token exchange. */
export const TOKEN_EXCHANGE_GRANT_TYPE = 'urn:ietf:params:oauth:grant-type:token-exchange';
/** RFC 8693 §3 token type identifier of an OAuth 2.0 access token (the `subject_token_type` and `actor_token_type` sent). */
export const ACCESS_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:access_token';
/** RFC 8693 §3 token type identifier of a JWT; accepted as an `issued_token_type` too. */
export const JWT_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:jwt';

/** Largest subject token accepted, characters (as the resource server's default `maxTokenLength`). */
const MAX_SUBJECT_TOKEN = 8192;
const DEFAULT_TIMEOUT_MS = 10_000;

/** Options of {@link TokenExchangeProvider}. */
export interface TokenExchangeOptions extends ClientAuthOptions {
  /** Token endpoint (RFC 6749 §3.2). `https:`, or `http:` on a loopback host, unless `allowInsecureHttp`. */
  tokenUrl: string;
  /** Client authentication. Default `'private_key_jwt'` with `privateKey`, else `'client_secret_basic'`. */
  authMethod?: ClientAuthMethod;
  /**
   * Send the agent's own token as `actor_token` (RFC 8693 §2.1), from this provider (for the same token endpoint).
   * Default none: the authorization server takes the authenticated client as the actor.
   */
  actorTokenProvider?: ClientCredentialsTokenProvider;
  /** The token request of the actor token. Default: the actor provider's defaults. */
  actorTokenRequest?: TokenRequest;
  /** Default scopes to request. Default none (no `scope` parameter: the server decides). */
  scopes?: readonly string[];
  /** Default RFC 8707 / RFC 8693 `resource` (absolute URIs). */
  resource?: string | readonly string[];
  /** Default RFC 8693 `audience`. */
  audience?: string;
  /** Deadline for one request, milliseconds. Default 10,000. */
  timeoutMs?: number;
  /** Upper bound of the refresh margin, seconds. Default 60. */
  maxRefreshMarginSeconds?: number;
  /** Refresh margin as a fraction of the token lifetime. Default 0.1. */
  refreshMarginRatio?: number;
  /** Lifetime assumed when neither `expires_in` nor a JWT `exp` tells it, seconds. Default 60. */
  defaultExpiresInSeconds?: number;
  /** Most cached exchanged tokens (one per subject token, target and scopes); the oldest is dropped first. Default 1,000. */
  maxEntries?: number;
  /** Allow a plain-`http:` token endpoint on a non-loopback host. Default false. */
  allowInsecureHttp?: boolean;
  /** The `fetch` to use. Default the global `fetch`. */
  fetch?: typeof fetch;
}

/** One exchange: the token to act on behalf of, and per-call overrides of the target and scopes. */
export interface TokenExchangeRequest extends TokenRequest {
  /**
   * The bearer token of the request being served (RFC 8693 §2.1 `subject_token`). Sent to the token endpoint only;
   * the provider keeps its SHA-256 (as the cache key), never the token.
   */
  subjectToken: string;
}

interface Entry {
  token?: AccessToken;
  inflight?: Promise<AccessToken>;
}

/**
 * OAuth 2.0 Token Exchange (RFC 8693 §2) for an agent acting on behalf of its caller: trades the caller's access token
 * (`subject_token`, type `urn:ietf:params:oauth:token-type:access_token`) for a token for a downstream agent
 * (`resource` or `audience`, `scope`), optionally with the agent's own client-credentials token as `actor_token`.
 *
 * - Caches one token per (SHA-256 of the subject token, resource, audience, sorted scopes), at most `maxEntries`;
 *   a token is reused until its refresh time and never past the subject token's own `exp` (read from it when it is
 *   a JWT) nor the issued token's.
 * - Concurrent calls with the same key share one request.
 * - The response must be a `Bearer` access token: `issued_token_type` (required, RFC 8693 §2.2.1) must be
 *   `…:access_token` or `…:jwt`.
 * - Errors are those of {@link ClientCredentialsTokenProvider}: {@link TokenEndpointError} (e.g. `invalid_grant` for
 *   a subject token the server does not accept, `invalid_target`, `invalid_scope`), {@link TokenEndpointUnavailableError}
 *   (network, timeout, redirect, 5xx), {@link ClientCredentialsError} for bad input. None carries a token or the secret.
 * - Redirects are never followed; nothing is logged.
 *
 * @throws ClientCredentialsError from the constructor for a bad `tokenUrl`, missing credentials or `maxEntries`.
 */
export class TokenExchangeProvider {
  /** The token endpoint. */
  readonly tokenUrl: string;
  /** The client id. */
  readonly clientId: string;
  /** Number of exchange requests sent (for metrics and tests). */
  requestCount = 0;
  private readonly auth: ResolvedClientAuth;
  private readonly opts: Omit<TokenExchangeOptions, 'clientSecret' | 'privateKey'>;
  private readonly cache = new Map<string, Entry>();
  private readonly fetchImpl: typeof fetch;
  private readonly maxEntries: number;

  constructor(options: TokenExchangeOptions) {
    this.auth = providerClientAuth(options);
    this.tokenUrl = parseTokenUrl(options.tokenUrl, options.allowInsecureHttp === true);
    this.clientId = options.clientId;
    const { clientSecret: _s, privateKey: _k, ...rest } = options;
    void _s;
    void _k;
    this.opts = rest;
    this.fetchImpl = options.fetch ?? fetch;
    this.maxEntries = options.maxEntries ?? 1000;
    if (!Number.isInteger(this.maxEntries) || this.maxEntries < 1) throw new ClientCredentialsError('maxEntries must be a positive integer');
    Object.defineProperty(this, 'auth', { enumerable: false });
  }

  /**
   * A token to call the target on behalf of the subject token's holder (from the cache when fresh).
   * @throws ClientCredentialsError for an empty, oversized or expired subject token, or an invalid scope.
   * @throws TokenEndpointError, TokenEndpointUnavailableError as described on the class.
   */
  async getToken(req: TokenExchangeRequest): Promise<AccessToken> {
    const subject = req?.subjectToken;
    if (typeof subject !== 'string' || subject === '' || subject.length > MAX_SUBJECT_TOKEN || /\s/.test(subject)) {
      throw new ClientCredentialsError(`subjectToken must be a non-empty token of at most ${MAX_SUBJECT_TOKEN} characters without whitespace`);
    }
    const subjectExp = jwtExpMs(subject);
    const now = Date.now();
    if (subjectExp !== undefined && subjectExp <= now) throw new ClientCredentialsError('subjectToken has expired');
    const p = this.params(req);
    const key = JSON.stringify([createHash('sha256').update(subject).digest('base64url'), p.resource, p.audience ?? null, [...p.scopes].sort()]);
    let e = this.cache.get(key);
    if (e && e.token && now < e.token.refreshAt) return e.token;
    if (e?.inflight) return e.inflight;
    if (!e) {
      this.evict(now);
      this.cache.set(key, (e = {}));
    }
    const entry = e;
    const inflight = this.request(subject, subjectExp, p).then((t) => (entry.token = t));
    entry.inflight = inflight;
    try {
      return await inflight;
    } catch (err) {
      if (!entry.token) this.cache.delete(key);
      throw err;
    } finally {
      if (entry.inflight === inflight) entry.inflight = undefined;
    }
  }

  /** The bearer token string only; see {@link getToken}. */
  async getAccessToken(req: TokenExchangeRequest): Promise<string> {
    return (await this.getToken(req)).accessToken;
  }

  /** Forgets a cached token the resource server rejected (only an equal one), or every token without an argument. */
  invalidate(rejected?: string): void {
    for (const e of this.cache.values()) {
      if (rejected === undefined || e.token?.accessToken === rejected) e.token = undefined;
    }
  }

  /** Never shows the secret or tokens when inspected. */
  toJSON(): Record<string, unknown> {
    return { tokenUrl: this.tokenUrl, clientId: this.clientId };
  }

  // Expired entries go first, then the oldest ones, so the cache never grows past maxEntries.
  private evict(now: number): void {
    if (this.cache.size < this.maxEntries) return;
    for (const [k, e] of this.cache) if (!e.inflight && (!e.token || e.token.expiresAt <= now)) this.cache.delete(k);
    for (const k of this.cache.keys()) {
      if (this.cache.size < this.maxEntries) break;
      this.cache.delete(k);
    }
  }

  private params(req: TokenRequest): { scopes: string[]; resource: string[]; audience?: string } {
    const scopes = [...new Set(req.scopes ?? this.opts.scopes ?? [])];
    for (const s of scopes) {
      if (!/^[\x21\x23-\x5b\x5d-\x7e]+$/.test(s)) throw new ClientCredentialsError(`invalid scope ${JSON.stringify(s)}`);
    }
    const r = req.resource ?? this.opts.resource;
    const resource = r === undefined ? [] : typeof r === 'string' ? [r] : [...r];
    return { scopes, resource, audience: req.audience ?? this.opts.audience };
  }

  private async request(subject: string, subjectExp: number | undefined, p: { scopes: string[]; resource: string[]; audience?: string }): Promise<AccessToken> {
    const form = new URLSearchParams();
    form.set('grant_type', TOKEN_EXCHANGE_GRANT_TYPE);
    form.set('subject_token', subject);
    form.set('subject_token_type', ACCESS_TOKEN_TYPE);
    const redact = [subject];
    if (this.opts.actorTokenProvider) {
      const actor = await this.opts.actorTokenProvider.getAccessToken(this.opts.actorTokenRequest ?? {});
      redact.push(actor);
      form.set('actor_token', actor);
      form.set('actor_token_type', ACCESS_TOKEN_TYPE);
    }
    for (const r of p.resource) form.append('resource', r);
    if (p.audience) form.set('audience', p.audience);
    if (p.scopes.length) form.set('scope', p.scopes.join(' '));
    // The subject and actor tokens are secrets as much as the client's: keep them out of any server text we repeat.
    const { body, accessToken, obtainedAt, fail } = await postTokenRequest(
      {
        tokenUrl: this.tokenUrl,
        auth: this.auth,
        fetch: this.fetchImpl,
        timeoutMs: this.opts.timeoutMs ?? DEFAULT_TIMEOUT_MS,
        counted: () => this.requestCount++,
      },
      form,
      redact,
    );
    const issued = body.issued_token_type;
    if (issued !== ACCESS_TOKEN_TYPE && issued !== JWT_TOKEN_TYPE) throw fail('invalid_token_response', 'issued_token_type is not an access token');
    const tokenType = typeof body.token_type === 'string' ? body.token_type : '';
    if (tokenType.toLowerCase() !== 'bearer') throw fail('invalid_token_response', 'token_type is not Bearer');

    let lifetime = lifetimeSeconds(body.expires_in, accessToken, obtainedAt, this.opts.defaultExpiresInSeconds ?? 60);
    // Never past the subject token: the exchanged token speaks for a caller whose own token ends then.
    if (subjectExp !== undefined) lifetime = Math.min(lifetime, (subjectExp - obtainedAt) / 1000);
    const margin = refreshMarginSeconds(lifetime, this.opts.maxRefreshMarginSeconds ?? 60, this.opts.refreshMarginRatio ?? 0.1);
    const granted = typeof body.scope === 'string' ? body.scope.split(' ').filter(Boolean) : p.scopes;
    return Object.freeze({
      accessToken,
      tokenType: 'Bearer' as const,
      scopes: Object.freeze(granted),
      obtainedAt,
      expiresAt: obtainedAt + lifetime * 1000,
      refreshAt: obtainedAt + (lifetime - margin) * 1000,
    });
  }
}

// The subject token's `exp` in milliseconds, read without verification (only to bound the cache); undefined when it is
// not a JWT with a numeric exp.
function jwtExpMs(token: string): number | undefined {
  const parts = token.split('.');
  if (parts.length !== 3) return undefined;
  try {
    const exp = (JSON.parse(Buffer.from(parts[1], 'base64url').toString('utf8')) as { exp?: unknown }).exp;
    return typeof exp === 'number' && Number.isFinite(exp) ? exp * 1000 : undefined;
  } catch {
    return undefined;
  }
}
