import 'reflect-metadata';
import { randomUUID } from 'node:crypto';
import { Controller, Get, Module, type INestApplication } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { ExpressAdapter } from '@nestjs/platform-express';
import { FastifyAdapter } from '@nestjs/platform-fastify';
import Redis from 'ioredis';
import request from 'supertest';
import {
  A2AAuthConfigError,
  A2AAuthModule,
  A2ACaller,
  A2ASkillAuthorizer,
  AgentCardService,
  resolveOptions,
  type A2AAuthModuleOptions,
  type AgentCardJson,
} from 'nestjs-a2a-auth';
import { A2AJsonRpcController } from '../apps/expense-agent/src/a2a/a2a.controllers';
import { TestIssuer } from './fixtures/auth-harness';
import { RedisServer } from './fixtures/redis-server';
import { CapturingLogger, PLATFORMS, startTestApp, type Platform, type TestApp } from './fixtures/test-app';
import { generateTestKey, type TestKey } from './fixtures/keys';
import { JwksServer } from './fixtures/jwks-server';
import { mintToken } from './fixtures/tokens';
import { replyingTransport } from './fixtures/a2a-reply';
import { CARD_CONTROLLERS, CARD_PROVIDERS, cardOptions, freePort } from './fixtures/card-app';
import { mintProof, proofKey, type ProofKey } from './dpop-helpers';
import { startCountingAuthServer, TEST_CLIENTS, TEST_INTROSPECTOR, type CountingAuthServer } from './fixtures/oidc-dev';
import { ClientCredentialsTokenProvider } from 'nestjs-a2a-auth/client';

// Attacks on the shared state (DPoP replay cache and rate limits in one Redis, several instances, several agents)
// and on the per-caller extended Agent Card, with real parts: redis-server, Nest on express and fastify, real tokens.

@Controller('ops')
class OpsController {
  @Get('read')
  read(@A2ACaller() caller: A2ACaller) {
    return { clientId: caller.clientId };
  }
}

const AUDIENCE = 'https://agent.test/expenses';
const ORIGIN = 'https://agent.test';
const REPLAYED_BODY = { error: 'invalid_dpop_proof', error_description: 'The DPoP proof was already used' };
const CLIENT_LIMIT = { error: 'rate_limited', error_description: 'Too many requests from this client; retry later' };

describe.each(PLATFORMS)('shared state under attack (%s)', (platform) => {
  let redis: RedisServer;
  let admin: Redis;
  let idp: TestIssuer;
  let pk: ProofKey;
  const instances: TestApp[] = [];
  // Two different agents (audiences that are not URLs, no card, no resource) on the same Redis, default prefix.
  let orders: TestApp;
  let billing: TestApp;
  const logger = new CapturingLogger();

  beforeAll(async () => {
    redis = await RedisServer.start();
    admin = new Redis(redis.url, { lazyConnect: true, maxRetriesPerRequest: 1 });
    admin.on('error', () => undefined);
    await admin.connect();
    idp = await TestIssuer.start({ audience: AUDIENCE });
    pk = await proofKey('ES256');
    for (let i = 0; i < 2; i++) {
      instances.push(
        await idp.startApp({
          platform,
          controllers: [OpsController],
          logger,
          auth: {
            tokenUrl: `${idp.issuer}/token`,
            card: { name: 'Ops Agent', description: 'Ops', url: AUDIENCE, interfaces: [] },
            dpop: { mode: 'allowed', publicOrigin: ORIGIN },
            store: { redis: { url: redis.url } },
          },
        }),
      );
    }
    const agent = (audience: string) =>
      idp.startApp({
        platform,
        controllers: [OpsController],
        logger,
        auth: { audience, clientRateLimit: { limit: 2, ttl: 60 }, store: { redis: { url: redis.url } } },
      });
    orders = await agent('orders-api');
    billing = await agent('billing-api');
  });

  afterAll(async () => {
    await idp?.close();
    admin?.disconnect();
    await redis?.stop();
  });

  beforeEach(async () => {
    await admin.flushall();
  });

  it('one DPoP proof sent to two instances at the same moment (6 copies): exactly one succeeds, the others are replays', async () => {
    const token = await idp.mint({ claims: { client_id: 'race', sub: 'race', cnf: { jkt: pk.jkt } } });
    for (let round = 0; round < 3; round++) {
      const p = mintProof(pk, { htm: 'GET', htu: `${ORIGIN}/ops/read`, token, jti: randomUUID() });
      const answers = await Promise.all(
        Array.from({ length: 6 }, (_, i) =>
          request(instances[i % 2].url)
            .get('/ops/read')
            .set('Authorization', `DPoP ${token}`)
            .set('DPoP', p)
            .then((r) => ({ status: r.status, body: r.body as unknown })),
        ),
      );
      const ok = answers.filter((a) => a.status === 200);
      expect(ok).toStrictEqual([{ status: 200, body: { clientId: 'race' } }]);
      expect(answers.filter((a) => a.status !== 200)).toStrictEqual(Array(5).fill({ status: 401, body: REPLAYED_BODY }));
    }
  });

  const proofCall = async (i: number, token: string, p: string) => {
    const r = await request(instances[i].url).get('/ops/read').set('Authorization', `DPoP ${token}`).set('DPoP', p);
    return { status: r.status, retryAfter: r.headers['retry-after'] as string | undefined, body: r.body as unknown };
  };

  it('a full Redis that refuses writes (noeviction): a proof is refused with 503, never accepted unchecked; then it recovers', async () => {
    const token = await idp.mint({ claims: { client_id: 'full', sub: 'full', cnf: { jkt: pk.jkt } } });
    await admin.config('SET', 'maxmemory-policy', 'noeviction');
    await admin.config('SET', 'maxmemory', '1');
    try {
      const p = mintProof(pk, { htm: 'GET', htu: `${ORIGIN}/ops/read`, token, jti: randomUUID() });
      expect(await proofCall(0, token, p)).toStrictEqual({
        status: 503,
        retryAfter: '5',
        body: { error: 'temporarily_unavailable', error_description: 'The DPoP replay check is temporarily unavailable; retry later' },
      });
    } finally {
      await admin.config('SET', 'maxmemory', '0');
    }
    const p = mintProof(pk, { htm: 'GET', htu: `${ORIGIN}/ops/read`, token, jti: randomUUID() });
    expect((await proofCall(1, token, p)).status).toBe(200);
    expect((await proofCall(0, token, p)).body).toStrictEqual(REPLAYED_BODY);
  });

  const startPlain = () =>
    startTestApp({
      platform,
      controllers: [OpsController],
      logger,
      auth: { issuer: idp.issuer, jwksUri: idp.jwks.jwksUri, audience: AUDIENCE, store: { redis: { url: redis.url } } },
    });

  it('a Redis that evicts keys early forgets proofs (a replay passes), so the boot warns about its maxmemory-policy', async () => {
    const token = await idp.mint({ claims: { client_id: 'evict', sub: 'evict', cnf: { jkt: pk.jkt } } });
    const used = Number(/used_memory:(\d+)/.exec(await admin.info('memory'))![1]);
    await admin.config('SET', 'maxmemory-policy', 'allkeys-lru');
    await admin.config('SET', 'maxmemory', String(used + 256 * 1024));
    let extra: TestApp | undefined;
    try {
      const jti = randomUUID();
      const p = mintProof(pk, { htm: 'GET', htu: `${ORIGIN}/ops/read`, token, jti });
      expect((await proofCall(0, token, p)).status).toBe(200);
      // Other data fills the Redis: the least recently used keys go, the proof's replay entry among them (bounded).
      const entry = `a2a:agent.test/expenses:dpop:${pk.jkt}:${jti}`;
      for (let i = 0; i < 4000 && (await admin.exists(entry)) === 1; i++) await admin.set(`junk:${i}`, 'x'.repeat(1024));
      expect(await admin.exists(entry)).toBe(0);
      // The same proof passes again: what the boot warning is about.
      expect((await proofCall(1, token, p)).status).toBe(200);
      logger.lines.length = 0;
      extra = await startPlain();
      const warned = logger.lines.filter((l) => l.includes('a2a.store.eviction_policy'));
      expect(warned).toHaveLength(1);
      expect(warned[0]).toContain('"policy":"allkeys-lru"');
      expect(warned[0]).not.toContain(redis.url);
    } finally {
      await admin.config('SET', 'maxmemory', '0');
      await admin.config('SET', 'maxmemory-policy', 'noeviction');
      await extra?.close();
    }
    // The same Redis without a memory limit (or with noeviction): no warning.
    logger.lines.length = 0;
    const quiet = await startPlain();
    await quiet.close();
    expect(logger.lines.filter((l) => l.includes('a2a.store.eviction_policy'))).toStrictEqual([]);
  });

  it('two agents whose audiences are not URLs keep apart in one Redis: one agent’s traffic does not use up the other’s client limit', async () => {
    const atOrders = await idp.mint({ audience: 'orders-api', claims: { client_id: 'shared-client', sub: 'shared-client' } });
    const atBilling = await idp.mint({ audience: 'billing-api', claims: { client_id: 'shared-client', sub: 'shared-client' } });
    for (let i = 0; i < 2; i++) expect((await request(orders.url).get('/ops/read').set('Authorization', `Bearer ${atOrders}`)).status).toBe(200);
    const third = await request(orders.url).get('/ops/read').set('Authorization', `Bearer ${atOrders}`);
    expect([third.status, third.body]).toStrictEqual([429, CLIENT_LIMIT]);
    // The billing agent has never seen this client: its budget is whole.
    const other = await request(billing.url).get('/ops/read').set('Authorization', `Bearer ${atBilling}`);
    expect([other.status, other.body]).toStrictEqual([200, { clientId: 'shared-client' }]);
    const keys = await admin.keys('*');
    // Each agent counts under its own audience (the throttler storage wraps keys in a {hash tag}).
    expect(keys.length).toBeGreaterThan(0);
    expect(keys.every((k) => /^\{?a2a:(orders-api|billing-api):/.test(k))).toBe(true);
    expect(keys.some((k) => k.includes('a2a:orders-api:'))).toBe(true);
    expect(keys.some((k) => k.includes('a2a:billing-api:'))).toBe(true);
  });
});

describe.each(PLATFORMS)('introspection answers cached in Redis, attacked (%s)', (platform) => {
  let redis: RedisServer;
  let admin: Redis;
  let as: CountingAuthServer;
  let idp: TestIssuer;
  const instances: TestApp[] = [];
  const OPAQUE = TEST_CLIENTS.find((c) => c.accessTokenFormat === 'opaque')!;

  beforeAll(async () => {
    redis = await RedisServer.start();
    admin = new Redis(redis.url, { lazyConnect: true, maxRetriesPerRequest: 1 });
    admin.on('error', () => undefined);
    await admin.connect();
    idp = await TestIssuer.start({ audience: AUDIENCE });
    as = await startCountingAuthServer({ audience: AUDIENCE, ttl: 2 }); // tokens live 2 s
    for (let i = 0; i < 2; i++) {
      instances.push(
        await idp.startApp({
          platform,
          controllers: [OpsController],
          auth: {
            issuer: as.issuer,
            jwksUri: as.dev.jwksUri,
            // A maximum far beyond the token's life: the entry must still end at its exp.
            introspection: {
              endpoint: as.introspectionUrl,
              clientId: TEST_INTROSPECTOR.clientId,
              clientSecret: TEST_INTROSPECTOR.clientSecret,
              cacheMaxTtl: 3600,
            },
            store: { redis: { url: redis.url } },
          },
        }),
      );
    }
  });
  let stranger: TestApp;
  afterAll(async () => {
    await stranger?.close();
    await idp?.close();
    await as?.close();
    admin?.disconnect();
    await redis?.stop();
  });

  it('another agent given the same keyPrefix reads the cached answer but still checks the audience: no cross-agent acceptance', async () => {
    stranger = await startTestApp({
      platform,
      controllers: [OpsController],
      auth: {
        issuer: as.issuer,
        jwksUri: as.dev.jwksUri,
        audience: 'https://other.test/agent',
        introspection: { endpoint: as.introspectionUrl, clientId: TEST_INTROSPECTOR.clientId, clientSecret: TEST_INTROSPECTOR.clientSecret },
        store: { redis: { url: redis.url }, keyPrefix: 'a2a:agent.test/expenses:' }, // the first agent's default prefix
      },
    });
    const token = (
      await new ClientCredentialsTokenProvider({
        tokenUrl: as.dev.tokenUrl,
        clientId: OPAQUE.clientId,
        clientSecret: OPAQUE.clientSecret,
        scopes: ['expense:read'],
      }).getToken()
    ).accessToken;
    expect((await request(instances[0].url).get('/ops/read').set('Authorization', `Bearer ${token}`)).status).toBe(200);
    expect(await admin.keys('a2a:agent.test/expenses:introspection:*')).toHaveLength(1);
    const before = as.introspectionRequests;
    const r = await request(stranger.url).get('/ops/read').set('Authorization', `Bearer ${token}`);
    expect([r.status, r.body]).toStrictEqual([401, { error: 'invalid_token', error_description: 'The access token is invalid' }]);
    expect(r.headers['www-authenticate']).toMatch(/^Bearer .*error="invalid_token"/);
    expect(as.introspectionRequests - before).toBe(0); // it used the shared answer, and refused it for its audience
  });

  it('its shared entry ends at the token’s exp, and after exp no instance accepts it (the endpoint is asked again)', async () => {
    const token = (
      await new ClientCredentialsTokenProvider({
        tokenUrl: as.dev.tokenUrl,
        clientId: OPAQUE.clientId,
        clientSecret: OPAQUE.clientSecret,
        scopes: ['expense:read'],
      }).getToken()
    ).accessToken;
    const r0 = await request(instances[0].url).get('/ops/read').set('Authorization', `Bearer ${token}`);
    expect([r0.status, r0.body]).toStrictEqual([200, { clientId: OPAQUE.clientId }]);
    const [key] = await admin.keys('*introspection*');
    const { claims } = JSON.parse((await admin.get(key))!) as { claims: { exp: number } };
    const pttl = await admin.pttl(key);
    expect(pttl).toBeGreaterThan(0);
    expect(Date.now() + pttl).toBeLessThanOrEqual(claims.exp * 1000 + 50);
    expect((await request(instances[1].url).get('/ops/read').set('Authorization', `Bearer ${token}`)).status).toBe(200);
    const before = as.introspectionRequests;
    await new Promise((r) => setTimeout(r, Math.max(0, claims.exp * 1000 - Date.now()) + 300));
    for (const app of instances) {
      const r = await request(app.url).get('/ops/read').set('Authorization', `Bearer ${token}`);
      expect([r.status, r.body]).toStrictEqual([401, { error: 'invalid_token', error_description: 'The access token is invalid' }]);
    }
    expect(as.introspectionRequests - before).toBe(1); // asked again once, the inactive answer then shared
  });
});

describe('store.timeoutMs beyond what a timer can wait', () => {
  const base = { issuer: 'https://issuer.test', jwksUri: 'https://issuer.test/jwks', audience: AUDIENCE };

  it('is refused at boot (a larger delay would make every store operation time out at once: DPoP always 503)', () => {
    for (const timeoutMs of [3_000_000_000, 2 ** 31, Infinity]) {
      expect(() => resolveOptions({ ...base, store: { timeoutMs } } as A2AAuthModuleOptions)).toThrow(A2AAuthConfigError);
    }
    expect(resolveOptions({ ...base, store: { timeoutMs: 60_000 } } as A2AAuthModuleOptions).store.timeoutMs).toBe(60_000);
  });
});

async function startCardApp(platform: Platform, port: number, auth: A2AAuthModuleOptions, logger = new CapturingLogger()): Promise<INestApplication> {
  @Module({
    imports: [A2AAuthModule.forRoot(auth)],
    controllers: [...CARD_CONTROLLERS, A2AJsonRpcController],
    providers: [...CARD_PROVIDERS, A2ASkillAuthorizer, replyingTransport('ok')],
  })
  class BreakCardModule {}
  const adapter = platform === 'express' ? new ExpressAdapter() : new FastifyAdapter();
  const app = await NestFactory.create(BreakCardModule, adapter as never, { logger, abortOnError: false });
  await app.listen(port, '127.0.0.1');
  return app;
}

describe.each(PLATFORMS)('per-caller extended card under attack (%s)', (platform) => {
  let jwks: JwksServer;
  let key: TestKey;
  let app: INestApplication;
  let base: string;

  beforeAll(async () => {
    jwks = await new JwksServer().start();
    key = generateTestKey('RS256');
    jwks.keys = [key.publicJwk];
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    app = await startCardApp(
      platform,
      port,
      cardOptions(base, jwks.issuer, jwks.jwksUri, {}, { interfaces: [{ url: '/a2a/jsonrpc', protocolBinding: 'JSONRPC' }] }),
    );
  });
  afterAll(async () => {
    await app?.close();
    await jwks?.stop();
  });

  const token = (clientId: string, scope: string) =>
    mintToken({ key, issuer: jwks.issuer, audience: `${base}/expense-agent`, claims: { scope, client_id: clientId, sub: clientId } });
  const rpc = async (tok: string) =>
    (
      await request(base)
        .post('/a2a/jsonrpc')
        .set('Content-Type', 'application/json')
        .set('A2A-Version', '1.0')
        .set('Authorization', `Bearer ${tok}`)
        .send(JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'GetExtendedAgentCard' }))
    ).body.result as AgentCardJson;

  it('an HTTP+JSON interface away from card.url, where SDK clients would not find /extendedAgentCard, is warned about at boot', async () => {
    const logger = new CapturingLogger();
    const port = await freePort();
    const other = `http://127.0.0.1:${port}`;
    // The fixture's default interfaces: JSON-RPC at /a2a/jsonrpc, HTTP+JSON at /a2a/rest (the SDK would GET /a2a/rest/extendedAgentCard).
    const misplaced = await startCardApp(platform, port, cardOptions(other, jwks.issuer, jwks.jwksUri), logger);
    try {
      const reader = await mintToken({
        key,
        issuer: jwks.issuer,
        audience: `${other}/expense-agent`,
        claims: { scope: 'expense:read', client_id: 'r', sub: 'r' },
      });
      expect((await request(other).get('/a2a/rest/extendedAgentCard').set('Authorization', `Bearer ${reader}`)).status).toBe(404);
      expect((await request(other).get('/extendedAgentCard').set('Authorization', `Bearer ${reader}`)).status).toBe(200);
    } finally {
      await misplaced.close();
    }
    const warned = logger.lines.filter((l) => l.includes('card.extendedCard: the HTTP+JSON interface'));
    expect(warned).toStrictEqual([
      `warn card.extendedCard: the HTTP+JSON interface ${other}/a2a/rest is not at card.url, so HTTP+JSON clients will ask ${other}/a2a/rest/extendedAgentCard ` +
        'while the library serves the extended card at /extendedAgentCard of this app: route that path to it, or serve the HTTP+JSON binding at card.url A2AAgentCard',
    ]);
  });

  it('validators never cross callers: another variant’s ETag in If-None-Match gets the caller’s own card (200, private, no-store)', async () => {
    const auditor = await token('auditor-co', 'expense:read expense:audit');
    const reader = await token('reader-co', 'expense:read');
    const a = await request(base).get('/extendedAgentCard').set('Authorization', `Bearer ${auditor}`);
    const r = await request(base).get('/extendedAgentCard').set('Authorization', `Bearer ${reader}`).set('If-None-Match', a.headers.etag);
    expect([a.status, r.status]).toStrictEqual([200, 200]);
    expect(r.headers.etag).not.toBe(a.headers.etag);
    expect(r.headers['cache-control']).toBe('private, no-store');
    expect((r.body.skills as Array<{ id: string }>).some((sk) => sk.id === 'audit-report')).toBe(false);
    expect((a.body.skills as Array<{ id: string }>).some((sk) => sk.id === 'audit-report')).toBe(true);
    // The public card stays the public card whatever token comes along, and never lists the extendedOnly skill.
    const pub = await request(base).get('/.well-known/agent-card.json').set('Authorization', `Bearer ${auditor}`);
    expect(pub.status).toBe(200);
    expect(pub.headers['cache-control']).toMatch(/^public, max-age=/);
    expect((pub.body.skills as Array<{ id: string }>).some((sk) => sk.id === 'audit-report')).toBe(false);
  });

  it('huge, random or malformed scope claims do not grow the variant cache or reach the card', async () => {
    const cards = app.get(AgentCardService) as unknown as { variants: Map<string, unknown> };
    const skillIds = new Set<string>();
    for (let i = 0; i < 40; i++) {
      const junk = Array.from({ length: 80 }, () => randomUUID()).join(' '); // ~3 KB of scopes nobody defined
      const tok = await token(`c${i}`, i % 2 ? `expense:read ${junk}` : `${junk} expense:audit expense:read`);
      const h = await request(base).get('/extendedAgentCard').set('Authorization', `Bearer ${tok}`);
      expect(h.status).toBe(200);
      expect(h.text).not.toContain(junk.slice(0, 36));
      for (const sk of h.body.skills as Array<{ id: string }>) skillIds.add(sk.id);
    }
    expect(cards.variants.size).toBeLessThanOrEqual(1); // the full variant is kept apart; one more: the reader's
    expect(skillIds.has('audit-report')).toBe(true);
    // Claims that are not scope strings grant nothing (entries of an array that are not strings are ignored): still a card.
    for (const [scope, audit] of [
      [{ a: 1 }, false],
      [42, false],
      ['', false],
      [['expense:audit', { x: 1 }], true],
    ] as Array<[unknown, boolean]>) {
      const tok = await mintToken({ key, issuer: jwks.issuer, audience: `${base}/expense-agent`, claims: { scope, client_id: 'odd', sub: 'odd' } });
      const h = await request(base).get('/extendedAgentCard').set('Authorization', `Bearer ${tok}`);
      expect(h.status).toBe(200);
      expect((h.body.skills as Array<{ id: string }>).some((sk) => sk.id === 'audit-report')).toBe(audit);
    }
  });

  it('a card handed out by AgentCardService cannot be changed for the next caller (JSON-RPC and HTTP stay the same)', async () => {
    const reader = await token('reader-co', 'expense:read');
    const http = await request(base).get('/extendedAgentCard').set('Authorization', `Bearer ${reader}`);
    expect(http.status).toBe(200);
    expect(await rpc(reader)).toStrictEqual(http.body);
    // App code that decorates the card it was given (e.g. in its own controller) must work on its own copy.
    const cards = app.get(AgentCardService);
    const caller = { clientId: 'someone', subject: 'someone', issuer: jwks.issuer, scopes: ['expense:read'], claims: {} } as unknown as A2ACaller;
    const given = await cards.extendedCardFor(caller);
    try {
      given.description = 'changed by app code';
      (given.skills as unknown[]).length = 0;
    } catch {
      // frozen: fine
    }
    const again = await rpc(reader);
    expect(again).toStrictEqual(http.body);
    expect((await request(base).get('/extendedAgentCard').set('Authorization', `Bearer ${reader}`)).body).toStrictEqual(http.body);
  });
});
