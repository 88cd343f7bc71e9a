import { randomUUID } from 'node:crypto';
import { Controller, Post } from '@nestjs/common';
import request from 'supertest';
import { Role, type Message } from '@a2a-js/sdk';
import { AgentEvent, type AgentExecutor, type ExecutionEventBus, type RequestContext } from '@a2a-js/sdk/server';
import {
  A2AHttpTransport,
  A2AInTaskAuthorization,
  A2ASkillAuthorizer,
  A2ATaskInterruptedError,
  AgentCardService,
  AgentSkill,
  RequireScopes,
  createA2ARequestHandler,
} from 'nestjs-a2a-auth';
import { A2AJsonRpcController, A2ARestController } from '../apps/expense-agent/src/a2a/a2a.controllers';
import { generateTestKey, type TestKey } from './fixtures/keys';
import { JwksServer } from './fixtures/jwks-server';
import { mintToken } from './fixtures/tokens';
import { CapturingLogger, PLATFORMS, startTestApp, type TestApp } from './fixtures/test-app';
import { replyingTransport } from './fixtures/a2a-reply';

// The executor side of in-task authorization, with an executor that misbehaves on purpose: results published before a
// skill is authorized are never delivered (fail closed), a refused or lapsed task cannot be revived by the executor,
// and a follow-up must come from the task's owner through the same client.

const AUD = 'http://127.0.0.1/in-task-agent';
type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

@Controller('skills')
class TwoSkillsController {
  @AgentSkill({ id: 'alpha', name: 'Alpha', description: 'alpha' })
  @RequireScopes('a:use')
  @Post('alpha')
  alpha() {
    return {};
  }

  @AgentSkill({ id: 'beta', name: 'Beta', description: 'beta' })
  @RequireScopes('b:use')
  @Post('beta')
  beta() {
    return {};
  }
}

const LEAK = 'this text must never reach the caller';

function reply(ctx: RequestContext, bus: ExecutionEventBus, text: string): void {
  const m: Message = {
    messageId: randomUUID(),
    contextId: ctx.contextId,
    taskId: '',
    role: Role.ROLE_AGENT,
    parts: [{ content: { $case: 'text', value: text }, metadata: undefined, filename: '', mediaType: 'text/plain' }],
    metadata: undefined,
    extensions: [],
    referenceTaskIds: [],
  };
  bus.publish(AgentEvent.message(m));
  bus.finished();
}

/** Behaviour chosen by the message text: `forget`, `sneak`, `alpha`, `wait:<ms>`. */
function executorWith(inTask: A2AInTaskAuthorization): AgentExecutor {
  return {
    execute: async (ctx, bus) => {
      const p = ctx.userMessage.parts[0]?.content;
      const cmd = p?.$case === 'text' ? p.value : '';
      if (cmd === 'forget') return reply(ctx, bus, LEAK); // never asked the library
      if (cmd === 'sneak') {
        try {
          await inTask.authorizeSkill(ctx, 'beta');
        } catch (e) {
          if (!(e instanceof A2ATaskInterruptedError)) throw e;
        }
        return reply(ctx, bus, LEAK); // refused, and tries to answer anyway
      }
      await inTask.authorizeSkill(ctx, 'alpha');
      if (cmd.startsWith('wait:')) {
        const who = await inTask.requireScopes(ctx, ['b:use'], { operation: 'op-1', timeoutMs: Number(cmd.slice(5)) });
        return reply(ctx, bus, `continued for ${who.clientId} with ${who.scopes.join(' ')}`);
      }
      return reply(ctx, bus, 'ran alpha');
    },
    cancelTask: async () => undefined,
  };
}

describe.each(PLATFORMS)('in-task authorization, executor side, on %s', (platform) => {
  let jwks: JwksServer;
  let key: TestKey;
  let t: TestApp;
  let plain: TestApp;
  const logger = new CapturingLogger();

  const auth = () => ({
    issuer: jwks.issuer,
    audience: AUD,
    jwksUri: jwks.jwksUri,
    scopes: { 'a:use': 'A', 'b:use': 'B' },
    tokenUrl: `${jwks.url}/token`,
    card: {
      name: 'In-task Agent',
      description: 'in-task',
      url: AUD,
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
    t = await startTestApp({
      platform,
      auth: auth(),
      controllers: [TwoSkillsController, A2AJsonRpcController, A2ARestController],
      providers: [
        A2ASkillAuthorizer,
        A2AInTaskAuthorization,
        {
          provide: A2AHttpTransport,
          useFactory: (cards: AgentCardService, authz: A2ASkillAuthorizer, inTask: A2AInTaskAuthorization) =>
            new A2AHttpTransport(() => createA2ARequestHandler(cards, executorWith(inTask)), authz),
          inject: [AgentCardService, A2ASkillAuthorizer, A2AInTaskAuthorization],
        },
      ],
      logger,
    });
    // The same agent without A2AInTaskAuthorization: its executor cannot route, so messages must name their skill.
    plain = await startTestApp({
      platform,
      auth: auth(),
      controllers: [TwoSkillsController, A2AJsonRpcController, A2ARestController],
      providers: [A2ASkillAuthorizer, replyingTransport('plain')],
      logger,
    });
  });
  afterAll(async () => {
    await t?.close();
    await plain?.close();
    await jwks?.stop();
  });

  const token = (scope: string, claims: Json = {}) => mintToken({ key, issuer: jwks.issuer, audience: AUD, claims: { scope, ...claims } });
  const wire = (text: string, task?: Json) => ({
    message: { messageId: randomUUID(), role: 'ROLE_USER', parts: [{ text }], ...(task ? { taskId: task.id, contextId: task.contextId } : {}) },
  });
  const call = async (binding: 'JSONRPC' | 'HTTP+JSON', method: string, params: Json, tok: string) => {
    const rest: Record<string, [string, string]> = {
      SendMessage: ['POST', '/message:send'],
      GetTask: ['GET', `/tasks/${params.id}`],
      CancelTask: ['POST', `/tasks/${params.id}:cancel`],
    };
    const [verb, path] = binding === 'JSONRPC' ? ['POST', '/a2a/jsonrpc'] : rest[method];
    const r = (verb === 'GET' ? request(t.url).get(path) : request(t.url).post(path).set('Content-Type', 'application/json'))
      .set('A2A-Version', '1.0')
      .set('Authorization', `Bearer ${tok}`);
    const body = binding === 'JSONRPC' ? { jsonrpc: '2.0', id: 1, method, params } : method === 'SendMessage' ? params : verb === 'POST' ? {} : undefined;
    const res = body === undefined ? await r : await r.send(JSON.stringify(body));
    const payload = binding === 'JSONRPC' ? (res.body.result ?? { error: res.body.error }) : res.body;
    return { status: res.status, headers: res.headers, payload: payload as Json, text: res.text };
  };
  const textOf = (task: Json) =>
    (task.status.message?.parts ?? [])
      .filter((p: Json) => typeof p.text === 'string')
      .map((p: Json) => p.text)
      .join(' ');

  /** A whole SSE answer (bounded: 10 s), as the list of events (JSON-RPC results unwrapped) and the raw text. */
  const streamAll = async (binding: 'JSONRPC' | 'HTTP+JSON', params: Json, tok: string) => {
    const path = binding === 'JSONRPC' ? '/a2a/jsonrpc' : '/message:stream';
    const body = binding === 'JSONRPC' ? { jsonrpc: '2.0', id: 1, method: 'SendStreamingMessage', params } : params;
    const res = await fetch(`${t.url}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'text/event-stream', 'a2a-version': '1.0', authorization: `Bearer ${tok}` },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(10_000),
    });
    expect(res.status).toBe(200);
    const text = await res.text();
    const events = text
      .split(/\r?\n/)
      .filter((l) => l.startsWith('data:'))
      .map((l) => JSON.parse(l.slice(5)) as Json)
      .map((e) => (binding === 'JSONRPC' ? e.result : e));
    return { text, events };
  };
  const stateOf = (e: Json) => e.task?.status?.state ?? e.statusUpdate?.status?.state;

  describe.each(['JSONRPC', 'HTTP+JSON'] as const)('streaming over %s', (binding) => {
    it('fail closed: the stream ends with TASK_STATE_FAILED and never carries the unauthorized result', async () => {
      const r = await streamAll(binding, wire('forget'), await token('a:use b:use'));
      expect(r.text).not.toContain(LEAK);
      expect(r.events.map(stateOf)).toEqual(['TASK_STATE_FAILED', 'TASK_STATE_FAILED']);
    });

    it('a refused skill: TASK_STATE_SUBMITTED, then TASK_STATE_REJECTED naming the scope, and the stream ends', async () => {
      const r = await streamAll(binding, wire('sneak'), await token('a:use'));
      expect(r.text).not.toContain(LEAK);
      expect(r.events.map(stateOf)).toEqual(['TASK_STATE_SUBMITTED', 'TASK_STATE_REJECTED']);
      expect(textOf(r.events[1].statusUpdate)).toBe('skill beta needs the scopes b:use; the token lacks b:use');
    });
  });

  describe.each(['JSONRPC', 'HTTP+JSON'] as const)('waiting tasks over %s', (binding) => {
    it('a subscriber of a waiting task stays connected and sees it resume and complete', async () => {
      const tok = await token('a:use');
      const r = await call(binding, 'SendMessage', wire('wait:60000'), tok);
      const task = r.payload.task;
      expect(task.status.state).toBe('TASK_STATE_AUTH_REQUIRED');
      const res =
        binding === 'JSONRPC'
          ? fetch(`${t.url}/a2a/jsonrpc`, {
              method: 'POST',
              headers: { 'content-type': 'application/json', accept: 'text/event-stream', 'a2a-version': '1.0', authorization: `Bearer ${tok}` },
              body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'SubscribeToTask', params: { id: task.id } }),
              signal: AbortSignal.timeout(10_000),
            })
          : fetch(`${t.url}/tasks/${task.id}:subscribe`, {
              headers: { accept: 'text/event-stream', 'a2a-version': '1.0', authorization: `Bearer ${tok}` },
              signal: AbortSignal.timeout(10_000),
            });
      const sub = await res;
      expect(sub.status).toBe(200);
      const body = sub.text();
      await new Promise((ok) => setTimeout(ok, 100)); // the subscriber is attached before the follow-up
      const done = await call(binding, 'SendMessage', wire('x', task), await token('b:use'));
      expect(done.payload.task.status.state).toBe('TASK_STATE_COMPLETED');
      const events = (await body)
        .split(/\r?\n/)
        .filter((l) => l.startsWith('data:'))
        .map((l) => JSON.parse(l.slice(5)) as Json)
        .map((e) => (binding === 'JSONRPC' ? e.result : e));
      expect(events.map(stateOf)).toEqual(['TASK_STATE_AUTH_REQUIRED', 'TASK_STATE_WORKING', 'TASK_STATE_COMPLETED']);
    });

    it('two follow-ups at once: one resumes the task; the other cannot run it again', async () => {
      const r = await call(binding, 'SendMessage', wire('wait:60000'), await token('a:use'));
      const task = r.payload.task;
      const [a, b] = await Promise.all([
        call(binding, 'SendMessage', wire('x', task), await token('b:use')),
        call(binding, 'SendMessage', wire('y', task), await token('b:use')),
      ]);
      // The loser sees the task as it was (if it came in first) or, once the winner completed it, the SDK's
      // terminal-task error (JSON-RPC -32004, HTTP+JSON 400 FAILED_PRECONDITION).
      const outcome = (x: typeof a) => x.payload.task?.status?.state ?? x.payload.error?.code;
      const seen = [outcome(a), outcome(b)];
      expect(seen.filter((x) => x === 'TASK_STATE_COMPLETED').length).toBeGreaterThanOrEqual(1);
      for (const x of seen) expect(['TASK_STATE_COMPLETED', 'TASK_STATE_AUTH_REQUIRED', -32004, 400]).toContain(x);
      const final = await call(binding, 'GetTask', { id: task.id }, await token('a:use'));
      expect(final.payload.status.state).toBe('TASK_STATE_COMPLETED');
      expect(textOf(final.payload)).toBe('continued for client-a with b:use');
    });
  });

  describe.each(['JSONRPC', 'HTTP+JSON'] as const)('over %s', (binding) => {
    it('without A2AInTaskAuthorization, a message without skillId is still the invalid-params error', async () => {
      const tok = await token('a:use');
      const params = wire('alpha');
      const res =
        binding === 'JSONRPC'
          ? await request(plain.url)
              .post('/a2a/jsonrpc')
              .set('Content-Type', 'application/json')
              .set('A2A-Version', '1.0')
              .set('Authorization', `Bearer ${tok}`)
              .send(JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'SendMessage', params }))
          : await request(plain.url)
              .post('/message:send')
              .set('Content-Type', 'application/json')
              .set('A2A-Version', '1.0')
              .set('Authorization', `Bearer ${tok}`)
              .send(JSON.stringify(params));
      const missing = 'message.metadata.skillId is required: this agent has several skills';
      if (binding === 'JSONRPC') expect(res.body.error).toMatchObject({ code: -32602, message: missing });
      else expect([res.status, res.body.error.message]).toEqual([400, missing]);
    });

    it('fail closed: a result published before any skill was authorized is not delivered; the task fails', async () => {
      const r = await call(binding, 'SendMessage', wire('forget'), await token('a:use b:use'));
      expect(r.status).toBe(200);
      expect(r.text).not.toContain(LEAK);
      expect(r.payload.task.status.state).toBe('TASK_STATE_FAILED');
      expect(textOf(r.payload.task)).toContain('the agent could not complete the request');
      expect(logger.lines.some((l) => l.includes('published a result before the library authorized a skill'))).toBe(true);
    });

    it('an authorized skill runs; a refused one is TASK_STATE_REJECTED and the executor cannot answer after it', async () => {
      const ok = await call(binding, 'SendMessage', wire('alpha'), await token('a:use'));
      expect(ok.payload.message.parts[0].text).toBe('ran alpha');
      const tok = await token('a:use');
      const r = await call(binding, 'SendMessage', wire('sneak'), tok);
      expect(r.status).toBe(200);
      expect(r.text).not.toContain(LEAK);
      expect(r.payload.task.status.state).toBe('TASK_STATE_REJECTED');
      expect(textOf(r.payload.task)).toBe('skill beta needs the scopes b:use; the token lacks b:use');
      const again = await call(binding, 'GetTask', { id: r.payload.task.id }, tok);
      expect(again.payload.status.state).toBe('TASK_STATE_REJECTED');
    });

    it('a task nobody answers lapses to TASK_STATE_REJECTED (bounded wait)', async () => {
      const tok = await token('a:use');
      const r = await call(binding, 'SendMessage', wire('wait:300'), tok);
      expect(r.payload.task.status.state).toBe('TASK_STATE_AUTH_REQUIRED');
      let state = '';
      for (let i = 0; i < 50 && state !== 'TASK_STATE_REJECTED'; i++) {
        await new Promise((res) => setTimeout(res, 100));
        state = (await call(binding, 'GetTask', { id: r.payload.task.id }, tok)).payload.status.state;
      }
      expect(state).toBe('TASK_STATE_REJECTED');
      const late = await call(binding, 'SendMessage', wire('late', r.payload.task), await token('b:use'));
      if (binding === 'JSONRPC') expect(late.payload.error.code).toBe(-32004);
      else expect(late.status).toBe(400);
    });

    it('canceling a waiting task ends the wait (TASK_STATE_CANCELED)', async () => {
      const tok = await token('a:use');
      const r = await call(binding, 'SendMessage', wire('wait:60000'), tok);
      expect(r.payload.task.status.state).toBe('TASK_STATE_AUTH_REQUIRED');
      const c = await call(binding, 'CancelTask', { id: r.payload.task.id }, tok);
      expect(c.payload.status.state).toBe('TASK_STATE_CANCELED');
      expect((await call(binding, 'GetTask', { id: r.payload.task.id }, tok)).payload.status.state).toBe('TASK_STATE_CANCELED');
    });

    it('the follow-up must come from the same owner through the same client; the owner with the scope resumes the task', async () => {
      const r = await call(binding, 'SendMessage', wire('wait:60000'), await token('a:use'));
      const task = r.payload.task;
      expect(task.status.state).toBe('TASK_STATE_AUTH_REQUIRED');
      const viaOtherClient = await call(binding, 'SendMessage', wire('x', task), await token('b:use', { client_id: 'client-b' }));
      expect(viaOtherClient.status).toBe(403);
      expect(viaOtherClient.headers['www-authenticate']).toContain('error="insufficient_scope"');
      expect(viaOtherClient.headers['www-authenticate']).toContain('scope="b:use"');
      const otherIssuerSubject = await call(binding, 'SendMessage', wire('x', task), await token('b:use', { sub: 'someone-else', client_id: 'client-b' }));
      if (binding === 'JSONRPC') expect(otherIssuerSubject.payload.error.code).toBe(-32001);
      else expect(otherIssuerSubject.status).toBe(404);
      const done = await call(binding, 'SendMessage', wire('x', task), await token('b:use'));
      expect(done.payload.task.status.state).toBe('TASK_STATE_COMPLETED');
      expect(textOf(done.payload.task)).toBe('continued for client-a with b:use');
    });
  });
});
