/**
 * `nestjs-a2a-auth/core`: the framework-free resource-server core (no Nest, no Passport, no HTTP framework).
 * Bearer parsing, reason codes and challenges, option validation, key sets, the verifier, the Agent Card builder,
 * signer and checker, and RFC 9728 metadata. The Nest module in the package root is built on these.
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
} from './options';
export { AuthError, isAuthError, REASONS, type AuthReason, type BearerErrorCode, type ReasonInfo } from './errors';
export { extractBearerToken, DEFAULT_MAX_TOKEN_LENGTH, type BearerSource, type BearerOptions } from './bearer';
export { ChallengeBuilder, errorBody, type ChallengeParams, type AuthErrorBody } from './challenge';
export { extractScopes, assertScopes, DEFAULT_SCOPE_CLAIMS } from './scopes';
export { checkClaims, type ClaimValidator, type ClaimPolicy } from './claims';
export { type A2ACaller } from './caller';
export { VerifiedTokenCache, tokenHash, cacheNotAfter } from './token-cache';
export { JwksKeyStore, discoverJwksUri, type KeyStoreTiming, type KeySource, type VerificationKey } from './key-store';
export { KeyRegistry } from './key-registry';
export type { AuditSink, AuthAuditEvent } from './audit-event';
export type { AgentSkillOptions } from './route-policy';
export { buildAgentCard, toV03Card, type DiscoveredSkill, type CardBuildOptions, type AgentCardV03Json } from './card/card-builder';
export type {
  AgentCardJson,
  AgentSkillJson,
  AgentInterfaceJson,
  SecurityRequirementJson,
  SecuritySchemeJson,
  AgentCardSignatureJson,
} from './card/agent-card.types';
export { signAgentCard, verifyAgentCard, canonicalCardBytes, type CardSignature } from './card/card-signer';
export { protectedResourceMetadataUrl, buildProtectedResourceMetadata, type ProtectedResourceMetadata } from './card/resource-metadata';
