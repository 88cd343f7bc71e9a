import { randomUUID } from 'node:crypto';
import { Injectable } from '@nestjs/common';
import request from 'supertest';
import { Role, type Message } from '@a2a-js/sdk';
import { AgentEvent, type AgentExecutor, type ExecutionEventBus, type RequestContext } from '@a2a-js/sdk/server';
import {
  A2AHttpTransport,
  A2ASkillAuthorizer,
  AgentCardService,
  AgentSkill,
  ClientRateLimit,
  RequireScopes,
  authorizedSkillOf,
  createA2ARequestHandler,
  type AuthAuditEvent,
} from 'nestjs-a2a-auth';
import { A2AJsonRpcController, A2ARestController } from '../apps/expense-agent/src/a2a/a2a.controllers';
import { TestIssuer } from './fixtures/auth-harness';
import { RedisServer } from './fixtures/redis-server';
import { CapturingLogger, PLATFORMS, type TestApp } from './fixtures/test-app';

// Per-skill limits inside A2A messages: a skill handler's @ClientRateLimit() counts the SendMessage /
// SendStreamingMessage calls (JSON-RPC) and POST /message:send|stream (HTTP+JSON) that name the skill, per verified
// client, across two real instances sharing one real Redis, on express and fastify. A2A v1.0 defines no rate-limit
// error (§3.3.2, §5.4, §9.5 list none; §13.4 only asks for "appropriate error responses"), so both bindings answer as
// the guard does for a route limit: HTTP 429, Retry-After, the `rate_limited` JSON body.

const AUDIENCE = 'http://127.0.0.1/quota-agent';
const LIMITED = {
  error: 'rate_limited',
  error_description: 'Too many requests from this client; retry later',
};

/** Two skills on a provider: `report` has its own limit (2 a minute per client), `ping` none. */
@Injectable()
class QuotaSkills {
  @AgentSkill({ id: 'report', name: 'Report', description: 'Builds a costly report' })
  @RequireScopes('quota:use')
  @ClientRateLimit({ limit: 2, ttl: 60 })
  report() {
    return undefined;
  }

  @AgentSkill({ id: 'ping', name: 'Ping', description: 'Answers at once' })
  @RequireScopes('quota:use')
  ping() {
    return undefined;
  }
}

/** Replies with the authorized skill's id. */
const executor: AgentExecutor = {
  execute: async (ctx: RequestContext, bus: ExecutionEventBus) => {
    const m: Message = {
      messageId: randomUUID(),
      contextId: ctx.contextId,
      taskId: '',
      role: Role.ROLE_AGENT,
      parts: [{ content: { $case: 'text', value: `ran ${authorizedSkillOf(ctx.context)?.skillId}` }, metadata: undefined, filename: '', mediaType: '' }],
      metadata: undefined,
      extensions: [],
      referenceTaskIds: [],
    };
    bus.publish(AgentEvent.message(m));
    bus.finished();
  },
  cancelTask: async () => undefined,
};

const transportProvider = {
  provide: A2AHttpTransport,
  useFactory: (cards: AgentCardService, authz: A2ASkillAuthorizer) => new A2AHttpTransport(() => createA2ARequestHandler(cards, executor), authz),
  inject: [AgentCardService, A2ASkillAuthorizer],
};

function expectLimited(r: request.Response): void {
  expect(r.status).toBe(429);
  expect(r.headers['retry-after']).toMatch(/^[1-9]\d*$/);
  expect(Number(r.headers['retry-after'])).toBeLessThanOrEqual(60);
  expect(r.headers['cache-control']).toBe('no-store');
  expect(r.headers['www-authenticate']).toBeUndefined();
  expect(r.headers['content-type']).toMatch(/^application\/json/);
  expect(r.body).toStrictEqual(LIMITED);
}

describe.each(PLATFORMS)('per-skill @ClientRateLimit inside A2A messages, two instances on one Redis (%s)', (platform) => {
  let redis: RedisServer;
  let idp: TestIssuer;
  const apps: TestApp[] = [];
  const events: AuthAuditEvent[] = [];
  const logger = new CapturingLogger();

  beforeAll(async () => {
    redis = await RedisServer.start();
    idp = await TestIssuer.start({ audience: AUDIENCE });
    for (let i = 0; i < 2; i++) {
      apps.push(
        await idp.startApp({
          platform,
          logger,
          controllers: [A2AJsonRpcController, A2ARestController],
          providers: [QuotaSkills, A2ASkillAuthorizer, transportProvider],
          auth: {
            scopes: { 'quota:use': 'Use the quota agent' },
            tokenUrl: `${idp.issuer}/token`,
            card: {
              name: 'Quota Agent',
              description: 'quota',
              url: AUDIENCE,
              capabilities: { streaming: true },
              interfaces: [
                { url: '/a2a/jsonrpc', protocolBinding: 'JSONRPC' as const },
                { url: '/', protocolBinding: 'HTTP+JSON' as const },
              ],
            },
            store: { redis: { url: redis.url } },
            auditSink: { wantsSuccesses: true, emit: (e) => events.push(e) },
          },
        }),
      );
    }
  });
  afterAll(async () => {
    await idp?.close();
    await redis?.stop();
  });
  beforeEach(() => {
    events.length = 0;
  });

  const token = (clientId: string) => idp.mint({ claims: { client_id: clientId, sub: clientId, scope: 'quota:use' } });
  const params = (skillId: string) => ({ message: { messageId: randomUUID(), role: 'ROLE_USER', parts: [{ text: 'go' }], metadata: { skillId } } });
  const post = (i: number, path: string, body: unknown, tok: string) =>
    request(apps[i].url)
      .post(path)
      .set('Content-Type', 'application/json')
      .set('A2A-Version', '1.0')
      .set('Authorization', `Bearer ${tok}`)
      .send(JSON.stringify(body));
  const rpc = (i: number, tok: string, skillId: string, method = 'SendMessage') =>
    post(i, '/a2a/jsonrpc', { jsonrpc: '2.0', id: 7, method, params: params(skillId) }, tok);
  const rest = (i: number, tok: string, skillId: string, action = 'send') => post(i, `/message:${action}`, params(skillId), tok);

  it('the third message to the limited skill within a minute is 429 on either binding and instance; other skills and clients are not counted', async () => {
    const a = await token('quota-a');
    const r1 = await rpc(0, a, 'report');
    expect([r1.status, r1.body.result?.message?.parts?.[0]?.text]).toStrictEqual([200, 'ran report']);
    const r2 = await rest(1, a, 'report');
    expect([r2.status, r2.body.message?.parts?.[0]?.text]).toStrictEqual([200, 'ran report']);
    expectLimited(await rpc(1, a, 'report'));
    expectLimited(await rest(0, a, 'report'));
    expectLimited(await rpc(0, a, 'report', 'SendStreamingMessage'));
    expectLimited(await rest(1, a, 'report', 'stream'));
    // The unlimited skill and another client are untouched.
    for (let i = 0; i < 3; i++) expect((await rpc(i % 2, a, 'ping')).body.result?.message?.parts?.[0]?.text).toBe('ran ping');
    const b = await token('quota-b');
    expect((await rest(0, b, 'report')).status).toBe(200);

    // One audit event per call: success, or the failure `rate_limited` naming the skill (no success before it).
    const forA = events.filter((e) => e.clientId === 'quota-a' && e.skillId === 'report');
    expect(forA.map((e) => [e.outcome, e.reason, e.status])).toStrictEqual([
      ['success', 'ok', 200],
      ['success', 'ok', 200],
      ['failure', 'rate_limited', 429],
      ['failure', 'rate_limited', 429],
      ['failure', 'rate_limited', 429],
      ['failure', 'rate_limited', 429],
    ]);
    expect(forA[2]).toMatchObject({ verified: true, requiredScopes: ['quota:use'] });
    expect(logger.lines.join('\n')).not.toContain(a);
  });

  it('a paused Redis: skill limits fail open (the message runs, within the 200 ms store timeout), and counting resumes once it is back', async () => {
    const d = await token('quota-d');
    process.kill(redis.pid, 'SIGSTOP');
    try {
      const t = Date.now();
      for (let i = 0; i < 4; i++) expect((await rpc(i % 2, d, 'report')).status).toBe(200);
      expect(Date.now() - t).toBeLessThan(4 * 1500);
      expect(logger.lines.some((l) => l.includes('a2a.store.rate_limit_unavailable'))).toBe(true);
    } finally {
      process.kill(redis.pid, 'SIGCONT');
    }
    // The commands sent while it was paused still run when it resumes (they only timed out here), so quota-d may be
    // over its budget now; a fresh client shows the counting is back.
    const e = await token('quota-e');
    expect((await rpc(0, e, 'report')).status).toBe(200);
    expect((await rest(1, e, 'report')).status).toBe(200);
    expectLimited(await rest(0, e, 'report'));
  });

  it('naming the skill in request-level metadata (or in both places) counts against the same budget: no way around the limit', async () => {
    const f = await token('quota-f');
    const requestLevel = (skillId: string) => ({ message: { messageId: randomUUID(), role: 'ROLE_USER', parts: [{ text: 'go' }] }, metadata: { skillId } });
    const r1 = await post(0, '/a2a/jsonrpc', { jsonrpc: '2.0', id: 1, method: 'SendMessage', params: requestLevel('report') }, f);
    expect([r1.status, r1.body.result?.message?.parts?.[0]?.text]).toStrictEqual([200, 'ran report']);
    const both = { ...params('report'), metadata: { skillId: 'report' } };
    const r2 = await post(1, '/message:send', both, f);
    expect([r2.status, r2.body.message?.parts?.[0]?.text]).toStrictEqual([200, 'ran report']);
    expectLimited(await post(0, '/message:stream', requestLevel('report'), f));
    expectLimited(await post(1, '/a2a/jsonrpc', { jsonrpc: '2.0', id: 2, method: 'SendStreamingMessage', params: both }, f));
    // Naming another skill at the request level than in the message is refused, not a way to pick the cheaper limit.
    const conflict = await post(
      0,
      '/a2a/jsonrpc',
      { jsonrpc: '2.0', id: 3, method: 'SendMessage', params: { ...params('report'), metadata: { skillId: 'ping' } } },
      f,
    );
    expect(conflict.status).toBe(200);
    expect(conflict.body.error?.code).toBe(-32602);
  });

  it('a refusal for scopes comes first and is not counted: 403 for a token without quota:use, the budget is unchanged', async () => {
    const c = await token('quota-c');
    const noScope = await idp.mint({ claims: { client_id: 'quota-c', sub: 'quota-c', scope: 'other' } });
    for (let i = 0; i < 3; i++) expect((await rpc(i % 2, noScope, 'report')).status).toBe(403);
    expect((await rpc(0, c, 'report')).status).toBe(200);
    expect((await rest(1, c, 'report')).status).toBe(200);
    expectLimited(await rest(0, c, 'report'));
  });
});
