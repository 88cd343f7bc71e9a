import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { inspect } from 'node:util';
import { CibaClient, type CibaPendingRequest } from '../libs/a2a-auth/src/client/ciba';
import { startDevAuthServer, type DevAuthServer } from '../apps/expense-agent/src/dev-auth-server';

const AUDIENCE = 'http://127.0.0.1:9/agent';
const CIBA_CLIENT = { clientId: 'agent-ciba', clientSecret: 'ciba-secret-3e9d10', scopes: ['expense:submit'] };
const jwtPayload = (t: string) => JSON.parse(Buffer.from(t.split('.')[1], 'base64url').toString('utf8'));

describe('CibaClient against the dev authorization server (oidc-provider, poll mode)', () => {
  let dev: DevAuthServer;
  let client: CibaClient;

  beforeAll(async () => {
    dev = await startDevAuthServer({
      audience: AUDIENCE,
      clients: [{ clientId: 'expense-submitter', clientSecret: 's-secret', scopes: ['expense:submit'] }],
      nodeEnv: 'test',
      ciba: { clients: [CIBA_CLIENT], users: ['alice', 'bob'], intervalSeconds: 1, expirySeconds: 30 },
    });
    client = new CibaClient({ issuer: dev.issuer, clientId: CIBA_CLIENT.clientId, clientSecret: CIBA_CLIENT.clientSecret });
  });
  afterAll(async () => {
    await dev?.close();
  });

  it('discovers the endpoint, starts a request, and gets a token bound to the user once approved', async () => {
    const started = Date.now();
    const pending = await client.start({ loginHint: 'alice', bindingMessage: 'Approve expense 42.50 EUR', scopes: ['expense:submit'] });
    expect(pending).toEqual({ authReqId: expect.any(String), expiresIn: 30, interval: 1, startedAt: expect.any(Number) });
    const listed = dev.ciba!.pending().find((p) => p.authReqId === pending.authReqId);
    expect(listed).toEqual({
      authReqId: pending.authReqId,
      user: 'alice',
      clientId: 'agent-ciba',
      bindingMessage: 'Approve expense 42.50 EUR',
      scope: 'openid expense:submit',
      expiresAt: expect.any(String),
    });
    const polled = client.poll(pending, { timeoutMs: 10_000 });
    setTimeout(() => void dev.ciba!.approve(pending.authReqId), 1500); // after at least one authorization_pending
    const out = await polled;
    expect(out.status).toBe('approved');
    if (out.status !== 'approved') return;
    expect(Date.now() - started).toBeGreaterThanOrEqual(1900); // two polls, one interval apart
    expect(Date.now() - started).toBeLessThan(8000);
    const claims = jwtPayload(out.token.accessToken);
    expect(claims).toMatchObject({ iss: dev.issuer, sub: 'alice', aud: AUDIENCE, client_id: 'agent-ciba', scope: 'expense:submit' });
    expect(out.token.scopes).toEqual(['expense:submit']);
    expect(jwtPayload(out.token.idToken!)).toMatchObject({ sub: 'alice', aud: 'agent-ciba' });
    // The token never shows in logs by accident.
    for (const shown of [JSON.stringify(out), inspect(out, { depth: 5 }), `${out.token}`]) {
      expect(shown).not.toContain(out.token.accessToken);
      expect(shown).not.toContain(out.token.idToken!);
    }
    expect(dev.ciba!.pending().find((p) => p.authReqId === pending.authReqId)).toBeUndefined();
    // The auth_req_id is redeemed once (oidc-provider consumes it).
    const again = await client.poll({ ...pending, startedAt: Date.now(), interval: 0.05 }, { timeoutMs: 3000 });
    expect(again).toMatchObject({ status: 'failed', error: 'invalid_grant' });
  });

  it('denied: access_denied', async () => {
    const pending = await client.start({ loginHint: 'bob', scopes: ['expense:submit'] });
    setTimeout(() => void dev.ciba!.deny(pending.authReqId), 300);
    expect(await client.poll(pending, { timeoutMs: 10_000 })).toMatchObject({ status: 'denied', error: 'access_denied' });
  });

  it('expires: requested_expiry passes without an answer (timeout at expires_in)', async () => {
    const pending = await client.start({ loginHint: 'alice', scopes: ['expense:submit'], requestedExpirySeconds: 2 });
    expect(pending.expiresIn).toBe(2);
    const out = await client.poll(pending);
    expect(out).toMatchObject({ status: 'expired', error: 'timeout', description: 'no answer within expires_in (2 s)' });
  });

  it('times out at our own deadline before expires_in', async () => {
    const pending = await client.start({ loginHint: 'alice', scopes: ['expense:submit'] });
    const t0 = Date.now();
    expect(await client.poll(pending, { timeoutMs: 1500 })).toEqual({ status: 'expired', error: 'timeout', description: 'no answer within 1500 ms' });
    expect(Date.now() - t0).toBeLessThan(4000);
  });

  it('an AbortSignal stops polling at once', async () => {
    const pending = await client.start({ loginHint: 'alice', scopes: ['expense:submit'] });
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 200);
    const t0 = Date.now();
    expect(await client.poll(pending, { signal: ac.signal })).toEqual({ status: 'aborted' });
    expect(Date.now() - t0).toBeLessThan(1500);
  });

  it('start failures are typed: unknown user, bad client secret, bad binding message', async () => {
    await expect(client.start({ loginHint: 'mallory', scopes: ['expense:submit'] })).rejects.toMatchObject({ error: 'unknown_user_id' });
    const wrong = new CibaClient({ issuer: dev.issuer, clientId: CIBA_CLIENT.clientId, clientSecret: 'wrong-secret-value' });
    const out = await wrong.authorize({ loginHint: 'alice', scopes: ['expense:submit'] });
    expect(out).toMatchObject({ status: 'failed', error: 'invalid_client' });
    expect(JSON.stringify(out)).not.toContain('wrong-secret-value');
    await expect(client.start({ loginHint: 'alice', scopes: ['expense:submit'], bindingMessage: 'x'.repeat(101) })).rejects.toMatchObject({
      error: 'invalid_binding_message',
    });
    // client_secret_post works too.
    const post = new CibaClient({ ...CIBA_CLIENT, issuer: dev.issuer, authMethod: 'client_secret_post' });
    await expect(post.start({ loginHint: 'alice', scopes: ['expense:submit'] })).resolves.toMatchObject({ interval: 1 });
  });

  it('the developer endpoint lists, approves and denies, and answers 404 for unknown ids', async () => {
    const pending = await client.start({ loginHint: 'alice', scopes: ['expense:submit'], bindingMessage: 'dev endpoint' });
    const list = (await (await fetch(`${dev.issuer}/dev/ciba/pending`)).json()) as { pending: Array<{ authReqId: string }> };
    expect(list.pending.map((p) => p.authReqId)).toContain(pending.authReqId);
    const unknown = await fetch(`${dev.issuer}/dev/ciba/nope/approve`, { method: 'POST' });
    expect([unknown.status, await unknown.json()]).toEqual([404, { error: 'not_found' }]);
    const get = await fetch(`${dev.issuer}/dev/ciba/${pending.authReqId}/approve`);
    expect(get.status).toBe(405);
    const ok = await fetch(`${dev.issuer}/dev/ciba/${pending.authReqId}/deny`, { method: 'POST' });
    expect([ok.status, await ok.json()]).toEqual([200, { denied: pending.authReqId }]);
    expect(await client.poll(pending, { timeoutMs: 5000 })).toMatchObject({ status: 'denied' });
    const twice = await fetch(`${dev.issuer}/dev/ciba/${pending.authReqId}/approve`, { method: 'POST' });
    expect(twice.status).toBe(404);
  });
});

describe('CibaClient against a failing or rate-limiting token endpoint', () => {
  let server: Server;
  let base: string;
  let answers: Array<{ status: number; body: unknown }>;
  let polls: number[];

  beforeAll(async () => {
    server = createServer((req, res) => {
      req.resume();
      polls.push(Date.now());
      const a = answers.shift() ?? { status: 400, body: { error: 'authorization_pending' } };
      res.writeHead(a.status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(a.body));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    await new Promise<void>((r) => server.close(() => r()));
  });
  beforeEach(() => {
    answers = [];
    polls = [];
  });
  const pending = (interval: number): CibaPendingRequest => ({ authReqId: 'req-1', expiresIn: 60, interval, startedAt: Date.now() });
  const clientFor = (tokenUrl: string) =>
    new CibaClient({ backchannelAuthenticationEndpoint: `${base}/bc`, tokenUrl, clientId: 'c', clientSecret: 'secret-value-1', requestTimeoutMs: 2000 });

  it('slow_down adds 5 s to the interval for the following polls', async () => {
    answers = [
      { status: 400, body: { error: 'slow_down' } },
      { status: 200, body: { access_token: 'tok', token_type: 'Bearer', expires_in: 60 } },
    ];
    const out = await clientFor(`${base}/token`).poll(pending(0.1), { timeoutMs: 10_000 });
    expect(out.status).toBe('approved');
    expect(polls).toHaveLength(2);
    expect(polls[1] - polls[0]).toBeGreaterThanOrEqual(5000);
  }, 15_000);

  it('expired_token from the server ends as expired; other errors as failed with their code', async () => {
    answers = [
      { status: 400, body: { error: 'authorization_pending' } },
      { status: 400, body: { error: 'expired_token', error_description: 'gone' } },
    ];
    expect(await clientFor(`${base}/token`).poll(pending(0.05), { timeoutMs: 5000 })).toEqual({
      status: 'expired',
      error: 'expired_token',
      description: 'gone',
    });
    answers = [{ status: 401, body: { error: 'invalid_client' } }];
    expect(await clientFor(`${base}/token`).poll(pending(0.05), { timeoutMs: 5000 })).toEqual({ status: 'failed', error: 'invalid_client' });
    answers = [{ status: 400, body: 'not an object' }];
    expect(await clientFor(`${base}/token`).poll(pending(0.05), { timeoutMs: 5000 })).toEqual({ status: 'failed', error: 'invalid_response' });
  });

  it('a 5xx three times in a row fails as unavailable; a closed port likewise, without hanging', async () => {
    answers = [0, 1, 2].map(() => ({ status: 503, body: {} }));
    expect(await clientFor(`${base}/token`).poll(pending(0.05), { timeoutMs: 5000 })).toEqual({
      status: 'failed',
      error: 'unavailable',
      description: 'token endpoint unavailable: HTTP 503',
    });
    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', () => r()));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((r) => closed.close(() => r()));
    const t0 = Date.now();
    expect(await clientFor(`http://127.0.0.1:${port}/token`).poll(pending(0.05), { timeoutMs: 5000 })).toMatchObject({
      status: 'failed',
      error: 'unavailable',
    });
    expect(Date.now() - t0).toBeLessThan(4000);
    const down = new CibaClient({
      backchannelAuthenticationEndpoint: `http://127.0.0.1:${port}/bc`,
      tokenUrl: `http://127.0.0.1:${port}/token`,
      clientId: 'c',
      clientSecret: 's',
    });
    await expect(down.authorize({ loginHint: 'a', scopes: [] })).resolves.toMatchObject({ status: 'failed', error: 'unavailable' });
  });
});
