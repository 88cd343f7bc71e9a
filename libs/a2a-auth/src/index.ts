/**
 * `nestjs-a2a-auth`: make a NestJS A2A agent an OAuth 2.0 resource server.
 *
 * The package root holds the Nest layer (module, decorators, guard, Passport strategy, card controllers, A2A bindings)
 * and re-exports the calling side (`nestjs-a2a-auth/client`) and the core types an app needs. The framework-free
 * building blocks (bearer parsing, key sets, claim checks, the card builder, …) are in `nestjs-a2a-auth/core`.
 */

// The module and its options.
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
  type DPoPMode,
  type DPoPOptions,
  type DPoPNonceOptions,
  DEFAULT_DPOP_ALGORITHMS,
  type StoreOptions,
  type ClientRateLimitOptions,
  resolveClientRateLimit,
} from './core/options';
export type { IntrospectionOptions } from './core/introspection';
export { InMemoryStore, StoreUnavailableError, withStoreTimeout, defaultKeyPrefix, type SharedStore } from './core/store';
export { A2A_JWT_STRATEGY, A2A_AUDIT_SINK, A2A_AUTH_RESOLVED_OPTIONS, A2A_VERIFIER, A2A_AUTH_RUNTIME, A2A_SHARED_STORE } from './nest/constants';
export { ClientRateLimit } from './nest/decorators/client-rate-limit.decorator';
export { RedisStore, type RedisClientLike } from './nest/store/redis-store';

// Decorators and the verified caller.
export { Public } from './nest/decorators/public.decorator';
export { RequireScopes } from './nest/decorators/require-scopes.decorator';
export { AgentSkill, type AgentSkillOptions } from './nest/decorators/agent-skill.decorator';
export { A2ACaller } from './nest/decorators/a2a-caller.decorator';
export { A2AEndpoint } from './nest/decorators/a2a-endpoint.decorator';
export { DPoP } from './nest/decorators/dpop.decorator';
export { Delegation } from './nest/decorators/delegation.decorator';
export type { A2AActor, DelegationOptions, DelegationPolicy } from './core/delegation';

// Decisions: the guard, the Passport strategy, the verifier behind both, and the errors they produce.
export { A2AAuthGuard } from './nest/guard/a2a-auth.guard';
export { A2AJwtStrategy } from './nest/passport/a2a-jwt.strategy';
export { createVerifier, certificateThumbprint, type Verifier, type VerificationContext, type VerifyAttempt } from './core/verifier';
export { createAuthRuntime, type AuthRuntime } from './core/runtime';
export type { RoutePolicy } from './core/route-policy';
export { AuthError, isAuthError, REASONS, type AuthReason, type BearerErrorCode, type ReasonInfo } from './core/errors';
export type { AuthErrorBody } from './core/challenge';
export type { ClaimValidator } from './core/claims';
export { InMemoryReplayCache, SharedStoreReplayCache, type DPoPReplayCache } from './core/replay-cache';
export { jwkThumbprint, accessTokenHash } from './core/dpop';

// The audit trail.
export { AuthAuditService } from './nest/audit/auth-audit.service';
export { LoggerAuditSink } from './nest/audit/logger-audit-sink';
export type { AuditSink, AuthAuditEvent } from './core/audit-event';

// The Agent Card and RFC 9728 metadata.
export {
  AgentCardService,
  ExtendedCardError,
  EXTENDED_CARD_VARIANTS_MAX,
  EXTENDED_CARD_CALLBACK_TIMEOUT_MS,
  type ServedDocument,
  type CardView,
  type ExtendedCardDocuments,
} from './nest/card/card.service';
export { SkillRegistry, type RegisteredSkill } from './nest/card/skill-registry';
export { inspectAgentCards, runCardCli, type CardReport, type CardCliIo } from './nest/card/card-report';
export { checkAgentCard, checkV03Card } from './core/card/card-checker';
export { signAgentCard, verifyAgentCard, type CardSignature } from './core/card/card-signer';
export type {
  AgentCardJson,
  AgentSkillJson,
  AgentInterfaceJson,
  SecurityRequirementJson,
  SecuritySchemeJson,
  AgentCardSignatureJson,
} from './core/card/agent-card.types';
export type { AgentCardV03Json } from './core/card/card-builder';
export type { ProtectedResourceMetadata } from './core/card/resource-metadata';

// The A2A bindings (the official @a2a-js/sdk is an optional peer dependency).
export { A2AHttpTransport, createA2ARequestHandler, type A2ARequestHandlerOptions } from './nest/a2a/a2a-transport';
export {
  A2ASkillAuthorizer,
  A2ASkillResolutionError,
  skillIdOf,
  A2A_SKILL_ID_KEY,
  type AuthorizedSkill,
  type AuthorizedCall,
} from './nest/a2a/skill-authorizer';
export { A2AUser, a2aTaskOwner, a2aCallerOf, authorizedSkillOf, A2A_CALLER_STATE_KEY, A2A_SKILL_STATE_KEY } from './nest/a2a/a2a-user';
export { A2AInTaskAuthorization, A2ATaskInterruptedError, A2ASkillNotAuthorizedError, type RequireScopesOptions } from './nest/a2a/in-task-auth';
export {
  IN_TASK_AUTH_EXTENSION_URI,
  InMemoryPendingAuthorizationStore,
  type A2AAuthorizationRequest,
  type PendingAuthorization,
  type PendingAuthorizationStore,
  type TaskOwner,
} from './core/in-task-authorization';
export { enableA2AMediaType, A2A_MEDIA_TYPE } from './nest/a2a/media-type';
export {
  HumanApprovalService,
  TaskApproval,
  HUMAN_APPROVAL_EXTENSION_URI,
  A2A_HUMAN_APPROVAL_OPTIONS,
  HUMAN_APPROVAL_FIELD,
  DEFAULT_APPROVAL_TIMEOUT_MS,
  DEFAULT_MAX_PENDING_APPROVALS,
  DEFAULT_MAX_PENDING_APPROVALS_PER_OWNER,
  MAX_LOGIN_HINT_LENGTH,
  MAX_BINDING_MESSAGE_LENGTH,
  HumanApprovalInputError,
  type HumanApprovalOptions,
  type ApprovalRequest,
  type ApprovalResult,
  type HumanApprovalData,
} from './nest/a2a/approval';
export {
  A2APushNotificationSender,
  createPushNotifications,
  DEFAULT_PUSH_TIMEOUT_MS,
  DEFAULT_PUSH_MAX_PAYLOAD_BYTES,
  DEFAULT_PUSH_MAX_CONFIGS_PER_TASK,
  MAX_PENDING_PUSHES_PER_TASK,
  PUSH_TOKEN_HEADER,
  type A2APushNotificationOptions,
  type A2APushNotifications,
} from './nest/a2a/push-sender';
export { A2APushNotificationStore, MAX_PUSH_CREDENTIAL_LENGTH } from './nest/a2a/push-store';
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
} from './core/push-policy';

// The calling side (also `nestjs-a2a-auth/client`, which loads no Nest module).
export * from './client/index';
