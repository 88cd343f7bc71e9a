import { randomUUID } from 'node:crypto';
import { Controller, Post } from '@nestjs/common';
import fc from 'fast-check';
import request from 'supertest';
import { Role, type Message } from '@a2a-js/sdk';
import { AgentEvent, STATE_HEADERS_KEY, type AgentExecutor, type ExecutionEventBus, type RequestContext } from '@a2a-js/sdk/server';
import {
  A2AUser,
  A2AHttpTransport,
  A2ASkillAuthorizer,
  AgentCardService,
  AgentSkill,
  RequireScopes,
  a2aCallerOf,
  authorizedSkillOf,
  createA2ARequestHandler,
  skillIdOf,
  A2ASkillResolutionError,
} from 'nestjs-a2a-auth';
import { A2AJsonRpcController, A2ARestController } from '../apps/expense-agent/src/a2a/a2a.controllers';
import { generateTestKey, type TestKey } from './fixtures/keys';
import { JwksServer } from './fixtures/jwks-server';
import { mintToken } from './fixtures/tokens';
import { CapturingLogger, PLATFORMS, startTestApp, type TestApp } from './fixtures/test-app';

const AUD = 'http://127.0.0.1/echo-agent';

/** A single-skill agent: the skill is declared on a provider method reached only through A2A. */
@Controller('echo')
class EchoSkillController {
  @AgentSkill({ id: 'echo', name: 'Echo', description: 'Echoes who called' })
  @RequireScopes('echo:use')
  @Post()
  echo() {
    return { ok: true };
  }
}

/** Replies with what the executor saw: the SDK user, the verified caller, the authorized skill, the state headers. */
const echoExecutor: AgentExecutor = {
  execute: async (ctx: RequestContext, bus: ExecutionEventBus) => {
    const u = ctx.context.user;
    const headers = ctx.context.state.get(STATE_HEADERS_KEY) as Record<string, unknown>;
    const seen = {
      isAuthenticated: u?.isAuthenticated,
      userName: u?.userName,
      caller: { clientId: a2aCallerOf(ctx.context)?.clientId, scopes: a2aCallerOf(ctx.context)?.scopes },
      skillId: authorizedSkillOf(ctx.context)?.skillId,
      authorizationInState: 'authorization' in headers,
      a2aVersion: headers['a2a-version'],
    };
    const m: Message = {
      messageId: randomUUID(),
      contextId: ctx.contextId,
      taskId: '',
      role: Role.ROLE_AGENT,
      parts: [{ content: { $case: 'data', value: seen }, metadata: undefined, filename: '', mediaType: 'application/json' }],
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
  useFactory: (cards: AgentCardService, authz: A2ASkillAuthorizer) => new A2AHttpTransport(() => createA2ARequestHandler(cards, echoExecutor), authz),
  inject: [AgentCardService, A2ASkillAuthorizer],
};

describe('A2AUser.ownerKey (task scoping)', () => {
  const caller = (c: Record<string, unknown>) => ({ issuer: 'https://iss', scopes: [], claims: {}, expiresAt: 0, ...c }) as never;
  it('is issuer + sub (else client_id); a token with neither shares no bucket with anyone', () => {
    expect(new A2AUser(caller({ subject: 's1', clientId: 'c1' })).ownerKey).toBe('https://iss s1');
    expect(new A2AUser(caller({ clientId: 'c1' })).ownerKey).toBe('https://iss c1');
    const a = new A2AUser(caller({})).ownerKey;
    const b = new A2AUser(caller({})).ownerKey;
    expect(a).not.toBe(b);
    expect(a.startsWith('https://iss \u0000unidentified:')).toBe(true);
  });
});

describe('skillIdOf', () => {
  it('reads message-level, then request-level metadata.skillId, and rejects bad or conflicting ids', () => {
    expect(skillIdOf({ message: { metadata: { skillId: 'a' } } })).toBe('a');
    expect(skillIdOf({ message: {}, metadata: { skillId: 'b' } })).toBe('b');
    expect(skillIdOf({ message: { metadata: { skillId: 'a' } }, metadata: { skillId: 'a' } })).toBe('a');
    expect(skillIdOf({ message: { metadata: {} } })).toBeUndefined();
    expect(skillIdOf(null)).toBeUndefined();
    expect(skillIdOf([1])).toBeUndefined();
    for (const bad of [{ message: { metadata: { skillId: 1 } } }, { metadata: { skillId: '' } }, { metadata: { skillId: 'x'.repeat(129) } }]) {
      expect(() => skillIdOf(bad)).toThrow(A2ASkillResolutionError);
    }
    expect(() => skillIdOf({ message: { metadata: { skillId: 'a' } }, metadata: { skillId: 'b' } })).toThrow('name different skills');
  });
});

describe.each(PLATFORMS)('per-skill scopes in A2A calls, single-skill agent on %s', (platform) => {
  let jwks: JwksServer;
  let key: TestKey;
  let t: TestApp;
  let unguarded: TestApp;
  const logger = new CapturingLogger();

  const auth = () => ({
    issuer: jwks.issuer,
    audience: AUD,
    jwksUri: jwks.jwksUri,
    scopes: { 'echo:use': 'Use echo' },
    tokenUrl: `${jwks.url}/token`,
    card: {
      name: 'Echo Agent',
      description: 'echo',
      url: AUD,
      extendedCard: true,
      capabilities: { streaming: true },
      interfaces: [
        { url: '/a2a/jsonrpc', protocolBinding: 'JSONRPC' as const },
        { url: '/', protocolBinding: 'HTTP+JSON' as const },
      ],
    },
  });

  beforeAll(async () => {
    jwks = await new JwksServer().start();
    key = generateTestKey('RS256');
    jwks.keys = [key.publicJwk];
    const controllers = [EchoSkillController, A2AJsonRpcController, A2ARestController];
    const providers = [A2ASkillAuthorizer, transportProvider];
    t = await startTestApp({ platform, auth: auth(), controllers, providers, logger });
    // Same logger: Nest's static Logger is process-wide, the last app's setting wins.
    unguarded = await startTestApp({ platform, auth: auth(), controllers, providers, globalGuard: false, logger });
  });
  afterAll(async () => {
    await t?.close();
    await unguarded?.close();
    await jwks?.stop();
  });

  const token = (scope: string) => mintToken({ key, issuer: jwks.issuer, audience: AUD, claims: { scope } });
  const send = (app: TestApp, path: string, body: unknown, tok?: string) => {
    let r = request(app.url).post(path).set('Content-Type', 'application/json').set('A2A-Version', '1.0');
    if (tok) r = r.set('Authorization', `Bearer ${tok}`);
    return r.send(typeof body === 'string' ? body : JSON.stringify(body));
  };
  const params = (metadata?: Record<string, unknown>) => ({
    message: { messageId: randomUUID(), role: 'ROLE_USER', parts: [{ text: 'hi' }], ...(metadata ? { metadata } : {}) },
  });

  it('a message with no skillId goes to the only skill; the executor sees the verified caller as an authenticated SDK user', async () => {
    const tok = await token('echo:use');
    const want = {
      isAuthenticated: true,
      userName: 'client-a',
      caller: { clientId: 'client-a', scopes: ['echo:use'] },
      skillId: 'echo',
      authorizationInState: false,
      a2aVersion: '1.0',
    };
    const r1 = await send(t, '/a2a/jsonrpc', { jsonrpc: '2.0', id: 1, method: 'SendMessage', params: params() }, tok);
    expect(r1.status).toBe(200);
    expect(r1.body.result.message.parts[0].data).toEqual(want);
    const r2 = await send(t, '/message:send', params({ skillId: 'echo' }), tok);
    expect(r2.status).toBe(200);
    expect(r2.body.message.parts[0].data).toEqual(want);
  });

  it('403 without the skill’s scope, naming it; the audit event carries the skill id', async () => {
    const tok = await token('other');
    for (const r of [
      await send(t, '/a2a/jsonrpc', { jsonrpc: '2.0', id: 1, method: 'SendMessage', params: params() }, tok),
      await send(t, '/message:send', params(), tok),
    ]) {
      expect(r.status).toBe(403);
      expect(r.headers['www-authenticate']).toBe(
        `Bearer realm="Echo Agent", resource_metadata="http://127.0.0.1/.well-known/oauth-protected-resource/echo-agent", error="insufficient_scope", error_description="The access token lacks a required scope", scope="echo:use"`,
      );
      expect(r.body).toEqual({ error: 'insufficient_scope', error_description: 'The access token lacks a required scope', scope: 'echo:use' });
    }
    const events = logger.lines
      .filter((l) => l.includes('"reason":"insufficient_scope"'))
      .map((l) => JSON.parse(l.slice(l.indexOf('{'), l.lastIndexOf('}') + 1)));
    expect(events.length).toBeGreaterThanOrEqual(2);
    expect(events[0]).toMatchObject({
      type: 'a2a.auth',
      outcome: 'failure',
      status: 403,
      skillId: 'echo',
      requiredScopes: ['echo:use'],
      grantedScopes: ['other'],
      clientId: 'client-a',
      verified: true,
    });
  });

  it('fail closed: with no guard in front (globalGuard: false), the transport answers 401 itself', async () => {
    const tok = await token('echo:use');
    for (const r of [
      await send(unguarded, '/a2a/jsonrpc', { jsonrpc: '2.0', id: 1, method: 'SendMessage', params: params() }, tok),
      await send(unguarded, '/message:send', params(), tok),
    ]) {
      expect(r.status).toBe(401);
      expect(r.headers['www-authenticate']).toBe(
        'Bearer realm="Echo Agent", resource_metadata="http://127.0.0.1/.well-known/oauth-protected-resource/echo-agent"',
      );
    }
  });

  it('deeply nested JSON is invalid params (-32602 / 400), never a stack overflow 500 or -32603', async () => {
    const tok = await token('echo:use');
    const deep = JSON.parse('['.repeat(4000) + ']'.repeat(4000));
    const msg = { message: { messageId: 'm', role: 'ROLE_USER', parts: [{ text: 'x' }], metadata: { skillId: 'echo', z: deep } } };
    const rpc = await send(t, '/a2a/jsonrpc', { jsonrpc: '2.0', id: 7, method: 'SendMessage', params: msg }, tok);
    expect(rpc.status).toBe(200);
    expect(rpc.body.id).toBe(7);
    expect(rpc.body.error.code).toBe(-32602);
    expect(rpc.body.error.message).toBe('JSON nested deeper than 64 levels');
    for (const path of ['/message:send', '/message:stream']) {
      const rest = await send(t, path, msg, tok);
      expect(rest.status).toBe(400);
      expect(rest.body.error).toMatchObject({ code: 400, status: 'INVALID_ARGUMENT', message: 'JSON nested deeper than 64 levels' });
    }
  });

  it('no input yields a 5xx or a -32603: random JSON bodies on both bindings (bounded: 60 runs)', async () => {
    const tok = await token('echo:use');
    const bodies = fc.oneof(
      fc.jsonValue(),
      fc.record({
        jsonrpc: fc.constantFrom('2.0', '1.0', 2),
        id: fc.oneof(fc.integer(), fc.string(), fc.constant(null)),
        method: fc.constantFrom('SendMessage', 'SendStreamingMessage', 'GetTask', 'CancelTask', 'ListTasks', 'GetExtendedAgentCard', 'message/send', 'x'),
        params: fc.jsonValue(),
      }),
      fc.record({
        message: fc.record({ messageId: fc.string(), role: fc.constantFrom('ROLE_USER', 'user', 7), parts: fc.jsonValue(), metadata: fc.jsonValue() }),
        metadata: fc.jsonValue(),
      }),
    );
    await fc.assert(
      fc.asyncProperty(bodies, async (b) => {
        const r1 = await send(t, '/a2a/jsonrpc', b as never, tok);
        const r2 = await send(t, '/message:send', b as never, tok);
        expect([200, 400, 403, 404, 415]).toContain(r1.status);
        if (r1.status === 200 && r1.body?.error) expect([r1.body.error.code, JSON.stringify(b)]).not.toEqual([-32603, expect.anything()]);
        expect([200, 400, 403, 404, 415]).toContain(r2.status);
      }),
      { numRuns: 60 },
    );
    for (const raw of ['{', '[]', 'null', '"x"', '{"jsonrpc":"2.0","id":1,"method":"SendMessage","params":[]}']) {
      const r = await send(t, '/a2a/jsonrpc', raw, tok);
      expect(r.status).toBeLessThan(500);
    }
  }, 30_000);
});
