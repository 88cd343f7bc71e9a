import { createServer, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { createPrivateKey, generateKeyPair, randomBytes, type KeyObject } from 'node:crypto';
import { promisify } from 'node:util';
import type { DevClient, DevIntrospector, DevKeyClient } from './dev-clients';
import { registerTokenExchange, TOKEN_EXCHANGE_GRANT } from './dev-token-exchange';
import { devCiba, handleDevCibaRequest, type DevCibaControl, type DevCibaOptions } from './dev-ciba';

/**
 * The embedded DEVELOPMENT OAuth 2.0 authorization server of the sample (oidc-provider, in-process, 127.0.0.1 only).
 *
 * - Grants: client credentials (RFC 6749 §4.4) and token exchange (RFC 8693, see {@link registerTokenExchange}), client
 *   authentication `client_secret_basic` or `client_secret_post`, and `private_key_jwt` (RFC 7523) for `keyClients`.
 * - Tokens: RS256-signed JWT access tokens (RFC 9068, `typ: at+jwt`) whose `aud` is the agent's audience (or one of
 *   `extraAudiences`, when the request's `resource` names it). The
 *   audience comes from resource indicators (RFC 8707) with a default resource, so a plain §4.4 request with no
 *   `resource` parameter gets a token the agent accepts. A client with `accessTokenFormat: 'opaque'` gets opaque
 *   tokens instead (random strings, stored in memory), which a resource server checks at the introspection endpoint.
 * - DPoP (RFC 9449): a token request with a `DPoP` proof gets a DPoP-bound token (`token_type: DPoP`, `cnf.jkt`); a
 *   client with `dpopBoundAccessTokens` must send one. Nonces are supported (and required with `dpopRequireNonce`).
 * - Introspection (RFC 7662) at `/token/introspection`, for the `introspectors` only; revocation (RFC 7009) at
 *   `/token/revocation`, each client for its own tokens.
 * - OpenID Connect CIBA (poll mode), with `ciba`: see {@link devCiba}; the developer approves or denies pending
 *   requests at `GET /dev/ciba/pending`, `POST /dev/ciba/<auth_req_id>/approve|deny` (127.0.0.1 only).
 * - Keys are generated at start-up and live only in memory.
 *
 * It is not a production authorization server and refuses to start when `NODE_ENV=production`.
 */

/** Options of {@link startDevAuthServer}. */
export interface DevAuthServerOptions {
  /** The agent's audience: the `aud` of every token that names no `resource` (RFC 8707). */
  audience: string;
  /**
   * Further audiences (RFC 8707 `resource`) it issues tokens for, for the other sample agents (the assistant agent of
   * the delegation sample). Default none: `audience` is the only one.
   */
  extraAudiences?: string[];
  /** The clients (ids, secrets, allowed scopes). */
  clients: DevClient[];
  /** TCP port on 127.0.0.1. Default 0 (ephemeral). */
  port?: number;
  /** Access-token lifetime in seconds. Default 300. */
  tokenTtl?: number;
  /** `NODE_ENV` to check. Default `process.env.NODE_ENV`. */
  nodeEnv?: string;
  /** Resource servers allowed to call the introspection endpoint. Default none (every introspection answers `active: false`). */
  introspectors?: DevIntrospector[];
  /**
   * Clients that authenticate with `private_key_jwt` (RFC 7523; no secret). A key client without `publicJwk` gets an
   * ES256 key pair generated here, in memory only; its private key is in {@link DevAuthServer.clientKeys}. Default none.
   */
  keyClients?: DevKeyClient[];
  /** Require a server nonce in every DPoP proof (RFC 9449 §8): the first proof is answered `400 use_dpop_nonce`. Default false. */
  dpopRequireNonce?: boolean;
  /** OpenID Connect CIBA (poll mode): its clients and users. Default off (no backchannel authentication endpoint). */
  ciba?: DevCibaOptions;
}

/** A running dev authorization server. */
export interface DevAuthServer {
  /** `iss` of its tokens, e.g. `http://127.0.0.1:41234` (no trailing slash). */
  issuer: string;
  /** Token endpoint (RFC 6749 §3.2). */
  tokenUrl: string;
  /** JWKS with the public signing key (RFC 7517). */
  jwksUri: string;
  /** Introspection endpoint (RFC 7662 §2). */
  introspectionUrl: string;
  /** Revocation endpoint (RFC 7009 §2). */
  revocationUrl: string;
  /** The audience of its tokens. */
  audience: string;
  /** Access-token lifetime, seconds. */
  tokenTtl: number;
  /** The registered clients. */
  clients: DevClient[];
  /** CIBA, when enabled: the backchannel authentication endpoint and the developer's approve / deny. */
  ciba?: DevCibaControl;
  /** The `private_key_jwt` clients. */
  keyClients: DevKeyClient[];
  /**
   * The private keys generated for key clients without `publicJwk`, by client id: the key (never written anywhere), its
   * `kid` and algorithm (`ES256`). Give `{ key, kid }` to a provider's `privateKey`.
   */
  clientKeys: ReadonlyMap<string, DevClientKey>;
  /** Stops listening and drops open connections. */
  close(): Promise<void>;
}

/** A generated client key pair of the dev server (see {@link DevAuthServer.clientKeys}). */
export interface DevClientKey {
  /** The private key. */
  key: KeyObject;
  /** Its `kid` in the client's registered JWKS. */
  kid: string;
  /** The assertion algorithm. */
  alg: 'ES256';
  /** The registered public JWK. */
  publicJwk: Record<string, unknown>;
}

/** Where the dev server publishes a key client's public JWKS (its registered `jwks_uri`). */
function clientJwksPath(clientId: string): string {
  return `/dev-client-jwks/${encodeURIComponent(clientId)}`;
}

/** Thrown by {@link startDevAuthServer} when `NODE_ENV=production`. */
export class DevAuthServerRefusedError extends Error {
  constructor() {
    super(
      'The embedded development authorization server refuses to start with NODE_ENV=production. ' +
        'Point the agent at your real authorization server instead: set A2A_ISSUER and A2A_AUDIENCE ' +
        '(and A2A_JWKS_URI / A2A_TOKEN_URL unless discoverable from the issuer).',
    );
    this.name = 'DevAuthServerRefusedError';
  }
}

type OidcProviderModule = typeof import('oidc-provider');

/**
 * Loads oidc-provider (ESM-only; `import()` from CommonJS). On Node 20 it prints "Unsupported runtime" when the module
 * is evaluated; that line is noise for a dev server, so it is filtered during the load only.
 */
async function loadOidcProvider(): Promise<OidcProviderModule> {
  const { warn, info } = console;
  const drop =
    (orig: (...a: unknown[]) => void) =>
    (...args: unknown[]) => {
      if (typeof args[0] === 'string' && /oidc-provider (WARNING|NOTICE): Unsupported runtime/.test(args[0])) return;
      orig.apply(console, args);
    };
  console.warn = drop(warn);
  console.info = drop(info);
  try {
    return await import('oidc-provider');
  } finally {
    console.warn = warn;
    console.info = info;
  }
}

/**
 * A tiny Map-based storage adapter: opaque access tokens and the DPoP proof `jti`s seen (replay detection) live here;
 * JWT access tokens are never stored. At most 10,000 entries (the oldest go first), so a flood of token
 * requests cannot grow it without bound. Giving any adapter also keeps oidc-provider from warning about its own.
 */
function memoryAdapter() {
  const store = new Map<string, { payload: Record<string, unknown>; expiresAt: number }>();
  const MAX_STORED = 10_000;
  return class DevMemoryAdapter {
    constructor(private readonly model: string) {}
    private key(id: string) {
      return `${this.model}:${id}`;
    }
    async upsert(id: string, payload: Record<string, unknown>, expiresIn?: number) {
      store.delete(this.key(id));
      store.set(this.key(id), { payload, expiresAt: expiresIn ? Date.now() + expiresIn * 1000 : Infinity });
      if (store.size > MAX_STORED) store.delete(store.keys().next().value as string);
    }
    async find(id: string) {
      const e = store.get(this.key(id));
      if (!e) return undefined;
      if (e.expiresAt <= Date.now()) {
        store.delete(this.key(id));
        return undefined;
      }
      return e.payload;
    }
    async findByUserCode() {
      return undefined;
    }
    async findByUid() {
      return undefined;
    }
    async consume(id: string) {
      const e = store.get(this.key(id));
      if (e) e.payload.consumed = Math.floor(Date.now() / 1000);
    }
    async destroy(id: string) {
      store.delete(this.key(id));
    }
    async revokeByGrantId() {
      /* grants (CIBA approvals) simply expire */
    }
  };
}

/**
 * Starts the dev authorization server on `127.0.0.1:<port>`.
 * @throws DevAuthServerRefusedError when `NODE_ENV` is `production`.
 * @throws Error when the port is taken or a client is misconfigured (checked eagerly, before it answers requests).
 */
export async function startDevAuthServer(o: DevAuthServerOptions): Promise<DevAuthServer> {
  if ((o.nodeEnv ?? process.env.NODE_ENV) === 'production') throw new DevAuthServerRefusedError();
  const ttl = o.tokenTtl ?? 300;
  const { Provider, errors } = await loadOidcProvider();

  // Generated off the main thread, and the JWK is exported from a re-parsed copy: on Node 20 a synchronous RSA key
  // generation followed by a JWK export of that same key can deadlock the process inside a garbage collection.
  const generated = await promisify(generateKeyPair)('rsa', { modulusLength: 2048 });
  const privateKey = createPrivateKey(generated.privateKey.export({ format: 'pem', type: 'pkcs8' }));
  const signingKey = { ...privateKey.export({ format: 'jwk' }), kid: `dev-${randomBytes(6).toString('base64url')}`, alg: 'RS256', use: 'sig' };

  const keyClients = o.keyClients ?? [];
  const clientKeys = new Map<string, DevClientKey>();
  const keyClientJwks = new Map<string, Record<string, unknown>>();
  for (const k of keyClients) {
    if (k.publicJwk) {
      keyClientJwks.set(k.clientId, k.publicJwk);
      continue;
    }
    // Same pattern as the signing key: generated asynchronously, exported from a re-parsed copy.
    const pair = await promisify(generateKeyPair)('ec', { namedCurve: 'P-256' });
    const key = createPrivateKey(pair.privateKey.export({ format: 'pem', type: 'pkcs8' }));
    const { d: _d, ...pub } = key.export({ format: 'jwk' });
    void _d;
    const kid = `${k.clientId}-${randomBytes(6).toString('base64url')}`;
    const publicJwk = { ...pub, kid, alg: 'ES256', use: 'sig' };
    keyClientJwks.set(k.clientId, publicJwk);
    clientKeys.set(k.clientId, { key, kid, alg: 'ES256', publicJwk });
  }

  // The issuer includes the port, which is only known after listen(): listen first, then attach the provider.
  const server: Server = createServer();
  const sockets = new Set<Socket>();
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port ?? 0, '127.0.0.1', () => resolve());
  });
  const close = () =>
    new Promise<void>((resolve) => {
      for (const s of sockets) s.destroy();
      server.close(() => resolve());
    });

  try {
    const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const allScopes = [...new Set([...o.clients, ...keyClients].flatMap((c) => c.scopes))];
    const opaque = new Set(o.clients.filter((c) => c.accessTokenFormat === 'opaque').map((c) => c.clientId));
    const introspectors = o.introspectors ?? [];
    const mayIntrospect = new Set([...introspectors.map((i) => i.clientId), ...keyClients.filter((k) => k.introspector).map((k) => k.clientId)]);
    const ciba = o.ciba ? devCiba(o.ciba, errors) : undefined;
    const audiences = new Set([o.audience, ...(o.extraAudiences ?? [])]);
    const provider = new Provider(issuer, {
      clients: [
        ...o.clients.map((c) => ({
          client_id: c.clientId,
          client_secret: c.clientSecret,
          // Defaults are the code flow, which would require redirect_uris.
          grant_types: ['client_credentials', TOKEN_EXCHANGE_GRANT],
          response_types: [],
          redirect_uris: [],
          token_endpoint_auth_method: 'client_secret_basic' as const,
          scope: c.scopes.join(' '),
          ...(c.dpopBoundAccessTokens ? { dpop_bound_access_tokens: true } : {}),
        })),
        // No secret: the client signs a JWT with its private key; the provider checks it against these public keys.
        ...keyClients.map((k) => ({
          client_id: k.clientId,
          grant_types: k.scopes.length ? ['client_credentials', TOKEN_EXCHANGE_GRANT] : [],
          response_types: [],
          redirect_uris: [],
          token_endpoint_auth_method: 'private_key_jwt' as const,
          // Published by this server (below) rather than inlined as `jwks`: oidc-provider structuredClone()s static
          // client metadata, and under a test runner's sandbox the clone's keys fail its plain-object check.
          jwks_uri: `${issuer}${clientJwksPath(k.clientId)}`,
          ...(k.scopes.length ? { scope: k.scopes.join(' ') } : {}),
        })),
        // A resource server: it authenticates at the introspection endpoint and obtains no tokens.
        ...introspectors.map((i) => ({
          client_id: i.clientId,
          client_secret: i.clientSecret,
          grant_types: [],
          response_types: [],
          redirect_uris: [],
          token_endpoint_auth_method: 'client_secret_basic' as const,
        })),
        ...((ciba?.clients ?? []) as never[]),
      ],
      scopes: ciba ? [...new Set(['openid', ...allScopes, ...o.ciba!.clients.flatMap((c) => c.scopes)])] : allScopes, // custom scopes must be known to the provider, or client metadata fails validation
      responseTypes: [],
      clientAuthMethods: ['client_secret_basic', 'client_secret_post', 'private_key_jwt'],
      jwks: { keys: [signingKey as never] },
      adapter: memoryAdapter() as never,
      ...(ciba ? { findAccount: ciba.findAccount as never } : {}),
      features: {
        ...(ciba ? { ciba: ciba.feature as never } : {}),
        clientCredentials: { enabled: true },
        devInteractions: { enabled: false },
        // The proof's key is bound into the token as cnf.jkt; nonces come from a per-start secret.
        dPoP: { enabled: true, nonceSecret: randomBytes(32), requireNonce: () => o.dpopRequireNonce === true },
        // Any caller that is not a registered resource server gets `active: false` for every token.
        introspection: { enabled: true, allowedPolicy: (_ctx: unknown, client: { clientId: string }) => mayIntrospect.has(client.clientId) },
        revocation: {
          enabled: true,
          allowedPolicy: (_ctx: unknown, client: { clientId: string }, token: { clientId?: string }) => token.clientId === client.clientId,
        },
        userinfo: { enabled: false },
        resourceIndicators: {
          enabled: true,
          // RFC 6749 §4.4 requests carry no `resource`: default to the agent's audience.
          defaultResource: (_ctx: unknown, _client: unknown, oneOf?: string | string[]) => oneOf ?? o.audience,
          useGrantedResource: () => true,
          getResourceServerInfo: (_ctx: unknown, resourceIndicator: string, client: { clientId: string }) => {
            if (!audiences.has(resourceIndicator)) throw new errors.InvalidTarget();
            const base = { scope: allScopes.join(' '), audience: resourceIndicator, accessTokenTTL: ttl };
            if (opaque.has(client.clientId)) return { ...base, accessTokenFormat: 'opaque' };
            return { ...base, accessTokenFormat: 'jwt', jwt: { sign: { alg: 'RS256' } } };
          },
        } as never,
      },
      ttl: {
        ClientCredentials: (_ctx: unknown, token: { resourceServer?: { accessTokenTTL?: number } }) => token.resourceServer?.accessTokenTTL ?? ttl,
        ...(ciba
          ? {
              BackchannelAuthenticationRequest: ciba.ttl,
              AccessToken: (_ctx: unknown, token: { resourceServer?: { accessTokenTTL?: number } }) => token.resourceServer?.accessTokenTTL ?? ttl,
              IdToken: ttl,
              Grant: ttl,
            }
          : {}),
      } as never,
      cookies: { keys: [randomBytes(32).toString('base64url')] },
      clientBasedCORS: () => true,
    });
    await registerTokenExchange(provider as never, errors, {
      issuer,
      audience: o.audience,
      extraAudiences: o.extraAudiences,
      privateKey,
      kid: signingKey.kid,
      ttl,
    });
    provider.on('server_error', (_ctx: unknown, err: Error) => console.error('[dev-auth] server_error', err.message));
    // Static clients are validated lazily by oidc-provider; validate now so a bad override fails at start-up.
    for (const c of [...o.clients, ...keyClients, ...introspectors, ...(o.ciba?.clients ?? [])]) await provider.Client.find(c.clientId);
    const control = ciba?.attach(provider, { issuer, audience: o.audience });
    const callback = provider.callback();
    const published = new Map([...keyClientJwks].map(([id, jwk]) => [clientJwksPath(id), JSON.stringify({ keys: [jwk] })]));
    server.on('request', (req, res) => {
      if (control && handleDevCibaRequest(control, req, res)) return;
      const body = req.method === 'GET' ? published.get((req.url ?? '').split('?')[0]) : undefined;
      if (body === undefined) return void callback(req, res);
      res.writeHead(200, { 'content-type': 'application/jwk-set+json', 'cache-control': 'no-store' });
      res.end(body);
    });
    return {
      issuer,
      tokenUrl: `${issuer}/token`,
      jwksUri: `${issuer}/jwks`,
      introspectionUrl: `${issuer}/token/introspection`,
      revocationUrl: `${issuer}/token/revocation`,
      audience: o.audience,
      tokenTtl: ttl,
      clients: o.clients,
      ...(control ? { ciba: control } : {}),
      keyClients,
      clientKeys,
      close,
    };
  } catch (err) {
    await close();
    throw err;
  }
}
