import request from 'supertest';
import { generateTestKey, type TestKey } from './fixtures/keys';
import { JwksServer } from './fixtures/jwks-server';
import { baseClaims, hs256Token, mintToken, noneToken } from './fixtures/tokens';
import { PLATFORMS, startTestApp, type TestApp } from './fixtures/test-app';
import { CombinedScopesController, GuardTestController, TEST_SCOPES } from './fixtures/test-controllers';

const AUD = 'http://127.0.0.1/expense-agent';
const RM = 'http://127.0.0.1/.well-known/oauth-protected-resource/expense-agent';
const CHALLENGE = `Bearer realm="Test Agent", resource_metadata="${RM}"`;
const invalidToken = (d = 'The access token is invalid') => `${CHALLENGE}, error="invalid_token", error_description="${d}"`;

describe.each(PLATFORMS)('guard on %s', (platform) => {
  let jwks: JwksServer;
  let key: TestKey;
  let other: TestKey;
  let t: TestApp;

  beforeAll(async () => {
    jwks = await new JwksServer().start();
    key = generateTestKey('RS256');
    other = generateTestKey('RS256');
    jwks.keys = [key.publicJwk];
    t = await startTestApp({
      platform,
      auth: {
        issuer: jwks.issuer,
        audience: AUD,
        jwksUri: jwks.jwksUri,
        scopes: TEST_SCOPES,
        tokenUrl: `${jwks.url}/token`,
        resource: AUD,
        card: { name: 'Test Agent', description: 'Agent under test', url: AUD, interfaces: [{ url: '/a2a/jsonrpc', protocolBinding: 'JSONRPC' }] },
      },
      controllers: [GuardTestController, CombinedScopesController],
    });
  });
  afterAll(async () => {
    await t?.close();
    await jwks?.stop();
  });

  const token = (claims: Record<string, unknown> = {}, header: Record<string, unknown> = {}, k: TestKey = key) =>
    mintToken({ key: k, issuer: jwks.issuer, audience: AUD, claims, header });

  it('accepts a valid token and exposes the caller', async () => {
    const res = await request(t.url)
      .get('/t/me')
      .set('Authorization', `Bearer ${await token()}`);
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ clientId: 'client-a', subject: 'client-a', issuer: jwks.issuer, scopes: ['expense:submit', 'expense:read'] });
    expect(res.headers['www-authenticate']).toBeUndefined();
  });

  it('401 without credentials: bare challenge, no error code (RFC 6750 §3.1)', async () => {
    const res = await request(t.url).get('/t/me');
    expect(res.status).toBe(401);
    expect(res.headers['www-authenticate']).toBe(CHALLENGE);
    expect(res.body).toEqual({
      error: 'invalid_request',
      error_description: 'Authentication required: send an OAuth 2.0 bearer token in the Authorization header',
    });
  });

  const bad: Array<[string, () => Promise<string>, string | undefined]> = [
    ['expired', () => token({ exp: Math.floor(Date.now() / 1000) - 60, iat: Math.floor(Date.now() / 1000) - 400 }), 'The access token expired'],
    ['nbf in the future beyond tolerance', () => token({ nbf: Math.floor(Date.now() / 1000) + 120 }), 'The access token is not yet valid'],
    ['wrong iss', () => mintToken({ key, issuer: 'https://evil.example', audience: AUD }), undefined],
    ['wrong aud', () => mintToken({ key, issuer: jwks.issuer, audience: 'https://other.example' }), undefined],
    ['alg none', async () => noneToken(baseClaims(jwks.issuer, AUD), { kid: key.kid }), undefined],
    [
      'HS256 signed with the public key',
      async () => hs256Token(baseClaims(jwks.issuer, AUD), key.publicKey.export({ format: 'pem', type: 'spki' }) as string, { kid: key.kid }),
      undefined,
    ],
    ['unknown kid', () => token({}, { kid: 'nope' }, other), undefined],
    [
      'tampered payload',
      async () => {
        const [h, , s] = (await token()).split('.');
        const p = Buffer.from(JSON.stringify({ ...baseClaims(jwks.issuer, AUD), scope: 'expense:approve' })).toString('base64url');
        return `${h}.${p}.${s}`;
      },
      undefined,
    ],
    ['signed by another key with our kid', () => token({}, { kid: key.kid }, other), undefined],
    ['no exp', () => token({ exp: undefined }), undefined],
  ];
  it.each(bad)('401 invalid_token: %s', async (_name, make, desc) => {
    const res = await request(t.url)
      .get('/t/me')
      .set('Authorization', `Bearer ${await make()}`);
    expect(res.status).toBe(401);
    expect(res.headers['www-authenticate']).toBe(invalidToken(desc));
    expect(res.body).toEqual({ error: 'invalid_token', error_description: desc ?? 'The access token is invalid' });
  });

  it('accepts aud as an array that contains ours', async () => {
    const tok = await mintToken({ key, issuer: jwks.issuer, audience: ['https://other.example', AUD] });
    const res = await request(t.url).get('/t/me').set('Authorization', `Bearer ${tok}`);
    expect(res.status).toBe(200);
  });

  it('accepts the scheme case-insensitively (lower-case bearer)', async () => {
    const res = await request(t.url)
      .get('/t/me')
      .set('Authorization', `bearer ${await token()}`);
    expect(res.status).toBe(200);
  });

  it('400 invalid_request for junk after the token', async () => {
    const res = await request(t.url)
      .get('/t/me')
      .set('Authorization', `Bearer ${await token()} junk`);
    expect(res.status).toBe(400);
    expect(res.headers['www-authenticate']).toBe(`${CHALLENGE}, error="invalid_request", error_description="Malformed Authorization header"`);
    expect(res.body).toEqual({ error: 'invalid_request', error_description: 'Malformed Authorization header' });
  });

  it('403 insufficient_scope names the scope', async () => {
    const res = await request(t.url)
      .get('/t/approve')
      .set('Authorization', `Bearer ${await token()}`);
    expect(res.status).toBe(403);
    expect(res.headers['www-authenticate']).toBe(
      `${CHALLENGE}, error="insufficient_scope", error_description="The access token lacks a required scope", scope="expense:approve"`,
    );
    expect(res.body).toEqual({ error: 'insufficient_scope', error_description: 'The access token lacks a required scope', scope: 'expense:approve' });
  });

  it('200 with the scope', async () => {
    const res = await request(t.url)
      .post('/t/submit')
      .set('Authorization', `Bearer ${await token()}`)
      .send({ amount: 12 });
    expect([200, 201]).toContain(res.status);
    expect(res.body).toEqual({ submitted: { amount: 12 } });
  });

  it('class and method scopes combine: both required', async () => {
    const onlyRead = await token({ scope: 'expense:read' });
    const r1 = await request(t.url).get('/combined').set('Authorization', `Bearer ${onlyRead}`);
    expect(r1.status).toBe(403);
    expect(r1.headers['www-authenticate']).toBe(
      `${CHALLENGE}, error="insufficient_scope", error_description="The access token lacks a required scope", scope="expense:read expense:submit"`,
    );
    expect(r1.body).toEqual({
      error: 'insufficient_scope',
      error_description: 'The access token lacks a required scope',
      scope: 'expense:read expense:submit',
    });
    const both = await token({ scope: 'expense:read expense:submit' });
    const r2 = await request(t.url).get('/combined').set('Authorization', `Bearer ${both}`);
    expect(r2.status).toBe(200);
    expect(r2.body).toEqual({ ok: true });
  });

  it('@Public route needs no token', async () => {
    const res = await request(t.url).get('/t/public');
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ ok: true });
    expect(res.headers['www-authenticate']).toBeUndefined();
  });

  it('unknown routes still require a token (fail closed before 404)', async () => {
    const res = await request(t.url).get('/nope');
    // Nest runs guards only on matched routes; an unmatched route is a plain 404 with no data.
    expect(res.status).toBe(404);
  });
});
