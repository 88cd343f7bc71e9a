import { inspect } from 'node:util';
import { ClientCredentialsError } from './errors';
import { ClientAuthenticationError, clientAuthentication, type ClientAuthOptions, type ResolvedClientAuth } from '../core/client-auth';
import { parseTokenUrl, providerClientAuth } from './token-provider';
import { clean, oauthErrorCode, readLimited } from './token-endpoint';

/** The CIBA grant type (OpenID Connect CIBA Core 1.0 §10.1). */
export const CIBA_GRANT_TYPE = 'urn:openid:params:grant-type:ciba';
/** Polling interval when the authentication response names none, seconds (CIBA Core §7.3: "MUST use 5"). */
export const CIBA_DEFAULT_INTERVAL_SECONDS = 5;
/** What a `slow_down` answer adds to the interval, seconds (CIBA Core §11, as RFC 8628 §3.5). */
export const CIBA_SLOW_DOWN_SECONDS = 5;

const DEFAULT_TIMEOUT_MS = 10_000;
const MAX_BODY = 64 * 1024;
/** Longest `auth_req_id` accepted from the server (it is sent back in every poll). */
const MAX_AUTH_REQ_ID = 1024;

/** Options of {@link CibaClient}. */
/**
 * Client authentication (`clientId` of a client registered for the CIBA grant with `backchannel_token_delivery_mode:
 * poll`; `clientSecret` or `privateKey`, `authMethod`, …) is the token providers' {@link ClientAuthOptions}:
 * `client_secret_basic` (default), `client_secret_post` or `private_key_jwt` (RFC 7523), used at both endpoints.
 */
export interface CibaClientOptions extends ClientAuthOptions {
  /**
   * The authorization server's issuer. Without `backchannelAuthenticationEndpoint` and `tokenUrl`, both are read from
   * its OpenID Connect discovery document (`<issuer>/.well-known/openid-configuration`, whose `issuer` must match).
   */
  issuer?: string;
  /** `backchannel_authentication_endpoint` (CIBA Core §4). Default: from discovery. */
  backchannelAuthenticationEndpoint?: string;
  /** Token endpoint (RFC 6749 §3.2), polled with the CIBA grant. Default: from discovery. */
  tokenUrl?: string;
  /** Deadline of one HTTP request (discovery, start, one poll), milliseconds. Default 10,000. */
  requestTimeoutMs?: number;
  /**
   * Consecutive transient poll failures (network error, no answer, HTTP 5xx) tolerated before the outcome is `failed`
   * with `error: 'unavailable'`. Default 2 (the third in a row fails). Each is followed by the normal interval.
   */
  maxTransientErrors?: number;
  /** Allow plain `http:` endpoints on a non-loopback host. Default false: the secret would travel in clear. */
  allowInsecureHttp?: boolean;
  /** The `fetch` to use. Default the global `fetch`. */
  fetch?: typeof fetch;
}

/** One authentication request (CIBA Core §7.1). */
export interface CibaAuthenticationRequest {
  /** `login_hint`: who is asked, as the authorization server knows them (e.g. a user name or e-mail address). */
  loginHint: string;
  /** `binding_message` (§7.1): a short text shown on both the consumption and the authentication device. */
  bindingMessage?: string;
  /** Scopes to request. `openid` is added when missing (§7.1: it is required). */
  scopes: readonly string[];
  /** RFC 8707 `resource` indicator(s) for the access token. */
  resource?: string | readonly string[];
  /** `requested_expiry` (§7.1), seconds. Default: the server's choice. */
  requestedExpirySeconds?: number;
}

/** An accepted authentication request (CIBA Core §7.3), waiting for the user. */
export interface CibaPendingRequest {
  /** `auth_req_id`: identifies the request at the token endpoint. Not a credential by itself (polling needs client auth). */
  readonly authReqId: string;
  /** `expires_in`, seconds. */
  readonly expiresIn: number;
  /** `interval`, seconds ({@link CIBA_DEFAULT_INTERVAL_SECONDS} when the server sent none). */
  readonly interval: number;
  /** When the request was accepted, milliseconds since the epoch. */
  readonly startedAt: number;
}

/** Options of {@link CibaClient.poll}. */
export interface CibaPollOptions {
  /** Overall deadline from `startedAt`, milliseconds. Default (and upper bound): the request's `expires_in`. */
  timeoutMs?: number;
  /** Stops polling at once (outcome `aborted`), e.g. when the task is canceled. */
  signal?: AbortSignal;
}

/**
 * The access token a user's approval produced. The token is kept in a private field: `JSON.stringify`, `util.inspect`
 * and template strings show `[redacted]`, so logging the object by mistake leaks nothing. Treat {@link accessToken} as
 * a secret and drop the object when the operation it was obtained for ends.
 */
export class CibaApprovalToken {
  readonly #accessToken: string;
  readonly #idToken?: string;

  /** @internal */
  constructor(
    accessToken: string,
    idToken: string | undefined,
    /** `token_type` (`Bearer`). */
    readonly tokenType: string,
    /** Granted scopes (the response `scope`, else the requested ones). */
    readonly scopes: readonly string[],
    /** Expiry, milliseconds since the epoch (`expires_in` after the answer). */
    readonly expiresAt: number,
  ) {
    this.#accessToken = accessToken;
    this.#idToken = idToken;
    Object.freeze(this);
  }

  /** The access token. A secret. */
  get accessToken(): string {
    return this.#accessToken;
  }

  /** The ID token of the approving user, when the server issued one (it does for the `openid` scope). A secret. */
  get idToken(): string | undefined {
    return this.#idToken;
  }

  /** What logs may show. */
  toJSON(): Record<string, unknown> {
    return { tokenType: this.tokenType, scopes: this.scopes, expiresAt: this.expiresAt, accessToken: '[redacted]' };
  }

  /** @internal */
  toString(): string {
    return '[CibaApprovalToken redacted]';
  }

  /** @internal */
  [inspect.custom](): string {
    return `CibaApprovalToken ${JSON.stringify(this.toJSON())}`;
  }
}

/**
 * The end of one CIBA request:
 * - `approved`: the user approved; `token` is the access token (and ID token) for this request only.
 * - `denied`: the user (or the server's policy) refused: `access_denied` (CIBA Core §11).
 * - `expired`: `expired_token` (the server says the request expired) or `timeout` (our `timeoutMs`, or `expires_in`
 *   passed without an answer).
 * - `failed`: the request could not be made or followed: an OAuth error from either endpoint (`unknown_user_id`,
 *   `invalid_binding_message`, `invalid_client`, `invalid_scope`, `invalid_grant`, …), `unavailable` (network error, no
 *   answer, HTTP 5xx, a redirect, too many times), `invalid_response` (an answer that is no CIBA response).
 * - `aborted`: the signal fired (e.g. the task was canceled); polling stopped.
 */
export type CibaOutcome =
  | { readonly status: 'approved'; readonly authReqId: string; readonly token: CibaApprovalToken }
  | { readonly status: 'denied'; readonly error: 'access_denied'; readonly description?: string }
  | { readonly status: 'expired'; readonly error: 'expired_token' | 'timeout'; readonly description?: string }
  | { readonly status: 'failed'; readonly error: string; readonly description?: string }
  | { readonly status: 'aborted' };

/**
 * A start or discovery failure: `error` is the OAuth error code of the backchannel authentication endpoint (CIBA Core
 * §13: `unknown_user_id`, `invalid_binding_message`, `invalid_scope`, `invalid_client`, `unauthorized_client`,
 * `access_denied`, `expired_login_hint_token`, …), `unavailable` (network, timeout, 5xx, redirect) or
 * `invalid_response`. The message carries no secret.
 */
export class CibaError extends ClientCredentialsError {
  constructor(
    /** OAuth error code, or `unavailable` / `invalid_response`. */
    readonly error: string,
    message: string,
    /** `error_description` from the server, shortened, when there was one. */
    readonly description?: string,
  ) {
    super(message);
  }
}

type Json = Record<string, unknown>;

interface Endpoints {
  backchannel: string;
  token: string;
}

/**
 * OpenID Connect Client-Initiated Backchannel Authentication (CIBA Core 1.0), poll mode: ask a named user, on their own
 * device, to approve what the agent is about to do, and wait for the answer.
 *
 * - {@link start}: `POST backchannel_authentication_endpoint` with `login_hint`, `binding_message`, `scope` (with
 *   `openid`), optional `resource` / `requested_expiry`, client authentication `client_secret_basic` (default) or
 *   `client_secret_post`.
 * - {@link poll}: `POST token_endpoint` with `grant_type=urn:openid:params:grant-type:ciba` and the `auth_req_id`,
 *   first after `interval` seconds and then every `interval` seconds; `slow_down` adds 5 s for all later polls;
 *   `authorization_pending` continues; bounded by `expires_in`, by `timeoutMs` and by the `AbortSignal`.
 * - {@link authorize}: both.
 * - Endpoints: given, or discovered once from the issuer (OpenID Connect Discovery 1.0).
 * - Redirects are never followed. Logs nothing. Errors and outcomes carry no secret and no token.
 *
 * @throws ClientCredentialsError from the constructor for a bad URL or missing credentials.
 */
export class CibaClient {
  /** The client id. */
  readonly clientId: string;
  readonly #auth: ResolvedClientAuth;
  // What the last request sent (secret or assertion): removed from any server text repeated in an error.
  #redact: string[] = [];
  private readonly o: CibaClientOptions;
  private readonly fetchImpl: typeof fetch;
  private endpoints?: Promise<Endpoints>;

  constructor(o: CibaClientOptions) {
    this.#auth = providerClientAuth(o);
    const allow = o.allowInsecureHttp === true;
    if (o.backchannelAuthenticationEndpoint && o.tokenUrl) {
      this.endpoints = Promise.resolve({ backchannel: parseTokenUrl(o.backchannelAuthenticationEndpoint, allow), token: parseTokenUrl(o.tokenUrl, allow) });
    } else if (o.issuer) {
      parseTokenUrl(o.issuer, allow);
    } else {
      throw new ClientCredentialsError('CibaClient needs issuer, or both backchannelAuthenticationEndpoint and tokenUrl');
    }
    this.clientId = o.clientId;
    this.o = o;
    this.fetchImpl = o.fetch ?? fetch;
  }

  /**
   * Starts an authentication request (CIBA Core §7.1) and returns it as accepted (§7.3).
   * @throws CibaError when discovery fails or the server refuses the request.
   */
  async start(req: CibaAuthenticationRequest): Promise<CibaPendingRequest> {
    const { backchannel } = await this.resolveEndpoints();
    const form = new URLSearchParams();
    const scopes = req.scopes.includes('openid') ? req.scopes : ['openid', ...req.scopes];
    form.set('scope', scopes.join(' '));
    form.set('login_hint', req.loginHint);
    if (req.bindingMessage) form.set('binding_message', req.bindingMessage);
    for (const r of typeof req.resource === 'string' ? [req.resource] : (req.resource ?? [])) form.append('resource', r);
    if (req.requestedExpirySeconds !== undefined) form.set('requested_expiry', String(Math.max(1, Math.floor(req.requestedExpirySeconds))));
    const startedAt = Date.now();
    const r = await this.post(backchannel, form);
    if (r.kind === 'unavailable') throw new CibaError('unavailable', `backchannel authentication endpoint ${backchannel} unavailable: ${r.detail}`);
    const { status, body } = r;
    if (status < 200 || status >= 300) {
      const { error, description } = oauthError(body, this.#redact);
      throw new CibaError(
        error,
        `backchannel authentication endpoint refused the request: ${error}${description ? ` (${description})` : ''} [HTTP ${status}]`,
        description,
      );
    }
    const id = body?.auth_req_id;
    const expiresIn = positive(body?.expires_in);
    if (typeof id !== 'string' || !id || id.length > MAX_AUTH_REQ_ID || expiresIn === undefined) {
      throw new CibaError('invalid_response', 'the backchannel authentication response has no usable auth_req_id and expires_in');
    }
    return Object.freeze({ authReqId: id, expiresIn, interval: positive(body?.interval) ?? CIBA_DEFAULT_INTERVAL_SECONDS, startedAt });
  }

  /**
   * Polls the token endpoint until the request ends (CIBA Core §7.3, §10.1, §11). Never throws.
   * The deadline is `startedAt + min(expires_in, timeoutMs)`.
   */
  async poll(pending: CibaPendingRequest, o: CibaPollOptions = {}): Promise<CibaOutcome> {
    const limitMs = Math.min(pending.expiresIn * 1000, o.timeoutMs ?? Infinity);
    const deadline = pending.startedAt + limitMs;
    const byServer = o.timeoutMs === undefined || o.timeoutMs >= pending.expiresIn * 1000;
    const timedOut = (): CibaOutcome =>
      byServer
        ? { status: 'expired', error: 'timeout', description: `no answer within expires_in (${pending.expiresIn} s)` }
        : { status: 'expired', error: 'timeout', description: `no answer within ${o.timeoutMs} ms` };
    let endpoints: Endpoints;
    try {
      endpoints = await this.resolveEndpoints();
    } catch (e) {
      return failedFrom(e);
    }
    let interval = pending.interval;
    let transient = 0;
    const maxTransient = this.o.maxTransientErrors ?? 2;
    for (;;) {
      const wait = Math.min(interval * 1000, deadline - Date.now());
      if (wait <= 0 && Date.now() >= deadline) return timedOut();
      if (!(await sleep(Math.max(0, wait), o.signal))) return { status: 'aborted' };
      if (Date.now() >= deadline) return timedOut();
      const form = new URLSearchParams({ grant_type: CIBA_GRANT_TYPE, auth_req_id: pending.authReqId });
      const r = await this.post(endpoints.token, form, o.signal, deadline);
      if (o.signal?.aborted) return { status: 'aborted' };
      if (r.kind === 'unavailable') {
        if (++transient > maxTransient) return { status: 'failed', error: 'unavailable', description: `token endpoint unavailable: ${r.detail}` };
        continue;
      }
      transient = 0;
      const { status, body } = r;
      if (status >= 200 && status < 300) {
        const token = typeof body?.access_token === 'string' && body.access_token ? body.access_token : undefined;
        if (!token) return { status: 'failed', error: 'invalid_response', description: 'no access_token in the token response' };
        const expiresIn = positive(body?.expires_in) ?? 60;
        const scope = typeof body?.scope === 'string' ? body.scope.split(' ').filter(Boolean) : [];
        const idToken = typeof body?.id_token === 'string' ? body.id_token : undefined;
        const type = typeof body?.token_type === 'string' ? clean(body.token_type, this.#redact) : 'Bearer';
        return {
          status: 'approved',
          authReqId: pending.authReqId,
          token: new CibaApprovalToken(token, idToken, type, Object.freeze(scope), Date.now() + expiresIn * 1000),
        };
      }
      const { error, description } = oauthError(body, this.#redact);
      switch (error) {
        case 'authorization_pending':
          continue;
        case 'slow_down':
          interval += CIBA_SLOW_DOWN_SECONDS;
          continue;
        case 'access_denied':
          return { status: 'denied', error, ...(description ? { description } : {}) };
        case 'expired_token':
          return { status: 'expired', error, ...(description ? { description } : {}) };
        default:
          return { status: 'failed', error, ...(description ? { description } : {}) };
      }
    }
  }

  /** {@link start}, then {@link poll}. Never throws: a start failure is a `failed` outcome. */
  async authorize(req: CibaAuthenticationRequest, o: CibaPollOptions = {}): Promise<CibaOutcome> {
    let pending: CibaPendingRequest;
    try {
      pending = await this.start(req);
    } catch (e) {
      return failedFrom(e);
    }
    return this.poll(pending, o);
  }

  /** The endpoints (discovered once; a failed discovery is retried on the next call). */
  private resolveEndpoints(): Promise<Endpoints> {
    if (!this.endpoints) {
      const p = this.discover();
      this.endpoints = p;
      p.catch(() => {
        if (this.endpoints === p) this.endpoints = undefined;
      });
    }
    return this.endpoints;
  }

  private async discover(): Promise<Endpoints> {
    const issuer = this.o.issuer!.replace(/\/+$/, '');
    const url = `${issuer}/.well-known/openid-configuration`;
    let body: Json | undefined;
    try {
      const res = await this.fetchImpl(url, { headers: { accept: 'application/json' }, redirect: 'manual', signal: AbortSignal.timeout(this.timeoutMs()) });
      const text = await readLimited(res, 512 * 1024);
      if (res.status !== 200) throw new Error(`HTTP ${res.status}`);
      body = parseObject(text);
    } catch (e) {
      throw new CibaError('unavailable', `OpenID Connect discovery at ${url} failed: ${clean((e as Error)?.message ?? 'fetch failed', this.#redact)}`);
    }
    if (!body || String(body.issuer ?? '').replace(/\/+$/, '') !== issuer)
      throw new CibaError('invalid_response', `${url} is not the discovery document of ${issuer}`);
    const allow = this.o.allowInsecureHttp === true;
    const bc = this.o.backchannelAuthenticationEndpoint ?? body.backchannel_authentication_endpoint;
    const token = this.o.tokenUrl ?? body.token_endpoint;
    if (typeof bc !== 'string' || typeof token !== 'string')
      throw new CibaError('invalid_response', `${issuer} advertises no backchannel_authentication_endpoint (CIBA)`);
    try {
      return { backchannel: parseTokenUrl(bc, allow), token: parseTokenUrl(token, allow) };
    } catch (e) {
      throw new CibaError('invalid_response', (e as Error).message);
    }
  }

  private timeoutMs(): number {
    return this.o.requestTimeoutMs ?? DEFAULT_TIMEOUT_MS;
  }

  /** One authenticated form POST; `unavailable` for network errors, timeouts, redirects and 5xx. */
  private async post(
    url: string,
    form: URLSearchParams,
    signal?: AbortSignal,
    deadline = Infinity,
  ): Promise<{ kind: 'answer'; status: number; body?: Json } | { kind: 'unavailable'; detail: string }> {
    let creds;
    try {
      creds = await clientAuthentication(this.#auth, url, Math.min(this.timeoutMs(), deadline - Date.now()));
    } catch (e) {
      if (e instanceof ClientAuthenticationError) throw new CibaError('invalid_client', `client authentication failed: ${e.message}`);
      throw e;
    }
    this.#redact = creds.redact;
    const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json', ...creds.headers };
    for (const [k, v] of Object.entries(creds.params)) form.set(k, v);
    const ms = Math.max(1, Math.min(this.timeoutMs(), deadline - Date.now()));
    const signals = [AbortSignal.timeout(ms), ...(signal ? [signal] : [])];
    try {
      const res = await this.fetchImpl(url, { method: 'POST', headers, body: form.toString(), redirect: 'manual', signal: AbortSignal.any(signals) });
      const text = await readLimited(res, MAX_BODY);
      if (res.status >= 300 && res.status < 400) return { kind: 'unavailable', detail: `redirect [HTTP ${res.status}] not followed` };
      if (res.status >= 500) return { kind: 'unavailable', detail: `HTTP ${res.status}` };
      return { kind: 'answer', status: res.status, body: parseObject(text) };
    } catch (e) {
      const err = e as { name?: string; message?: string; cause?: { code?: string } };
      if (err?.name === 'TimeoutError') return { kind: 'unavailable', detail: `no answer within ${ms} ms` };
      return { kind: 'unavailable', detail: clean(err?.cause?.code ?? err?.message ?? 'fetch failed', this.#redact) };
    }
  }

  /** Never shows the secret when inspected. */
  toJSON(): Record<string, unknown> {
    return { clientId: this.clientId, issuer: this.o.issuer, authMethod: this.#auth.method, credential: '[redacted]' };
  }

  /** @internal */
  [inspect.custom](): string {
    return `CibaClient ${JSON.stringify(this.toJSON())}`;
  }
}

function parseObject(text: string): Json | undefined {
  try {
    const j = JSON.parse(text) as unknown;
    return j && typeof j === 'object' && !Array.isArray(j) ? (j as Json) : undefined;
  } catch {
    return undefined;
  }
}

function positive(v: unknown): number | undefined {
  const n = typeof v === 'string' && /^\d+$/.test(v) ? Number(v) : v;
  return typeof n === 'number' && Number.isFinite(n) && n > 0 ? n : undefined;
}

function oauthError(body: Json | undefined, secret: readonly string[]): { error: string; description?: string } {
  const error = oauthErrorCode(body) ?? 'invalid_response';
  const description = typeof body?.error_description === 'string' ? clean(body.error_description, secret) : undefined;
  return { error, ...(description ? { description } : {}) };
}

function failedFrom(e: unknown): CibaOutcome {
  if (e instanceof CibaError) return { status: 'failed', error: e.error, description: e.description ?? e.message };
  return { status: 'failed', error: 'invalid_response', description: 'the CIBA request could not be made' };
}

/** Waits `ms`; `false` when the signal fired first. */
function sleep(ms: number, signal?: AbortSignal): Promise<boolean> {
  if (signal?.aborted) return Promise.resolve(false);
  return new Promise((resolve) => {
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve(true);
    }, ms);
    const onAbort = () => {
      clearTimeout(t);
      resolve(false);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
