/**
 * Errors of the calling side (client-credentials grant, card discovery). Messages never contain a client secret,
 * an access token or an `Authorization` header.
 */

/** Base class of every calling-side error. */
export class ClientCredentialsError extends Error {
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

/**
 * The token endpoint answered and refused the request (RFC 6749 §5.2), or answered 2xx with something that is not
 * a usable bearer token response (RFC 6749 §5.1).
 *
 * - `error`: the OAuth 2.0 error code: `invalid_client` (HTTP 401/400: wrong id or secret), `invalid_scope`,
 *   `invalid_request`, `unauthorized_client`, `unsupported_grant_type`, `invalid_target` (RFC 8707), …;
 *   `invalid_token_response` when a 2xx body lacks `access_token` or names a `token_type` other than `Bearer`;
 *   `unexpected_response` for a 4xx without an RFC 6749 error body.
 * - `status`: the HTTP status.
 * - Not retryable as is: fix the client registration or the requested scopes.
 */
export class TokenEndpointError extends ClientCredentialsError {
  /** RFC 6749 §5.2 `error` (or one of the codes above). */
  readonly error: string;
  /** RFC 6749 §5.2 `error_description`, shortened to 200 characters (it comes from the server). */
  readonly errorDescription?: string;
  /** HTTP status of the token response. */
  readonly status: number;
  /** The token endpoint URL. */
  readonly tokenUrl: string;
  /** The `client_id` that was used (an identifier, not a secret). */
  readonly clientId: string;

  constructor(p: { error: string; errorDescription?: string; status: number; tokenUrl: string; clientId: string }) {
    super(
      `token endpoint ${p.tokenUrl} refused client ${JSON.stringify(p.clientId)}: ${p.error}` +
        (p.errorDescription ? ` (${p.errorDescription})` : '') +
        ` [HTTP ${p.status}]`,
    );
    this.error = p.error;
    this.errorDescription = p.errorDescription;
    this.status = p.status;
    this.tokenUrl = p.tokenUrl;
    this.clientId = p.clientId;
  }
}

/**
 * The token endpoint could not be used: a network error, no answer within the timeout, a redirect (never followed,
 * so credentials cannot leak to another host), or a 5xx. Usually transient: retry later.
 */
export class TokenEndpointUnavailableError extends ClientCredentialsError {
  /** `timeout`, `network`, `redirect` or `server_error` (HTTP 5xx). */
  readonly kind: 'timeout' | 'network' | 'redirect' | 'server_error';
  /** HTTP status for `server_error` and `redirect`. */
  readonly status?: number;
  /** The token endpoint URL. */
  readonly tokenUrl: string;

  constructor(p: { kind: TokenEndpointUnavailableError['kind']; tokenUrl: string; status?: number; detail?: string }) {
    super(`token endpoint ${p.tokenUrl} unavailable: ${p.kind}${p.status ? ` [HTTP ${p.status}]` : ''}${p.detail ? ` (${p.detail})` : ''}`);
    this.kind = p.kind;
    this.status = p.status;
    this.tokenUrl = p.tokenUrl;
  }
}

/**
 * Discovery from an Agent Card failed: the card could not be fetched or parsed, it advertises no OAuth 2.0
 * client-credentials flow, its `tokenUrl` is not trusted, or it does not list the named skill.
 * `code` is one of `card_unavailable`, `invalid_card`, `no_client_credentials`, `untrusted_token_url`, `unknown_skill`.
 */
export class AgentCardDiscoveryError extends ClientCredentialsError {
  /** Machine-readable reason. */
  readonly code: 'card_unavailable' | 'invalid_card' | 'no_client_credentials' | 'untrusted_token_url' | 'unknown_skill';

  constructor(code: AgentCardDiscoveryError['code'], message: string) {
    super(message);
    this.code = code;
  }
}
