import type { AuthenticationHandler, Client, ClientFactory } from '@a2a-js/sdk/client';
import { sdkClient } from './sdk';
import { discoverAgentAuth, type DiscoveredAgentAuth, type DiscoveryOptions } from './discovery';
import type { ClientCredentialsOptions, ClientCredentialsTokenProvider, TokenRequest } from './token-provider';

/**
 * An `AuthenticationHandler` for the official `@a2a-js/sdk` client, backed by a {@link ClientCredentialsTokenProvider}.
 *
 * - `headers()`: `{ Authorization: 'Bearer <token>' }` from the provider (cached, refreshed before expiry).
 * - `shouldRetryWithHeaders(req, res)`: on HTTP 401 only, drops the rejected token ({@link ClientCredentialsTokenProvider.invalidate})
 *   and returns headers with a fresh one. The SDK's `createAuthenticatingFetchWithRetry` retries once with them and
 *   never asks again for the retry's own response, so a 401 gives one refresh and one retry, never a loop.
 *   HTTP 403 (`insufficient_scope`) is not retried: a new token for the same scopes would not help.
 *
 * @param request the scopes / resource / audience of the tokens. Default: the provider's defaults.
 */
export function a2aAuthenticationHandler(provider: ClientCredentialsTokenProvider, request: TokenRequest = {}): AuthenticationHandler {
  return {
    headers: async () => ({ Authorization: `Bearer ${await provider.getAccessToken(request)}` }),
    shouldRetryWithHeaders: async (req: RequestInit, res: Response) => {
      if (res.status !== 401) return undefined;
      const sent = new Headers(req.headers).get('authorization');
      const m = sent ? /^Bearer\s+(\S+)$/i.exec(sent) : null;
      provider.invalidate(m ? m[1] : undefined);
      return { Authorization: `Bearer ${await provider.getAccessToken(request)}` };
    },
  };
}

/**
 * One line to an authenticating `fetch` for the SDK's transports and card resolver:
 * `createAuthenticatingFetchWithRetry(baseFetch, a2aAuthenticationHandler(provider, request))`.
 *
 * @example
 * const fetchImpl = a2aAuthFetch(provider);
 * new ClientFactory(ClientFactoryOptions.createFrom(ClientFactoryOptions.default, {
 *   transports: [new JsonRpcTransportFactory({ fetchImpl }), new RestTransportFactory({ fetchImpl })],
 *   cardResolver: new DefaultAgentCardResolver({ fetchImpl }),
 * }));
 * @throws Error when `@a2a-js/sdk` is not installed.
 */
export function a2aAuthFetch(provider: ClientCredentialsTokenProvider, request: TokenRequest = {}, baseFetch: typeof fetch = fetch): typeof fetch {
  return sdkClient().createAuthenticatingFetchWithRetry(baseFetch, a2aAuthenticationHandler(provider, request));
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
  /** Binding preference, e.g. `['JSONRPC']` or `['HTTP+JSON']`. Default: the card's order. */
  preferredTransports?: string[];
}

/** What {@link connectA2AAgent} returns. */
export interface ConnectedA2AAgent {
  /** The SDK client. */
  client: Client;
  /** The token provider (shared by the client's requests). */
  provider: ClientCredentialsTokenProvider;
  /** What the card said. */
  auth: DiscoveredAgentAuth;
  /** The authenticating fetch used by the client. */
  fetch: typeof fetch;
}

/**
 * Discovery + token provider + official SDK client in one call: reads the agent's card ({@link discoverAgentAuth}),
 * builds a provider for the card's token endpoint requesting exactly the skill's scopes, and creates a `Client`
 * with `ClientFactory` (JSON-RPC and HTTP+JSON transports) whose requests carry the token and retry once on 401.
 * @throws AgentCardDiscoveryError, and whatever `ClientFactory.createFromUrl` throws.
 */
export async function connectA2AAgent(o: ConnectA2AAgentOptions): Promise<ConnectedA2AAgent> {
  const sdk = sdkClient();
  const auth = await discoverAgentAuth(o.agentUrl, o);
  const scopes = o.scopes ? [...o.scopes] : o.skillId !== undefined ? auth.scopesForSkill(o.skillId) : [...auth.agentScopes];
  const provider = auth.tokenProvider({ ...o.credentials, scopes });
  const fetchImpl = a2aAuthFetch(provider, {}, o.fetch ?? fetch);
  const factory: ClientFactory = new sdk.ClientFactory(
    sdk.ClientFactoryOptions.createFrom(sdk.ClientFactoryOptions.default, {
      transports: [new sdk.JsonRpcTransportFactory({ fetchImpl }), new sdk.RestTransportFactory({ fetchImpl })],
      ...(o.preferredTransports ? { preferredTransports: o.preferredTransports } : {}),
      cardResolver: new sdk.DefaultAgentCardResolver({ fetchImpl: o.fetch ?? fetch }),
    }),
  );
  // The card resolver resolves '.well-known/agent-card.json' relative to this URL: pass the exact card URL.
  const client = await factory.createFromUrl(auth.cardUrl, '');
  return { client, provider, auth, fetch: fetchImpl };
}
