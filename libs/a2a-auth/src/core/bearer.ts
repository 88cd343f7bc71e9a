import { AuthError } from './errors';

/** Largest accepted access token, in bytes (characters; a valid token is ASCII). Default 8192. */
export const DEFAULT_MAX_TOKEN_LENGTH = 8192;

// RFC 6750 §2.1 b64token / RFC 7235 token68.
const TOKEN68 = /^[A-Za-z0-9\-._~+/]+=*$/;

// IANA HTTP Authentication Scheme Registry names, for audit details only.
const KNOWN_SCHEMES = new Map(
  [
    'Basic',
    'Digest',
    'DPoP',
    'Negotiate',
    'NTLM',
    'HOBA',
    'Mutual',
    'SCRAM-SHA-1',
    'SCRAM-SHA-256',
    'vapid',
    'PrivateToken',
    'Concealed',
    'AWS4-HMAC-SHA256',
    'MAC',
    'GNAP',
    'Token',
    'ApiKey',
  ].map((n) => [n.toLowerCase(), n]),
);

/** What a request carries for bearer extraction; framework-free. */
export interface BearerSource {
  /** The `Authorization` header value(s) as the HTTP server parsed them. */
  authorization?: string | string[];
  /** How many `Authorization` header lines the raw request carried (Node keeps only the first). */
  authorizationCount?: number;
  /** The `access_token` query parameter (RFC 6750 §2.3), when present. */
  queryToken?: string | string[];
}

/** Options for {@link extractBearerToken}. */
export interface BearerOptions {
  /** Accept `?access_token=` (RFC 6750 §2.3). Default `false`: its use leaks tokens into logs. */
  allowQueryToken?: boolean;
  /** Maximum token length in characters. Default {@link DEFAULT_MAX_TOKEN_LENGTH} (8192). */
  maxTokenLength?: number;
}

/** The authentication scheme an access token came with: RFC 6750 `Bearer` or RFC 9449 §7.1 `DPoP`. */
export type TokenScheme = 'Bearer' | 'DPoP';

/** An access token and the scheme it was sent with. */
export interface PresentedToken {
  /** The access token (a token68). */
  token: string;
  /** `Bearer` (also for the RFC 6750 §2.3 query parameter) or `DPoP`. */
  scheme: TokenScheme;
}

/** Options for {@link extractAccessToken}. */
export interface CredentialOptions extends BearerOptions {
  /** Accept the RFC 9449 `DPoP` scheme too. Default `false`: it is then refused like any other scheme. */
  acceptDPoP?: boolean;
}

/**
 * Extracts the bearer token from a request, per RFC 6750 §2.1 and RFC 7235 §2.1.
 *
 * - The scheme `Bearer` is case-insensitive; one or more spaces separate it from a token68.
 * - Nothing may follow the token.
 *
 * @returns the token string.
 * @throws AuthError `missing_token` (401, no error code) when no credentials are sent;
 *   `unsupported_scheme` (401, no error code) for another scheme (Basic, DPoP…);
 *   `malformed_header` (400 `invalid_request`) for a malformed header;
 *   `multiple_tokens` (400 `invalid_request`) for several headers or header plus query (RFC 6750 §2);
 *   `token_too_large` (401 `invalid_token`) above `maxTokenLength`.
 */
export function extractBearerToken(src: BearerSource, opts: BearerOptions = {}): string {
  return extractAccessToken(src, { ...opts, acceptDPoP: false }).token;
}

/**
 * Extracts the access token and its scheme: as {@link extractBearerToken}, and with `acceptDPoP` also
 * `Authorization: DPoP <token68>` (RFC 9449 §7.1, the scheme case-insensitive). A DPoP token is only ever taken from
 * the header (RFC 9449 defines no query method).
 * @throws AuthError as {@link extractBearerToken}; `DPoP` is `unsupported_scheme` unless `acceptDPoP`.
 */
export function extractAccessToken(src: BearerSource, opts: CredentialOptions = {}): PresentedToken {
  const max = opts.maxTokenLength ?? DEFAULT_MAX_TOKEN_LENGTH;
  const header = src.authorization;
  const query = src.queryToken;
  const queryPresent = query !== undefined && query !== '';

  if (Array.isArray(header) || (src.authorizationCount ?? 0) > 1) {
    throw new AuthError('multiple_tokens', 'more than one Authorization header');
  }
  if (queryPresent && !opts.allowQueryToken) {
    if (header === undefined) throw new AuthError('missing_token', 'access_token query parameter is not accepted');
  }
  if (header === undefined || header === '') {
    if (queryPresent && opts.allowQueryToken) {
      if (Array.isArray(query)) throw new AuthError('multiple_tokens', 'more than one access_token parameter');
      return { token: checkToken(query as string, max), scheme: 'Bearer' };
    }
    throw new AuthError('missing_token', 'no Authorization header');
  }
  if (queryPresent) {
    // RFC 6750 §2: a client MUST NOT use more than one method; refused even when the query method is off.
    throw new AuthError('multiple_tokens', 'token in both header and query');
  }

  const value = header.trim();
  const sp = value.indexOf(' ');
  const scheme = sp === -1 ? value : value.slice(0, sp);
  const lower = scheme.toLowerCase();
  const name: TokenScheme | undefined = lower === 'bearer' ? 'Bearer' : lower === 'dpop' && opts.acceptDPoP ? 'DPoP' : undefined;
  if (!name) {
    if (!/^[A-Za-z0-9!#$%&'*+\-.^_`|~]+$/.test(scheme)) throw new AuthError('malformed_header', 'unparseable auth scheme');
    // Name only well-known schemes in the audit detail: a bare token sent without a scheme would otherwise be echoed.
    const known = KNOWN_SCHEMES.get(lower);
    throw new AuthError('unsupported_scheme', known ? `scheme ${known} is not supported` : 'unsupported scheme');
  }
  if (sp === -1) throw new AuthError('malformed_header', `${name} without a token`);
  const rest = value.slice(sp + 1).replace(/^ +/, '');
  if (rest === '') throw new AuthError('malformed_header', `${name} without a token`);
  if (/[ \t,]/.test(rest)) throw new AuthError('malformed_header', 'data after the token');
  return { token: checkToken(rest, max), scheme: name };
}

function checkToken(token: string, max: number): string {
  if (token.length > max) throw new AuthError('token_too_large', `token longer than ${max} characters`);
  if (!TOKEN68.test(token)) throw new AuthError('malformed_header', 'token is not a token68');
  return token;
}
