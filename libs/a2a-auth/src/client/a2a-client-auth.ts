import type { Message, SendMessageRequest, StreamResponse, Task } from '@a2a-js/sdk';
import type { AuthenticationHandler, Client, ClientFactory } from '@a2a-js/sdk/client';
import { sendMessageStreamWithStepUp, sendMessageWithStepUp } from './in-task';
import { sdkClient } from './sdk';
import { bearerDestinationCheck, httpOrigin, type BearerDestinationOptions } from './destinations';
import { isUseDpopNonceChallenge, type DPoPProofSigner } from './dpop';
import { discoverAgentAuth, type DiscoveredAgentAuth, type DiscoveryOptions } from './discovery';
import { ClientCredentialsError, InsufficientScopeError, UntrustedDestinationError } from './errors';
import { insufficientScopeChallenge, planStepUp } from './step-up';
import type { AccessToken, ClientCredentialsOptions, ClientCredentialsTokenProvider, TokenRequest } from './token-provider';
import { TokenExchangeProvider } from './token-exchange';

/**
 * Where the SDK handler gets bearer tokens: a {@link ClientCredentialsTokenProvider}, or any source with the same two
 * methods (e.g. a {@link TokenExchangeProvider} bound to one subject token, as {@link connectA2AAgent} builds for
 * `onBehalfOf`).
 */
export interface BearerTokenSource {
  /** A valid access token for the request, with its `token_type` (`Bearer`, or `DPoP` for a DPoP-bound token). */
  getToken(request: TokenRequest): Promise<Pick<AccessToken, 'accessToken' | 'tokenType'> & Partial<Pick<AccessToken, 'scopes'>>>;
  /** Forgets a token the resource server rejected (HTTP 401). */
  invalidate(rejected?: string): void;
  /** The proof signer of a DPoP-bound token source (RFC 9449); absent for Bearer tokens. */
  readonly dpop?: DPoPProofSigner;
}

/** The token request of an SDK handler or fetch: scopes / resource / audience, and the scopes step-up may add. */
export interface A2ATokenRequest extends TokenRequest {
  /**
   * Scopes that may be requested on top of `scopes` when the agent refuses a call with 403 `insufficient_scope`
   * (RFC 6750 §3.1) naming them. A challenged scope outside `scopes` ∪ `stepUpScopes` is never requested: the call
   * fails with {@link InsufficientScopeError}. Default none (no step-up beyond `scopes`).
   */
  stepUpScopes?: readonly string[];
}

/**
 * An `AuthenticationHandler` for the official `@a2a-js/sdk` client, backed by a {@link ClientCredentialsTokenProvider}.
 *
 * - `headers()`: `{ Authorization: '<token_type> <token>' }` from the provider (cached, refreshed before expiry):
 *   `Bearer` (RFC 6750 §2.1), or `DPoP` for a provider with `dpop` (RFC 9449 §7.1).
 * - `shouldRetryWithHeaders(req, res)` on HTTP 401: a DPoP nonce challenge (`WWW-Authenticate: DPoP
 *   error="use_dpop_nonce"` with a `DPoP-Nonce` header, RFC 9449 §9) keeps the token and remembers the nonce; any other
 *   401 drops the rejected token ({@link ClientCredentialsTokenProvider.invalidate}) and gets a fresh one.
 * - On HTTP 403 with `error="insufficient_scope", scope="…"` (RFC 6750 §3.1): step-up ({@link planStepUp}). When every
 *   missing scope is in `request.scopes` or `request.stepUpScopes`, it gets a token for the request's scopes plus the
 *   missing ones and retries; later calls keep asking for that wider set. Otherwise it throws
 *   {@link InsufficientScopeError} (`refusedScopes` named) and requests nothing. Any other 403 (no scope named) is not retried.
 * - The SDK's `createAuthenticatingFetchWithRetry` retries once with the returned headers and never asks again for the
 *   retry's own response, so a 401 or 403 gives at most one new token and one retry, never a loop. A retry refused
 *   again with 403 `insufficient_scope` becomes {@link InsufficientScopeError} (`stepUpAttempted`) in
 *   {@link a2aAuthFetch}; with this handler alone the SDK reports it as its own HTTP error.
 * - DPoP: the SDK's `headers()` is given no request method or URL, so it cannot sign the per-request proof; the retry
 *   headers carry one (the response names the URL), and {@link a2aAuthFetch} adds one to every request. Use
 *   {@link a2aAuthFetch} (or {@link connectA2AAgent}) with a DPoP provider, not this handler alone.
 *
 * The handler never sees a URL (the SDK's `headers()` takes none), so it cannot decide where the token goes: use it
 * through {@link a2aAuthFetch}, which does. Wrapped by the SDK's `createAuthenticatingFetchWithRetry` alone, it adds
 * the token to every request, wherever the card's interfaces point.
 *
 * @param request the scopes / resource / audience of the tokens (default: the provider's defaults), and `stepUpScopes`.
 */
export function a2aAuthenticationHandler(provider: BearerTokenSource, request: A2ATokenRequest = {}): AuthenticationHandler {
  return stepUpHandler(provider, request).handler;
}

/** The handler, the scopes of the last token it handed out and how many step-ups it made (for the error after a refusal). */
function stepUpHandler(
  provider: BearerTokenSource,
  request: A2ATokenRequest,
): { handler: AuthenticationHandler; lastScopes: () => readonly string[]; stepUps: () => number } {
  const { stepUpScopes, ...base } = request;
  let last: readonly string[] = [];
  let stepUps = 0;
  let current: TokenRequest = base;
  // The scopes of each token handed out, to tell which scopes a refused token lacked.
  const granted = new Map<string, readonly string[]>();
  const authorization = async () => {
    const t = await provider.getToken(current);
    if (granted.size > 64) granted.clear();
    last = t.scopes ?? current.scopes ?? [];
    granted.set(t.accessToken, last);
    return { Authorization: `${t.tokenType} ${t.accessToken}` };
  };
  const withProof = async (req: RequestInit, res: Response, headers: Record<string, string>) => {
    const dpop = provider.dpop;
    if (dpop && res.url) {
      dpop.observe(res.url, res.headers);
      headers.DPoP = await dpop.proof({ htm: req.method ?? 'GET', url: res.url, accessToken: headers.Authorization.slice('DPoP '.length) });
    }
    return headers;
  };
  const handler: AuthenticationHandler = {
    headers: authorization,
    shouldRetryWithHeaders: async (req: RequestInit, res: Response) => {
      const sent = new Headers(req.headers).get('authorization');
      const m = sent ? /^(?:Bearer|DPoP)\s+(\S+)$/i.exec(sent) : null;
      if (res.status === 403) {
        const challenge = res.headers.get('www-authenticate');
        const required = insufficientScopeChallenge(challenge);
        // No scope named (e.g. a refused delegation): nothing a token with more scopes would fix.
        if (!required?.length || !m) return undefined;
        const had = granted.get(m[1]) ?? current.scopes ?? [];
        const plan = planStepUp({
          required,
          granted: had,
          requested: current.scopes ?? had,
          allowed: stepUpScopes ?? [],
          url: res.url || undefined,
          wwwAuthenticate: challenge,
        });
        await res.body?.cancel().catch(() => undefined);
        stepUps++;
        current = { ...current, scopes: plan.scopes };
        return withProof(req, res, await authorization());
      }
      if (res.status !== 401) return undefined;
      const dpop = provider.dpop;
      if (dpop && isUseDpopNonceChallenge(res) && m && res.url) {
        // Same token, new proof with the nonce the resource server just issued.
        dpop.observe(res.url, res.headers);
        return { Authorization: sent!, DPoP: await dpop.proof({ htm: req.method ?? 'GET', url: res.url, accessToken: m[1] }) };
      }
      provider.invalidate(m ? m[1] : undefined);
      return withProof(req, res, await authorization());
    },
  };
  return { handler, lastScopes: () => last, stepUps: () => stepUps };
}

/** Options of {@link a2aAuthFetch}: the token request, and where the token may go. */
export interface A2AAuthFetchOptions extends A2ATokenRequest, BearerDestinationOptions {}

/**
 * A `fetch` that adds a fresh DPoP proof (RFC 9449 §7.1) to every request sent with `Authorization: DPoP <token>` and no
 * `DPoP` header of its own: `htm` the request method, `htu` its URL without query and fragment, `ath` the token's hash,
 * a new `jti` and `iat`, and the origin's last nonce. Every response's `DPoP-Nonce` is remembered for its origin.
 * Requests without a DPoP `Authorization` (the card, public routes) pass through untouched.
 */
export function dpopProofFetch(signer: DPoPProofSigner, baseFetch: typeof fetch = fetch): typeof fetch {
  return async (input: string | URL | Request, init?: RequestInit) => {
    const fromRequest = input instanceof Request ? input : undefined;
    const url = urlOf(input);
    const headers = new Headers(init?.headers ?? fromRequest?.headers);
    const m = /^DPoP\s+(\S+)$/i.exec(headers.get('authorization') ?? '');
    if (m && !headers.has('dpop')) {
      headers.set('dpop', await signer.proof({ htm: init?.method ?? fromRequest?.method ?? 'GET', url, accessToken: m[1] }));
      init = { ...init, headers };
    }
    const res = await baseFetch(input, init);
    signer.observe(url, res.headers);
    return res;
  };
}

/**
 * An authenticating `fetch` for the SDK's transports: the bearer token from `provider`, one refresh and one retry on
 * 401, step-up and one retry on 403 `insufficient_scope` within `scopes` ∪ `stepUpScopes` (the SDK's
 * `createAuthenticatingFetchWithRetry` with {@link a2aAuthenticationHandler}; a refusal that step-up cannot fix, or a
 * retry refused again, rejects with {@link InsufficientScopeError}), and a destination rule
 * checked on every request (RFC 6750 §5.3: bearer tokens must not leak to unintended parties):
 *
 * - the URL must be `https:` (or `http:` on a loopback host) and on one of `allowedOrigins`, or accepted by
 *   `trustBearerUrl`; otherwise nothing is sent (not even a token request) and the call rejects with
 *   {@link UntrustedDestinationError} (`untrusted_origin`, `insecure_http`, `not_http`);
 * - redirects are never followed (`redirect: 'manual'`): a 3xx answer rejects with `UntrustedDestinationError`
 *   `redirect`, so neither the token nor the request body reaches the `Location`, whatever the base `fetch` does with
 *   `Authorization` on a redirect.
 *
 * With a provider that requests DPoP-bound tokens, {@link dpopProofFetch} sits underneath, so each request (the
 * retry too) carries its own proof (RFC 9449 §7.1) after the destination check.
 *
 * {@link connectA2AAgent} builds one for the card's origin. Give plain `fetch` (no token) to the card resolver.
 *
 * @example
 * const fetchImpl = a2aAuthFetch(provider, { allowedOrigins: ['https://agents.example.com'] });
 * new ClientFactory(ClientFactoryOptions.createFrom(ClientFactoryOptions.default, {
 *   transports: [new JsonRpcTransportFactory({ fetchImpl }), new RestTransportFactory({ fetchImpl })],
 * }));
 * @param options the token request (scopes / resource / audience; default: the provider's) and `allowedOrigins` /
 *   `trustBearerUrl` (no default: one of them is required).
 * @throws ClientCredentialsError when neither `allowedOrigins` nor `trustBearerUrl` is given, or for a malformed origin.
 * @throws Error when `@a2a-js/sdk` is not installed.
 */
export function a2aAuthFetch(provider: BearerTokenSource, options: A2AAuthFetchOptions = {}, baseFetch: typeof fetch = fetch): typeof fetch {
  const { allowedOrigins, trustBearerUrl, ...request } = options;
  if (!allowedOrigins?.length && !trustBearerUrl) {
    throw new ClientCredentialsError('a2aAuthFetch needs allowedOrigins (or trustBearerUrl): the origins that may receive the bearer token');
  }
  const check = bearerDestinationCheck({ allowedOrigins, trustBearerUrl });
  const noRedirects: typeof fetch = async (input, init) => {
    const url = urlOf(input);
    const res = await baseFetch(input, { ...init, redirect: 'manual' });
    if ((res.status >= 300 && res.status < 400 && res.status !== 304) || res.type === 'opaqueredirect') {
      await res.body?.cancel().catch(() => undefined);
      const location = res.headers.get('location')?.slice(0, 200);
      throw new UntrustedDestinationError({
        reason: 'redirect',
        url,
        location,
        message: `${url} answered HTTP ${res.status}${location ? ` (to ${location})` : ''}: redirects are not followed with a bearer token`,
      });
    }
    return res;
  };
  const inner = provider.dpop ? dpopProofFetch(provider.dpop, noRedirects) : noRedirects;
  const { handler, lastScopes, stepUps } = stepUpHandler(provider, request);
  const authed = sdkClient().createAuthenticatingFetchWithRetry(inner, handler);
  return async (input, init) => {
    const url = urlOf(input);
    const refused = check(url);
    if (refused) {
      throw new UntrustedDestinationError({ reason: refused.reason, url, message: `the bearer token is not sent to ${url}: ${refused.why}` });
    }
    const before = stepUps();
    const res = await authed(input, init);
    if (res.status === 403) {
      const challenge = res.headers.get('www-authenticate');
      const required = insufficientScopeChallenge(challenge);
      if (required?.length) {
        // The handler either stepped up (this is the retry's answer) or threw; or the 403 answered a 401's retry, and
        // the one retry is spent. Either way this refusal is final.
        await res.body?.cancel().catch(() => undefined);
        const had = new Set(lastScopes());
        const missingScopes = required.filter((x) => !had.has(x));
        const stepUpAttempted = stepUps() > before;
        const allowed = new Set([...had, ...(request.scopes ?? []), ...(request.stepUpScopes ?? [])]);
        const refusedScopes = stepUpAttempted ? [] : missingScopes.filter((x) => !allowed.has(x));
        throw new InsufficientScopeError({ requiredScopes: required, missingScopes, refusedScopes, stepUpAttempted, url, wwwAuthenticate: challenge });
      }
    }
    return res;
  };
}

function urlOf(input: Parameters<typeof fetch>[0]): string {
  return typeof input === 'string' ? input : input instanceof URL ? input.href : input.url;
}

/** Options of {@link connectA2AAgent}. */
export interface ConnectA2AAgentOptions extends DiscoveryOptions {
  /** Agent base URL (e.g. `https://agents.example.com/expenses`); its card is read from `.well-known/agent-card.json` under it. */
  agentUrl: string;
  /** Client id and secret, plus any other {@link ClientCredentialsOptions} (auth method, resource, timeout…). */
  credentials: Omit<ClientCredentialsOptions, 'tokenUrl' | 'scopes'>;
  /** Request exactly the scopes this skill needs (from the card). */
  skillId?: string;
  /** Or request these scopes. Default: the scopes of `skillId`, else the card-level scopes. */
  scopes?: readonly string[];
  /**
   * Scopes the client may ask for beyond `scopes` (or the skill's), in two cases: when the agent answers HTTP 403
   * `insufficient_scope` (RFC 6750 §3.1) naming them, it gets a token with them and retries once; when a task waits in
   * `TASK_STATE_AUTH_REQUIRED` for more scopes (A2A §7.6), {@link ConnectedA2AAgent.sendMessage} gets a token for
   * exactly those and sends the follow-up ({@link sendMessageWithStepUp}). Scopes outside both are never requested: the
   * call fails with {@link InsufficientScopeError} or `A2AAuthorizationRequiredError`. Default none.
   */
  stepUpScopes?: readonly string[];
  /** Binding preference, e.g. `['JSONRPC']` or `['HTTP+JSON']`. Default: the card's order. */
  preferredTransports?: string[];
  /**
   * Act on behalf of the caller of the request being served: its bearer token, exchanged (RFC 8693, see
   * {@link TokenExchangeProvider}) at the card's token endpoint for a token with the skill's scopes. The token is
   * never stored (only its SHA-256, as the cache key) and never logged. Default: the agent calls as itself.
   */
  onBehalfOf?: string;
  /** With `onBehalfOf`: also send the agent's own client-credentials token as `actor_token`. Default false. */
  sendActorToken?: boolean;
}

/** What {@link connectA2AAgent} returns. */
export interface ConnectedA2AAgent {
  /** The SDK client. */
  client: Client;
  /** The agent's own client-credentials provider (the client's tokens, or the `actor_token` with `onBehalfOf`). */
  provider: ClientCredentialsTokenProvider;
  /** With `onBehalfOf`: the token-exchange provider whose tokens the client's requests carry. */
  exchange?: TokenExchangeProvider;
  /** What the card said. */
  auth: DiscoveredAgentAuth;
  /** The authenticating fetch used by the client. */
  fetch: typeof fetch;
  /**
   * `client.sendMessage` that continues a task waiting for more scopes (`stepUpScopes` only) with a follow-up
   * message carrying a token for exactly those scopes ({@link sendMessageWithStepUp}).
   */
  sendMessage(params: SendMessageRequest): Promise<Message | Task>;
  /**
   * `client.sendMessageStream` that does the same on a stream ({@link sendMessageStreamWithStepUp}): it yields the
   * stream's events, sends the follow-up when a status update asks for scopes in `stepUpScopes`, and keeps yielding the
   * same stream (the agent carries the rest of the task on it). A human approval is yielded through, no follow-up.
   * @throws A2AAuthorizationRequiredError when the task asks for scopes it may not request.
   */
  sendMessageStream(params: SendMessageRequest): AsyncGenerator<StreamResponse, void, undefined>;
}

/**
 * Discovery + token provider + official SDK client in one call: reads the agent's card ({@link discoverAgentAuth}),
 * builds a provider for the card's token endpoint requesting exactly the skill's scopes, and creates a `Client`
 * with `ClientFactory` (JSON-RPC and HTTP+JSON transports) whose requests carry the token and retry once on 401.
 *
 * - The token goes only to the card URL's origin, plus `allowedOrigins` / `trustBearerUrl`, never over plain `http:`
 *   to a non-loopback host, and never through a redirect: a card naming another interface fails discovery with
 *   `untrusted_interface`, and the client's `fetch` ({@link a2aAuthFetch}) checks every request again.
 * - With `cardTrust`, the card's signature is verified before anything on it is used.
 * - The client is built from the card discovery read (and verified), not from a second fetch.
 * - With `onBehalfOf`, the requests carry a token exchanged for the caller's (RFC 8693), same scopes, same rules.
 * - A 403 `insufficient_scope` naming scopes in `scopes` ∪ `stepUpScopes` gets a token with them and one retry;
 *   otherwise the call rejects with {@link InsufficientScopeError}.
 * @throws ClientCredentialsError for an empty `onBehalfOf`.
 * @throws AgentCardDiscoveryError, and whatever `ClientFactory.createFromAgentCard` throws.
 */
export async function connectA2AAgent(o: ConnectA2AAgentOptions): Promise<ConnectedA2AAgent> {
  if (o.onBehalfOf !== undefined && (typeof o.onBehalfOf !== 'string' || o.onBehalfOf === '')) {
    throw new ClientCredentialsError('onBehalfOf must be the bearer token of the request being served');
  }
  const sdk = sdkClient();
  const auth = await discoverAgentAuth(o.agentUrl, o);
  const scopes = o.scopes ? [...o.scopes] : o.skillId !== undefined ? auth.scopesForSkill(o.skillId) : [...auth.agentScopes];
  const provider = auth.tokenProvider({ ...o.credentials, scopes });
  let exchange: TokenExchangeProvider | undefined;
  let source: BearerTokenSource = provider;
  if (o.onBehalfOf !== undefined) {
    const subjectToken = o.onBehalfOf;
    const ex = (exchange = new TokenExchangeProvider({
      ...o.credentials,
      tokenUrl: auth.tokenUrl,
      scopes,
      ...(o.sendActorToken ? { actorTokenProvider: provider } : {}),
    }));
    source = { getToken: (r) => ex.getToken({ subjectToken, scopes: r.scopes ?? scopes }), invalidate: (rejected) => ex.invalidate(rejected) };
  }
  const cardOrigin = httpOrigin(auth.cardUrl)!;
  const fetchImpl = a2aAuthFetch(
    source,
    { scopes, stepUpScopes: o.stepUpScopes, allowedOrigins: [cardOrigin, ...(o.allowedOrigins ?? [])], trustBearerUrl: o.trustBearerUrl },
    o.fetch ?? fetch,
  );
  const factory: ClientFactory = new sdk.ClientFactory(
    sdk.ClientFactoryOptions.createFrom(sdk.ClientFactoryOptions.default, {
      transports: [new sdk.JsonRpcTransportFactory({ fetchImpl }), new sdk.RestTransportFactory({ fetchImpl })],
      ...(o.preferredTransports ? { preferredTransports: o.preferredTransports } : {}),
      cardResolver: new sdk.DefaultAgentCardResolver({ fetchImpl: o.fetch ?? fetch }),
    }),
  );
  // The card discovery checked (and verified, with cardTrust): fetching it again could give another one.
  const client = await factory.createFromAgentCard(auth.card as never);
  const clientForScopes = (scopes: readonly string[]): Promise<Client> => {
    const scoped = a2aAuthFetch(
      source,
      { scopes, allowedOrigins: [cardOrigin, ...(o.allowedOrigins ?? [])], trustBearerUrl: o.trustBearerUrl },
      o.fetch ?? fetch,
    );
    const f = new sdk.ClientFactory(
      sdk.ClientFactoryOptions.createFrom(sdk.ClientFactoryOptions.default, {
        transports: [new sdk.JsonRpcTransportFactory({ fetchImpl: scoped }), new sdk.RestTransportFactory({ fetchImpl: scoped })],
        ...(o.preferredTransports ? { preferredTransports: o.preferredTransports } : {}),
      }),
    );
    return f.createFromAgentCard(auth.card as never);
  };
  const stepUp = { stepUpScopes: o.stepUpScopes ?? [], clientForScopes, unsupported: exchange !== undefined };
  return {
    client,
    provider,
    exchange,
    auth,
    fetch: fetchImpl,
    sendMessage: (params) => sendMessageWithStepUp(client, params, stepUp),
    sendMessageStream: (params) => sendMessageStreamWithStepUp(client, params, stepUp),
  };
}
