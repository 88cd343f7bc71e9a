/**
 * `nestjs-a2a-auth/core`: the framework-free resource-server core (no Nest, no Passport, no HTTP framework).
 * Bearer parsing, reason codes and challenges, option validation, key sets, the verifier, RFC 7662 introspection, the route policy, the Agent
 * Card builder, signer and checker, and RFC 9728 metadata. The Nest module in the package root is built on these; use
 * them directly to put the same decision behind another entry point (a WebSocket gateway, a queue consumer, …).
 */
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
  type DPoPMode,
  type DPoPOptions,
  type DPoPNonceOptions,
  type ResolvedDPoPOptions,
  DEFAULT_DPOP_ALGORITHMS,
  type StoreOptions,
  type ClientRateLimitOptions,
  resolveClientRateLimit,
} from './options';
export { InMemoryStore, StoreUnavailableError, withStoreTimeout, defaultKeyPrefix, type SharedStore } from './store';
export { AuthError, isAuthError, REASONS, type AuthReason, type BearerErrorCode, type ReasonInfo } from './errors';
export {
  extractBearerToken,
  extractAccessToken,
  DEFAULT_MAX_TOKEN_LENGTH,
  type BearerSource,
  type BearerOptions,
  type CredentialOptions,
  type PresentedToken,
  type TokenScheme,
} from './bearer';
export { ChallengeBuilder, errorBody, type ChallengeParams, type ChallengeView, type AuthErrorBody } from './challenge';
export {
  createDPoPChecker,
  jwkThumbprint,
  accessTokenHash,
  normalizeHtu,
  DPoPNonces,
  MAX_DPOP_PROOF_LENGTH,
  MAX_DPOP_JTI_LENGTH,
  type DPoPChecker,
  type DPoPProofPolicy,
  type DPoPRequest,
} from './dpop';
export { InMemoryReplayCache, SharedStoreReplayCache, type DPoPReplayCache } from './replay-cache';
export { extractScopes, assertScopes, grantsScopes, missingScopes, DEFAULT_SCOPE_CLAIMS } from './scopes';
export { checkClaims, type ClaimValidator, type ClaimPolicy } from './claims';
export { decodeForVerification, type DecodedToken } from './decode';
export { keyFitsAlgorithm, verifyJwsSignature } from './jws';
export type { A2ACaller } from './caller';
export {
  actorsOf,
  assertDelegation,
  delegationFor,
  resolveDelegation,
  DEFAULT_DELEGATION,
  MAX_ACT_DEPTH,
  type A2AActor,
  type DelegationOptions,
  type DelegationPolicy,
} from './delegation';
export {
  createVerifier,
  certificateThumbprint,
  type Verifier,
  type VerifierPolicy,
  type KeyResolver,
  type VerificationContext,
  type VerifyAttempt,
} from './verifier';
export { createAuthRuntime, type AuthRuntime } from './runtime';
export { combineRoutePolicy, assertAuthorized, RoutePolicyError, type RoutePolicy, type RouteDecorators, type AgentSkillOptions } from './route-policy';
export {
  IN_TASK_AUTH_EXTENSION_URI,
  InMemoryPendingAuthorizationStore,
  checkPendingAnswer,
  taskOwnerOf,
  type A2AAuthorizationRequest,
  type PendingAuthorization,
  type PendingAuthorizationStore,
  type TaskOwner,
} from './in-task-authorization';
export { VerifiedTokenCache, tokenHash, cacheNotAfter, type KeyMaterialResolver } from './token-cache';
export {
  JwksKeyStore,
  discoverJwksUri,
  type KeyStoreTiming,
  type KeySource,
  type VerificationKey,
  type KeyStoreOptions,
  type KeyStoreLogger,
} from './key-store';
export { KeyRegistry, type KeyRegistryOptions } from './key-registry';
export { fetchJson, HttpStatusError, MAX_DOCUMENT_BYTES, type FetchJsonPost } from './fetch-json';
export {
  CLIENT_ASSERTION_TYPE,
  ClientAuthenticationError,
  createClientAssertion,
  clientAuthentication,
  DEFAULT_CREDENTIAL_SOURCE_TIMEOUT_MS,
  resolveClientAuth,
  type ClientAuthMethod,
  type ClientAuthOptions,
  type ClientAssertionAlgorithm,
  type ClientPrivateKeyMaterial,
  type ClientPrivateKeySource,
  type ClientSecretSource,
  type ClientSigningKey,
  type ClientAuthRequestParts,
  type ResolvedClientAuth,
} from './client-auth';
export { TokenIntrospector, isJwtShaped, type IntrospectionOptions, type ResolvedIntrospectionOptions, type IntrospectionResult } from './introspection';
export {
  PushUrlPolicy,
  PushUrlRefusedError,
  classifyAddress,
  MAX_PUSH_URL_LENGTH,
  type PushAddressClass,
  type PushHostLookup,
  type PushUrlPolicyOptions,
  type PushUrlRefusal,
  type CheckedPushTarget,
  type ResolvedAddress,
} from './push-policy';
export type { AuditSink, AuthAuditEvent } from './audit-event';
export { buildAgentCard, toV03Card, type DiscoveredSkill, type CardBuildOptions, type AgentCardV03Json } from './card/card-builder';
export { extendedCardVariant, type ExtendedCardVariant } from './card/extended-card';
export { checkAgentCard, checkV03Card, firstDifference, V1_ONLY_KEYS, V03_ONLY_KEYS } from './card/card-checker';
export type {
  AgentCardJson,
  AgentSkillJson,
  AgentInterfaceJson,
  SecurityRequirementJson,
  SecuritySchemeJson,
  AgentCardSignatureJson,
  StringListJson,
} from './card/agent-card.types';
export { signAgentCard, verifyAgentCard, canonicalCardBytes, type CardSignature } from './card/card-signer';
export {
  protectedResourceMetadataUrl,
  buildProtectedResourceMetadata,
  type ProtectedResourceMetadata,
  type ResourceMetadataInput,
} from './card/resource-metadata';
