/** Passport strategy name registered by {@link A2AJwtStrategy}; usable as `AuthGuard('a2a-jwt')`. */
export const A2A_JWT_STRATEGY = 'a2a-jwt';
/** Injection token of the validated {@link ResolvedOptions}. */
export const A2A_AUTH_RESOLVED_OPTIONS = Symbol('A2A_AUTH_RESOLVED_OPTIONS');
/** Injection token of the {@link AuditSink}; provide your own to replace the default logger sink. */
export const A2A_AUDIT_SINK = Symbol('A2A_AUDIT_SINK');
/** Metadata key set by `@Public()`. */
export const IS_PUBLIC_KEY = 'a2a-auth:public';
/** Metadata key set by `@RequireScopes()`. */
export const REQUIRED_SCOPES_KEY = 'a2a-auth:scopes';
/** Metadata key set by `@A2AEndpoint()`. */
export const A2A_ENDPOINT_KEY = 'a2a-auth:a2a-endpoint';
/** Metadata key set by `@Delegation()`. */
export const DELEGATION_KEY = 'a2a-auth:delegation';
/** Metadata key set by `@AgentSkill()`. */
export const AGENT_SKILL_KEY = 'a2a-auth:skill';
/** Injection token of the {@link AuthRuntime} (key sets, verified-token cache, verifier) built by `createAuthRuntime`. */
export const A2A_AUTH_RUNTIME = Symbol('A2A_AUTH_RUNTIME');
/** Injection token of the {@link Verifier}: the one per-token decision every entry point calls. */
export const A2A_VERIFIER = Symbol('A2A_VERIFIER');
/** Metadata key set by `@DPoP()`. */
export const DPOP_MODE_KEY = 'a2a-auth:dpop';
/** Metadata key set by `@ClientRateLimit()`. */
export const CLIENT_RATE_LIMIT_KEY = 'a2a-auth:client-rate-limit';
/**
 * Injection token of the agent's {@link SharedStore} (in memory, or Redis with the `store` option), under the agent's
 * key prefix. For shared state beyond rate limits: a replay check calls `setIfAbsent` and fails closed when it
 * rejects; a cache calls `get`/`set` and treats a rejection as a miss.
 */
export const A2A_SHARED_STORE = Symbol('A2A_SHARED_STORE');
/** @internal The Redis connection (or `undefined`) behind the store and the throttler storage. */
export const A2A_REDIS_CONNECTION = Symbol('A2A_REDIS_CONNECTION');
