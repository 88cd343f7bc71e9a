import { createServer } from 'node:net';
import { createRemoteJWKSet, jwtVerify } from 'jose';
import {
  a2aAuthenticationHandler,
  a2aAuthFetch,
  ClientCredentialsTokenProvider,
  formEncode,
  refreshMarginSeconds,
  TokenEndpointError,
  TokenEndpointUnavailableError,
  ClientCredentialsError,
} from 'nestjs-a2a-auth';
import { startCountingAuthServer, TEST_CLIENTS, type CountingAuthServer } from './fixtures/oidc-dev';
import { CapturingLogger, startTestApp, type TestApp } from './fixtures/test-app';
import { GuardTestController, TEST_SCOPES } from './fixtures/test-controllers';

const AUD = 'http://127.0.0.1/expense-agent';
const [SUBMITTER, APPROVER, ODD] = TEST_CLIENTS;
const creds = (c = SUBMITTER) => ({ clientId: c.clientId, clientSecret: c.clientSecret });

/** Everything written to the console during the suite (checked for secrets and tokens at the end). */
const consoleLines: string[] = [];
const issuedTokens = new Set<string>();
const originals = { log: console.log, info: console.info, warn: console.warn, error: console.error, debug: console.debug };

beforeAll(() => {
  for (const k of Object.keys(originals) as Array<keyof typeof originals>) {
    console[k] = (...args: unknown[]) => {
      consoleLines.push(args.map((a) => (typeof a === 'string' ? a : a instanceof Error ? `${a.message} ${a.stack}` : JSON.stringify(a))).join(' '));
    };
  }
});
afterAll(() => Object.assign(console, originals));

const track = async (p: ClientCredentialsTokenProvider, req?: Parameters<ClientCredentialsTokenProvider['getToken']>[0]) => {
  const t = await p.getToken(req);
  issuedTokens.add(t.accessToken);
  return t;
};

describe('ClientCredentialsTokenProvider against a real oidc-provider', () => {
  let as: CountingAuthServer;
  beforeAll(async () => {
    as = await startCountingAuthServer({ audience: AUD, ttl: 300 });
  });
  afterAll(() => as?.close());
  beforeEach(() => {
    as.mode = 'ok';
    as.tokenRequests = 0;
  });

  it('gets a verifiable RFC 9068 token with exactly the requested scopes (client_secret_basic)', async () => {
    const p = new ClientCredentialsTokenProvider({ tokenUrl: as.tokenUrl, ...creds(), scopes: ['expense:submit'] });
    const t = await track(p);
    expect(t.tokenType).toBe('Bearer');
    expect(t.scopes).toEqual(['expense:submit']);
    expect(t.expiresAt - t.obtainedAt).toBe(300_000);
    expect(t.refreshAt - t.obtainedAt).toBe(270_000); // margin min(60 s, 10% of 300 s) = 30 s
    const { payload, protectedHeader } = await jwtVerify(t.accessToken, createRemoteJWKSet(new URL(as.dev.jwksUri)), { issuer: as.issuer, audience: AUD });
    expect(protectedHeader.typ).toBe('at+jwt');
    expect(payload.client_id).toBe(SUBMITTER.clientId);
    expect(payload.scope).toBe('expense:submit');
    expect(as.tokenRequests).toBe(1);
  });

  it('client_secret_post works too', async () => {
    const p = new ClientCredentialsTokenProvider({ tokenUrl: as.tokenUrl, ...creds(APPROVER), scopes: ['expense:approve'], authMethod: 'client_secret_post' });
    const t = await track(p);
    expect(t.scopes).toEqual(['expense:approve']);
    expect(as.tokenRequests).toBe(1);
  });

  it('form-encodes id and secret before Basic (RFC 6749 §2.3.1): an id with a space and colon, a secret with : + / % & = ~', async () => {
    expect(formEncode('odd client:1')).toBe('odd+client%3A1');
    const p = new ClientCredentialsTokenProvider({ tokenUrl: as.tokenUrl, ...creds(ODD), scopes: ['expense:read'] });
    const t = await track(p);
    expect(t.scopes).toEqual(['expense:read']);
  });

  it('N calls make 1 token request; the same scopes in another order share the entry', async () => {
    const p = new ClientCredentialsTokenProvider({ tokenUrl: as.tokenUrl, ...creds(), scopes: ['expense:submit', 'expense:read'] });
    const first = await track(p);
    for (let i = 0; i < 25; i++) expect((await p.getToken()).accessToken).toBe(first.accessToken);
    expect((await p.getToken({ scopes: ['expense:read', 'expense:submit'] })).accessToken).toBe(first.accessToken);
    expect(as.tokenRequests).toBe(1);
    expect(p.requestCount).toBe(1);
    // Different scopes are a different cache entry.
    const readOnly = await track(p, { scopes: ['expense:read'] });
    expect(readOnly.accessToken).not.toBe(first.accessToken);
    expect(readOnly.scopes).toEqual(['expense:read']);
    expect(as.tokenRequests).toBe(2);
  });

  it('50 concurrent callers share one in-flight token request', async () => {
    const p = new ClientCredentialsTokenProvider({ tokenUrl: as.tokenUrl, ...creds(), scopes: ['expense:submit'] });
    const tokens = await Promise.all(Array.from({ length: 50 }, () => p.getAccessToken()));
    tokens.forEach((t) => issuedTokens.add(t));
    expect(new Set(tokens).size).toBe(1);
    expect(as.tokenRequests).toBe(1);
  });

  it('invalidate(rejected) drops only that token: 20 reports of the same rejected token cause 1 refresh', async () => {
    const p = new ClientCredentialsTokenProvider({ tokenUrl: as.tokenUrl, ...creds(), scopes: ['expense:submit'] });
    const a = await track(p);
    for (let i = 0; i < 20; i++) p.invalidate(a.accessToken);
    const [b] = await Promise.all(Array.from({ length: 20 }, () => track(p)));
    expect(b.accessToken).not.toBe(a.accessToken);
    p.invalidate(a.accessToken); // stale report: the new token stays
    expect((await p.getToken()).accessToken).toBe(b.accessToken);
    expect(as.tokenRequests).toBe(2);
  });

  it('invalid_client: wrong secret and unknown client, with no secret in the error', async () => {
    const wrong = 'not-the-right-secret-123';
    for (const c of [
      { clientId: SUBMITTER.clientId, clientSecret: wrong },
      { clientId: 'nobody', clientSecret: wrong },
    ]) {
      const p = new ClientCredentialsTokenProvider({ tokenUrl: as.tokenUrl, ...c, scopes: ['expense:submit'] });
      const e = await p.getToken().catch((x: unknown) => x);
      expect(e).toBeInstanceOf(TokenEndpointError);
      const te = e as TokenEndpointError;
      expect(te.error).toBe('invalid_client');
      expect(te.status).toBe(401);
      expect(te.clientId).toBe(c.clientId);
      expect(te.message).toBe(
        `token endpoint ${as.tokenUrl} refused client ${JSON.stringify(c.clientId)}: invalid_client (client authentication failed) [HTTP 401]`,
      );
      expect(`${te.message} ${te.stack} ${JSON.stringify(te)} ${JSON.stringify(p)}`).not.toContain(wrong);
    }
    // client_secret_post too
    const post = new ClientCredentialsTokenProvider({
      tokenUrl: as.tokenUrl,
      clientId: SUBMITTER.clientId,
      clientSecret: wrong,
      authMethod: 'client_secret_post',
    });
    await expect(post.getToken()).rejects.toMatchObject({ error: 'invalid_client', status: 401 });
  });

  it('invalid_scope: asking for a scope the client may not have', async () => {
    const p = new ClientCredentialsTokenProvider({ tokenUrl: as.tokenUrl, ...creds(), scopes: ['expense:approve'] });
    const e = (await p.getToken().catch((x: unknown) => x)) as TokenEndpointError;
    expect(e).toBeInstanceOf(TokenEndpointError);
    expect(e.error).toBe('invalid_scope');
    expect(e.status).toBe(400);
    expect(e.errorDescription).toBe('requested scope is not allowed');
    // Failures are not cached: a good request on the same provider works.
    expect((await track(p, { scopes: ['expense:submit'] })).scopes).toEqual(['expense:submit']);
  });

  it('a token endpoint that hangs fails within the timeout; the next call succeeds', async () => {
    as.mode = 'hang';
    const p = new ClientCredentialsTokenProvider({ tokenUrl: as.tokenUrl, ...creds(), scopes: ['expense:submit'], timeoutMs: 300 });
    const t0 = Date.now();
    const e = (await p.getToken().catch((x: unknown) => x)) as TokenEndpointUnavailableError;
    expect(Date.now() - t0).toBeLessThan(2000);
    expect(e).toBeInstanceOf(TokenEndpointUnavailableError);
    expect(e.kind).toBe('timeout');
    expect(e.message).toBe(`token endpoint ${as.tokenUrl} unavailable: timeout (no answer within 300 ms)`);
    as.mode = 'ok';
    expect((await track(p)).scopes).toEqual(['expense:submit']);
  });

  it('5xx, redirects and refused connections are TokenEndpointUnavailableError', async () => {
    as.mode = 'error500';
    const p = new ClientCredentialsTokenProvider({ tokenUrl: as.tokenUrl, ...creds(), scopes: ['expense:submit'] });
    await expect(p.getToken()).rejects.toMatchObject({ name: 'TokenEndpointUnavailableError', kind: 'server_error', status: 500 });
    as.mode = 'redirect';
    await expect(p.getToken()).rejects.toMatchObject({ name: 'TokenEndpointUnavailableError', kind: 'redirect', status: 307 });
    const port = await closedPort();
    const dead = new ClientCredentialsTokenProvider({ tokenUrl: `http://127.0.0.1:${port}/token`, ...creds(), timeoutMs: 2000 });
    await expect(dead.getToken()).rejects.toMatchObject({ name: 'TokenEndpointUnavailableError', kind: 'network' });
  });

  it('refuses plain http to a non-loopback token endpoint and bad scopes', () => {
    expect(() => new ClientCredentialsTokenProvider({ tokenUrl: 'http://auth.example.com/token', ...creds() })).toThrow(ClientCredentialsError);
    expect(() => new ClientCredentialsTokenProvider({ tokenUrl: 'https://u:p@auth.example.com/token', ...creds() })).toThrow(
      'tokenUrl must not contain credentials',
    );
    expect(() => new ClientCredentialsTokenProvider({ tokenUrl: 'http://auth.example.com/token', ...creds(), allowInsecureHttp: true })).not.toThrow();
    const p = new ClientCredentialsTokenProvider({ tokenUrl: as.tokenUrl, ...creds() });
    return expect(p.getToken({ scopes: ['a b'] })).rejects.toThrow('invalid scope "a b"');
  });
});

describe('token responses that are not usable (a plain 127.0.0.1 endpoint answering each case)', () => {
  let server: import('node:http').Server;
  let url: string;
  let reply: { status: number; body: string };
  beforeAll(async () => {
    const http = await import('node:http');
    server = http.createServer((req, res) => {
      req.resume();
      res.statusCode = reply.status;
      res.setHeader('content-type', 'application/json');
      res.end(reply.body);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(server.address() as { port: number }).port}/token`;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  it('no expires_in: the lifetime comes from the JWT exp; token_type is case-insensitive', async () => {
    const exp = Math.floor(Date.now() / 1000) + 120;
    const jwt = `${Buffer.from('{"alg":"RS256"}').toString('base64url')}.${Buffer.from(JSON.stringify({ exp })).toString('base64url')}.sig`;
    reply = { status: 200, body: JSON.stringify({ access_token: jwt, token_type: 'bearer' }) };
    const t = await new ClientCredentialsTokenProvider({ tokenUrl: url, ...creds() }).getToken();
    expect(Math.abs(t.expiresAt - exp * 1000)).toBeLessThan(1000);
    reply = { status: 200, body: JSON.stringify({ access_token: 'opaque', token_type: 'Bearer' }) };
    const o = await new ClientCredentialsTokenProvider({ tokenUrl: url, ...creds() }).getToken();
    expect(o.expiresAt - o.obtainedAt).toBe(60_000); // defaultExpiresInSeconds
  });

  it.each([
    [200, '{"token_type":"Bearer"}', 'invalid_token_response', 'no access_token in the response'],
    [200, '{"access_token":"x","token_type":"DPoP"}', 'invalid_token_response', 'unsupported token_type "DPoP"'],
    [200, 'not json', 'invalid_token_response', 'no access_token in the response'],
    [400, '<html>', 'unexpected_response', undefined],
    [403, '{"error":"unauthorized_client","error_description":"grant not allowed"}', 'unauthorized_client', 'grant not allowed'],
  ])('HTTP %s %s → TokenEndpointError %s', async (status, body, error, description) => {
    reply = { status, body };
    const e = (await new ClientCredentialsTokenProvider({ tokenUrl: url, ...creds() }).getToken().catch((x: unknown) => x)) as TokenEndpointError;
    expect(e).toBeInstanceOf(TokenEndpointError);
    expect([e.status, e.error, e.errorDescription]).toEqual([status, error, description]);
  });
});

describe('refresh margin', () => {
  it('min(60 s, 10% of the lifetime): a 60 s token is reused for 54 s, a 1 h token refreshed 60 s early', () => {
    expect(refreshMarginSeconds(3600)).toBe(60);
    expect(refreshMarginSeconds(300)).toBe(30);
    expect(refreshMarginSeconds(60)).toBe(6);
    expect(refreshMarginSeconds(2)).toBeCloseTo(0.2);
  });
});

describe('expiry and refresh with short tokens (2 s)', () => {
  let as: CountingAuthServer;
  beforeAll(async () => {
    as = await startCountingAuthServer({ audience: AUD, ttl: 2 });
  });
  afterAll(() => as?.close());

  it('reuses the token for 90% of its life, then fetches a new one; a transient failure then still serves the unexpired token', async () => {
    const p = new ClientCredentialsTokenProvider({ tokenUrl: as.tokenUrl, ...creds(), scopes: ['expense:submit'], timeoutMs: 500 });
    const a = await track(p);
    expect(a.expiresAt - a.obtainedAt).toBe(2000);
    expect(a.refreshAt - a.obtainedAt).toBe(1800);
    await sleep(900);
    expect((await p.getToken()).accessToken).toBe(a.accessToken);
    expect(as.tokenRequests).toBe(1);
    await sleep(Math.max(0, a.refreshAt - Date.now() + 50));
    const b = await track(p);
    expect(b.accessToken).not.toBe(a.accessToken);
    expect(as.tokenRequests).toBe(2);
    // In b's refresh window the endpoint fails: b is still valid, so it is served.
    await sleep(Math.max(0, b.refreshAt - Date.now() + 20));
    as.mode = 'error500';
    expect((await p.getToken()).accessToken).toBe(b.accessToken);
    expect(as.tokenRequests).toBe(3);
    // Once b has expired, the failure surfaces.
    await sleep(Math.max(0, b.expiresAt - Date.now() + 20));
    await expect(p.getToken()).rejects.toBeInstanceOf(TokenEndpointUnavailableError);
    as.mode = 'ok';
  });
});

describe('401 → one refresh and one retry through the SDK handler (real guard)', () => {
  let as: CountingAuthServer;
  let strict: TestApp;
  let wrongAud: TestApp;
  const logger = new CapturingLogger();
  beforeAll(async () => {
    as = await startCountingAuthServer({ audience: AUD, ttl: 300 });
    const auth = (audience: string) => ({
      issuer: as.issuer,
      audience,
      jwksUri: as.dev.jwksUri,
      scopes: TEST_SCOPES,
      clockTolerance: 0,
      maxTokenAge: 2, // the agent rejects tokens older than 2 s: a cached 300 s token soon gets a real 401
    });
    strict = await startTestApp({ platform: 'express', auth: auth(AUD), controllers: [GuardTestController], logger });
    wrongAud = await startTestApp({ platform: 'fastify', auth: auth('https://other.example/agent'), controllers: [GuardTestController], logger });
  });
  afterAll(async () => {
    await strict?.close();
    await wrongAud?.close();
    await as?.close();
  });

  const counting = () => {
    const calls: number[] = [];
    const f: typeof fetch = async (input, init) => {
      const r = await fetch(input, init);
      calls.push(r.status);
      return r;
    };
    return { calls, f };
  };

  it('a token the agent now rejects (401) is refreshed once and the call retried once → 200', async () => {
    const p = new ClientCredentialsTokenProvider({ tokenUrl: as.tokenUrl, ...creds(), scopes: ['expense:submit', 'expense:read'] });
    const { calls, f } = counting();
    const authed = a2aAuthFetch(p, { allowedOrigins: [strict.url] }, f);
    const r1 = await authed(`${strict.url}/t/me`);
    expect(r1.status).toBe(200);
    expect(as.tokenRequests).toBe(1);
    await sleep(3200);
    const r2 = await authed(`${strict.url}/t/me`);
    expect(r2.status).toBe(200);
    expect(await r2.json()).toEqual({
      clientId: SUBMITTER.clientId,
      subject: SUBMITTER.clientId,
      issuer: as.issuer,
      scopes: ['expense:submit', 'expense:read'],
    });
    expect(calls).toEqual([200, 401, 200]);
    expect(as.tokenRequests).toBe(2);
  });

  it('an agent that rejects every token: one refresh, one retry, then the 401 is returned (no loop)', async () => {
    as.tokenRequests = 0;
    const p = new ClientCredentialsTokenProvider({ tokenUrl: as.tokenUrl, ...creds(), scopes: ['expense:submit'] });
    const { calls, f } = counting();
    const r = await a2aAuthFetch(p, { allowedOrigins: [wrongAud.url] }, f)(`${wrongAud.url}/t/me`);
    expect(r.status).toBe(401);
    expect(r.headers.get('www-authenticate')).toContain('error="invalid_token"');
    expect(calls).toEqual([401, 401]);
    expect(as.tokenRequests).toBe(2);
  });

  it('403 insufficient_scope outside stepUpScopes is not retried: InsufficientScopeError, no token requested', async () => {
    as.tokenRequests = 0;
    const p = new ClientCredentialsTokenProvider({ tokenUrl: as.tokenUrl, ...creds(), scopes: ['expense:submit'] });
    const h = a2aAuthenticationHandler(p);
    const { calls, f } = counting();
    const headers = await h.headers();
    const r = await f(`${strict.url}/t/approve`, { headers });
    expect(r.status).toBe(403);
    await expect(h.shouldRetryWithHeaders({ headers }, r)).rejects.toMatchObject({
      name: 'InsufficientScopeError',
      requiredScopes: ['expense:approve'],
      refusedScopes: ['expense:approve'],
      stepUpAttempted: false,
    });
    expect(calls).toEqual([403]);
    expect(as.tokenRequests).toBe(1);
  });

  it('no secret and no token appears in any log line', () => {
    const all = [...consoleLines, ...logger.lines].join('\n');
    for (const c of TEST_CLIENTS) expect(all).not.toContain(c.clientSecret);
    expect(all).not.toContain(Buffer.from(`${SUBMITTER.clientId}:${SUBMITTER.clientSecret}`).toString('base64'));
    expect(issuedTokens.size).toBeGreaterThan(5);
    for (const t of issuedTokens) {
      expect(all).not.toContain(t);
      expect(all).not.toContain(t.split('.')[2]);
    }
  });
});

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

async function closedPort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}
