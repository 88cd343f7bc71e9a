import { randomUUID } from 'node:crypto';
import { Controller, Post } from '@nestjs/common';
import request from 'supertest';
import { AgentCard, SendMessageRequest, TaskPushNotificationConfig, TaskState, type Task } from '@a2a-js/sdk';
import {
  AgentEvent,
  InMemoryPushNotificationStore,
  ServerCallContext,
  type AgentExecutor,
  type ExecutionEventBus,
  type RequestContext,
} from '@a2a-js/sdk/server';
import { ClientFactory, ClientFactoryOptions, DefaultAgentCardResolver, JsonRpcTransportFactory, type Client } from '@a2a-js/sdk/client';
import {
  A2AHttpTransport,
  A2ASkillAuthorizer,
  A2AUser,
  AgentCardService,
  AgentSkill,
  RequireScopes,
  a2aTaskOwner,
  createA2ARequestHandler,
  type A2APushNotificationOptions,
  type ResolvedAddress,
} from 'nestjs-a2a-auth';
import { A2AJsonRpcController, A2ARestController } from '../apps/expense-agent/src/a2a/a2a.controllers';
import { TestIssuer } from './fixtures/auth-harness';
import { CapturingLogger, PLATFORMS, type TestApp } from './fixtures/test-app';
import { WebhookReceiver } from './fixtures/webhook-receiver';

const AUD = 'http://127.0.0.1/push-agent';
const HOOK_SECRET = 'hook-credential-7f3a9c';
const HOOK_TOKEN = 'hook-token-51be02';
const PUBLIC_ONLY = 'pushNotificationConfig refused: the push notification URL must be a public https URL (or an origin the agent allows)';
/** The `data` of the SDK's JSON-RPC invalid-params error (a google.rpc.ErrorInfo). */
const INVALID_PARAMS_DATA = [{ '@type': 'type.googleapis.com/google.rpc.ErrorInfo', domain: 'a2a-protocol.org', reason: 'INVALID_PARAMS' }];
const HTTPS_ONLY = 'pushNotificationConfig refused: the push notification URL must use https';

// Safety net for this suite: it must never contact anything but loopback. Private, link-local and metadata URLs are
// only ever checked and refused. (The SDK's own sender, which the library replaces, uses the global fetch.)
const realFetch = globalThis.fetch;
beforeAll(() => {
  globalThis.fetch = ((input: string | URL | Request, init?: RequestInit) => {
    const host = new URL(typeof input === 'string' || input instanceof URL ? input : input.url).hostname;
    if (host !== '127.0.0.1') return Promise.reject(new Error(`test network tripwire: refused to contact ${host}`));
    return realFetch(input, init);
  }) as typeof fetch;
});
afterAll(() => {
  globalThis.fetch = realFetch;
});

/** The skill every message runs. */
@Controller('work')
class WorkSkillController {
  @AgentSkill({ id: 'work', name: 'Work', description: 'Runs a task' })
  @RequireScopes('work:run')
  @Post()
  work() {
    return { ok: true };
  }
}

/** Status updates of a `flood` task, between its task event and its completion: more than can wait for a receiver. */
const FLOOD = 120;

/** Task ids the executor ran (a refused config must stop the call before the executor). */
const executed: string[] = [];

/** A task that completes at once, or waits for input when the message text is `wait`; a follow-up completes it. */
const taskExecutor: AgentExecutor = {
  execute: async (ctx: RequestContext, bus: ExecutionEventBus) => {
    executed.push(ctx.taskId);
    const part = ctx.userMessage.parts[0]?.content;
    const wait = part?.$case === 'text' && part.value === 'wait';
    const status = (state: TaskState) => ({ state, message: undefined, timestamp: undefined });
    if (!ctx.task) {
      const task: Task = {
        id: ctx.taskId,
        contextId: ctx.contextId,
        status: status(TaskState.TASK_STATE_SUBMITTED),
        artifacts: [],
        history: [ctx.userMessage],
        metadata: undefined,
      };
      bus.publish(AgentEvent.task(task));
    }
    if (part?.$case === 'text' && part.value === 'flood') {
      for (let i = 0; i < FLOOD; i++) {
        bus.publish(
          AgentEvent.statusUpdate({ taskId: ctx.taskId, contextId: ctx.contextId, status: status(TaskState.TASK_STATE_WORKING), metadata: undefined }),
        );
      }
    }
    const state = wait && !ctx.task ? TaskState.TASK_STATE_INPUT_REQUIRED : TaskState.TASK_STATE_COMPLETED;
    bus.publish(AgentEvent.statusUpdate({ taskId: ctx.taskId, contextId: ctx.contextId, status: status(state), metadata: undefined }));
    bus.finished();
  },
  cancelTask: async () => undefined,
};

/** The test resolver: fixed answers for the test names; the real resolver is never asked about them. */
function testLookup(calls: string[]) {
  return async (host: string): Promise<ResolvedAddress[]> => {
    calls.push(host);
    if (host === 'hooks.test' || host === 'internal.test' || host === 'flip.test') return [{ address: '127.0.0.1', family: 4 }];
    throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${host}`), { code: 'ENOTFOUND' });
  };
}

function wireMessage(text: string, extra: Record<string, unknown> = {}) {
  return { message: { messageId: randomUUID(), role: 'ROLE_USER', parts: [{ text }], metadata: { skillId: 'work' } }, ...extra };
}

describe.each(PLATFORMS)('push notification (webhook) policy on %s', (platform) => {
  let idp: TestIssuer;
  let strict: TestApp;
  let dev: TestApp;
  let receiver: WebhookReceiver;
  let slow: WebhookReceiver;
  let callerToken: string;
  const logger = new CapturingLogger();
  const lookups: string[] = [];
  const devStore = new InMemoryPushNotificationStore(a2aTaskOwner);

  const startAgent = (push: A2APushNotificationOptions) =>
    idp.startApp({
      platform,
      logger,
      auth: {
        scopes: { 'work:run': 'Run work' },
        tokenUrl: `${idp.jwks.url}/token`,
        card: {
          name: 'Push Agent',
          description: 'push',
          url: AUD,
          capabilities: { pushNotifications: true, streaming: true },
          interfaces: [
            { url: '/a2a/jsonrpc', protocolBinding: 'JSONRPC' as const },
            { url: '/', protocolBinding: 'HTTP+JSON' as const },
          ],
        },
      },
      controllers: [WorkSkillController, A2AJsonRpcController, A2ARestController],
      providers: [
        A2ASkillAuthorizer,
        {
          provide: A2AHttpTransport,
          useFactory: (cards: AgentCardService, authz: A2ASkillAuthorizer) =>
            new A2AHttpTransport(() => createA2ARequestHandler(cards, taskExecutor, { pushNotifications: push }), authz),
          inject: [AgentCardService, A2ASkillAuthorizer],
        },
      ],
    });

  beforeAll(async () => {
    receiver = await new WebhookReceiver().start();
    slow = await new WebhookReceiver().start();
    idp = await TestIssuer.start({ audience: AUD });
    callerToken = await idp.mint({ claims: { scope: 'work:run' } });
    // The default policy, with only the resolver replaced so that test names never reach a real DNS server.
    strict = await startAgent({ lookup: testLookup(lookups) });
    // A development setup: the local receiver is allowed by its exact origin; short deadline and payload cap.
    dev = await startAgent({
      allowedOrigins: [receiver.origin, `http://hooks.test:${receiver.port}`, slow.origin],
      lookup: testLookup(lookups),
      timeoutMs: 400,
      maxPayloadBytes: 4096,
      store: devStore,
    });
  });
  afterAll(async () => {
    await idp?.close();
    await receiver?.stop();
    await slow?.stop();
  });

  const rpc = (app: TestApp, method: string, params: unknown) =>
    request(app.url)
      .post('/a2a/jsonrpc')
      .set('Content-Type', 'application/json')
      .set('A2A-Version', '1.0')
      .set('Authorization', `Bearer ${callerToken}`)
      .send(JSON.stringify({ jsonrpc: '2.0', id: 7, method, params }));
  const rest = (app: TestApp, body: unknown) =>
    request(app.url)
      .post('/message:send')
      .set('Content-Type', 'application/json')
      .set('A2A-Version', '1.0')
      .set('Authorization', `Bearer ${callerToken}`)
      .send(JSON.stringify(body));
  const inline = (url: string, extra: Record<string, unknown> = {}) => wireMessage('go', { configuration: { taskPushNotificationConfig: { url, ...extra } } });
  const newTask = async (app: TestApp, text = 'wait'): Promise<string> => {
    const r = await rpc(app, 'SendMessage', wireMessage(text));
    expect(r.body.result.task.status.state).toBe(text === 'wait' ? 'TASK_STATE_INPUT_REQUIRED' : 'TASK_STATE_COMPLETED');
    return r.body.result.task.id as string;
  };
  /** Lets pending deliveries run, then checks that nothing reached the receiver. */
  const expectNoDelivery = async (connectionsBefore: number) => {
    await new Promise((r) => setTimeout(r, 150));
    expect(receiver.connections).toBe(connectionsBefore);
  };
  const warnings = () => logger.lines.filter((l) => l.startsWith('warn') && l.includes('push notification'));

  // Each URL with the exact refusal; none of them is ever contacted.
  const refused = () => [
    [`http://127.0.0.1:${receiver.port}/hook`, HTTPS_ONLY],
    [`https://127.0.0.1:${receiver.port}/hook`, PUBLIC_ONLY],
    [`https://localhost:${receiver.port}/hook`, PUBLIC_ONLY],
    [`https://app.localhost:${receiver.port}/hook`, PUBLIC_ONLY],
    [`https://[::1]:${receiver.port}/hook`, PUBLIC_ONLY],
    [`https://[::ffff:127.0.0.1]:${receiver.port}/hook`, PUBLIC_ONLY],
    [`https://2130706433:${receiver.port}/hook`, PUBLIC_ONLY], // 127.0.0.1 as one decimal number
    [`https://internal.test:${receiver.port}/hook`, PUBLIC_ONLY], // a name that resolves to 127.0.0.1
    [`https://unknown.test/hook`, PUBLIC_ONLY], // a name that does not resolve: the same answer (no DNS oracle)
    ['https://10.0.0.1/hook', PUBLIC_ONLY],
    ['https://172.16.5.4/hook', PUBLIC_ONLY],
    ['https://192.168.1.1/hook', PUBLIC_ONLY],
    ['https://100.64.0.1/hook', PUBLIC_ONLY],
    ['https://169.254.169.254/latest/meta-data/', PUBLIC_ONLY],
    ['https://[fd00:ec2::254]/latest/meta-data/', PUBLIC_ONLY],
    ['https://[fe80::1]/hook', PUBLIC_ONLY],
    ['https://[fc00::1]/hook', PUBLIC_ONLY],
    ['https://0.0.0.0/hook', PUBLIC_ONLY],
    ['https://224.0.0.1/hook', PUBLIC_ONLY],
    ['https://255.255.255.255/hook', PUBLIC_ONLY],
    ['file:///etc/passwd', HTTPS_ONLY],
    ['ftp://127.0.0.1/hook', HTTPS_ONLY],
    ['https://user:pass@example.com/hook', 'pushNotificationConfig refused: the push notification URL must not contain user information'],
    ['not a url', 'pushNotificationConfig refused: the push notification URL is not an absolute URL'],
  ];

  it('loopback webhook inline in SendMessage (JSON-RPC): -32602, nothing stored, the executor never runs, no connection', async () => {
    const before = receiver.connections;
    const ran = executed.length;
    const r = await rpc(strict, 'SendMessage', inline(`https://127.0.0.1:${receiver.port}/hook`));
    expect(r.status).toBe(200);
    expect(r.headers['content-type']).toMatch(/^application\/json/);
    expect(r.body).toEqual({ jsonrpc: '2.0', id: 7, error: { code: -32602, message: PUBLIC_ONLY, data: INVALID_PARAMS_DATA } });
    expect(executed.length).toBe(ran);
    await expectNoDelivery(before);
  });

  it('the default policy refuses every internal or non-https URL inline on JSON-RPC, with the exact error', async () => {
    const before = receiver.connections;
    for (const [url, message] of refused()) {
      const r = await rpc(strict, 'SendMessage', inline(url));
      expect({ url, status: r.status, body: r.body }).toEqual({
        url,
        status: 200,
        body: { jsonrpc: '2.0', id: 7, error: { code: -32602, message, data: INVALID_PARAMS_DATA } },
      });
    }
    await expectNoDelivery(before);
  });

  it('the same inline on HTTP+JSON POST /message:send: 400 INVALID_ARGUMENT', async () => {
    const before = receiver.connections;
    for (const [url, message] of refused()) {
      const r = await rest(strict, inline(url));
      expect({ url, status: r.status, body: r.body }).toEqual({
        url,
        status: 400,
        body: { error: { code: 400, status: 'INVALID_ARGUMENT', message, details: expect.any(Array) } },
      });
      expect(r.headers['content-type']).toMatch(/^application\/a2a\+json/);
    }
    await expectNoDelivery(before);
  });

  it('inline in SendStreamingMessage: the same error as a JSON answer, before any event (JSON-RPC and HTTP+JSON)', async () => {
    const before = receiver.connections;
    const url = `https://127.0.0.1:${receiver.port}/hook`;
    const r = await rpc(strict, 'SendStreamingMessage', inline(url));
    expect(r.status).toBe(200);
    expect(r.headers['content-type']).toMatch(/^application\/json/);
    expect(r.body).toEqual({ jsonrpc: '2.0', id: 7, error: { code: -32602, message: PUBLIC_ONLY, data: INVALID_PARAMS_DATA } });
    const s = await request(strict.url)
      .post('/message:stream')
      .set('Content-Type', 'application/json')
      .set('A2A-Version', '1.0')
      .set('Authorization', `Bearer ${callerToken}`)
      .send(JSON.stringify(inline(url)));
    expect(s.status).toBe(400);
    expect(s.body).toEqual({ error: { code: 400, status: 'INVALID_ARGUMENT', message: PUBLIC_ONLY, details: expect.any(Array) } });
    await expectNoDelivery(before);
  });

  it('CreateTaskPushNotificationConfig (JSON-RPC) with an internal URL: -32602 and the task has no config', async () => {
    const before = receiver.connections;
    const taskId = await newTask(strict);
    for (const url of [`https://127.0.0.1:${receiver.port}/hook`, 'https://169.254.169.254/latest/meta-data/', 'https://[::1]/hook', 'https://10.1.2.3/']) {
      const r = await rpc(strict, 'CreateTaskPushNotificationConfig', { taskId, url, authentication: { scheme: 'Bearer', credentials: HOOK_SECRET } });
      expect(r.body).toEqual({ jsonrpc: '2.0', id: 7, error: { code: -32602, message: PUBLIC_ONLY, data: INVALID_PARAMS_DATA } });
    }
    const list = await rpc(strict, 'ListTaskPushNotificationConfigs', { taskId });
    expect(list.body).toEqual({ jsonrpc: '2.0', id: 7, result: {} });
    await rpc(strict, 'SendMessage', { message: { ...wireMessage('done').message, taskId } });
    await expectNoDelivery(before);
  });

  it('config fields that would break the outbound request are refused', async () => {
    const url = `${receiver.origin}/hook`;
    const cases: Array<[Record<string, unknown>, string]> = [
      [{ authentication: { scheme: 'Bearer x', credentials: 'c' } }, 'authentication.scheme must be an HTTP authentication scheme name such as Bearer'],
      [{ authentication: { scheme: '', credentials: 'c' } }, 'authentication.scheme must be an HTTP authentication scheme name such as Bearer'],
      [
        { authentication: { scheme: 'Bearer', credentials: 'a\r\nX-Injected: 1' } },
        'authentication.credentials must be printable ASCII of at most 4096 characters',
      ],
      [
        { authentication: { scheme: 'Bearer', credentials: 'x'.repeat(4097) } },
        'authentication.credentials must be printable ASCII of at most 4096 characters',
      ],
      [{ token: 'a\nb' }, 'token must be printable ASCII of at most 4096 characters'],
    ];
    for (const [extra, message] of cases) {
      const r = await rpc(dev, 'SendMessage', inline(url, extra));
      expect(r.body).toEqual({
        jsonrpc: '2.0',
        id: 7,
        error: { code: -32602, message: `pushNotificationConfig refused: ${message}`, data: INVALID_PARAMS_DATA },
      });
    }
  });

  it('an allow-listed receiver gets every event, in order, with the config’s credentials and never the caller’s token', async () => {
    const path = `/hook-${randomUUID()}`;
    const r = await rpc(
      dev,
      'SendMessage',
      inline(`${receiver.origin}${path}`, { token: HOOK_TOKEN, authentication: { scheme: 'Bearer', credentials: HOOK_SECRET } }),
    );
    expect(r.status).toBe(200);
    const task = r.body.result.task;
    expect(task.status.state).toBe('TASK_STATE_COMPLETED');
    const got = await receiver.waitFor(path, 2);
    expect(got.map((g) => g.method)).toEqual(['POST', 'POST']);
    for (const g of got) {
      expect(g.headers['content-type']).toBe('application/a2a+json');
      expect(g.headers.authorization).toBe(`Bearer ${HOOK_SECRET}`);
      expect(g.headers['x-a2a-notification-token']).toBe(HOOK_TOKEN);
      expect(g.headers.host).toBe(`127.0.0.1:${receiver.port}`);
      expect(JSON.stringify(g.headers)).not.toContain(callerToken);
      expect(g.body).not.toContain(callerToken);
    }
    const [first, second] = got.map((g) => JSON.parse(g.body));
    expect(first.task).toMatchObject({ id: task.id, status: { state: 'TASK_STATE_SUBMITTED' } });
    expect(second).toEqual({ statusUpdate: { taskId: task.id, contextId: task.contextId, status: { state: 'TASK_STATE_COMPLETED' } } });
  });

  it('the same inline on HTTP+JSON POST /message:send', async () => {
    const path = `/hook-${randomUUID()}`;
    const r = await rest(dev, inline(`${receiver.origin}${path}`, { authentication: { scheme: 'Basic', credentials: 'dXNlcjpwdw==' } }));
    expect(r.status).toBe(200);
    expect(r.body.task.status.state).toBe('TASK_STATE_COMPLETED');
    const got = await receiver.waitFor(path, 2);
    expect(got.map((g) => g.headers.authorization)).toEqual(['Basic dXNlcjpwdw==', 'Basic dXNlcjpwdw==']);
    expect(got.map((g) => g.headers['x-a2a-notification-token'])).toEqual([undefined, undefined]);
  });

  it('official SDK client: createTaskPushNotificationConfig is refused for loopback, accepted for the allowed origin, and delivers', async () => {
    const fetchImpl: typeof fetch = (input, init) => {
      const headers = new Headers(init?.headers);
      headers.set('Authorization', `Bearer ${callerToken}`);
      return fetch(input, { ...init, headers });
    };
    const clientFor = async (app: TestApp): Promise<Client> => {
      // The card advertises the public URL (AUD); point its interfaces at this test app's socket.
      const card = await new DefaultAgentCardResolver({ fetchImpl }).resolve(`${app.url}/`);
      const json = AgentCard.toJSON(card) as { supportedInterfaces: Array<{ url: string }> };
      for (const i of json.supportedInterfaces) i.url = i.url.replace(AUD, app.url);
      const factory = new ClientFactory(
        ClientFactoryOptions.createFrom(ClientFactoryOptions.default, {
          transports: [new JsonRpcTransportFactory({ fetchImpl })],
          preferredTransports: ['JSONRPC'],
        }),
      );
      return factory.createFromAgentCard(AgentCard.fromJSON(json));
    };
    const strictClient = await clientFor(strict);
    const taskId = await newTask(strict);
    const cfg = (url: string) => TaskPushNotificationConfig.fromJSON({ taskId, url, authentication: { scheme: 'Bearer', credentials: HOOK_SECRET } });
    const e = await strictClient.createTaskPushNotificationConfig(cfg(`https://127.0.0.1:${receiver.port}/hook`)).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(Error);
    expect((e as Error).message).toBe(PUBLIC_ONLY);

    const devClient = await clientFor(dev);
    const devTask = await newTask(dev);
    const path = `/hook-${randomUUID()}`;
    const created = await devClient.createTaskPushNotificationConfig(
      TaskPushNotificationConfig.fromJSON({
        taskId: devTask,
        url: `${receiver.origin}${path}`,
        token: HOOK_TOKEN,
        authentication: { scheme: 'Bearer', credentials: HOOK_SECRET },
      }),
    );
    expect(TaskPushNotificationConfig.toJSON(created)).toEqual({
      id: expect.any(String),
      taskId: devTask,
      url: `${receiver.origin}${path}`,
      token: HOOK_TOKEN,
      authentication: { scheme: 'Bearer', credentials: HOOK_SECRET },
    });
    const done = await devClient.sendMessage(
      SendMessageRequest.fromJSON({
        message: { messageId: randomUUID(), role: 'ROLE_USER', taskId: devTask, parts: [{ text: 'done' }], metadata: { skillId: 'work' } },
      }),
    );
    expect((done as Task).status?.state).toBe(TaskState.TASK_STATE_COMPLETED);
    const [got] = await receiver.waitFor(path, 1);
    expect(got.headers.authorization).toBe(`Bearer ${HOOK_SECRET}`);
    expect(got.headers['x-a2a-notification-token']).toBe(HOOK_TOKEN);
    expect(JSON.parse(got.body)).toEqual({ statusUpdate: { taskId: devTask, contextId: expect.any(String), status: { state: 'TASK_STATE_COMPLETED' } } });
  });

  it('a redirect from the receiver is a failed delivery, never followed; the task still completes', async () => {
    const r = await rpc(dev, 'SendMessage', inline(`${receiver.origin}/redirect`));
    expect(r.status).toBe(200);
    expect(r.body.result.task.status.state).toBe('TASK_STATE_COMPLETED');
    await receiver.waitFor('/redirect', 2);
    await new Promise((res) => setTimeout(res, 150));
    expect(receiver.to('/after-redirect')).toEqual([]);
    const id = r.body.result.task.id;
    expect(warnings().filter((l) => l.includes(`task ${id} `))).toEqual([
      `warn push notification not delivered for task ${id} to ${receiver.origin}: redirect (HTTP 302) refused A2APushNotifications`,
      `warn push notification not delivered for task ${id} to ${receiver.origin}: redirect (HTTP 302) refused A2APushNotifications`,
    ]);
  });

  it('a receiver that never answers is cut off after timeoutMs; the call answers at once and the task completes', async () => {
    const started = Date.now();
    const r = await rpc(dev, 'SendMessage', inline(`${receiver.origin}/hang`));
    expect(r.status).toBe(200);
    expect(r.body.result.task.status.state).toBe('TASK_STATE_COMPLETED');
    expect(Date.now() - started).toBeLessThan(400);
    const id = r.body.result.task.id;
    const line = `warn push notification not delivered for task ${id} to ${receiver.origin}: no answer within 400 ms A2APushNotifications`;
    // Two events, delivered in order: each waits its own 400 ms.
    for (let i = 0; i < 40 && warnings().filter((l) => l === line).length < 2; i++) await new Promise((res) => setTimeout(res, 50));
    expect(warnings().filter((l) => l === line)).toHaveLength(2);
    expect(Date.now() - started).toBeLessThan(2000);
    const g = await rpc(dev, 'GetTask', { id });
    expect(g.body.result.status.state).toBe('TASK_STATE_COMPLETED');
    await new Promise((res) => setTimeout(res, 50));
    expect(receiver.openConnections).toBe(0);
  });

  it('a 500 from the receiver is a failed delivery, logged, and the task completes', async () => {
    const r = await rpc(dev, 'SendMessage', inline(`${receiver.origin}/fail`));
    expect(r.body.result.task.status.state).toBe('TASK_STATE_COMPLETED');
    await receiver.waitFor('/fail', 2);
    const id = r.body.result.task.id;
    for (let i = 0; i < 20 && warnings().filter((l) => l.includes(`task ${id} `)).length < 2; i++) await new Promise((res) => setTimeout(res, 25));
    expect(warnings().filter((l) => l.includes(`task ${id} `))).toEqual([
      `warn push notification not delivered for task ${id} to ${receiver.origin}: HTTP 500 A2APushNotifications`,
      `warn push notification not delivered for task ${id} to ${receiver.origin}: HTTP 500 A2APushNotifications`,
    ]);
  });

  it('a notification larger than maxPayloadBytes is not sent (the task event carries the message)', async () => {
    const path = `/hook-${randomUUID()}`;
    const before = receiver.connections;
    const r = await rpc(dev, 'SendMessage', {
      ...wireMessage('x'.repeat(5000)),
      configuration: { taskPushNotificationConfig: { url: `${receiver.origin}${path}` } },
    });
    const id = r.body.result.task.id;
    expect(r.body.result.task.status.state).toBe('TASK_STATE_COMPLETED');
    // The status update is small and is delivered; the task snapshot (with the 5000-character message) is not.
    const got = await receiver.waitFor(path, 1);
    await new Promise((res) => setTimeout(res, 100));
    expect(receiver.to(path)).toHaveLength(1);
    expect(JSON.parse(got[0].body).statusUpdate.taskId).toBe(id);
    expect(receiver.connections).toBe(before + 1);
    expect(warnings().some((l) => l.startsWith(`warn push notification not sent for task ${id}: `) && l.includes('exceed maxPayloadBytes 4096'))).toBe(true);
  });

  it('the connection goes to the address that was checked: one resolution per delivery, Host stays the name', async () => {
    const path = `/hook-${randomUUID()}`;
    const before = lookups.filter((h) => h === 'hooks.test').length;
    const r = await rpc(dev, 'SendMessage', inline(`http://hooks.test:${receiver.port}${path}`));
    expect(r.body.result.task.status.state).toBe('TASK_STATE_COMPLETED');
    const got = await receiver.waitFor(path, 2);
    expect(got.map((g) => g.headers.host)).toEqual([`hooks.test:${receiver.port}`, `hooks.test:${receiver.port}`]);
    // One when the config was created, one per delivery; nothing resolved the name a second time to connect.
    expect(lookups.filter((h) => h === 'hooks.test').length - before).toBe(3);
  });

  it('checked again at delivery: a stored config whose host now resolves to loopback is not contacted', async () => {
    const taskId = await newTask(dev);
    // A config stored earlier (by another replica, in a persistent store, or before the host's DNS changed).
    const caller = { issuer: idp.issuer, subject: 'client-a', clientId: 'client-a', scopes: ['work:run'], claims: {}, expiresAt: 0, actors: [] };
    const ctx = new ServerCallContext({ user: new A2AUser(caller) });
    await devStore.save(taskId, ctx, TaskPushNotificationConfig.fromJSON({ taskId, id: 'old', url: `https://flip.test:${receiver.port}/hook-flip` }));
    const list = await rpc(dev, 'ListTaskPushNotificationConfigs', { taskId });
    expect(list.body.result.configs).toEqual([{ id: 'old', taskId, url: `https://flip.test:${receiver.port}/hook-flip` }]);
    const before = receiver.connections;
    const r = await rpc(dev, 'SendMessage', { message: { ...wireMessage('done').message, taskId } });
    expect(r.body.result.task.status.state).toBe('TASK_STATE_COMPLETED');
    for (let i = 0; i < 20 && !warnings().some((l) => l.includes(`task ${taskId} `)); i++) await new Promise((res) => setTimeout(res, 25));
    expect(warnings().filter((l) => l.includes(`task ${taskId} `))).toEqual([
      `warn push notification not delivered for task ${taskId} to https://flip.test:${receiver.port}: URL refused: forbidden_address (loopback) A2APushNotifications`,
    ]);
    await expectNoDelivery(before);
  });

  it('at most 10 configs per task by default (maxConfigsPerTask)', async () => {
    const taskId = await newTask(dev);
    for (let i = 0; i < 10; i++) {
      const r = await rpc(dev, 'CreateTaskPushNotificationConfig', { taskId, id: `c${i}`, url: `${receiver.origin}/hook-many` });
      expect(r.body.result).toEqual({ id: `c${i}`, taskId, url: `${receiver.origin}/hook-many` });
    }
    const r = await rpc(dev, 'CreateTaskPushNotificationConfig', { taskId, url: `${receiver.origin}/hook-many` });
    expect(r.body).toEqual({
      jsonrpc: '2.0',
      id: 7,
      error: { code: -32602, message: 'pushNotificationConfig refused: a task has at most 10 push notification configs', data: INVALID_PARAMS_DATA },
    });
    // Replacing an existing config is not one more.
    const again = await rpc(dev, 'CreateTaskPushNotificationConfig', { taskId, id: 'c3', url: `${receiver.origin}/hook-many-3` });
    expect(again.body.result).toEqual({ id: 'c3', taskId, url: `${receiver.origin}/hook-many-3` });
  });

  it('a task that outruns a hanging receiver: at most 100 notifications wait, the rest are dropped and logged', async () => {
    const r = await rpc(dev, 'SendMessage', { ...wireMessage('flood'), configuration: { taskPushNotificationConfig: { url: `${slow.origin}/hang` } } });
    expect(r.body.result.task.status.state).toBe('TASK_STATE_COMPLETED');
    const id = r.body.result.task.id;
    const events = FLOOD + 2; // the task, the working updates, the completion
    const dropped = () =>
      warnings().filter((l) => l === `warn push notification dropped for task ${id}: 100 notifications already waiting A2APushNotifications`);
    const failed = () => warnings().filter((l) => l.startsWith(`warn push notification not delivered for task ${id} `));
    await slow.waitFor('/hang', 1);
    expect(dropped().length).toBeGreaterThan(0);
    // One at a time, in order: never more than one open connection to the receiver.
    expect(slow.openConnections).toBe(1);
    // Stop the receiver: the waiting notifications now fail fast, and every event is accounted for exactly once.
    await slow.stop();
    for (let i = 0; i < 100 && dropped().length + failed().length < events; i++) await new Promise((res) => setTimeout(res, 50));
    expect(dropped().length + failed().length).toBe(events);
    expect(dropped().length).toBeGreaterThanOrEqual(events - 100 - 1);
  });

  it('no log line holds a credential, a token, or a webhook path', () => {
    const all = logger.lines.join('\n');
    for (const secret of [HOOK_SECRET, HOOK_TOKEN, 'dXNlcjpwdw==', callerToken, 'latest/meta-data']) expect(all).not.toContain(secret);
    expect(warnings().length).toBeGreaterThan(0);
  });
});
