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
 * Discovery from an Agent Card failed. `code`:
 * - `card_unavailable`, `invalid_card`: the card could not be fetched or parsed;
 * - `no_client_credentials`: it advertises no OAuth 2.0 client-credentials flow;
 * - `untrusted_token_url`: its `tokenUrl` is not trusted (`DiscoveryOptions.trustTokenUrl`);
 * - `untrusted_interface`: one of its interfaces may not receive the bearer token (another origin than the card's and
 *   not allowed, plain `http:` to a non-loopback host, or not an absolute http(s) URL); `url` names it;
 * - `unknown_skill`: it does not list the named skill;
 * - with `DiscoveryOptions.cardTrust` (A2A v1.0 §8.4), before any of the card's content is used:
 *   `unsigned_card` (no `signatures`), `invalid_card_signature` (an entry that is not a usable JWS, or an `alg` not
 *   allowed), `unknown_card_key` (signed by no key of the trust root), `card_signature_mismatch` (the signature does
 *   not verify: the card was changed after signing, or forged under a trusted `kid`), `card_keys_unavailable` (the
 *   trust root's JWKS URL could not be fetched).
 */
export class AgentCardDiscoveryError extends ClientCredentialsError {
  /** Machine-readable reason. */
  readonly code:
    | 'card_unavailable'
    | 'invalid_card'
    | 'no_client_credentials'
    | 'untrusted_token_url'
    | 'untrusted_interface'
    | 'unknown_skill'
    | 'unsigned_card'
    | 'invalid_card_signature'
    | 'unknown_card_key'
    | 'card_signature_mismatch'
    | 'card_keys_unavailable';
  /** The URL concerned: the interface URL for `untrusted_interface`, the token URL for `untrusted_token_url`. */
  readonly url?: string;

  constructor(code: AgentCardDiscoveryError['code'], message: string, url?: string) {
    super(message);
    this.code = code;
    if (url !== undefined) this.url = url;
  }
}

/**
 * A request that would carry the bearer token was stopped by `a2aAuthFetch` (RFC 6750 §5.3: bearer tokens must not
 * leak to unintended parties). Nothing was sent for `not_http`, `insecure_http` and `untrusted_origin`; for `redirect`,
 * the allowed server answered 3xx and the redirect was not followed (neither the token nor the body goes on).
 */
export class UntrustedDestinationError extends ClientCredentialsError {
  /** `untrusted_origin` (not an allowed origin), `insecure_http` (plain http to a non-loopback host), `not_http`, or `redirect`. */
  readonly reason: 'not_http' | 'insecure_http' | 'untrusted_origin' | 'redirect';
  /** The request URL (for `redirect`: the URL that answered with the redirect). */
  readonly url: string;
  /** For `redirect`: the `Location` it named, shortened to 200 characters. */
  readonly location?: string;

  constructor(p: { reason: UntrustedDestinationError['reason']; url: string; message: string; location?: string }) {
    super(p.message);
    this.reason = p.reason;
    this.url = p.url;
    if (p.location !== undefined) this.location = p.location;
  }
}

/**
 * The resource server refused a call with HTTP 403 and `WWW-Authenticate: Bearer error="insufficient_scope",
 * scope="…"` (RFC 6750 §3.1), and step-up could not fix it:
 * - `refusedScopes` not empty: the challenge names scopes outside what the caller may ask for (its scopes and
 *   `stepUpScopes`), so none was requested (`stepUpAttempted` false);
 * - `stepUpAttempted` true: a token with the challenged scopes was obtained and the one retry was refused again
 *   (the authorization server granted fewer scopes, or the resource server wants more);
 * - `missingScopes` empty: the token already had every scope the challenge names; a new one would not help.
 */
export class InsufficientScopeError extends ClientCredentialsError {
  /** The scopes the challenge names (RFC 6750 §3 `scope`). */
  readonly requiredScopes: readonly string[];
  /** Of those, the ones the refused token did not have. */
  readonly missingScopes: readonly string[];
  /** Of the missing ones, those the caller is not configured to request (never requested). */
  readonly refusedScopes: readonly string[];
  /** Whether a token with more scopes was obtained and the request retried (once). */
  readonly stepUpAttempted: boolean;
  /** The request URL, when known. */
  readonly url?: string;
  /** HTTP status of the refusal: 403 (named as the SDK's HTTP+JSON errors name it, so code written for those keeps working). */
  readonly statusCode = 403;
  /** The refusal's `www-authenticate` header (lower-case name, as on the SDK's HTTP+JSON errors), when known. */
  readonly headers?: Readonly<Record<string, string>>;

  constructor(p: {
    requiredScopes: readonly string[];
    missingScopes: readonly string[];
    refusedScopes: readonly string[];
    stepUpAttempted: boolean;
    url?: string;
    wwwAuthenticate?: string | null;
  }) {
    const why = p.stepUpAttempted
      ? 'refused again after step-up'
      : p.refusedScopes.length
        ? `the scopes ${p.refusedScopes.join(' ')} are not in the scopes this client may request (stepUpScopes)`
        : p.missingScopes.length
          ? 'no step-up possible'
          : 'the token already has every scope the challenge names';
    super(`insufficient_scope${p.url ? ` at ${p.url}` : ''}: needs ${p.requiredScopes.join(' ') || '(no scope named)'}; ${why}`);
    this.requiredScopes = Object.freeze([...p.requiredScopes]);
    this.missingScopes = Object.freeze([...p.missingScopes]);
    this.refusedScopes = Object.freeze([...p.refusedScopes]);
    this.stepUpAttempted = p.stepUpAttempted;
    if (p.url !== undefined) this.url = p.url;
    if (p.wwwAuthenticate) this.headers = Object.freeze({ 'www-authenticate': p.wwwAuthenticate.slice(0, 2048) });
  }
}
