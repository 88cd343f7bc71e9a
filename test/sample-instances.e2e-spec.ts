import { randomUUID } from 'node:crypto';
import { SendMessageRequest, type Message, type Task } from '@a2a-js/sdk';
import { ClientFactory, ClientFactoryOptions, JsonRpcTransportFactory, RestTransportFactory } from '@a2a-js/sdk/client';
import Redis from 'ioredis';
import request from 'supertest';
import { bootstrap, devAuthEnv, startSampleDevAuthServer, startupBanner, type Platform, type RunningAgent } from '../apps/expense-agent/src/main';
import type { DevAuthServer } from '../apps/expense-agent/src/dev-auth-server';
import { DEV_CLIENT_DEFAULTS } from '../apps/expense-agent/src/dev-clients';
import { RedisServer } from './fixtures/redis-server';
import { CapturingLogger } from './fixtures/test-app';
import { mintProof, proofKey, type ProofKey } from './dpop-helpers';

// Three instances OF THE SAMPLE (bootstrap(), as `npm start` runs it) behind one address, sharing one real
// redis-server and one embedded dev authorization server (oidc-provider). Mixed platforms: instances 0 and 2 run on
// express, instance 1 on fastify, so every assertion below crosses express and fastify.
//
// The load balancer is played by the test: each request goes to one instance's port with `Host` set to the public
// address (as a proxy that forwards Host does), so the card URL, the audience, the DPoP htu and the Redis key prefix
// all come from the one PUBLIC_URL.

const PUBLIC_URL = 'http://expenses.lb.test';
const LB_HOST = 'expenses.lb.test';
const PLATFORMS_OF_INSTANCES: Platform[] = ['express', 'fastify', 'express'];
/** `A2A_CLIENT_RATE_LIMIT` of the instances: 20 requests per 60 s per client. */
const CLIENT_LIMIT = { limit: 20, ttl: 60 };
/** The sample sets no `card.throttle`: the library's default, 60 requests per 60 s per client address. */
const CARD_LIMIT = 60;
const RM = `${PUBLIC_URL}/.well-known/oauth-protected-resource`;
const BEARER = `Bearer realm="Expense Reimbursement Agent", resource_metadata="${RM}"`;
const DPOP = `DPoP realm="Expense Reimbursement Agent", resource_metadata="${RM}", algs="ES256 PS256 RS256 EdDSA"`;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;
const EXPENSE = { amount: 42.5, currency: 'EUR', description: 'Taxi to the airport' };

describe('three instances of the sample on one Redis (express, fastify, express)', () => {
  let redis: RedisServer;
  let admin: Redis;
  let devAuth: DevAuthServer;
  let pk: ProofKey;
  const agents: RunningAgent[] = [];
  const logger = new CapturingLogger();
  const banners: string[] = [];
  const tokens: string[] = [];

  beforeAll(async () => {
    redis = await RedisServer.start();
    admin = new Redis(redis.url, { lazyConnect: true, maxRetriesPerRequest: 1 });
    admin.on('error', () => undefined);
    await admin.connect();
    const env = { NODE_ENV: 'test', PUBLIC_URL };
    // One dev authorization server for all: each bootstrap() without A2A_ISSUER would start its own.
    devAuth = await startSampleDevAuthServer(env, PUBLIC_URL);
    const shared = {
      ...env,
      ...devAuthEnv(devAuth, env),
      A2A_REDIS_URL: redis.url,
      A2A_CLIENT_RATE_LIMIT: `${CLIENT_LIMIT.limit}/${CLIENT_LIMIT.ttl}`,
    };
    for (const platform of PLATFORMS_OF_INSTANCES) {
      agents.push(await bootstrap({ platform, port: 0, env: shared, logger, banner: (t) => banners.push(t) }));
    }
    pk = await proofKey('ES256');
  }, 60_000);

  afterAll(async () => {
    for (const a of agents) await a.close();
    await devAuth?.close();
    admin?.disconnect();
    await redis?.stop();
  });

  beforeEach(async () => {
    await admin.flushall(); // every case starts with fresh counters
  });

  /** The i-th request goes to instance i mod 3, as behind a round-robin load balancer that forwards Host. */
  const at = (i: number) => {
    const base = agents[i % agents.length].url;
    const hosted = (t: request.Test) => t.set('Host', LB_HOST);
    return {
      get: (path: string) => hosted(request(base).get(path)),
      post: (path: string) => hosted(request(base).post(path)),
    };
  };

  /** A client_credentials token of the dev server (RFC 6749 §4.4), optionally DPoP-bound with a proof (RFC 9449 §5). */
  async function token(c: { clientId: string; clientSecret: string; scopes: string[] }, dpop?: ProofKey): Promise<string> {
    const req = request(devAuth.issuer).post('/token').auth(c.clientId, c.clientSecret).type('form');
    if (dpop) req.set('DPoP', mintProof(dpop, { htm: 'POST', htu: devAuth.tokenUrl }));
    const res = await req.send({ grant_type: 'client_credentials', scope: c.scopes.join(' ') });
    expect(res.status).toBe(200);
    expect(res.body.token_type).toBe(dpop ? 'DPoP' : 'Bearer');
    tokens.push(res.body.access_token as string);
    return res.body.access_token as string;
  }

  function expectLimited(res: request.Response, body: { error: string; error_description: string }): void {
    expect(res.status).toBe(429);
    expect(res.headers['retry-after']).toMatch(/^[1-9]\d*$/);
    expect(Number(res.headers['retry-after'])).toBeLessThanOrEqual(60);
    expect(res.headers['www-authenticate']).toBeUndefined();
    expect(res.headers['content-type']).toMatch(/^application\/json/);
    expect(res.body).toStrictEqual(body);
  }

  it('every instance says in its banner that the state is shared in Redis, and names the per-client limit', () => {
    expect(banners).toHaveLength(3);
    for (const b of banners) {
      expect(b).toContain(`\n  State          shared in Redis ${redis.url}, keys a2a:${LB_HOST}:*  (rate limits, DPoP replays, introspection cache)\n`);
      expect(b).toContain('\n  Client limit   20 requests per 60 s per client  (A2A_CLIENT_RATE_LIMIT)\n');
      expect(b).toContain(`  Agent Card     ${PUBLIC_URL}/.well-known/agent-card.json`);
    }
  });

  it(`(a) the card limit (${CARD_LIMIT} a minute per address) holds in total across the instances`, async () => {
    const statuses: number[] = [];
    for (let i = 0; i < CARD_LIMIT; i++) statuses.push((await at(i).get('/.well-known/agent-card.json')).status);
    expect(statuses).toStrictEqual(Array(CARD_LIMIT).fill(200));
    for (let i = CARD_LIMIT; i < CARD_LIMIT + 3; i++) {
      const res = await at(i).get('/.well-known/agent-card.json');
      expectLimited(res, { error: 'rate_limited', error_description: 'Too many requests for this document; retry later' });
      expect(res.headers['access-control-allow-origin']).toBe('*');
    }
    expect((await admin.keys('*')).every((k) => k.startsWith(`{a2a:${LB_HOST}:card:`))).toBe(true);
  }, 60_000);

  it(`(b) A2A_CLIENT_RATE_LIMIT=${CLIENT_LIMIT.limit}/${CLIENT_LIMIT.ttl} holds in total: request ${CLIENT_LIMIT.limit + 1} of a client is 429 at every instance`, async () => {
    const sub = await token(DEV_CLIENT_DEFAULTS.submitter);
    const statuses: number[] = [];
    for (let i = 0; i < CLIENT_LIMIT.limit; i++) statuses.push((await at(i).get('/expenses').set('Authorization', `Bearer ${sub}`)).status);
    expect(statuses).toStrictEqual(Array(CLIENT_LIMIT.limit).fill(200));
    for (let i = 0; i < 3; i++) {
      const res = await at(i).get('/expenses').set('Authorization', `Bearer ${sub}`);
      expectLimited(res, { error: 'rate_limited', error_description: 'Too many requests from this client; retry later' });
      expect(res.headers['cache-control']).toBe('no-store');
    }
    // Another client has its own budget, at any instance.
    const appr = await token(DEV_CLIENT_DEFAULTS.approver);
    const other = await at(1).get('/expenses').set('Authorization', `Bearer ${appr}`);
    expect(other.status).toBe(200);
    expect(other.body).toStrictEqual({ expenses: expect.any(Array) });
  });

  it('(c) a DPoP proof accepted by one instance is refused at another: 401 with the DPoP replay challenge', async () => {
    const dpopToken = await token(DEV_CLIENT_DEFAULTS.dpop, pk);
    const htu = `${PUBLIC_URL}/expenses`;
    for (const [first, second] of [
      [0, 1], // express → fastify
      [1, 2], // fastify → express
    ]) {
      const proof = mintProof(pk, { htm: 'POST', htu, token: dpopToken });
      const ok = await at(first).post('/expenses').set('Authorization', `DPoP ${dpopToken}`).set('DPoP', proof).send(EXPENSE);
      expect(ok.status).toBe(201);
      expect(ok.headers['www-authenticate']).toBeUndefined();
      expect(ok.body).toStrictEqual({
        id: expect.stringMatching(UUID),
        ...EXPENSE,
        status: 'submitted',
        submittedBy: 'expense-dpop',
        submittedAt: expect.stringMatching(ISO),
      });
      const replay = await at(second).post('/expenses').set('Authorization', `DPoP ${dpopToken}`).set('DPoP', proof).send(EXPENSE);
      expect(replay.status).toBe(401);
      expect(replay.headers['www-authenticate']).toBe(`${BEARER}, ${DPOP}, error="invalid_dpop_proof", error_description="The DPoP proof was already used"`);
      expect(replay.headers['content-type']).toMatch(/^application\/json/);
      expect(replay.body).toStrictEqual({ error: 'invalid_dpop_proof', error_description: 'The DPoP proof was already used' });
    }
    // Only the jti is kept, under the prefix of PUBLIC_URL (never the proof or the token).
    const keys = await admin.keys('*dpop*');
    expect(keys).toHaveLength(2);
    for (const k of keys) expect(k).toMatch(new RegExp(`^a2a:${LB_HOST.replace(/\./g, '\\.')}:dpop:${pk.jkt}:[0-9a-f-]{36}$`));
    // The replayed submissions never ran: instance 1 holds only its own accepted one, instance 2 none.
    const reader = await token(DEV_CLIENT_DEFAULTS.dpop, pk);
    const list = async (i: number) =>
      (
        await at(i)
          .get('/expenses')
          .set('Authorization', `DPoP ${reader}`)
          .set('DPoP', mintProof(pk, { htm: 'GET', htu, token: reader }))
      ).body.expenses as Array<{ submittedBy: string }>;
    expect((await list(1)).filter((e) => e.submittedBy === 'expense-dpop')).toHaveLength(1);
    expect((await list(2)).filter((e) => e.submittedBy === 'expense-dpop')).toHaveLength(0);
    // A fresh proof passes at any instance.
    const fresh = await at(2)
      .post('/expenses')
      .set('Authorization', `DPoP ${dpopToken}`)
      .set('DPoP', mintProof(pk, { htm: 'POST', htu, token: dpopToken }))
      .send(EXPENSE);
    expect(fresh.status).toBe(201);
  });

  it('(d) nothing else changes: REST calls and an A2A SendMessage (JSON-RPC and HTTP+JSON) work at each instance', async () => {
    const sub = await token(DEV_CLIENT_DEFAULTS.submitter);
    const appr = await token(DEV_CLIENT_DEFAULTS.approver);
    for (let i = 0; i < 3; i++) {
      // REST, as with one instance: 201, 403 insufficient_scope, 200 approve, 401 without a token.
      const created = await at(i).post('/expenses').set('Authorization', `Bearer ${sub}`).send(EXPENSE);
      expect(created.status).toBe(201);
      expect(created.body).toStrictEqual({
        id: expect.stringMatching(UUID),
        ...EXPENSE,
        status: 'submitted',
        submittedBy: 'expense-submitter',
        submittedAt: expect.stringMatching(ISO),
      });
      const id = created.body.id as string;
      const denied = await at(i).post(`/expenses/${id}/approve`).set('Authorization', `Bearer ${sub}`);
      expect(denied.status).toBe(403);
      expect(denied.headers['www-authenticate']).toBe(
        `${BEARER}, error="insufficient_scope", error_description="The access token lacks a required scope", scope="expense:approve", ${DPOP}`,
      );
      const approved = await at(i).post(`/expenses/${id}/approve`).set('Authorization', `Bearer ${appr}`);
      expect(approved.status).toBe(200);
      expect(approved.body).toMatchObject({ id, status: 'approved', approvedBy: 'expense-approver' });
      const anon = await at(i).get('/expenses');
      expect(anon.status).toBe(401);
      expect(anon.headers['www-authenticate']).toBe(`${BEARER}, ${DPOP}`);
      expect(anon.body).toStrictEqual({
        error: 'invalid_request',
        error_description: 'Authentication required: send an OAuth 2.0 bearer token in the Authorization header',
      });

      // A2A through the official SDK client: the card names PUBLIC_URL; the "load balancer" sends it to instance i.
      for (const binding of ['JSONRPC', 'HTTP+JSON'] as const) {
        const fetchImpl: typeof fetch = (input, init) => {
          const url = String(input instanceof Request ? input.url : input).replace(PUBLIC_URL, agents[i].url);
          const headers = new Headers(init?.headers);
          headers.set('Authorization', `Bearer ${sub}`);
          return fetch(url, { ...init, headers });
        };
        const client = await new ClientFactory(
          ClientFactoryOptions.createFrom(ClientFactoryOptions.default, {
            transports: [new JsonRpcTransportFactory({ fetchImpl }), new RestTransportFactory({ fetchImpl })],
            preferredTransports: [binding],
          }),
        ).createFromUrl(`${agents[i].url}/`);
        expect(client.transport.protocolName).toBe(binding);
        const r: Message | Task = await client.sendMessage(
          SendMessageRequest.fromJSON({ message: { messageId: randomUUID(), role: 'ROLE_USER', parts: [{ text: 'list' }] } }),
        );
        expect('messageId' in r).toBe(true);
        const c = (r as Message).parts[0].content;
        expect(c?.$case).toBe('data');
        const listed = (c as { value: { expenses: Array<{ id: string }> } }).value.expenses;
        // Expenses live in each instance's memory (the sample's store is not shared): this instance's own is listed.
        expect(listed.map((e) => e.id)).toContain(id);
      }
    }
  }, 60_000);

  it('never logs a token or a secret', () => {
    const logged = logger.lines.join('\n') + banners.join('\n');
    for (const t of tokens) expect(logged).not.toContain(t);
    expect(logged).not.toMatch(/eyJ|introspection-secret|ciba-secret/);
  });
});

describe('without A2A_REDIS_URL each instance keeps its own state (what the Redis store fixes)', () => {
  let devAuth: DevAuthServer;
  const agents: RunningAgent[] = [];
  const banners: string[] = [];

  beforeAll(async () => {
    const env = { NODE_ENV: 'test', PUBLIC_URL };
    devAuth = await startSampleDevAuthServer(env, PUBLIC_URL);
    for (const platform of ['express', 'fastify'] as const) {
      agents.push(await bootstrap({ platform, port: 0, env: { ...env, ...devAuthEnv(devAuth, env) }, logger: false, banner: (t) => banners.push(t) }));
    }
  });
  afterAll(async () => {
    for (const a of agents) await a.close();
    await devAuth?.close();
  });

  it('says so in the banner, and a proof accepted by one instance is accepted again by the other', async () => {
    for (const b of banners) {
      expect(b).toContain('\n  State          per process, in memory  (set A2A_REDIS_URL to share it between instances)\n');
      expect(b).toContain('\n  Client limit   off  (A2A_CLIENT_RATE_LIMIT=<requests>/<seconds>, e.g. 100/60)\n');
    }
    const pk = await proofKey('ES256');
    const c = DEV_CLIENT_DEFAULTS.dpop;
    const res = await request(devAuth.issuer)
      .post('/token')
      .auth(c.clientId, c.clientSecret)
      .type('form')
      .set('DPoP', mintProof(pk, { htm: 'POST', htu: devAuth.tokenUrl }))
      .send({ grant_type: 'client_credentials', scope: c.scopes.join(' ') });
    const t = res.body.access_token as string;
    const proof = mintProof(pk, { htm: 'GET', htu: `${PUBLIC_URL}/expenses`, token: t });
    for (const a of agents) {
      const r = await request(a.url).get('/expenses').set('Host', LB_HOST).set('Authorization', `DPoP ${t}`).set('DPoP', proof);
      expect(r.status).toBe(200);
    }
  });
});

describe('start-up errors and the banner (A2A_REDIS_URL, A2A_STORE_KEY_PREFIX, A2A_CLIENT_RATE_LIMIT)', () => {
  // Refused before the dev authorization server starts, with one message naming the variable.
  it.each([
    [
      { A2A_REDIS_URL: 'http://127.0.0.1:6379' },
      'A2A_REDIS_URL must be a redis:// or rediss:// URL, e.g. redis://127.0.0.1:6379/0, got "http://127.0.0.1:6379"',
    ],
    [{ A2A_REDIS_URL: 'redis://agent:hunter2@' }, 'A2A_REDIS_URL must be a redis:// or rediss:// URL, e.g. redis://127.0.0.1:6379/0, got "***"'],
    [{ A2A_REDIS_URL: 'redis:/agent:hunter2' }, 'A2A_REDIS_URL must be a redis:// or rediss:// URL, e.g. redis://127.0.0.1:6379/0, got "redis:/agent:hunter2"'],
    [{ A2A_STORE_KEY_PREFIX: 'expenses:' }, 'A2A_STORE_KEY_PREFIX needs A2A_REDIS_URL (without Redis the state stays in this process)'],
    [{ A2A_CLIENT_RATE_LIMIT: '100' }, 'A2A_CLIENT_RATE_LIMIT must be <requests>/<seconds> with positive integers, e.g. 100/60, got "100"'],
    [{ A2A_CLIENT_RATE_LIMIT: '0/60' }, 'A2A_CLIENT_RATE_LIMIT must be <requests>/<seconds> with positive integers, e.g. 100/60, got "0/60"'],
    [{ A2A_CLIENT_RATE_LIMIT: '10/0' }, 'A2A_CLIENT_RATE_LIMIT must be <requests>/<seconds> with positive integers, e.g. 100/60, got "10/0"'],
    [{ A2A_CLIENT_RATE_LIMIT: '1.5/60' }, 'A2A_CLIENT_RATE_LIMIT must be <requests>/<seconds> with positive integers, e.g. 100/60, got "1.5/60"'],
  ])('%j → %s', async (vars, message) => {
    await expect(bootstrap({ port: 0, env: { NODE_ENV: 'test', ...vars }, logger: false, banner: false })).rejects.toThrow(new Error(message));
  });

  it('the banner masks the Redis password and names the configured key prefix', () => {
    const banner = startupBanner({
      url: 'http://127.0.0.1:3001',
      publicUrl: PUBLIC_URL,
      platform: 'express',
      env: {
        A2A_ISSUER: 'http://127.0.0.1:9000',
        A2A_REDIS_URL: 'rediss://agent:hunter2@redis.internal:6380/2',
        A2A_STORE_KEY_PREFIX: 'expenses:',
        A2A_CLIENT_RATE_LIMIT: ' 100 / 60 ',
      },
    });
    expect(banner).toContain(
      '\n  State          shared in Redis rediss://agent:***@redis.internal:6380/2, keys expenses:*  (rate limits, DPoP replays, introspection cache)\n',
    );
    expect(banner).toContain('\n  Client limit   100 requests per 60 s per client  (A2A_CLIENT_RATE_LIMIT)\n');
    expect(banner).not.toContain('hunter2');
  });
});
