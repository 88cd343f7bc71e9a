import { randomUUID } from 'node:crypto';
import { Controller, Post } from '@nestjs/common';
import request from 'supertest';
import { Role, TaskState, type Artifact, type Message, type Task } from '@a2a-js/sdk';
import { AgentEvent, type AgentExecutor, type ExecutionEventBus, type RequestContext } from '@a2a-js/sdk/server';
import {
  A2AHttpTransport,
  A2AInTaskAuthorization,
  A2ASkillAuthorizer,
  AgentCardService,
  AgentSkill,
  ClientCredentialsTokenProvider,
  RequireScopes,
  createA2ARequestHandler,
} from 'nestjs-a2a-auth';
import { A2AJsonRpcController, A2ARestController } from '../apps/expense-agent/src/a2a/a2a.controllers';
import { startDevAuthServer, type DevAuthServer } from '../apps/expense-agent/src/dev-auth-server';
import { HumanApprovalService } from '../libs/a2a-auth/src/nest/a2a/approval';
import { generateTestKey, type TestKey } from './fixtures/keys';
import { JwksServer } from './fixtures/jwks-server';
import { mintToken } from './fixtures/tokens';
import { bootstrap, type RunningAgent } from '../apps/expense-agent/src/main';
import { DEV_CLIENT_DEFAULTS } from '../apps/expense-agent/src/dev-clients';
import { CapturingLogger, PLATFORMS, startTestApp, type TestApp } from './fixtures/test-app';

// Attacks on in-task authorization and human approval with real parts: the sample agent (express and fastify) with its
// embedded dev authorization server (CIBA in poll mode), raw HTTP on both A2A bindings.

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
const BINDINGS = ['JSONRPC', 'HTTP+JSON'] as const;
type Binding = (typeof BINDINGS)[number];
/** Every wait of this suite is bounded by this, milliseconds. */
const WAIT_MS = 10_000;

async function until<T>(what: string, f: () => Promise<T | undefined> | T | undefined): Promise<T> {
  const end = Date.now() + WAIT_MS;
  for (;;) {
    const v = await f();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe.each(PLATFORMS)('breaking human approval waits in the sample on %s', (platform) => {
  let agent: RunningAgent;
  const logs = new CapturingLogger();
  let submitter: string;
  let otherSubject: string;

  beforeAll(async () => {
    agent = await bootstrap({
      platform,
      port: 0,
      env: { NODE_ENV: 'test', A2A_APPROVAL_THRESHOLD: '1000', A2A_APPROVAL_TIMEOUT_MS: '8000' },
      logger: logs,
      banner: false,
    });
    const tokenUrl = agent.devAuth!.tokenUrl;
    submitter = await new ClientCredentialsTokenProvider({
      tokenUrl,
      ...DEV_CLIENT_DEFAULTS.submitter,
      scopes: ['expense:submit', 'expense:read'],
    }).getAccessToken();
    otherSubject = await new ClientCredentialsTokenProvider({ tokenUrl, ...DEV_CLIENT_DEFAULTS.approver, scopes: ['expense:read'] }).getAccessToken();
  });
  afterAll(() => agent?.close());

  const send = async (binding: Binding, params: Json, token: string) => {
    const path = binding === 'JSONRPC' ? '/a2a/jsonrpc' : '/message:send';
    const body = binding === 'JSONRPC' ? { jsonrpc: '2.0', id: 1, method: 'SendMessage', params } : params;
    const res = await request(agent.url)
      .post(path)
      .set('Content-Type', 'application/json')
      .set('A2A-Version', '1.0')
      .set('Authorization', `Bearer ${token}`)
      .send(JSON.stringify(body));
    const payload = binding === 'JSONRPC' && res.status === 200 ? (res.body.result ?? { error: res.body.error }) : res.body;
    return { status: res.status, payload: payload as Json, text: res.text };
  };
  const getTask = async (id: string, token: string) =>
    (await request(agent.url).get(`/tasks/${id}`).set('A2A-Version', '1.0').set('Authorization', `Bearer ${token}`)).body as Json;
  const expense = (amount: number, description: string, task?: Json) => ({
    message: {
      messageId: randomUUID(),
      role: 'ROLE_USER',
      parts: [{ data: { amount, currency: 'EUR', description } }],
      metadata: { skillId: 'submit-expense' },
      ...(task ? { taskId: task.id, contextId: task.contextId } : {}),
    },
  });
  const listed = async () => {
    const r = await send(
      'HTTP+JSON',
      { message: { messageId: randomUUID(), role: 'ROLE_USER', parts: [{ data: {} }], metadata: { skillId: 'list-expenses' } } },
      submitter,
    );
    return (r.payload.message.parts[0].data.expenses as Json[]).map((e) => e.description as string);
  };

  describe.each(BINDINGS)('over %s', (binding) => {
    it('a message on a task waiting for a human approval runs nothing, cannot end the wait, and the approval completes the task', async () => {
      const tag = `${platform}-${binding}-${randomUUID().slice(0, 8)}`;
      const before = agent.devAuth!.ciba!.pending().map((p) => p.authReqId);
      const first = await send(binding, expense(1500, `hotel ${tag}`), submitter);
      const task = first.payload.task;
      expect(task.status.state).toBe('TASK_STATE_AUTH_REQUIRED');

      // The owner: another skill's message on the waiting task, then one that would start a second approval.
      for (const [amount, what] of [
        [5, `small ${tag}`],
        [1500, `again ${tag}`],
      ] as const) {
        const r = await send(binding, expense(amount, what, task), submitter);
        if (binding === 'JSONRPC') {
          expect(r.status).toBe(200);
          expect(r.payload.error.code).toBe(-32004);
        } else {
          expect(r.status).toBe(400);
        }
        expect(r.text).toContain('is waiting for an authorization (TASK_STATE_AUTH_REQUIRED)');
      }
      // Another owner: the task does not exist for them.
      const stranger = await send(
        binding,
        {
          message: {
            messageId: randomUUID(),
            role: 'ROLE_USER',
            parts: [{ data: {} }],
            metadata: { skillId: 'list-expenses' },
            taskId: task.id,
            contextId: task.contextId,
          },
        },
        otherSubject,
      );
      if (binding === 'JSONRPC') expect(stranger.payload.error.code).toBe(-32001);
      else expect(stranger.status).toBe(404);

      const now = await getTask(task.id, submitter);
      expect(now.status.state).toBe('TASK_STATE_AUTH_REQUIRED');
      expect(now.history).toHaveLength(2); // the user message and the pending status: no refused message was added
      expect((await listed()).filter((d) => d.endsWith(tag))).toEqual([]);

      const p = await until('the CIBA request', () => agent.devAuth!.ciba!.pending().find((x) => !before.includes(x.authReqId)));
      expect(await agent.devAuth!.ciba!.approve(p.authReqId)).toBe(true);
      const done = await until('the completed task', async () => {
        const t = await getTask(task.id, submitter);
        return t.status.state === 'TASK_STATE_COMPLETED' ? t : undefined;
      });
      expect(done.status.message.parts[0].data).toMatchObject({ approvedBy: 'alice', expense: { description: `hotel ${tag}`, amount: 1500 } });
      expect((await listed()).filter((d) => d.endsWith(tag))).toEqual([`hotel ${tag}`]);
      // Once the wait is over, the task is terminal: the SDK's own answer.
      const late = await send(binding, expense(5, `late ${tag}`, task), submitter);
      if (binding === 'JSONRPC') expect(late.payload.error.code).toBe(-32004);
      else expect(late.status).toBe(400);
      expect(late.text).toContain('terminal state');
    });
  });
});

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

const LEAK = 'secret result that must never reach an unauthorized caller';
const AUD = 'http://127.0.0.1/break-in-task-agent';

const textPart = (value: string) => ({ content: { $case: 'text' as const, value }, metadata: undefined, filename: '', mediaType: 'text/plain' });
const artifact = (value: string): Artifact => ({
  artifactId: randomUUID(),
  name: 'result',
  description: '',
  parts: [textPart(value)],
  metadata: undefined,
  extensions: [],
});

/** Misbehaving executor: what it does is the message text. */
function executorWith(inTask: A2AInTaskAuthorization, approvals: () => HumanApprovalService): AgentExecutor {
  return {
    execute: async (ctx: RequestContext, bus: ExecutionEventBus) => {
      const p = ctx.userMessage.parts[0]?.content;
      const cmd = p?.$case === 'text' ? p.value : '';
      const task = (artifacts: Artifact[]): Task => ({
        id: ctx.taskId,
        contextId: ctx.contextId,
        status: { state: TaskState.TASK_STATE_WORKING, message: undefined, timestamp: new Date().toISOString() },
        artifacts,
        history: [ctx.userMessage],
        metadata: undefined,
      });
      const reply = (text: string) => {
        const m: Message = {
          messageId: randomUUID(),
          contextId: ctx.contextId,
          taskId: '',
          role: Role.ROLE_AGENT,
          parts: [textPart(text)],
          metadata: undefined,
          extensions: [],
          referenceTaskIds: [],
        };
        bus.publish(AgentEvent.message(m));
        bus.finished();
      };
      if (cmd === 'approval-first') {
        // Asks a human before any skill is authorized for the message.
        const r = await approvals().requestApproval({ context: ctx, eventBus: bus, loginHint: 'alice', scopes: ['expense:submit'], operation: 'op' });
        return r.approved ? reply(LEAK) : undefined;
      }
      if (cmd === 'progress-with-result') {
        // A "progress" message that already says the result, before any skill was authorized; then it is refused.
        bus.publish(AgentEvent.task(task([])));
        const said: Message = {
          messageId: randomUUID(),
          contextId: ctx.contextId,
          taskId: ctx.taskId,
          role: Role.ROLE_AGENT,
          parts: [textPart(LEAK)],
          metadata: undefined,
          extensions: [],
          referenceTaskIds: [],
        };
        bus.publish(
          AgentEvent.statusUpdate({
            taskId: ctx.taskId,
            contextId: ctx.contextId,
            status: { state: TaskState.TASK_STATE_WORKING, message: said, timestamp: new Date().toISOString() },
            metadata: undefined,
          }),
        );
        await inTask.authorizeSkill(ctx, 'beta');
        return reply('ran beta');
      }
      if (cmd === 'task-with-artifact') {
        // A "working" task that already carries the result, before any skill was authorized; then it is refused.
        bus.publish(AgentEvent.task(task([artifact(LEAK)])));
        await inTask.authorizeSkill(ctx, 'beta');
        return reply('ran beta');
      }
      await inTask.authorizeSkill(ctx, 'alpha');
      if (cmd === 'two-operations') {
        // Two operations needing the same extra scope: the grant of the first must not cover the second.
        await inTask.requireScopes(ctx, ['b:use'], { operation: 'op-1', timeoutMs: 60_000 });
        const who = await inTask.requireScopes(ctx, ['b:use'], { operation: 'op-2', timeoutMs: 60_000 });
        return reply(`both done for ${who.clientId}`);
      }
      return reply('ran alpha');
    },
    cancelTask: async () => undefined,
  };
}

describe.each(PLATFORMS)('breaking the fail-closed executor wrapper on %s', (platform) => {
  let jwks: JwksServer;
  let key: TestKey;
  let t: TestApp;
  let dev: DevAuthServer;
  let approvals: HumanApprovalService;
  const logger = new CapturingLogger();

  beforeAll(async () => {
    dev = await startDevAuthServer({
      audience: AUD,
      clients: [],
      nodeEnv: 'test',
      ciba: { clients: [{ clientId: 'break-ciba', clientSecret: 'break-ciba-secret-71d2', scopes: ['expense:submit'] }], users: ['alice'], intervalSeconds: 1 },
    });
    approvals = new HumanApprovalService({ ciba: { issuer: dev.issuer, clientId: 'break-ciba', clientSecret: 'break-ciba-secret-71d2' }, timeoutMs: 5000 });
    jwks = await new JwksServer().start();
    key = generateTestKey('RS256');
    jwks.keys = [key.publicJwk];
    t = await startTestApp({
      platform,
      auth: {
        issuer: jwks.issuer,
        audience: AUD,
        jwksUri: jwks.jwksUri,
        scopes: { 'a:use': 'A', 'b:use': 'B' },
        tokenUrl: `${jwks.url}/token`,
        card: {
          name: 'Break Agent',
          description: 'break',
          url: AUD,
          capabilities: { streaming: true },
          interfaces: [
            { url: '/a2a/jsonrpc', protocolBinding: 'JSONRPC' as const },
            { url: '/', protocolBinding: 'HTTP+JSON' as const },
          ],
        },
      },
      controllers: [TwoSkillsController, A2AJsonRpcController, A2ARestController],
      providers: [
        A2ASkillAuthorizer,
        A2AInTaskAuthorization,
        {
          provide: A2AHttpTransport,
          useFactory: (cards: AgentCardService, authz: A2ASkillAuthorizer, inTask: A2AInTaskAuthorization) =>
            new A2AHttpTransport(
              () =>
                createA2ARequestHandler(
                  cards,
                  executorWith(inTask, () => approvals),
                ),
              authz,
            ),
          inject: [AgentCardService, A2ASkillAuthorizer, A2AInTaskAuthorization],
        },
      ],
      logger,
    });
  });
  afterAll(async () => {
    await t?.close();
    await jwks?.stop();
    await dev?.close();
  });

  const token = (scope: string) => mintToken({ key, issuer: jwks.issuer, audience: AUD, claims: { scope } });
  const wire = (text: string) => ({ message: { messageId: randomUUID(), role: 'ROLE_USER', parts: [{ text }] } });

  const call = async (binding: Binding, method: string, params: Json, tok: string) => {
    const rest: Record<string, [string, string]> = {
      SendMessage: ['POST', '/message:send'],
      GetTask: ['GET', `/tasks/${params.id}`],
      ListTasks: ['GET', '/tasks'],
      CancelTask: ['POST', `/tasks/${params.id}:cancel`],
    };
    const [verb, path] = binding === 'JSONRPC' ? ['POST', '/a2a/jsonrpc'] : rest[method];
    const r = (verb === 'GET' ? request(t.url).get(path) : request(t.url).post(path).set('Content-Type', 'application/json'))
      .set('A2A-Version', '1.0')
      .set('Authorization', `Bearer ${tok}`);
    const body = binding === 'JSONRPC' ? { jsonrpc: '2.0', id: 1, method, params } : method === 'SendMessage' ? params : verb === 'POST' ? {} : undefined;
    const res = body === undefined ? await r : await r.send(JSON.stringify(body));
    const payload = binding === 'JSONRPC' && res.status === 200 ? (res.body.result ?? { error: res.body.error }) : res.body;
    return { status: res.status, headers: res.headers, payload: payload as Json, text: res.text };
  };
  const onTask = (text: string, task: Json) => ({ message: { ...wire(text).message, taskId: task.id, contextId: task.contextId } });
  const notFound = (binding: Binding, r: { status: number; payload: Json }) => {
    if (binding === 'JSONRPC') expect([r.status, r.payload.error?.code]).toEqual([200, -32001]);
    else expect(r.status).toBe(404);
  };

  describe.each(BINDINGS)('over %s', (binding) => {
    it('while a task waits for scopes: another subject cannot see, list, cancel or answer it; a token for another audience is 401', async () => {
      const owner = await token('a:use');
      const r = await call(binding, 'SendMessage', wire('two-operations'), owner);
      const task = r.payload.task;
      expect(task.status.state).toBe('TASK_STATE_AUTH_REQUIRED');
      const stranger = await mintToken({ key, issuer: jwks.issuer, audience: AUD, claims: { scope: 'a:use b:use', sub: 'mallory', client_id: 'mallory' } });
      notFound(binding, await call(binding, 'GetTask', { id: task.id }, stranger));
      notFound(binding, await call(binding, 'CancelTask', { id: task.id }, stranger));
      notFound(binding, await call(binding, 'SendMessage', onTask('x', task), stranger));
      const listed = await call(binding, 'ListTasks', {}, stranger);
      expect(listed.status).toBe(200);
      expect(listed.text).not.toContain(task.id);
      // The owner's identity and the scope, but minted for another resource: the guard refuses it before anything.
      const elsewhere = await mintToken({ key, issuer: jwks.issuer, audience: 'http://127.0.0.1/another-agent', claims: { scope: 'b:use' } });
      const wrongAud = await call(binding, 'SendMessage', onTask('x', task), elsewhere);
      expect(wrongAud.status).toBe(401);
      expect(wrongAud.headers['www-authenticate']).toMatch(/^Bearer .*error="invalid_token"/);
      expect((await call(binding, 'GetTask', { id: task.id }, owner)).payload.status.state).toBe('TASK_STATE_AUTH_REQUIRED');

      // The grant covers op-1 only: the second operation asks again, even with the same scope.
      const first = await call(binding, 'SendMessage', onTask('granted', task), await token('b:use'));
      expect(first.status).toBe(200);
      const afterFirst = await until('the second request', async () => {
        const t2 = (await call(binding, 'GetTask', { id: task.id }, owner)).payload;
        const op = t2.status.message?.parts?.find((p: Json) => p.data)?.data?.authorizationRequest?.operation;
        return t2.status.state === 'TASK_STATE_AUTH_REQUIRED' && op === 'op-2' ? t2 : undefined;
      });
      expect(afterFirst.status.state).toBe('TASK_STATE_AUTH_REQUIRED');
      const second = await call(binding, 'SendMessage', onTask('granted again', task), await token('b:use'));
      expect(second.status).toBe(200);
      const done = await until('the completed task', async () => {
        const t2 = (await call(binding, 'GetTask', { id: task.id }, owner)).payload;
        return t2.status.state === 'TASK_STATE_COMPLETED' ? t2 : undefined;
      });
      expect(done.status.message.parts[0].text).toBe('both done for client-a');
    });

    it('a human approval asked before any skill is authorized: nobody is asked, the wait is not kept, the task fails', async () => {
      const r = await call(binding, 'SendMessage', wire('approval-first'), await token('a:use'));
      expect(r.status).toBe(200);
      expect(r.text).not.toContain(LEAK);
      expect(r.payload.task.status.state).toBe('TASK_STATE_FAILED');
      expect(dev.ciba!.pending()).toEqual([]);
      expect(approvals.pendingCount).toBe(0);
      // The task is not held: a message on it gets the SDK's own terminal-task answer.
      const again = await call(binding, 'SendMessage', onTask('x', r.payload.task), await token('a:use'));
      expect(again.text).toContain('terminal state');
    });

    it.each(['task-with-artifact', 'progress-with-result'])('%s before any skill is authorized is not delivered (blocking, GetTask, stream)', async (cmd) => {
      const tok = await token('a:use');
      const path = binding === 'JSONRPC' ? '/a2a/jsonrpc' : '/message:send';
      const body = binding === 'JSONRPC' ? { jsonrpc: '2.0', id: 1, method: 'SendMessage', params: wire(cmd) } : wire(cmd);
      const res = await request(t.url)
        .post(path)
        .set('Content-Type', 'application/json')
        .set('A2A-Version', '1.0')
        .set('Authorization', `Bearer ${tok}`)
        .send(JSON.stringify(body));
      expect(res.status).toBe(200);
      expect(res.text).not.toContain(LEAK);
      const task = (binding === 'JSONRPC' ? res.body.result : res.body).task as Json;
      expect(task.status.state).toBe('TASK_STATE_FAILED');
      const got = await request(t.url).get(`/tasks/${task.id}`).set('A2A-Version', '1.0').set('Authorization', `Bearer ${tok}`);
      expect(got.status).toBe(200);
      expect(got.text).not.toContain(LEAK);

      const spath = binding === 'JSONRPC' ? '/a2a/jsonrpc' : '/message:stream';
      const sbody = binding === 'JSONRPC' ? { ...body, method: 'SendStreamingMessage' } : body;
      const s = await fetch(`${t.url}${spath}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'text/event-stream', 'a2a-version': '1.0', authorization: `Bearer ${tok}` },
        body: JSON.stringify(sbody),
        signal: AbortSignal.timeout(WAIT_MS),
      });
      expect(s.status).toBe(200);
      const text = await s.text();
      expect(text).not.toContain(LEAK);
      expect(text).toContain('TASK_STATE_FAILED');
    });
  });
});
