/**
 * `nestjs-a2a-auth/client`: the calling side of A2A auth, with no Nest dependency.
 * Token providers (bearer or DPoP-bound), Agent Card discovery, and the `@a2a-js/sdk` authentication handler.
 */
export {
  ClientCredentialsTokenProvider,
  refreshMarginSeconds,
  formEncode,
  type ClientCredentialsOptions,
  type ClientAuthMethod,
  type TokenRequest,
  type AccessToken,
} from './token-provider';
export {
  TokenExchangeProvider,
  TOKEN_EXCHANGE_GRANT_TYPE,
  ACCESS_TOKEN_TYPE,
  JWT_TOKEN_TYPE,
  type TokenExchangeOptions,
  type TokenExchangeRequest,
} from './token-exchange';
export { ClientCredentialsError, TokenEndpointError, TokenEndpointUnavailableError, AgentCardDiscoveryError, UntrustedDestinationError } from './errors';
export {
  discoverAgentAuth,
  readAgentAuth,
  agentCardUrl,
  agentBaseUrl,
  AGENT_CARD_WELL_KNOWN_PATH,
  type DiscoveryOptions,
  type DiscoveredAgentAuth,
  type DiscoveredInterface,
} from './discovery';
export { verifyAgentCardSignature, type AgentCardTrust, type VerifiedCardSignature } from './card-trust';
export { type BearerDestinationOptions } from './destinations';
export {
  DPoPProofSigner,
  DPOP_PROOF_ALGORITHMS,
  dpopHtu,
  isUseDpopNonceChallenge,
  type DPoPClientOptions,
  type DPoPKeyPair,
  type DPoPProofAlgorithm,
  type DPoPProofRequest,
} from './dpop';
export {
  a2aAuthenticationHandler,
  a2aAuthFetch,
  dpopProofFetch,
  connectA2AAgent,
  type A2AAuthFetchOptions,
  type BearerTokenSource,
  type ConnectA2AAgentOptions,
  type ConnectedA2AAgent,
} from './a2a-client-auth';
export { sendMessageWithStepUp, authorizationRequestOf, A2AAuthorizationRequiredError, type StepUpOptions } from './in-task';
