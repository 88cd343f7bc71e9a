import type { IncomingMessage, ServerResponse } from 'node:http';

/**
 * OpenID Connect CIBA (Client-Initiated Backchannel Authentication, CIBA Core 1.0) on the embedded DEVELOPMENT
 * authorization server: oidc-provider's `features.ciba` in poll mode, a few known users, and a developer endpoint
 * that plays the user's authentication device (approve or deny a pending request). 127.0.0.1 only.
 */

/** The CIBA grant type (CIBA Core §10.1). */
export const CIBA_GRANT = 'urn:openid:params:grant-type:ciba';

/** A client allowed to start CIBA requests (poll mode) and redeem them at the token endpoint. */
export interface DevCibaClient {
  /** `client_id`. */
  clientId: string;
  /** `client_secret` (`client_secret_basic` or `client_secret_post`). */
  clientSecret: string;
  /** Scopes it may request besides `openid`. */
  scopes: string[];
  /** Environment variable that overrides the secret; `undefined` for the built-in default. */
  secretFrom?: string;
}

/** CIBA settings of {@link startDevAuthServer}. */
export interface DevCibaOptions {
  /** Clients that may use the CIBA grant. */
  clients: DevCibaClient[];
  /** Known users: a `login_hint` equal to one of these names that user (`sub`); any other is `unknown_user_id`. */
  users: string[];
  /** `interval` sent in every authentication response, seconds. Default 1 (short, so demos and tests finish quickly). */
  intervalSeconds?: number;
  /** Lifetime of a request (`expires_in`), seconds; a smaller `requested_expiry` wins. Default 120. */
  expirySeconds?: number;
}

/** A request waiting for the user, as `GET /dev/ciba/pending` lists it. */
export interface DevCibaPending {
  /** `auth_req_id`. */
  authReqId: string;
  /** The user asked (`login_hint` resolved to `sub`). */
  user: string;
  /** The requesting client. */
  clientId: string;
  /** `binding_message`, when sent. */
  bindingMessage?: string;
  /** Requested scopes (space-separated). */
  scope: string;
  /** When it expires, ISO 8601. */
  expiresAt: string;
}

/** The developer's control of pending CIBA requests (what the authentication device would do). */
export interface DevCibaControl {
  /** `backchannel_authentication_endpoint`. */
  backchannelAuthenticationUrl: string;
  /** Requests still waiting for an answer, oldest first. */
  pending(): DevCibaPending[];
  /** Approves one: the next poll gets tokens. `false` when no such request is pending. */
  approve(authReqId: string): Promise<boolean>;
  /** Denies one: the next poll gets `access_denied`. `false` when no such request is pending. */
  deny(authReqId: string, description?: string): Promise<boolean>;
}

type Provider = {
  Grant: new (o: { accountId: string; clientId: string }) => {
    addOIDCScope(s: string): void;
    addResourceScope(r: string, s: string): void;
    save(): Promise<string>;
  };
  BackchannelAuthenticationRequest: { find(id: string, o?: { ignoreExpiration?: boolean }): Promise<{ isExpired?: boolean } | undefined> };
  backchannelResult(request: string, result: unknown): Promise<void>;
};
type OidcErrors = typeof import('oidc-provider').errors;
type CibaRequest = { jti: string; accountId: string; clientId: string; scope: string; params?: Record<string, unknown>; exp?: number };

/** The provider configuration parts for CIBA, and the developer control once the provider exists. */
export interface DevCibaSetup {
  /** oidc-provider `clients` entries. */
  clients: Record<string, unknown>[];
  /** `features.ciba`. */
  feature: Record<string, unknown>;
  /** `findAccount`. */
  findAccount: (ctx: unknown, id: string) => Promise<{ accountId: string; claims: () => Promise<{ sub: string }> } | undefined>;
  /** `ttl.BackchannelAuthenticationRequest`, seconds. */
  ttl: (ctx: { oidc?: { params?: { requested_expiry?: unknown } } } | undefined) => number;
  /** Binds the control to the started provider. */
  attach(provider: unknown, o: { issuer: string; audience: string }): DevCibaControl;
}

/** Builds the CIBA configuration of the dev authorization server. DEVELOPMENT ONLY. */
export function devCiba(o: DevCibaOptions, errors: OidcErrors): DevCibaSetup {
  const interval = o.intervalSeconds ?? 1;
  const expiry = o.expirySeconds ?? 120;
  const users = new Set(o.users);
  const pending = new Map<string, DevCibaPending>();
  return {
    clients: o.clients.map((c) => ({
      client_id: c.clientId,
      client_secret: c.clientSecret,
      grant_types: [CIBA_GRANT],
      response_types: [],
      redirect_uris: [],
      token_endpoint_auth_method: 'client_secret_basic',
      backchannel_token_delivery_mode: 'poll',
      scope: ['openid', ...c.scopes].join(' '),
    })),
    feature: {
      enabled: true,
      deliveryModes: ['poll'],
      processLoginHint: async (_ctx: unknown, hint: string) => (users.has(hint) ? hint : undefined),
      processLoginHintToken: async () => undefined,
      verifyUserCode: async () => undefined,
      validateRequestContext: async () => undefined,
      // oidc-provider's own rule (1–20 characters of a small set) is too tight for "Approve expense 42.50 EUR".
      validateBindingMessage: async (_ctx: unknown, m?: string) => {
        if (m !== undefined && !/^[\p{L}\p{N} .,:;!?#()+\-/_€$£%]{1,100}$/u.test(m)) {
          throw new errors.InvalidBindingMessage('binding_message must be 1–100 letters, digits, spaces or simple punctuation');
        }
      },
      triggerAuthenticationDevice: async (ctx: { body?: Record<string, unknown> }, request: CibaRequest) => {
        // CIBA Core §7.3: `interval` is OPTIONAL (clients then wait 5 s); oidc-provider sends none, the dev server a short one.
        if (ctx.body) ctx.body.interval = interval;
        const msg = request.params?.binding_message;
        pending.set(request.jti, {
          authReqId: request.jti,
          user: request.accountId,
          clientId: request.clientId,
          ...(typeof msg === 'string' ? { bindingMessage: msg } : {}),
          scope: request.scope,
          expiresAt: new Date((request.exp ?? Math.floor(Date.now() / 1000) + expiry) * 1000).toISOString(),
        });
      },
    },
    findAccount: async (_ctx, id) => (users.has(id) ? { accountId: id, claims: async () => ({ sub: id }) } : undefined),
    ttl: (ctx) => {
      const asked = Number(ctx?.oidc?.params?.requested_expiry);
      return Number.isSafeInteger(asked) && asked > 0 ? Math.min(asked, expiry) : expiry;
    },
    attach(providerArg, s) {
      const provider = providerArg as Provider;
      const live = (): DevCibaPending[] => {
        const now = Date.now();
        for (const [id, p] of pending) if (Date.parse(p.expiresAt) <= now) pending.delete(id);
        return [...pending.values()];
      };
      const take = async (id: string) => {
        live();
        const p = pending.get(id);
        if (!p) return undefined;
        pending.delete(id);
        const request = await provider.BackchannelAuthenticationRequest.find(id);
        return request && !request.isExpired ? p : undefined;
      };
      return {
        backchannelAuthenticationUrl: `${s.issuer}/backchannel`,
        pending: live,
        approve: async (id) => {
          const p = await take(id);
          if (!p) return false;
          const grant = new provider.Grant({ accountId: p.user, clientId: p.clientId });
          grant.addOIDCScope('openid');
          const resourceScopes = p.scope
            .split(' ')
            .filter((x) => x && x !== 'openid')
            .join(' ');
          if (resourceScopes) grant.addResourceScope(s.audience, resourceScopes);
          await provider.backchannelResult(id, await grant.save());
          return true;
        },
        deny: async (id, description) => {
          if (!(await take(id))) return false;
          await provider.backchannelResult(id, new errors.AccessDenied(description ?? 'the user denied the request'));
          return true;
        },
      };
    },
  };
}

/** One JSON answer of the developer endpoint. */
function send(res: ServerResponse, status: number, body: unknown): true {
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
  res.end(JSON.stringify(body));
  return true;
}

/** `auth_req_id` values are oidc-provider ids: URL-safe, bounded. */
const ID = /^[A-Za-z0-9_-]{1,128}$/;

/**
 * The developer endpoint (the user's "authentication device"), 127.0.0.1 only, no other authentication:
 * - `GET /dev/ciba/pending` → 200 `{ pending: DevCibaPending[] }`;
 * - `POST /dev/ciba/<auth_req_id>/approve` → 200 `{ approved: "<id>" }`, 404 `{ error: "not_found" }` when not pending;
 * - `POST /dev/ciba/<auth_req_id>/deny` → 200 `{ denied: "<id>" }`, 404 likewise;
 * - from a non-loopback peer: 403 `{ error: "forbidden" }`.
 * @returns `false` for any other path (oidc-provider answers it).
 */
export function handleDevCibaRequest(control: DevCibaControl, req: IncomingMessage, res: ServerResponse): boolean {
  const path = (req.url ?? '').split('?')[0];
  if (!path.startsWith('/dev/ciba/')) return false;
  const peer = req.socket.remoteAddress ?? '';
  if (!(peer === '::1' || peer.startsWith('127.') || peer.startsWith('::ffff:127.'))) return send(res, 403, { error: 'forbidden' });
  if (path === '/dev/ciba/pending') {
    if (req.method !== 'GET') return send(res, 405, { error: 'method_not_allowed' });
    return send(res, 200, { pending: control.pending() });
  }
  const m = /^\/dev\/ciba\/([^/]+)\/(approve|deny)$/.exec(path);
  if (!m || !ID.test(m[1])) return send(res, 404, { error: 'not_found' });
  if (req.method !== 'POST') return send(res, 405, { error: 'method_not_allowed' });
  req.resume(); // any body is ignored
  const [, id, action] = m;
  (action === 'approve' ? control.approve(id) : control.deny(id)).then(
    (done) => (done ? send(res, 200, action === 'approve' ? { approved: id } : { denied: id }) : send(res, 404, { error: 'not_found' })),
    () => send(res, 500, { error: 'server_error' }),
  );
  return true;
}

/**
 * The sample's CIBA defaults (public; development only): the Expense agent's own client for the CIBA grant, and the
 * users a `login_hint` may name.
 */
export const DEV_CIBA_DEFAULTS = Object.freeze({
  client: Object.freeze({ clientId: 'expense-agent-ciba', clientSecret: 'ciba-secret', scopes: ['expense:submit'] }),
  users: Object.freeze(['alice', 'bob']),
  /** The `login_hint` asked when a message names none. */
  loginHint: 'alice',
});
