import { createHash, randomUUID } from 'node:crypto';
import { Controller, Get, type INestApplication } from '@nestjs/common';
import Redis from 'ioredis';
import request from 'supertest';
import {
  A2A_SHARED_STORE,
  A2ACaller,
  ClientCredentialsTokenProvider,
  ClientRateLimit,
  Public,
  StoreUnavailableError,
  type A2AAuthModuleOptions,
  type AuthAuditEvent,
  type SharedStore,
} from 'nestjs-a2a-auth';
import { TestIssuer } from './fixtures/auth-harness';
import { startCountingAuthServer, TEST_CLIENTS, TEST_INTROSPECTOR, type CountingAuthServer } from './fixtures/oidc-dev';
import { RedisServer } from './fixtures/redis-server';
import { CapturingLogger, PLATFORMS, startTestApp, type TestApp } from './fixtures/test-app';
import { mintProof, proofKey, type ProofKey } from './dpop-helpers';

@Controller('ops')
class OpsController {
  @Get('read')
  read(@A2ACaller() caller: A2ACaller) {
    return { clientId: caller.clientId };
  }

  @ClientRateLimit({ limit: 2, ttl: 60 })
  @Get('costly')
  costly() {
    return { ok: true };
  }

  @Public()
  @Get('health')
  health() {
    return { ok: true };
  }
}

const AUDIENCE = 'https://agent.test/expenses';
// What clients address (the load balancer in front of the instances): the proofs' htu names it, not an instance.
const ORIGIN = 'https://agent.test';
const RM = 'https://agent.test/.well-known/oauth-protected-resource/expenses';
const DPOP_CHALLENGE = `Bearer realm="Ops Agent", resource_metadata="${RM}", DPoP realm="Ops Agent", resource_metadata="${RM}", algs="ES256 PS256 RS256 EdDSA"`;
const REPLAYED = {
  status: 401,
  wwwAuthenticate: `${DPOP_CHALLENGE}, error="invalid_dpop_proof", error_description="The DPoP proof was already used"`,
  body: { error: 'invalid_dpop_proof', error_description: 'The DPoP proof was already used' },
};
const REPLAY_UNAVAILABLE = {
  status: 503,
  wwwAuthenticate: undefined,
  retryAfter: '5',
  body: { error: 'temporarily_unavailable', error_description: 'The DPoP replay check is temporarily unavailable; retry later' },
};
const OPAQUE = TEST_CLIENTS.find((c) => c.accessTokenFormat === 'opaque')!;
const sha256 = (v: string) => createHash('sha256').update(v).digest('base64url');
const CLIENT_LIMIT = { error: 'rate_limited', error_description: 'Too many requests from this client; retry later' };
const CARD_LIMIT = { error: 'rate_limited', error_description: 'Too many requests for this document; retry later' };

function options(idp: TestIssuer, extra: Partial<A2AAuthModuleOptions>): Partial<A2AAuthModuleOptions> {
  return {
    tokenUrl: `${idp.issuer}/token`,
    card: { name: 'Ops Agent', description: 'Ops', url: AUDIENCE, interfaces: [], throttle: { limit: 4, ttl: 60 } },
    clientRateLimit: { limit: 5, ttl: 60 },
    ...extra,
  };
}

function expectClientLimited(res: request.Response): void {
  expect(res.status).toBe(429);
  expect(res.headers['retry-after']).toMatch(/^[1-9]\d*$/);
  expect(Number(res.headers['retry-after'])).toBeLessThanOrEqual(60);
  expect(res.headers['www-authenticate']).toBeUndefined();
  expect(res.headers['cache-control']).toBe('no-store');
  expect(res.headers['content-type']).toMatch(/^application\/json/);
  expect(res.body).toStrictEqual(CLIENT_LIMIT);
}

describe.each(PLATFORMS)('several instances sharing one Redis (%s)', (platform) => {
  let redis: RedisServer;
  let idp: TestIssuer;
  // The real oidc-provider dev server for opaque tokens (its introspection calls counted), trusted beside idp.
  let as: CountingAuthServer;
  let admin: Redis;
  let pk: ProofKey;
  const apps: TestApp[] = [];
  const events: AuthAuditEvent[] = [];
  const logger = new CapturingLogger();

  beforeAll(async () => {
    redis = await RedisServer.start();
    admin = new Redis(redis.url, { lazyConnect: true, maxRetriesPerRequest: 1 });
    admin.on('error', () => undefined);
    await admin.connect();
    idp = await TestIssuer.start({ audience: AUDIENCE });
    as = await startCountingAuthServer({ audience: AUDIENCE, ttl: 300 });
    pk = await proofKey('ES256');
    for (let i = 0; i < 3; i++) {
      apps.push(
        await idp.startApp({
          platform,
          controllers: [OpsController],
          logger,
          auth: options(idp, {
            issuer: [
              { issuer: idp.issuer, jwksUri: idp.jwks.jwksUri },
              { issuer: as.issuer, jwksUri: as.dev.jwksUri },
            ],
            jwksUri: undefined,
            introspection: { endpoint: as.introspectionUrl, clientId: TEST_INTROSPECTOR.clientId, clientSecret: TEST_INTROSPECTOR.clientSecret, timeout: 2 },
            dpop: { mode: 'allowed', publicOrigin: ORIGIN },
            store: { redis: { url: redis.url } },
            auditSink: { wantsSuccesses: false, emit: (e) => events.push(e) },
          }),
        }),
      );
    }
  });

  afterAll(async () => {
    await idp?.close();
    await as?.close();
    admin?.disconnect();
    await redis?.stop();
  });

  const boundToken = (clientId: string) => idp.mint({ claims: { client_id: clientId, sub: clientId, cnf: { jkt: pk.jkt } } });
  const proof = (token: string, jti = randomUUID()) => mintProof(pk, { htm: 'GET', htu: `${ORIGIN}/ops/read`, token, jti });
  const dpopCall = async (i: number, token: string, p: string) => {
    const r = await at(i).get('/ops/read').set('Authorization', `DPoP ${token}`).set('DPoP', p);
    return { status: r.status, wwwAuthenticate: r.headers['www-authenticate'], retryAfter: r.headers['retry-after'], body: r.body as unknown };
  };
  const opaqueToken = async () =>
    (
      await new ClientCredentialsTokenProvider({
        tokenUrl: as.dev.tokenUrl,
        clientId: OPAQUE.clientId,
        clientSecret: OPAQUE.clientSecret,
        scopes: ['expense:read'],
      }).getToken()
    ).accessToken;

  beforeEach(async () => {
    if (admin.status === 'ready') await admin.flushall();
    events.length = 0;
    logger.lines.length = 0;
  });

  /** The i-th request goes to instance i mod 3, as behind a round-robin load balancer. */
  const at = (i: number) => request(apps[i % apps.length].url);

  it('the card limit (4 a minute per address) holds in total across three instances', async () => {
    const statuses: number[] = [];
    let last!: request.Response;
    for (let i = 0; i < 6; i++) statuses.push((last = await at(i).get('/.well-known/agent-card.json')).status);
    expect(statuses).toStrictEqual([200, 200, 200, 200, 429, 429]);
    expect(last.headers['retry-after']).toMatch(/^[1-9]\d*$/);
    expect(last.body).toStrictEqual(CARD_LIMIT);
    // Namespaced per agent: the key prefix comes from card.url.
    expect((await admin.keys('*')).every((k) => k.startsWith('{a2a:agent.test/expenses:card:'))).toBe(true);
  });

  it('a per-client limit (5 a minute) holds in total across three instances, with 429, Retry-After and an audit event', async () => {
    const a = await idp.mint({ claims: { client_id: 'client-a', sub: 'client-a' } });
    const b = await idp.mint({ claims: { client_id: 'client-b', sub: 'client-b' } });
    const statuses: number[] = [];
    let last!: request.Response;
    for (let i = 0; i < 7; i++) statuses.push((last = await at(i).get('/ops/read').set('Authorization', `Bearer ${a}`)).status);
    expect(statuses).toStrictEqual([200, 200, 200, 200, 200, 429, 429]);
    expectClientLimited(last);
    const limited = events.filter((e) => e.reason === 'rate_limited');
    expect(limited).toHaveLength(2);
    expect(limited[0]).toMatchObject({ outcome: 'failure', status: 429, clientId: 'client-a', verified: true, route: '/ops/read' });
    // Another client has its own budget; unauthenticated and public requests are not counted.
    expect((await at(0).get('/ops/read').set('Authorization', `Bearer ${b}`)).body).toStrictEqual({ clientId: 'client-b' });
    expect((await at(1).get('/ops/health')).status).toBe(200);
    expect((await at(2).get('/ops/read')).status).toBe(401);
    expect(logger.lines.join('\n')).not.toContain(a);
  });

  it('@ClientRateLimit({ limit: 2 }) limits one route per client in total, beside the module-wide limit', async () => {
    const a = await idp.mint({ claims: { client_id: 'client-c', sub: 'client-c' } });
    const statuses: number[] = [];
    for (let i = 0; i < 3; i++) statuses.push((await at(i).get('/ops/costly').set('Authorization', `Bearer ${a}`)).status);
    expect(statuses).toStrictEqual([200, 200, 429]);
    expectClientLimited(await at(0).get('/ops/costly').set('Authorization', `Bearer ${a}`));
    expect((await at(1).get('/ops/read').set('Authorization', `Bearer ${a}`)).status).toBe(200); // 5th of 5 module-wide
    expectClientLimited(await at(2).get('/ops/read').set('Authorization', `Bearer ${a}`));
  });

  it('the shared store: setIfAbsent is first-use-wins across instances, get/set are shared, keys carry the agent prefix', async () => {
    const s0 = apps[0].app.get<SharedStore>(A2A_SHARED_STORE);
    const s1 = apps[1].app.get<SharedStore>(A2A_SHARED_STORE);
    expect(s0.kind).toBe('redis');
    expect(await s0.setIfAbsent('jti:1', 60)).toBe(true);
    expect(await s1.setIfAbsent('jti:1', 60)).toBe(false);
    await s1.set('cache:x', 'v', 60);
    expect(await s0.get('cache:x')).toBe('v');
    expect(await s0.get('cache:absent')).toBeUndefined();
    expect((await admin.keys('*')).sort()).toStrictEqual(['a2a:agent.test/expenses:cache:x', 'a2a:agent.test/expenses:jti:1']);
    expect(await admin.pttl('a2a:agent.test/expenses:jti:1')).toBeGreaterThan(59_000);
  });

  it('a DPoP proof accepted by one instance is a replay at every other one: 401 as for a local replay, same audit reason', async () => {
    const token = await boundToken('dpop-a');
    const jti = randomUUID();
    const p = proof(token, jti);
    const first = await dpopCall(0, token, p);
    expect(first.status).toBe(200);
    expect(first.body).toStrictEqual({ clientId: 'dpop-a' });
    // The jti is kept in Redis (never the proof or the token) for at most iatWindow + 2 × clockTolerance = 70 s.
    const key = `a2a:agent.test/expenses:dpop:${pk.jkt}:${jti}`;
    expect(await admin.keys('*dpop*')).toStrictEqual([key]);
    expect(await admin.pttl(key)).toBeGreaterThan(60_000);
    expect(await admin.pttl(key)).toBeLessThanOrEqual(70_000);
    const local = await dpopCall(0, token, p);
    expect(local).toStrictEqual({ ...REPLAYED, retryAfter: undefined });
    for (const i of [1, 2]) expect(await dpopCall(i, token, p)).toStrictEqual({ ...REPLAYED, retryAfter: undefined });
    expect(events.map((e) => [e.reason, e.status])).toStrictEqual([
      ['dpop_replayed', 401],
      ['dpop_replayed', 401],
      ['dpop_replayed', 401],
    ]);
    // A fresh proof passes at any instance.
    expect((await dpopCall(1, token, proof(token))).status).toBe(200);
  });

  it('a dpop.replayCache of your own still wins over the Redis store', async () => {
    const seen: string[] = [];
    const own = await startTestApp({
      platform,
      controllers: [OpsController],
      logger, // Nest's logger is process-wide: `false` here would silence the other instances too

      auth: options(idp, {
        issuer: idp.issuer,
        jwksUri: idp.jwks.jwksUri,
        audience: AUDIENCE,
        dpop: { mode: 'allowed', publicOrigin: ORIGIN, replayCache: { checkAndStore: (k) => (seen.includes(k) ? false : (seen.push(k), true)) } },
        store: { redis: { url: redis.url } },
      }) as A2AAuthModuleOptions,
    });
    try {
      const token = await boundToken('dpop-own');
      const jti = randomUUID();
      const p = proof(token, jti);
      const call = () => request(own.url).get('/ops/read').set('Authorization', `DPoP ${token}`).set('DPoP', p);
      expect((await call()).status).toBe(200);
      expect((await call()).status).toBe(401);
      expect(seen).toStrictEqual([`${pk.jkt}:${jti}`]);
      expect(await admin.keys('*dpop*')).toStrictEqual([]);
    } finally {
      await own.close();
    }
  });

  it('an introspected token is introspected once for all instances (active and inactive answers), cached by hash only', async () => {
    const token = await opaqueToken();
    const before = as.introspectionRequests;
    for (let i = 0; i < 3; i++) {
      const r = await at(i).get('/ops/read').set('Authorization', `Bearer ${token}`);
      expect([r.status, r.body]).toStrictEqual([200, { clientId: OPAQUE.clientId }]);
    }
    expect(as.introspectionRequests - before).toBe(1);
    const key = `a2a:agent.test/expenses:introspection:${sha256(token)}`;
    expect(await admin.keys('*introspection*')).toStrictEqual([key]);
    const stored = (await admin.get(key))!;
    expect(stored).not.toContain(token);
    expect(JSON.parse(stored)).toMatchObject({ active: true, claims: { client_id: OPAQUE.clientId, iss: as.issuer, scope: 'expense:read' } });
    expect(await admin.pttl(key)).toBeLessThanOrEqual(60_000); // introspection.cacheMaxTtl, default 60 s

    const dead = 'nOtAtOkEn0fThIsSeRvEr-xxxxxxxxxxxxxxxxxxxxxx';
    const beforeDead = as.introspectionRequests;
    for (let i = 0; i < 3; i++) {
      const r = await at(i).get('/ops/read').set('Authorization', `Bearer ${dead}`);
      expect(r.status).toBe(401);
      expect(r.body).toStrictEqual({ error: 'invalid_token', error_description: 'The access token is invalid' });
    }
    expect(as.introspectionRequests - beforeDead).toBe(1);
    expect(await admin.get(`a2a:agent.test/expenses:introspection:${sha256(dead)}`)).toBe('{"active":false}');
    expect(await admin.pttl(`a2a:agent.test/expenses:introspection:${sha256(dead)}`)).toBeLessThanOrEqual(10_000); // inactiveCacheTtl
    expect(logger.lines.join('\n')).not.toContain(token);
  });

  it('an introspection entry in Redis that is not a result of ours is a miss: the endpoint is asked, nothing fails', async () => {
    const token = await opaqueToken();
    const key = `a2a:agent.test/expenses:introspection:${sha256(token)}`;
    const before = as.introspectionRequests;
    for (const junk of ['not json', '[1]', '{"active":"yes"}', '{"active":true,"claims":[]}']) {
      await admin.set(key, junk, 'EX', 60);
      const r = await at(0).get('/ops/read').set('Authorization', `Bearer ${token}`);
      expect([r.status, r.body]).toStrictEqual([200, { clientId: OPAQUE.clientId }]);
    }
    expect(as.introspectionRequests - before).toBe(4);
    expect(JSON.parse((await admin.get(key))!)).toMatchObject({ active: true }); // overwritten with the real answer
  });

  it('a paused Redis is bounded by store.timeoutMs (200 ms): limits fail open with a warning, setIfAbsent rejects', async () => {
    const a = await idp.mint({ claims: { client_id: 'client-d', sub: 'client-d' } });
    process.kill(redis.pid, 'SIGSTOP');
    try {
      const store = apps[0].app.get<SharedStore>(A2A_SHARED_STORE);
      let t = Date.now();
      await expect(store.setIfAbsent('jti:slow', 60)).rejects.toBeInstanceOf(StoreUnavailableError);
      expect(Date.now() - t).toBeLessThan(1000);
      t = Date.now();
      const statuses: number[] = [];
      for (let i = 0; i < 7; i++) statuses.push((await at(i).get('/ops/read').set('Authorization', `Bearer ${a}`)).status);
      expect(statuses).toStrictEqual([200, 200, 200, 200, 200, 200, 200]);
      expect(Date.now() - t).toBeLessThan(7 * 1000);
      expect((await at(0).get('/.well-known/agent-card.json')).status).toBe(200);
      expect(logger.lines.some((l) => l.startsWith('warn') && l.includes('a2a.store.rate_limit_unavailable') && l.includes('200 ms'))).toBe(true);

      // DPoP fails closed, within store.timeoutMs plus a margin (the per-client limit's wait comes first: 2 × 200 ms).
      const bound = await boundToken('dpop-slow');
      t = Date.now();
      expect(await dpopCall(1, bound, proof(bound))).toStrictEqual(REPLAY_UNAVAILABLE);
      expect(Date.now() - t).toBeLessThan(2000);
      expect(events.filter((e) => e.reason === 'dpop_replay_store_unavailable').map((e) => e.status)).toStrictEqual([503]);

      // An opaque token is still verified: the endpoint is asked each time (no cache), nothing fails.
      const opaque = await opaqueToken();
      const before = as.introspectionRequests;
      for (let i = 0; i < 2; i++) {
        const r = await at(i).get('/ops/read').set('Authorization', `Bearer ${opaque}`);
        expect([r.status, r.body]).toStrictEqual([200, { clientId: OPAQUE.clientId }]);
      }
      expect(as.introspectionRequests - before).toBe(2);
      expect(logger.lines.some((l) => l.startsWith('warn') && l.includes('"a2a.store.cache_unavailable"') && l.includes('"cache":"introspection"'))).toBe(true);
      expect(logger.lines.join('\n')).not.toContain(opaque);
      expect(logger.lines.join('\n')).not.toContain(bound);
    } finally {
      process.kill(redis.pid, 'SIGCONT');
    }
  });

  it('Redis stopped mid-run: limits fail open, DPoP 503, introspection uncached; once Redis is back, all of it is shared again', async () => {
    const a = await idp.mint({ claims: { client_id: 'client-e', sub: 'client-e' } });
    const opaque = await opaqueToken();
    for (let i = 0; i < 5; i++) expect((await at(i).get('/ops/read').set('Authorization', `Bearer ${a}`)).status).toBe(200);
    expectClientLimited(await at(5).get('/ops/read').set('Authorization', `Bearer ${a}`));
    await redis.stop();
    try {
      const store = apps[1].app.get<SharedStore>(A2A_SHARED_STORE);
      const t = Date.now();
      await expect(store.get('cache:x')).rejects.toBeInstanceOf(StoreUnavailableError);
      await expect(store.setIfAbsent('jti:down', 60)).rejects.toBeInstanceOf(StoreUnavailableError);
      expect(Date.now() - t).toBeLessThan(1000);
      for (let i = 0; i < 3; i++) expect((await at(i).get('/ops/read').set('Authorization', `Bearer ${a}`)).status).toBe(200);
      expect(logger.lines.some((l) => l.startsWith('warn') && l.includes('a2a.store.rate_limit_unavailable'))).toBe(true);
      expect(logger.lines.join('\n')).not.toContain(a);
      // DPoP: refused (503 + Retry-After), never accepted unchecked; opaque tokens: verified without the cache.
      const bound = await boundToken('dpop-down');
      for (let i = 0; i < 2; i++) expect(await dpopCall(i, bound, proof(bound))).toStrictEqual(REPLAY_UNAVAILABLE);
      const before = as.introspectionRequests;
      for (let i = 0; i < 2; i++) expect((await at(i).get('/ops/read').set('Authorization', `Bearer ${opaque}`)).status).toBe(200);
      expect(as.introspectionRequests - before).toBe(2);
    } finally {
      await redis.restart();
    }
    // ioredis reconnects on its own (backoff up to 2 s); the counters were lost with the server, so counting restarts.
    const deadline = Date.now() + 8000;
    const reconnected = async () => {
      for (const t of apps) {
        const ok = await t.app
          .get<SharedStore>(A2A_SHARED_STORE)
          .set('probe', '1', 5)
          .then(() => true)
          .catch(() => false);
        if (!ok) return false;
      }
      return true;
    };
    // Every instance must be back, or one that still fails open would not count its requests.
    while (Date.now() < deadline && !(await reconnected())) await new Promise((r) => setTimeout(r, 100));
    await admin.flushall().catch(() => undefined);
    for (let i = 0; i < 5; i++) expect((await at(i).get('/ops/read').set('Authorization', `Bearer ${a}`)).status).toBe(200);
    expectClientLimited(await at(5).get('/ops/read').set('Authorization', `Bearer ${a}`));
    const bound = await boundToken('dpop-back');
    const p = proof(bound);
    expect((await dpopCall(0, bound, p)).status).toBe(200);
    expect(await dpopCall(1, bound, p)).toStrictEqual({ ...REPLAYED, retryAfter: undefined });
    const before = as.introspectionRequests;
    for (let i = 0; i < 3; i++) expect((await at(i).get('/ops/read').set('Authorization', `Bearer ${opaque}`)).status).toBe(200);
    expect(as.introspectionRequests - before).toBe(1);
  }, 30_000);
});

describe.each(PLATFORMS)('per-client limits with the default in-memory store (%s)', (platform) => {
  let idp: TestIssuer;
  let app: INestApplication;
  let url: string;
  beforeAll(async () => {
    idp = await TestIssuer.start({ audience: AUDIENCE });
    const t = await idp.startApp({ platform, controllers: [OpsController], auth: options(idp, { clientRateLimit: { limit: 2, ttl: 60 } }) });
    app = t.app;
    url = t.url;
  });
  afterAll(async () => {
    await idp?.close();
  });

  it('counts per client in this process: the third request of a client is 429, another client still passes', async () => {
    expect(app.get<SharedStore>(A2A_SHARED_STORE).kind).toBe('memory');
    const a = await idp.mint({ claims: { client_id: 'client-m', sub: 'client-m' } });
    const b = await idp.mint({ claims: { client_id: 'client-n', sub: 'client-n' } });
    const statuses: number[] = [];
    let last!: request.Response;
    for (let i = 0; i < 3; i++) statuses.push((last = await request(url).get('/ops/read').set('Authorization', `Bearer ${a}`)).status);
    expect(statuses).toStrictEqual([200, 200, 429]);
    expectClientLimited(last);
    expect((await request(url).get('/ops/read').set('Authorization', `Bearer ${b}`)).status).toBe(200);
  });
});
