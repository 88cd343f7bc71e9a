import request from 'supertest';
import { A2AAuthConfigError, ClientCredentialsTokenProvider, resolveOptions, A2A_AUTH_RUNTIME } from 'nestjs-a2a-auth';
import type { AuthRuntime } from 'nestjs-a2a-auth/core';
import { startCountingAuthServer, TEST_CLIENTS, TEST_INTROSPECTOR, type CountingAuthServer } from './fixtures/oidc-dev';
import { CapturingLogger, PLATFORMS, startTestApp, type TestApp } from './fixtures/test-app';
import { GuardTestController, TEST_SCOPES } from './fixtures/test-controllers';

// RFC 7662 token introspection at the resource server, against the sample's real oidc-provider dev server (opaque
// tokens for the `expense-opaque` client), on express and fastify. Calls to the endpoint are counted by the fixture's
// proxy, which can also hang or fail them.

const AUD = 'http://127.0.0.1/expense-agent';
const RM = 'http://127.0.0.1/.well-known/oauth-protected-resource/expense-agent';
const CHALLENGE = `Bearer realm="a2a", resource_metadata="${RM}"`;
const INVALID = `${CHALLENGE}, error="invalid_token", error_description="The access token is invalid"`;
const SUBMITTER = TEST_CLIENTS.find((c) => c.clientId === 'expense-submitter')!;
const OPAQUE = TEST_CLIENTS.find((c) => c.accessTokenFormat === 'opaque')!;
const UNAVAILABLE = { error: 'temporarily_unavailable', error_description: 'The authorization server cannot check the token right now; retry later' };

let as: CountingAuthServer;
const issued = new Set<string>();

beforeAll(async () => {
  as = await startCountingAuthServer({ audience: AUD, ttl: 300 });
});
afterAll(() => as?.close());

/** A fresh opaque token for the opaque dev client (each call a new one: the provider is new). */
async function opaqueToken(scopes = ['expense:submit', 'expense:read']): Promise<string> {
  const t = await new ClientCredentialsTokenProvider({
    tokenUrl: as.dev.tokenUrl,
    clientId: OPAQUE.clientId,
    clientSecret: OPAQUE.clientSecret,
    scopes,
  }).getToken();
  issued.add(t.accessToken);
  return t.accessToken;
}

async function revoke(token: string): Promise<void> {
  const basic = Buffer.from(`${OPAQUE.clientId}:${OPAQUE.clientSecret}`).toString('base64');
  const res = await fetch(as.dev.revocationUrl, {
    method: 'POST',
    headers: { authorization: `Basic ${basic}`, 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ token, token_type_hint: 'access_token' }).toString(),
  });
  expect(res.status).toBe(200);
}

describe.each(PLATFORMS)('RFC 7662 introspection of opaque tokens on %s', (platform) => {
  let t: TestApp;
  let discovering: TestApp;
  let runtime: AuthRuntime;
  const logger = new CapturingLogger();
  const introspection = (o: Record<string, unknown> = {}) => ({
    endpoint: as.introspectionUrl,
    clientId: TEST_INTROSPECTOR.clientId,
    clientSecret: TEST_INTROSPECTOR.clientSecret,
    timeout: 1,
    ...o,
  });

  beforeAll(async () => {
    const auth = { issuer: as.issuer, audience: AUD, jwksUri: as.dev.jwksUri, scopes: TEST_SCOPES };
    t = await startTestApp({ platform, auth: { ...auth, introspection: introspection() }, controllers: [GuardTestController], logger });
    runtime = t.app.get<AuthRuntime>(A2A_AUTH_RUNTIME);
    // No endpoint, a secret from a function: the endpoint comes from the issuer's metadata (introspection_endpoint).
    discovering = await startTestApp({
      platform,
      auth: { ...auth, introspection: introspection({ endpoint: undefined, clientSecret: async () => TEST_INTROSPECTOR.clientSecret }) },
      controllers: [GuardTestController],
      logger,
    });
  });
  afterAll(async () => {
    await t?.close();
    await discovering?.close();
  });
  beforeEach(() => {
    as.introspectionMode = 'ok';
    as.introspectionDelayMs = 0;
  });

  const get = (token: string, path = '/t/me', app = t) => request(app.url).get(path).set('Authorization', `Bearer ${token}`);

  it('an active opaque token: 200 with the caller and scopes from the introspection answer; repeats are served from the cache', async () => {
    const token = await opaqueToken();
    expect(token).toMatch(/^[A-Za-z0-9_-]{43}$/); // oidc-provider's opaque format: 256 random bits, no dots
    const before = as.introspectionRequests;
    const res = await get(token);
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ clientId: OPAQUE.clientId, issuer: as.issuer, scopes: ['expense:submit', 'expense:read'] });
    expect(res.headers['www-authenticate']).toBeUndefined();
    for (let i = 0; i < 5; i++) expect((await get(token)).status).toBe(200);
    const post = await request(t.url).post('/t/submit').set('Authorization', `Bearer ${token}`).send({ amount: 1 });
    expect([post.status, post.body]).toEqual([201, { submitted: { amount: 1 } }]);
    expect(as.introspectionRequests - before).toBe(1);
  });

  it('the scopes of the answer are enforced: a token without expense:approve gets 403 insufficient_scope', async () => {
    const token = await opaqueToken(['expense:read']);
    const res = await get(token, '/t/approve');
    expect(res.status).toBe(403);
    expect(res.headers['www-authenticate']).toBe(
      `${CHALLENGE}, error="insufficient_scope", error_description="The access token lacks a required scope", scope="expense:approve"`,
    );
    expect(res.body).toEqual({ error: 'insufficient_scope', error_description: 'The access token lacks a required scope', scope: 'expense:approve' });
  });

  it('an unknown token and a revoked token: 401 invalid_token (active false); the inactive answer is cached briefly', async () => {
    const before = as.introspectionRequests;
    const unknown = 'uNkNoWn0pAqUeT0kEn-xxxxxxxxxxxxxxxxxxxxxxxx';
    for (let i = 0; i < 3; i++) {
      const res = await get(unknown);
      expect(res.status).toBe(401);
      expect(res.headers['www-authenticate']).toBe(INVALID);
      expect(res.body).toEqual({ error: 'invalid_token', error_description: 'The access token is invalid' });
    }
    expect(as.introspectionRequests - before).toBe(1);
    const token = await opaqueToken();
    await revoke(token);
    const res = await get(token);
    expect([res.status, res.headers['www-authenticate']]).toEqual([401, INVALID]);
    expect(as.introspectionRequests - before).toBe(2);
    expect(logger.lines.some((l) => l.includes('"reason":"inactive_token"'))).toBe(true);
  });

  it('20 concurrent requests with one new token share one introspection call (single-flight)', async () => {
    const token = await opaqueToken();
    as.introspectionDelayMs = 200;
    const before = as.introspectionRequests;
    const all = await Promise.all(Array.from({ length: 20 }, () => get(token)));
    expect(all.map((r) => r.status)).toEqual(Array(20).fill(200));
    expect(as.introspectionRequests - before).toBe(1);
  });

  it('the endpoint hangs or fails: 503 + Retry-After within the timeout, no challenge; the failure is not cached', async () => {
    const token = await opaqueToken();
    as.introspectionMode = 'hang';
    const t0 = Date.now();
    const hung = await get(token);
    expect(Date.now() - t0).toBeLessThan(3000);
    expect([hung.status, hung.headers['retry-after'], hung.headers['www-authenticate'], hung.body]).toEqual([503, '5', undefined, UNAVAILABLE]);
    as.introspectionMode = 'error500';
    const failed = await get(token);
    expect([failed.status, failed.headers['retry-after'], failed.body]).toEqual([503, '5', UNAVAILABLE]);
    as.introspectionMode = 'ok';
    expect((await get(token)).status).toBe(200);
  });

  it('JWTs and opaque tokens side by side: a JWT is verified locally and never introspected', async () => {
    const jwt = await new ClientCredentialsTokenProvider({
      tokenUrl: as.dev.tokenUrl,
      clientId: SUBMITTER.clientId,
      clientSecret: SUBMITTER.clientSecret,
      scopes: ['expense:submit'],
    }).getAccessToken();
    issued.add(jwt);
    const opaque = await opaqueToken();
    const before = as.introspectionRequests;
    const [a, b] = await Promise.all([get(jwt), get(opaque)]);
    expect(a.body).toEqual({ clientId: SUBMITTER.clientId, subject: SUBMITTER.clientId, issuer: as.issuer, scopes: ['expense:submit'] });
    expect(b.body).toEqual({ clientId: OPAQUE.clientId, issuer: as.issuer, scopes: ['expense:submit', 'expense:read'] });
    expect(as.introspectionRequests - before).toBe(1);
    // A token that looks like a JWT but is not one stays a JWT failure: it is not sent to the endpoint.
    expect((await get('aaa.bbb.ccc')).status).toBe(401);
    expect(as.introspectionRequests - before).toBe(1);
  });

  it('without an endpoint it is discovered from the issuer metadata (introspection_endpoint), with the secret from a function', async () => {
    const res = await get(await opaqueToken(), '/t/me', discovering);
    expect([res.status, res.body]).toEqual([200, { clientId: OPAQUE.clientId, issuer: as.issuer, scopes: ['expense:submit', 'expense:read'] }]);
  });

  it('the cache keeps an active answer at most cacheMaxTtl: a token revoked after its first use is refused once that has passed', async () => {
    const short = await startTestApp({
      platform,
      auth: { issuer: as.issuer, audience: AUD, jwksUri: as.dev.jwksUri, scopes: TEST_SCOPES, introspection: introspection({ cacheMaxTtl: 1 }) },
      controllers: [GuardTestController],
    });
    try {
      const token = await opaqueToken();
      expect((await get(token, '/t/me', short)).status).toBe(200);
      await revoke(token);
      expect((await get(token, '/t/me', short)).status).toBe(200); // still cached
      await new Promise((r) => setTimeout(r, 1100));
      expect((await get(token, '/t/me', short)).status).toBe(401);
    } finally {
      await short.close();
    }
  });

  it('the answer goes through the same claim checks: another audience is 401; a DPoP-bound opaque token sent as Bearer is 401', async () => {
    const other = await startTestApp({
      platform,
      auth: { issuer: as.issuer, audience: 'https://other.example/agent', jwksUri: as.dev.jwksUri, scopes: TEST_SCOPES, introspection: introspection() },
      controllers: [GuardTestController],
      logger,
    });
    try {
      const res = await get(await opaqueToken(), '/t/me', other);
      expect([res.status, res.headers['www-authenticate']]).toEqual([
        401,
        INVALID.replace(RM, 'https://other.example/.well-known/oauth-protected-resource/agent'),
      ]);
    } finally {
      await other.close();
    }
    const bound = await new ClientCredentialsTokenProvider({
      tokenUrl: as.dev.tokenUrl,
      clientId: OPAQUE.clientId,
      clientSecret: OPAQUE.clientSecret,
      scopes: ['expense:read'],
      dpop: true,
    }).getToken();
    issued.add(bound.accessToken);
    expect(bound.tokenType).toBe('DPoP');
    const res = await get(bound.accessToken);
    expect(res.status).toBe(401);
    expect(res.headers['www-authenticate']).toBe(
      `${CHALLENGE}, error="invalid_token", error_description="The access token is bound to a proof-of-possession key this resource does not accept"`,
    );
    expect(logger.lines.some((l) => l.includes('"reason":"invalid_audience"'))).toBe(true);
    expect(logger.lines.some((l) => l.includes('"reason":"unsupported_token_binding"'))).toBe(true);
  });

  it('the runtime counts its calls, and no token or secret is ever logged', () => {
    expect(runtime.introspector?.callCount).toBeGreaterThan(3);
    const all = logger.lines.join('\n');
    expect(all).not.toContain(TEST_INTROSPECTOR.clientSecret);
    expect(all).not.toContain(Buffer.from(`${TEST_INTROSPECTOR.clientId}:${TEST_INTROSPECTOR.clientSecret}`).toString('base64'));
    for (const token of issued) expect(all).not.toContain(token);
    expect(JSON.stringify(t.app.get(A2A_AUTH_RUNTIME))).not.toContain(TEST_INTROSPECTOR.clientSecret);
  });
});

describe('introspection options', () => {
  const base = { issuer: 'https://as.example.com', audience: 'https://rs.example.com' };
  it.each([
    [{ clientSecret: 's' }, 'introspection.clientId'],
    [{ clientId: 'rs' }, 'introspection.clientSecret'],
    [{ clientId: 'rs', clientSecret: 's', endpoint: 'not a url' }, 'introspection.endpoint'],
    [{ clientId: 'rs', clientSecret: 's', timeout: 0 }, 'introspection.timeout'],
  ])('%j is refused naming %s', (introspection, option) => {
    expect(() => resolveOptions({ ...base, introspection } as never)).toThrow(A2AAuthConfigError);
    expect(() => resolveOptions({ ...base, introspection } as never)).toThrow(`\`${option}\``);
  });

  it('several issuers need an explicit endpoint; defaults are 5 s, 60 s, 10 s, 10,000 entries; the secret is not enumerable', () => {
    expect(() =>
      resolveOptions({ ...base, issuer: ['https://a.example.com', 'https://b.example.com'], introspection: { clientId: 'rs', clientSecret: 's' } }),
    ).toThrow('`introspection.endpoint`: is required with several issuers');
    const r = resolveOptions({ ...base, introspection: { clientId: 'rs', clientSecret: 'top-secret' } }).introspection!;
    expect(r).toEqual({
      endpoint: undefined,
      issuer: 'https://as.example.com',
      clientId: 'rs',
      auth: { method: 'client_secret_basic', clientId: 'rs', audience: 'https://as.example.com', lifetimeSeconds: 60, rotatable: false },
      timeout: 5,
      cacheMaxTtl: 60,
      inactiveCacheTtl: 10,
      cacheMaxEntries: 10_000,
    });
    expect(r.auth.secret).toBe('top-secret');
    expect(JSON.stringify(r)).not.toContain('top-secret');
  });
});
