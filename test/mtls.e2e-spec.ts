import { request as httpsRequest } from 'node:https';
import { X509Certificate } from 'node:crypto';
import { certificateThumbprint } from 'nestjs-a2a-auth';
import { generateTestPki, type TestPki } from './fixtures/certs';
import { generateTestKey, type TestKey } from './fixtures/keys';
import { JwksServer } from './fixtures/jwks-server';
import { mintToken } from './fixtures/tokens';
import { PLATFORMS, startTestApp, type TestApp } from './fixtures/test-app';
import { GuardTestController, TEST_SCOPES } from './fixtures/test-controllers';

const AUD = 'https://127.0.0.1/internal-agent';
const CHALLENGE = 'Bearer realm="Internal Agent", resource_metadata="https://127.0.0.1/.well-known/oauth-protected-resource/internal-agent"';

interface Res {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: unknown;
}

function get(url: string, o: { ca: string; cert?: string; key?: string; token?: string }): Promise<Res> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      url,
      { ca: o.ca, cert: o.cert, key: o.key, agent: false, headers: o.token ? { authorization: `Bearer ${o.token}` } : {} },
      (res) => {
        let data = '';
        res.setEncoding('utf8');
        res.on('data', (c) => (data += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: data ? JSON.parse(data) : undefined }));
      },
    );
    req.on('error', reject);
    req.setTimeout(5000, () => req.destroy(new Error('timeout')));
    req.end();
  });
}

describe.each(PLATFORMS)('mTLS + OAuth2 (RFC 8705) on %s', (platform) => {
  let pki: TestPki;
  let jwks: JwksServer;
  let key: TestKey;
  let t: TestApp;

  beforeAll(async () => {
    pki = generateTestPki();
    jwks = await new JwksServer().start();
    key = generateTestKey('RS256');
    jwks.keys = [key.publicJwk];
    t = await startTestApp({
      platform,
      auth: {
        issuer: jwks.issuer,
        audience: AUD,
        jwksUri: jwks.jwksUri,
        scopes: TEST_SCOPES,
        tokenUrl: `${jwks.url}/token`,
        mtls: {},
        card: { name: 'Internal Agent', description: 'mTLS agent', url: AUD, interfaces: [{ url: '/a2a/jsonrpc', protocolBinding: 'JSONRPC' }] },
      },
      controllers: [GuardTestController],
      // requestCert without rejectUnauthorized: the TLS layer verifies the chain (socket.authorized) and
      // the guard decides, so a missing certificate becomes a proper 401 instead of a handshake failure.
      httpsOptions: { key: pki.serverKey, cert: pki.serverCert, ca: pki.caCert, requestCert: true, rejectUnauthorized: false },
    });
  });
  afterAll(async () => {
    await t?.close();
    await jwks?.stop();
  });

  const bound = (certPem: string) =>
    mintToken({ key, issuer: jwks.issuer, audience: AUD, claims: { cnf: { 'x5t#S256': certificateThumbprint(new X509Certificate(certPem)) } } });
  const mismatch = {
    status: 401,
    www: `${CHALLENGE}, error="invalid_token", error_description="The access token is not bound to this client certificate"`,
    body: { error: 'invalid_token', error_description: 'The access token is not bound to this client certificate' },
  };

  it('accepts a token bound to the presented client certificate', async () => {
    const r = await get(`${t.url}/t/me`, { ca: pki.caCert, cert: pki.clientCert, key: pki.clientKey, token: await bound(pki.clientCert) });
    expect(r.status).toBe(200);
    expect(r.body).toEqual({ clientId: 'client-a', subject: 'client-a', issuer: jwks.issuer, scopes: ['expense:submit', 'expense:read'] });
  });

  it('accepts it again from the verified-token cache, still checking the certificate', async () => {
    const tok = await bound(pki.clientCert);
    const ok = await get(`${t.url}/t/me`, { ca: pki.caCert, cert: pki.clientCert, key: pki.clientKey, token: tok });
    expect(ok.status).toBe(200);
    const stolen = await get(`${t.url}/t/me`, { ca: pki.caCert, cert: pki.otherClientCert, key: pki.otherClientKey, token: tok });
    expect(stolen.status).toBe(mismatch.status);
    expect(stolen.headers['www-authenticate']).toBe(mismatch.www);
    expect(stolen.body).toEqual(mismatch.body);
  });

  it.each([
    ['a token without cnf', async () => mintToken({ key, issuer: jwks.issuer, audience: AUD }), true],
    ['a token bound to another certificate', async () => bound(pki.otherClientCert), true],
    ['no client certificate at all', async () => bound(pki.clientCert), false],
  ])('401 for %s', async (_n, make, withCert) => {
    const r = await get(
      `${t.url}/t/me`,
      withCert ? { ca: pki.caCert, cert: pki.clientCert, key: pki.clientKey, token: await make() } : { ca: pki.caCert, token: await make() },
    );
    expect(r.status).toBe(mismatch.status);
    expect(r.headers['www-authenticate']).toBe(mismatch.www);
    expect(r.body).toEqual(mismatch.body);
  });

  it('advertises mTLS AND OAuth2 in the card and tls_client_certificate_bound_access_tokens in RFC 9728 metadata', async () => {
    const card = (await get(`${t.url}/.well-known/agent-card.json`, { ca: pki.caCert })).body as {
      securitySchemes: Record<string, unknown>;
      securityRequirements: unknown;
    };
    expect(card.securitySchemes.mtls).toEqual({
      mtlsSecurityScheme: { description: 'Mutual TLS with a client certificate (RFC 8705); the access token must be bound to it' },
    });
    expect(card.securityRequirements).toEqual([{ schemes: { oauth2: {}, mtls: {} } }]);
    const meta = (await get(`${t.url}/.well-known/oauth-protected-resource/internal-agent`, { ca: pki.caCert })).body;
    expect(meta).toEqual({
      resource: AUD,
      authorization_servers: [jwks.issuer],
      scopes_supported: ['expense:submit', 'expense:approve', 'expense:read'],
      bearer_methods_supported: ['header'],
      resource_name: 'Internal Agent',
      tls_client_certificate_bound_access_tokens: true,
    });
  });
});
