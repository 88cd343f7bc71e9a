import { createPublicKey, randomUUID, type KeyObject } from 'node:crypto';

/** RFC 8693 §2.1 `grant_type` of a token exchange. */
export const TOKEN_EXCHANGE_GRANT = 'urn:ietf:params:oauth:grant-type:token-exchange';
/** RFC 8693 §3 token type of an OAuth 2.0 access token. */
export const ACCESS_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:access_token';

/** RFC 8693 §2.1 request parameters of the grant (besides `grant_type`). */
const PARAMETERS = ['subject_token', 'subject_token_type', 'actor_token', 'actor_token_type', 'requested_token_type', 'resource', 'audience', 'scope'];

/** What {@link registerTokenExchange} needs from the dev authorization server. */
export interface DevTokenExchangeOptions {
  /** `iss` of the server's tokens; subject and actor tokens must carry it. */
  issuer: string;
  /** The default audience of the tokens it issues (when the request names no `resource` / `audience`). */
  audience: string;
  /** Further audiences it issues tokens for when `resource` / `audience` names one (other sample agents). Default none. */
  extraAudiences?: readonly string[];
  /** The RS256 signing key (the one the server publishes in its JWKS). */
  privateKey: KeyObject;
  /** Its `kid`. */
  kid: string;
  /** Lifetime of an issued token, seconds; never beyond the subject token's `exp`. */
  ttl: number;
}

type OidcErrors = typeof import('oidc-provider').errors;
type GrantContext = {
  oidc: { params: Record<string, string | undefined>; client: { clientId: string; scope?: string } };
  body?: unknown;
};

/**
 * Adds the RFC 8693 token-exchange grant to the dev oidc-provider (`provider.registerGrantType`), for clients whose
 * `grant_types` list it. DEVELOPMENT ONLY.
 *
 * - `subject_token` (type `…:access_token`) must be an access token this server issued and that has not expired.
 * - `actor_token` (optional, type `…:access_token`) must be this server's token issued to the authenticated client;
 *   without one, the authenticated client is the actor.
 * - The issued JWT access token (`typ: at+jwt`, RS256) keeps the subject's `sub`, names the actor in `act`
 *   (RFC 8693 §4.1: `{ sub, client_id }`, with the subject token's own `act` nested inside, for chains), is for the
 *   `resource` or `audience` requested (the server's audience or one of `extraAudiences`; default the server's), carries the requested scopes (default: all
 *   the subject's) limited to those the subject token and the client both hold, and ends at the earlier of
 *   `now + ttl` and the subject token's `exp`.
 * - Refusals are RFC 6749 §5.2 errors: `invalid_request` (wrong token types), `invalid_grant` (a subject or actor
 *   token that is not valid here), `invalid_target` (RFC 8707, another audience), `invalid_scope`.
 */
export async function registerTokenExchange(
  provider: { registerGrantType(name: string, handler: (ctx: GrantContext) => Promise<void>, params: string[]): void },
  errors: OidcErrors,
  o: DevTokenExchangeOptions,
): Promise<void> {
  const { SignJWT, jwtVerify } = await import('jose');
  const publicKey = createPublicKey(o.privateKey);
  const audiences = new Set([o.audience, ...(o.extraAudiences ?? [])]);

  const verifyOwn = async (token: string | undefined, what: string) => {
    if (!token) throw new errors.InvalidRequest(`${what} is required`);
    try {
      const { payload } = await jwtVerify(token, publicKey, { issuer: o.issuer, algorithms: ['RS256'], typ: 'at+jwt' });
      return payload;
    } catch {
      throw new errors.InvalidGrant(`${what} is not a valid access token of this server`);
    }
  };

  const handler = async (ctx: GrantContext): Promise<void> => {
    const p = ctx.oidc.params;
    const client = ctx.oidc.client;
    if (p.subject_token_type !== ACCESS_TOKEN_TYPE) throw new errors.InvalidRequest('unsupported subject_token_type');
    if (p.requested_token_type !== undefined && p.requested_token_type !== ACCESS_TOKEN_TYPE)
      throw new errors.InvalidRequest('unsupported requested_token_type');
    const subject = await verifyOwn(p.subject_token, 'subject_token');
    let actor = { sub: client.clientId, client_id: client.clientId };
    if (p.actor_token !== undefined) {
      if (p.actor_token_type !== ACCESS_TOKEN_TYPE) throw new errors.InvalidRequest('unsupported actor_token_type');
      const a = await verifyOwn(p.actor_token, 'actor_token');
      if (a.client_id !== client.clientId) throw new errors.InvalidGrant('actor_token was not issued to this client');
      actor = { sub: typeof a.sub === 'string' ? a.sub : client.clientId, client_id: client.clientId };
    } else if (p.actor_token_type !== undefined) {
      throw new errors.InvalidRequest('actor_token_type without actor_token');
    }
    const target = p.resource ?? p.audience ?? o.audience;
    if (!audiences.has(target)) throw new errors.InvalidTarget('this server issues no tokens for that audience');

    const held = new Set(typeof subject.scope === 'string' ? subject.scope.split(' ').filter(Boolean) : []);
    const allowed = new Set((client.scope ?? '').split(' ').filter(Boolean));
    const requested = p.scope !== undefined ? p.scope.split(' ').filter(Boolean) : [...held];
    const scopes = requested.filter((s) => held.has(s) && allowed.has(s));
    if (p.scope !== undefined && scopes.length !== requested.length)
      throw new errors.InvalidScope('a requested scope is not held by the subject token and the client', p.scope);

    const now = Math.floor(Date.now() / 1000);
    const exp = Math.min(now + o.ttl, typeof subject.exp === 'number' ? subject.exp : now);
    if (exp <= now) throw new errors.InvalidGrant('subject_token expired');
    const act = subject.act !== undefined ? { ...actor, act: subject.act } : actor;
    const claims: Record<string, unknown> = { client_id: client.clientId, act, jti: randomUUID() };
    if (scopes.length) claims.scope = scopes.join(' ');
    const builder = new SignJWT(claims)
      .setProtectedHeader({ alg: 'RS256', kid: o.kid, typ: 'at+jwt' })
      .setIssuer(o.issuer)
      .setAudience(target)
      .setIssuedAt(now)
      .setExpirationTime(exp);
    if (typeof subject.sub === 'string') builder.setSubject(subject.sub);
    const accessToken = await builder.sign(o.privateKey);
    ctx.body = {
      access_token: accessToken,
      issued_token_type: ACCESS_TOKEN_TYPE,
      token_type: 'Bearer',
      expires_in: exp - now,
      ...(scopes.length ? { scope: scopes.join(' ') } : {}),
    };
  };
  provider.registerGrantType(TOKEN_EXCHANGE_GRANT, handler, PARAMETERS);
}
