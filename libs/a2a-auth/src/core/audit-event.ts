import type { AuthReason } from './errors';

/**
 * One authentication/authorization decision. Never contains a token, an `Authorization` header or a secret.
 */
export interface AuthAuditEvent {
  /** Always `'a2a.auth'`. */
  type: 'a2a.auth';
  /** `success` or `failure`. */
  outcome: 'success' | 'failure';
  /** `ok` on success; otherwise the precise reason code. */
  reason: AuthReason | 'ok';
  /** HTTP status produced (200 on success). */
  status: number;
  /** OAuth 2.0 `client_id` (or `azp`). On failures it is read from the unverified token, see `verified`. */
  clientId?: string;
  /** `sub` claim. */
  subject?: string;
  /** `iss` claim. */
  issuer?: string;
  /**
   * The delegation chain (RFC 8693 §4.1 `act`), nearest actor first: client ids and subjects only. Absent for a direct
   * token. On failures it is read from the unverified token when it can be, see `verified`.
   */
  actors?: ReadonlyArray<{ clientId?: string; subject?: string }>;
  /** SHA-256 (base64url, 22 chars) of the token's `jti`, or of the whole token when it has none. */
  tokenId?: string;
  /** Key id from the token header. */
  kid?: string;
  /** Whether the identity fields come from a verified token. */
  verified: boolean;
  /** HTTP method. */
  method?: string;
  /** Route path (the pattern when known, else the URL path without query). */
  route?: string;
  /** A2A skill id, when the route or message names one. */
  skillId?: string;
  /** Scopes the route or skill requires. */
  requiredScopes?: readonly string[];
  /** Scopes the token granted. */
  grantedScopes?: readonly string[];
  /** Client network address (socket peer, or per trusted proxy hops). */
  peer?: string;
  /** ISO 8601 time of the decision. */
  time: string;
  /** Internal detail for operators (never a token). */
  detail?: string;
}

/**
 * Where audit events go. Provide your own under {@link A2A_AUDIT_SINK} to ship them elsewhere.
 * `emit` must not throw (errors are swallowed) and should be fast (it runs on the request path).
 */
export interface AuditSink {
  /** Whether success events are wanted; when false the guard does not even build them. */
  readonly wantsSuccesses: boolean;
  /** Receives one event. */
  emit(event: AuthAuditEvent): void;
}
