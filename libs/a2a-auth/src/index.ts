/**
 * nestjs-a2a-auth: make a NestJS A2A agent an OAuth 2.0 resource server.
 * Everything a user imports comes from here.
 */
export { A2AAuthModule, type A2AAuthModuleExtras } from './nest/module/a2a-auth.module';
export {
  resolveOptions,
  A2AAuthConfigError,
  SUPPORTED_ALGORITHMS,
  type SupportedAlgorithm,
  type A2AAuthModuleOptions,
  type ResolvedOptions,
  type IssuerOptions,
  type CardOptions,
  type CardThrottleOptions,
  type CardSigningOptions,
  type AgentInterfaceOptions,
  type ProtocolBinding,
  type MtlsOptions,
  type TokenCacheOptions,
  type AuditOptions,
} from './core/options';
export {
  A2A_JWT_STRATEGY,
  A2A_AUDIT_SINK,
  A2A_VERIFIER,
  A2A_AUTH_RUNTIME,
  A2A_AUTH_RESOLVED_OPTIONS,
  IS_PUBLIC_KEY,
  REQUIRED_SCOPES_KEY,
  AGENT_SKILL_KEY,
} from './nest/constants';
export { Public } from './nest/decorators/public.decorator';
export { RequireScopes } from './nest/decorators/require-scopes.decorator';
export { AgentSkill, type AgentSkillOptions } from './nest/decorators/agent-skill.decorator';
export { A2ACaller } from './nest/decorators/a2a-caller.decorator';
export { A2AEndpoint } from './nest/decorators/a2a-endpoint.decorator';
export { AuthError, isAuthError, REASONS, type AuthReason, type BearerErrorCode, type ReasonInfo } from './core/errors';
export { extractBearerToken, DEFAULT_MAX_TOKEN_LENGTH, type BearerSource, type BearerOptions } from './core/bearer';
export { ChallengeBuilder, errorBody, type ChallengeParams, type AuthErrorBody } from './core/challenge';
export { extractScopes, assertScopes, DEFAULT_SCOPE_CLAIMS } from './core/scopes';
export { checkClaims, type ClaimValidator, type ClaimPolicy } from './core/claims';
export { VerifiedTokenCache, tokenHash } from './core/token-cache';
export { JwksKeyStore, discoverJwksUri, type KeyStoreTiming, type KeySource, type VerificationKey } from './core/key-store';
export { KeyRegistry } from './core/key-registry';
export { A2AJwtStrategy } from './nest/passport/a2a-jwt.strategy';
export { A2AAuthGuard } from './nest/guard/a2a-auth.guard';
export {
  createVerifier,
  certificateThumbprint,
  type Verifier,
  type VerifierPolicy,
  type KeyResolver,
  type VerificationContext,
  type VerifyAttempt,
} from './core/verifier';
export { createAuthRuntime, type AuthRuntime } from './core/runtime';
export { combineRoutePolicy, type RoutePolicy, type RouteDecorators } from './core/route-policy';
export { clientAddress } from './nest/http/request-info';
export { routeAuth } from './nest/guard/route-auth';
export { AuthAuditService } from './nest/audit/auth-audit.service';
export { LoggerAuditSink } from './nest/audit/logger-audit-sink';
export type { AuditSink, AuthAuditEvent } from './core/audit-event';
export { buildAgentCard, toV03Card, type DiscoveredSkill, type CardBuildOptions, type AgentCardV03Json } from './core/card/card-builder';
export type {
  AgentCardJson,
  AgentSkillJson,
  AgentInterfaceJson,
  SecurityRequirementJson,
  SecuritySchemeJson,
  AgentCardSignatureJson,
} from './core/card/agent-card.types';
export { signAgentCard, verifyAgentCard, canonicalCardBytes, type CardSignature } from './core/card/card-signer';
export { protectedResourceMetadataUrl, buildProtectedResourceMetadata, type ProtectedResourceMetadata } from './core/card/resource-metadata';
export { AgentCardService, type ServedDocument, type CardView } from './nest/card/card.service';
export { SkillRegistry, type RegisteredSkill } from './nest/card/skill-registry';
// Agent Card generator (issue 3): consistency checks and the `npm run card` CLI logic.
export {
  inspectAgentCards,
  runCardCli,
  checkAgentCard,
  checkV03Card,
  firstDifference,
  V1_ONLY_KEYS,
  V03_ONLY_KEYS,
  type CardReport,
  type CardCliIo,
} from './nest/card/card-report';
// Calling side and A2A bindings (issue 4): client-credentials provider, card discovery, @a2a-js/sdk auth handler,
// per-skill scopes inside A2A calls and the Nest transport for the SDK's bindings (the SDK is an optional peer).
export {
  ClientCredentialsTokenProvider,
  refreshMarginSeconds,
  formEncode,
  type ClientCredentialsOptions,
  type ClientAuthMethod,
  type TokenRequest,
  type AccessToken,
} from './client/token-provider';
export { ClientCredentialsError, TokenEndpointError, TokenEndpointUnavailableError, AgentCardDiscoveryError } from './client/errors';
export {
  discoverAgentAuth,
  readAgentAuth,
  agentCardUrl,
  agentBaseUrl,
  AGENT_CARD_WELL_KNOWN_PATH,
  type DiscoveryOptions,
  type DiscoveredAgentAuth,
} from './client/discovery';
export { a2aAuthenticationHandler, a2aAuthFetch, connectA2AAgent, type ConnectA2AAgentOptions, type ConnectedA2AAgent } from './client/a2a-client-auth';
export {
  A2ASkillAuthorizer,
  A2ASkillResolutionError,
  skillIdOf,
  A2A_SKILL_ID_KEY,
  A2A_MESSAGE_METHODS,
  type AuthorizedSkill,
} from './nest/a2a/skill-authorizer';
export { A2AUser, a2aTaskOwner, a2aCallerOf, authorizedSkillOf, A2A_CALLER_STATE_KEY, A2A_SKILL_STATE_KEY } from './nest/a2a/a2a-user';
export { A2AHttpTransport, createA2ARequestHandler, MAX_JSON_DEPTH, type A2ARequestHandlerOptions } from './nest/a2a/a2a-transport';
export { enableA2AMediaType, A2A_MEDIA_TYPE } from './nest/a2a/media-type';

// Performance (issue 6): verified-token cache lifetime rule.
export { cacheNotAfter } from './core/token-cache';
