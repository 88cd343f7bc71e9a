import { randomUUID, sign } from 'node:crypto';
import request from 'supertest';
import { AgentCard, GetTaskRequest } from '@a2a-js/sdk';
import { ClientFactory, ClientFactoryOptions, JsonRpcTransportFactory, RestTransportFactory, createAuthenticatingFetchWithRetry } from '@a2a-js/sdk/client';
import type { AuthAuditEvent } from 'nestjs-a2a-auth';
import { JwksServer } from './fixtures/jwks-server';
import { generateTestKey, type TestKey } from './fixtures/keys';
import { INTERNAL_DETAIL_MARKER, TASK_AGENT } from './fixtures/replay-agent';
import { CapturingLogger, PLATFORMS, startTestApp, type TestApp } from './fixtures/test-app';
import { GuardTestController, TEST_SCOPES } from './fixtures/test-controllers';
import { mintToken } from './fixtures/tokens';
import { expectedWire, sendRaw, ZOO_AUD, ZOO_CHALLENGE, type RawResponse } from './fixtures/zoo';

/*
 * Public bug reports of peer libraries (jose, fast-jwt, jsonwebtoken, oauth2-proxy, Spring Security, Keycloak, the
 * A2A and MCP SDKs), replayed against real Nest apps on express and fastify, real JWKS servers on 127.0.0.1 and keys
 * generated at test time. Each test name starts with the peer library and the subject of its report; docs/security.md
 * ("Replayed public bug reports of peer libraries") lists each case with its public source. A case this library does not
 * hold yet is an `it.failing` whose comment names the expected behaviour.
 */

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const now = () => Math.floor(Date.now() / 1000);
const b64 = (v: string | object) => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');

/** RS256-signs an exact payload text (so a claim can be a JSON literal such as `1e400` that no object serialises to). */
function signRaw(key: TestKey, header: Record<string, unknown>, payloadText: string): string {
  const input = `${b64({ alg: 'RS256', typ: 'at+jwt', kid: key.kid, ...header })}.${b64(payloadText)}`;
  return `${input}.${sign('sha256', Buffer.from(input), key.privateKey).toString('base64url')}`;
}

/** Asserts the whole wire answer for a reason code (status, WWW-Authenticate, Cache-Control, body). */
function expectWire(res: { status: number; headers: Record<string, unknown>; body: unknown }, reason: string): void {
  const exp = expectedWire(reason);
  expect({ status: res.status, wwwAuthenticate: res.headers['www-authenticate'], body: res.body }).toEqual({
    status: exp.status,
    wwwAuthenticate: exp.wwwAuthenticate,
    body: exp.body,
  });
  expect(res.headers['cache-control']).toBe('no-store');
}

const get = (app: TestApp, path: string, token?: string) => sendRaw(app.url, { path, headers: token ? [['Authorization', `Bearer ${token}`]] : [] });

// Keys are made once per file (the pool hands each file its own), so both platforms share them.
let main: TestKey;
let attacker: TestKey;
let rs512: TestKey;
let ecShared: TestKey;
let rsShared: TestKey;
let encKey: TestKey;
beforeAll(() => {
  main = generateTestKey('RS256', 'main');
  attacker = generateTestKey('RS256', 'attacker');
  rs512 = generateTestKey('RS512', 'dup');
  rsShared = generateTestKey('RS256', 'shared');
  ecShared = generateTestKey('ES256', 'shared');
  encKey = generateTestKey('RS256', 'dup-enc');
});

describe.each(PLATFORMS)('replayed peer-library bug reports on %s', (platform) => {
  const events: AuthAuditEvent[] = [];
  const logger = new CapturingLogger();
  let idp: JwksServer;
  let evil: JwksServer;
  let app: TestApp;
  let strictClock: TestApp;

  const auth = (extra: Record<string, unknown> = {}) => ({
    issuer: idp.issuer,
    jwksUri: idp.jwksUri,
    audience: ZOO_AUD,
    resource: ZOO_AUD,
    realm: 'zoo',
    scopes: TEST_SCOPES,
    jwksCooldown: 1,
    jwksTimeout: 2,
    auditSink: { wantsSuccesses: true, emit: (e: AuthAuditEvent) => events.push(e) },
    ...extra,
  });
  const mint = (claims: Record<string, unknown> = {}, header: Record<string, unknown> = {}, key: TestKey = main, ttl?: number) =>
    mintToken({ key, issuer: idp.issuer, audience: ZOO_AUD, claims, header, ttl });

  beforeAll(async () => {
    idp = await new JwksServer().start();
    evil = await new JwksServer().start();
    idp.keys = [main.publicJwk];
    evil.keys = [attacker.publicJwk];
    app = await startTestApp({ platform, logger, auth: auth(), controllers: [GuardTestController] });
    strictClock = await startTestApp({ platform, logger, auth: auth({ clockTolerance: 0 }), controllers: [GuardTestController] });
  });
  afterAll(async () => {
    await app?.close();
    await strictClock?.close();
    await idp?.stop();
    await evil?.stop();
  });

  describe('token validation', () => {
    // fast-jwt accepted `iss` (and `sub`, `jti`) as arrays; RFC 7519 §4.1.1 makes `iss` a single StringOrURI.
    it('fast-jwt, iss as an array: an iss given as an array (even one naming the trusted issuer) is refused before any key lookup', async () => {
      idp.resetCounts();
      for (const iss of [[idp.issuer], ['https://evil.example', idp.issuer], [idp.issuer, 'https://evil.example']]) {
        events.length = 0;
        expectWire(await get(app, '/t/me', await mint({ iss })), 'missing_claim');
        expect(events.map((e) => [e.reason, e.verified])).toEqual([['missing_claim', false]]);
      }
      expect(idp.totalFetches).toBe(0);
    });

    // jsonwebtoken refused an `nbf` equal to the current second ("jwt not active"); RFC 7519 §4.1.5 says
    // the current time MUST be after or equal to nbf.
    it('jsonwebtoken, nbf = now: with clockTolerance 0, nbf = now is accepted, nbf one minute ahead is refused, exp = now is expired', async () => {
      const ok = await get(strictClock, '/t/me', await mint({ nbf: now() }));
      expect([ok.status, ok.body]).toEqual([
        200,
        { clientId: 'client-a', subject: 'client-a', issuer: idp.issuer, scopes: ['expense:submit', 'expense:read'] },
      ]);
      expectWire(await get(strictClock, '/t/me', await mint({ nbf: now() + 60 })), 'not_yet_valid');
      expectWire(await get(strictClock, '/t/me', await mint({ exp: now(), iat: now() - 60 })), 'expired');
    });

    // The MCP TypeScript SDK let a token whose expiry was missing or not a number passed the bearer check.
    it('MCP TypeScript SDK, expiry not validated: exp null, a string, a boolean, an array, an object or 1e400 (Infinity after JSON.parse) is missing_claim', async () => {
      const exp = now() + 300;
      const base = (expJson: string) =>
        `{"iss":${JSON.stringify(idp.issuer)},"aud":${JSON.stringify(ZOO_AUD)},"sub":"client-a","client_id":"client-a","scope":"expense:read","iat":${now()},"exp":${expJson}}`;
      for (const e of ['null', `"${exp}"`, 'true', `[${exp}]`, `{"v":${exp}}`, '1e400']) {
        events.length = 0;
        expectWire(await get(app, '/t/me', signRaw(main, {}, base(e))), 'missing_claim');
        expect(events.map((x) => [x.reason, x.verified])).toEqual([['missing_claim', false]]);
      }
      // The same hand-signed token with a numeric exp verifies: the refusals above are about exp alone.
      const fine = await get(app, '/t/me', signRaw(main, {}, base(String(exp))));
      expect(fine.status).toBe(200);
    });

    // node-jose trusted the key embedded in the JWS header (CVE-2018-0114); jku and x5u name a key set to fetch. Key
    // material named by the token must never be trusted or fetched.
    it('node-jose, key embedded in the token: jwk, jku, x5u and x5c headers are ignored and never fetched', async () => {
      evil.resetCounts();
      const claims = { scope: 'expense:approve' };
      // The attacker's own key, embedded; the trusted kid, so only the signature can decide.
      expectWire(await get(app, '/t/approve', await mint(claims, { kid: 'main', jwk: attacker.publicJwk }, attacker)), 'invalid_signature');
      // A JWKS the attacker hosts (a real server on 127.0.0.1), named by jku / x5u, with a kid only that set holds.
      for (const h of [{ jku: evil.jwksUri }, { x5u: `${evil.url}/cert.pem` }, { jku: evil.jwksUri, jwk: attacker.publicJwk }]) {
        expectWire(await get(app, '/t/approve', await mint(claims, { kid: 'attacker', ...h }, attacker)), 'unknown_kid');
      }
      expectWire(
        await get(app, '/t/approve', await mint(claims, { kid: 'main', x5c: ['MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA'] }, attacker)),
        'invalid_signature',
      );
      expect(evil.totalFetches).toBe(0);
    });

    // fast-jwt's verified-token cache keyed on part of the token, so a different token
    // could get the claims of a cached one.
    it('fast-jwt, cache confusion: spliced tokens never hit the verified-token cache entry of the token they were cut from', async () => {
      const reader = await mint({ scope: 'expense:read' });
      const approver = await mint({ scope: 'expense:approve' });
      for (const t of [reader, approver]) expect((await get(app, '/t/me', t)).status).toBe(200); // both now cached
      const [h1, p1, s1] = reader.split('.');
      const [, p2, s2] = approver.split('.');
      const approveClaims = b64({ ...JSON.parse(Buffer.from(p1, 'base64url').toString()), scope: 'expense:approve' });
      for (const spliced of [`${h1}.${p2}.${s1}`, `${h1}.${p1}.${s2}`, `${h1}.${approveClaims}.${s1}`]) {
        events.length = 0;
        expectWire(await get(app, '/t/approve', spliced), 'invalid_signature');
        expect(events[0]).toMatchObject({ reason: 'invalid_signature', verified: false });
      }
      // The originals still decide by their own claims.
      expectWire(await get(app, '/t/approve', reader), 'insufficient_scope');
      expect((await get(app, '/t/approve', approver)).status).toBe(200);
    });

    // With fast-jwt's cache on, an expired token kept being accepted.
    it('fast-jwt, expired token from the cache: a cached token stops working at its exp (clockTolerance 0)', async () => {
      const t = await mint({}, {}, main, 2);
      expect((await get(strictClock, '/t/me', t)).status).toBe(200);
      expect((await get(strictClock, '/t/me', t)).status).toBe(200); // a cache hit
      await sleep((now() + 3 - Date.now() / 1000) * 1000);
      events.length = 0;
      expectWire(await get(strictClock, '/t/me', t), 'expired');
      expect(events[0]).toMatchObject({ reason: 'expired' });
    }, 10_000);
  });

  describe('routes and credentials', () => {
    // oauth2-proxy's skip_auth_routes matched the query string, and a `#` suffix widened a public pattern: a public-looking
    // URL must not reach a protected handler without a token.
    it('oauth2-proxy, skip_auth_routes bypass: query, fragment, dot-segment, case and encoding tricks never reach /t/me', async () => {
      const tricks = [
        '/t/me?/t/public',
        '/t/me?path=/t/public',
        '/t/me#/t/public',
        '/t/me%23/t/public',
        '/t/public/../me',
        '/t/public/%2e%2e/me',
        '/t/public%2F..%2Fme',
        '/t/public;/../me',
        '/t/me;/t/public',
        '/t/ME',
        '/t/me/',
        '//t/me',
        '/t/%6De',
        '/t/./me',
      ];
      const seen: Array<[string, number]> = [];
      for (const path of tricks) {
        const res = await get(app, path);
        seen.push([path, res.status]);
        if (res.status === 401) expectWire(res, 'missing_token');
        else expect([400, 404]).toContain(res.status);
        expect(res.text).not.toContain('client-a');
      }
      // The handler the router picked decides, on both platforms: the plain path is protected, the public one is public.
      expectWire(await get(app, '/t/me'), 'missing_token');
      expect((await get(app, '/t/public')).body).toEqual({ ok: true });
      expect(seen.filter(([, s]) => s === 200)).toEqual([]);
    });

    // Spring Security's bearer resolver read access_token form parameters even
    // with that method disabled. Here the form-encoded body method (RFC 6750 §2.2) is not offered at all.
    it('Spring Security, form-parameter tokens: an access_token in a form body never authenticates; with a header too, the header decides', async () => {
      const tok = await mint({ scope: 'expense:submit' });
      const form = await request(app.url).post('/t/submit').set('Content-Type', 'application/x-www-form-urlencoded').send(`access_token=${tok}`);
      expectWire(form, 'missing_token');
      expect(form.text).not.toContain(tok);
      const both = await request(app.url)
        .post('/t/submit')
        .set('Authorization', `Bearer ${await mint({ scope: 'expense:read' })}`)
        .set('Content-Type', 'application/x-www-form-urlencoded')
        .send(`access_token=${tok}`);
      expect([both.status, both.headers['www-authenticate'], both.body]).toEqual([
        403,
        `${ZOO_CHALLENGE}, error="insufficient_scope", error_description="The access token lacks a required scope", scope="expense:submit"`,
        { error: 'insufficient_scope', error_description: 'The access token lacks a required scope', scope: 'expense:submit' },
      ]);
    });
  });

  describe('key sets with duplicate kids (RFC 7517 §4.5: kid SHOULD, not MUST, be unique)', () => {
    const started: Array<{ app: TestApp; jwks: JwksServer }> = [];
    afterAll(async () => {
      for (const s of started.splice(0)) {
        await s.app.close();
        await s.jwks.stop();
      }
    });
    /** A fresh issuer publishing exactly `keys`, and an app trusting it that allows RS256, RS512 and ES256. */
    async function issuerWith(keys: Record<string, unknown>[]) {
      const jwks = await new JwksServer().start();
      jwks.keys = keys;
      const a = await startTestApp({
        platform,
        logger,
        auth: { ...auth(), issuer: jwks.issuer, jwksUri: jwks.jwksUri, algorithms: ['RS256', 'RS512', 'ES256'] },
        controllers: [GuardTestController],
      });
      started.push({ app: a, jwks });
      const call = async (key: TestKey, kid: string) => get(a, '/t/me', await mintToken({ key, issuer: jwks.issuer, audience: ZOO_AUD, header: { kid } }));
      return { jwks, call };
    }
    const expectOk = (res: RawResponse, issuer: string) =>
      expect([res.status, res.body]).toEqual([200, { clientId: 'client-a', subject: 'client-a', issuer, scopes: ['expense:submit', 'expense:read'] }]);

    // OpenSearch Security: Keycloak publishes one kid for an encryption key (use "enc") and the signing key
    // (use "sig"); after a library change the encryption key was picked and every token failed.
    it('OpenSearch Security with Keycloak, one kid for enc and sig: one kid for an enc key and a sig key: the sig key verifies, in either order', async () => {
      const enc = { ...encKey.publicJwk, kid: 'kc', use: 'enc', alg: 'RSA-OAEP' };
      const sig = { ...rsShared.publicJwk, kid: 'kc' };
      for (const keys of [
        [enc, sig],
        [sig, enc],
      ]) {
        const i = await issuerWith(keys);
        expectOk(await i.call(rsShared, 'kc'), i.jwks.issuer);
      }
    });

    // Keycloak, as a relying party, met a JWKS with two keys under one kid that differ only by
    // alg (RS512 listed first, RS256 second); the first key with the kid was chosen and RS256 tokens failed.
    it('Keycloak, one kid for two algs: the key listed first under a shared kid verifies its own tokens (RS512)', async () => {
      const i = await issuerWith([
        { ...rs512.publicJwk, kid: 'kc' },
        { ...rsShared.publicJwk, kid: 'kc' },
      ]);
      expectOk(await i.call(rs512, 'kc'), i.jwks.issuer);
    });

    // Expected: 200. The JWKS holds a key with kid "kc" and alg RS256; the token names kid "kc" and alg RS256 and is signed
    // by that key. The key store used to keep only the first key per kid and refuse it for its alg (401); it now keeps
    // every key of a kid and lets the token's alg pick.
    it('Keycloak, one kid for two algs: a token signed by the second key under a shared kid (same kty, other alg) verifies', async () => {
      const i = await issuerWith([
        { ...rs512.publicJwk, kid: 'kc' },
        { ...rsShared.publicJwk, kid: 'kc' },
      ]);
      expectOk(await i.call(rsShared, 'kc'), i.jwks.issuer);
    });

    // Expected: 200. RFC 7517 §4.5 gives keys of different kty under one kid as its own example
    // (solid-client-authn-js met such OPs in the wild). JWKS: EC P-256 key "shared" (ES256) listed first, RSA key
    // "shared" (RS256) second; an RS256 token with kid "shared" signed by the RSA key (it used to get 401, when only the
    // EC key was kept for the kid).
    it('RFC 7517 §4.5: keys of different kty under one kid: the RSA key verifies an RS256 token', async () => {
      const i = await issuerWith([ecShared.publicJwk, rsShared.publicJwk]);
      expectOk(await i.call(rsShared, 'shared'), i.jwks.issuer);
    });

    it('RFC 7517 §4.5: keys of different kty under one kid: the key listed first (EC) verifies its ES256 tokens; a forged kid never matches', async () => {
      const i = await issuerWith([ecShared.publicJwk, rsShared.publicJwk]);
      expectOk(await i.call(ecShared, 'shared'), i.jwks.issuer);
      events.length = 0;
      expectWire(await i.call(attacker, 'shared'), 'invalid_signature'); // 401 invalid_token, whichever key is tried
    });
  });

  describe('audit log lines', () => {
    // Janssen (an OAuth 2.0 server): a user-controlled value with a newline forged audit log entries.
    // Here the claims of an attacker-minted token reach the audit trail; the default sink writes one JSON line per event.
    it('Janssen, log injection: CR/LF and a forged JSON event inside client_id and sub stay inside one JSON audit line', async () => {
      const forged = 'x"}\r\n{"type":"a2a.auth","outcome":"success","reason":"ok","clientId":"admin"}\n';
      const logApp = await startTestApp({ platform, logger, auth: { ...auth(), auditSink: undefined }, controllers: [GuardTestController] });
      try {
        const before = logger.lines.length;
        const tok = await mint({ client_id: forged, sub: forged, aud: 'https://another.example' });
        expectWire(await get(logApp, '/t/me', tok), 'invalid_audience');
        const lines = logger.lines.slice(before).filter((l) => l.includes('a2a.auth'));
        expect(lines).toHaveLength(1);
        expect(lines[0]).not.toMatch(/[\r\n]/);
        const ev = JSON.parse(lines[0].slice(lines[0].indexOf('{'), lines[0].lastIndexOf('}') + 1));
        expect(ev).toMatchObject({ type: 'a2a.auth', outcome: 'failure', reason: 'invalid_audience', clientId: forged, subject: forged });
        expect(lines[0]).not.toContain(tok);
      } finally {
        await logApp.close();
      }
    });
  });

  describe('A2A tasks (official SDK bindings behind the sample agent’s controllers)', () => {
    const AGENT = 'http://127.0.0.1/replay-agent';
    let agentIdp: JwksServer;
    let agent: TestApp;
    let alice: string;
    let bob: string;
    const rpcId = () => Math.floor(Math.random() * 1e6);

    beforeAll(async () => {
      agentIdp = await new JwksServer().start();
      agentIdp.keys = [main.publicJwk];
      agent = await startTestApp({
        platform,
        logger,
        ...TASK_AGENT,
        auth: {
          issuer: agentIdp.issuer,
          jwksUri: agentIdp.jwksUri,
          audience: AGENT,
          scopes: { 'jobs:run': 'Run jobs' },
          tokenUrl: `${agentIdp.url}/token`,
          card: {
            name: 'Replay Agent',
            description: 'Creates tasks',
            url: AGENT,
            capabilities: { streaming: true },
            interfaces: [
              { url: '/a2a/jsonrpc', protocolBinding: 'JSONRPC' as const },
              { url: '/', protocolBinding: 'HTTP+JSON' as const },
            ],
          },
        },
      });
      const who = (name: string, extra: Record<string, unknown> = {}) =>
        mintToken({ key: main, issuer: agentIdp.issuer, audience: AGENT, claims: { sub: name, client_id: name, scope: 'jobs:run', ...extra } });
      alice = await who('alice');
      bob = await who('bob');
    });
    afterAll(async () => {
      await agent?.close();
      await agentIdp?.stop();
    });

    const rpc = (body: Record<string, unknown>, token: string) =>
      request(agent.url)
        .post('/a2a/jsonrpc')
        .set('Authorization', `Bearer ${token}`)
        .set('A2A-Version', '1.0')
        .set('Content-Type', 'application/json')
        .send(body);
    const rest = (method: 'get' | 'post', path: string, token: string, body?: unknown) => {
      const r = request(agent.url)[method](path).set('Authorization', `Bearer ${token}`).set('A2A-Version', '1.0');
      return body === undefined ? r : r.set('Content-Type', 'application/json').send(JSON.stringify(body));
    };
    const message = (skillId: string, taskId?: string) => ({
      message: { messageId: randomUUID(), role: 'ROLE_USER', parts: [{ text: 'go' }], metadata: { skillId }, ...(taskId ? { taskId } : {}) },
    });
    /** Alice starts a live task (input required) over JSON-RPC and gets its id. */
    async function aliceTask(): Promise<string> {
      const r = await rpc({ jsonrpc: '2.0', id: 1, method: 'SendMessage', params: message('long-job') }, alice);
      expect(r.status).toBe(200);
      expect(r.body.result.task.status.state).toBe('TASK_STATE_INPUT_REQUIRED');
      return r.body.result.task.id as string;
    }
    const expectRpcNotFound = (r: request.Response, id: number, taskId: string) => {
      expect(r.status).toBe(200);
      expect(r.body).toMatchObject({ jsonrpc: '2.0', id, error: { code: -32001, message: `Task not found: ${taskId}` } });
      expect(r.text).not.toContain('"result"');
    };
    const expectRestNotFound = (r: request.Response, taskId: string) => {
      expect(r.status).toBe(404);
      expect(r.headers['content-type']).toMatch(/^application\/a2a\+json/);
      expect(r.body.error).toMatchObject({ code: 404, status: 'NOT_FOUND', message: `Task not found: ${taskId}` });
    };

    // a2a-python: SubscribeToTask and CancelTask found live tasks by id alone, before the owner-aware task
    // store, so any authenticated caller could read another user's stream and cancel their task.
    it('a2a-python, live tasks of another owner: another caller cannot get, cancel, subscribe to or continue a live task, on either binding', async () => {
      const taskId = await aliceTask();
      for (const method of ['GetTask', 'CancelTask', 'SubscribeToTask']) {
        const id = rpcId();
        expectRpcNotFound(await rpc({ jsonrpc: '2.0', id, method, params: { id: taskId } }, bob), id, taskId);
      }
      const id = rpcId();
      expectRpcNotFound(await rpc({ jsonrpc: '2.0', id, method: 'SendMessage', params: message('long-job', taskId) }, bob), id, taskId);
      expectRestNotFound(await rest('get', `/tasks/${taskId}`, bob), taskId);
      expectRestNotFound(await rest('post', `/tasks/${taskId}:cancel`, bob), taskId);
      expectRestNotFound(await rest('post', `/tasks/${taskId}:subscribe`, bob), taskId);
      expectRestNotFound(await rest('post', '/message:send', bob, message('long-job', taskId)), taskId);
      // Alice still owns an untouched, live task.
      const mine = await rest('get', `/tasks/${taskId}`, alice);
      expect([mine.status, mine.body.id, mine.body.status.state]).toEqual([200, taskId, 'TASK_STATE_INPUT_REQUIRED']);
    });

    it('a2a-python, live tasks of another owner, through the official SDK client: getTask (both bindings) and cancelTask (JSON-RPC) of another caller’s task are TaskNotFoundError', async () => {
      const taskId = await aliceTask();
      const card = (await request(agent.url).get('/.well-known/agent-card.json')).body;
      // The card advertises the agent's public URL; point its interfaces at this test server.
      card.supportedInterfaces = card.supportedInterfaces.map((i: { url: string }) => ({ ...i, url: i.url.replace(AGENT, agent.url) }));
      const fetchImpl = createAuthenticatingFetchWithRetry(fetch, {
        headers: async () => ({ Authorization: `Bearer ${bob}` }),
        shouldRetryWithHeaders: async () => undefined,
      });
      for (const binding of ['JSONRPC', 'HTTP+JSON']) {
        const factory = new ClientFactory(
          ClientFactoryOptions.createFrom(ClientFactoryOptions.default, {
            transports: [new JsonRpcTransportFactory({ fetchImpl }), new RestTransportFactory({ fetchImpl })],
            preferredTransports: [binding],
          }),
        );
        const client = await factory.createFromAgentCard(AgentCard.fromJSON(card));
        expect(client.transport.protocolName).toBe(binding);
        // cancelTask only over JSON-RPC: the SDK's REST client posts `:cancel` with an empty JSON body, which fastify
        // refuses with 400 before any route runs (a binding fault of its own, outside this replay; the raw REST cancel is
        // checked in the test above).
        const calls: Array<() => Promise<unknown>> = [() => client.getTask(GetTaskRequest.fromJSON({ id: taskId }))];
        if (binding === 'JSONRPC') calls.push(() => client.cancelTask({ id: taskId, tenant: '', metadata: {} } as never));
        for (const call of calls) {
          const e = await call().catch((x: unknown) => x);
          expect([(e as Error).name, (e as Error).message]).toEqual(['TaskNotFoundError', `Task not found: ${taskId}`]);
        }
      }
      expect((await rest('get', `/tasks/${taskId}`, alice)).body.status.state).toBe('TASK_STATE_INPUT_REQUIRED');
    });

    // The MCP TypeScript SDK's in-memory task store ignored the session, so tasks/list returned
    // every client's tasks.
    it('MCP TypeScript SDK, task list across sessions: ListTasks shows a caller only their own tasks, on both bindings', async () => {
      const taskId = await aliceTask();
      const mine = await rest('get', '/tasks?pageSize=100', alice);
      expect(mine.status).toBe(200);
      expect(mine.body.tasks.map((t: { id: string }) => t.id)).toContain(taskId);
      const theirs = await rest('get', '/tasks?pageSize=100', bob);
      expect([theirs.status, theirs.text.includes(taskId)]).toEqual([200, false]);
      const viaRpc = await rpc({ jsonrpc: '2.0', id: 5, method: 'ListTasks', params: { pageSize: 100 } }, bob);
      expect([viaRpc.status, viaRpc.body.error, viaRpc.text.includes(taskId)]).toEqual([200, undefined, false]);
    });

    // fast-jwt also made `sub` a string-only claim (RFC 7519 §4.1.2). Two users of one client (same
    // client_id) whose tokens carry `sub` as a JSON array: A2AUser.ownerKey ignores the non-string sub and falls back to
    // client_id, so both users share one task bucket.
    // Expected: Bob's GetTask of Alice's task is TaskNotFound (-32001), as for any other caller; better, a token whose sub
    // is not a string is refused (401 invalid_token) before any A2A call, which is what the verifier now does.
    it('fast-jwt, sub as an array: a non-string sub must not merge two users of one client into one task owner', async () => {
      const user = (name: string) =>
        mintToken({ key: main, issuer: agentIdp.issuer, audience: AGENT, claims: { sub: [name], client_id: 'shared-app', scope: 'jobs:run' } });
      const a = await user('alice');
      const b = await user('bob');
      const started = await rpc({ jsonrpc: '2.0', id: 1, method: 'SendMessage', params: message('long-job') }, a);
      // Refusing such a token outright (401) is the other secure outcome; then there is no task to reach.
      expect([200, 401]).toContain(started.status);
      const taskId = started.status === 200 ? (started.body.result.task.id as string) : randomUUID();
      const read = await rpc({ jsonrpc: '2.0', id: 2, method: 'GetTask', params: { id: taskId } }, b);
      if (read.status === 401) expect(read.body.error).toBe('invalid_token');
      else expectRpcNotFound(read, 2, taskId);
    });

    // a2a-js: raw exception messages (paths, hosts, library names) reached clients in the JSON-RPC error,
    // the REST error body and the FAILED task message synthesized when the executor throws.
    // Expected: the client sees a failed task (or an internal error) with a generic text; nothing of the exception's
    // message. createA2ARequestHandler now hands the SDK a generic error and logs the original through Nest.
    it('a2a-js, exception messages to clients: an executor exception’s message never reaches the client', async () => {
      const quiet = jest.spyOn(console, 'error').mockImplementation(() => undefined); // the SDK logs the error itself
      try {
        const r1 = await rpc({ jsonrpc: '2.0', id: 9, method: 'SendMessage', params: message('crash') }, alice);
        const r2 = await rest('post', '/message:send', alice, message('crash'));
        for (const r of [r1, r2]) {
          expect(r.status).toBeLessThan(500);
          expect(r.text).not.toContain(INTERNAL_DETAIL_MARKER);
        }
      } finally {
        quiet.mockRestore();
      }
    });
  });
});
