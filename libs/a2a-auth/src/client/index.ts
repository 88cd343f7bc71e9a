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
  type ClientCredentialsAuth,
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
export {
  CLIENT_ASSERTION_TYPE,
  createClientAssertion,
  type ClientAssertionAlgorithm,
  type ClientPrivateKeyMaterial,
  type ClientPrivateKeySource,
  type ClientSecretSource,
  type ClientSigningKey,
} from '../core/client-auth';
export {
  ClientCredentialsError,
  TokenEndpointError,
  TokenEndpointUnavailableError,
  AgentCardDiscoveryError,
  UntrustedDestinationError,
  InsufficientScopeError,
} from './errors';
export { parseWwwAuthenticate, insufficientScopeChallenge, planStepUp, type AuthChallenge, type StepUpPlan } from './step-up';
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
  type A2ATokenRequest,
  type BearerTokenSource,
  type ConnectA2AAgentOptions,
  type ConnectedA2AAgent,
} from './a2a-client-auth';
export {
  CibaClient,
  CibaApprovalToken,
  CibaError,
  CIBA_GRANT_TYPE,
  CIBA_DEFAULT_INTERVAL_SECONDS,
  CIBA_SLOW_DOWN_SECONDS,
  type CibaClientOptions,
  type CibaAuthenticationRequest,
  type CibaPendingRequest,
  type CibaPollOptions,
  type CibaOutcome,
} from './ciba';
export { sendMessageWithStepUp, sendMessageStreamWithStepUp, authorizationRequestOf, A2AAuthorizationRequiredError, type StepUpOptions } from './in-task';
