import { randomUUID } from 'node:crypto';
import { Controller, Module, Post, type INestApplication } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { ExpressAdapter } from '@nestjs/platform-express';
import { FastifyAdapter } from '@nestjs/platform-fastify';
import request from 'supertest';
import { SendMessageRequest, TaskState, type Task } from '@a2a-js/sdk';
import { AgentEvent, type AgentExecutor } from '@a2a-js/sdk/server';
import { ClientFactory, ClientFactoryOptions, RestTransportFactory, type Client } from '@a2a-js/sdk/client';
import { A2AError, UnsupportedOperationError, toRestErrorBody } from '@a2a-js/sdk/errors';
import {
  A2AAuthModule,
  A2AHttpTransport,
  A2ASkillAuthorizer,
  AgentCardService,
  AgentSkill,
  RequireScopes,
  createA2ARequestHandler,
  enableA2AMediaType,
  type A2AAuthModuleOptions,
} from 'nestjs-a2a-auth';
import { unsupportedOperationBody } from '../libs/a2a-auth/src/nest/http/a2a-rest-error';
import { A2AJsonRpcController, A2ARestController } from '../apps/expense-agent/src/a2a/a2a.controllers';
import { freePort } from './fixtures/card-app';
import { TestIssuer } from './fixtures/auth-harness';
import { CapturingLogger, PLATFORMS, type Platform } from './fixtures/test-app';

const ERROR_INFO = (reason: string) => [{ '@type': 'type.googleapis.com/google.rpc.ErrorInfo', reason, domain: 'a2a-protocol.org' }];
const PUSH_NOT_SUPPORTED = {
  error: { code: 400, status: 'FAILED_PRECONDITION', message: 'Push Notification is not supported', details: ERROR_INFO('PUSH_NOTIFICATION_NOT_SUPPORTED') },
};
// Never delivered to: each test deletes its config before the task sees another event (no request leaves 127.0.0.1).
const WEBHOOK = 'https://client.example.com/a2a/webhook';
// The webhook host is allow-listed and resolves to loopback only: no test can ever send traffic off this machine (the
// configs are deleted before any task event, so nothing is delivered anyway).
const PUSH_POLICY = { allowedOrigins: ['https://client.example.com'], lookup: async () => [{ address: '127.0.0.1', family: 4 as const }] };

/** The agent's one skill; reached only through A2A messages. */
@Controller('work')
class WorkSkillController {
  @AgentSkill({ id: 'work', name: 'Work', description: 'Starts a long-running task' })
  @RequireScopes('work:run')
  @Post()
  work() {
    return { ok: true };
  }
}

/** Every message starts a task that stays `TASK_STATE_WORKING`, so it can be subscribed to and cancelled. */
const taskExecutor: AgentExecutor = {
  execute: async (ctx, bus) => {
    const task: Task = {
      id: ctx.taskId,
      contextId: ctx.contextId,
      status: { state: TaskState.TASK_STATE_WORKING, message: undefined, timestamp: new Date().toISOString() },
      artifacts: [],
      history: [],
      metadata: undefined,
    };
    bus.publish(AgentEvent.task(task));
    bus.finished();
  },
  cancelTask: async () => undefined,
};

interface AgentApp {
  app: INestApplication;
  base: string;
}

/** The sample's A2A controllers over a task-making executor, on `platform`, with enableA2AMediaType as the sample's main.ts. */
async function startAgent(
  platform: Platform,
  idp: TestIssuer,
  card: Partial<NonNullable<A2AAuthModuleOptions['card']>>,
  logger: CapturingLogger,
): Promise<AgentApp> {
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  @Module({
    imports: [
      A2AAuthModule.forRoot({
        issuer: idp.issuer,
        jwksUri: idp.jwks.jwksUri,
        audience: idp.audience,
        scopes: { 'work:run': 'Run work' },
        tokenUrl: `${idp.jwks.url}/token`,
        card: {
          name: 'Work Agent',
          description: 'Long-running tasks',
          url: base,
          interfaces: [
            { url: '/a2a/jsonrpc', protocolBinding: 'JSONRPC' },
            { url: '/', protocolBinding: 'HTTP+JSON' },
          ],
          ...card,
        },
      }),
    ],
    controllers: [WorkSkillController, A2AJsonRpcController, A2ARestController],
    providers: [
      A2ASkillAuthorizer,
      {
        provide: A2AHttpTransport,
        useFactory: (cards: AgentCardService, authz: A2ASkillAuthorizer) =>
          new A2AHttpTransport(() => createA2ARequestHandler(cards, taskExecutor, { pushNotifications: PUSH_POLICY }), authz),
        inject: [AgentCardService, A2ASkillAuthorizer],
      },
    ],
  })
  class WorkAgentModule {}
  const adapter = platform === 'express' ? new ExpressAdapter() : new FastifyAdapter();
  const app = await NestFactory.create(WorkAgentModule, adapter as never, { logger, abortOnError: false });
  enableA2AMediaType(app);
  await app.listen(port, '127.0.0.1');
  return { app, base };
}

/** The official SDK client over HTTP+JSON (its RestTransport), sending `token` on every request. */
async function restClient(base: string, token: string): Promise<Client> {
  const fetchImpl: typeof fetch = (input, init) => {
    const headers = new Headers(init?.headers);
    headers.set('Authorization', `Bearer ${token}`);
    return fetch(input, { ...init, headers });
  };
  const factory = new ClientFactory(
    ClientFactoryOptions.createFrom(ClientFactoryOptions.default, {
      transports: [new RestTransportFactory({ fetchImpl })],
      preferredTransports: ['HTTP+JSON'],
    }),
  );
  const client = await factory.createFromUrl(`${base}/`);
  expect(client.transport.protocolName).toBe('HTTP+JSON');
  return client;
}

const work = () =>
  SendMessageRequest.fromJSON({ message: { messageId: randomUUID(), role: 'ROLE_USER', parts: [{ text: 'start' }], metadata: { skillId: 'work' } } });

/** Sends a message and returns the task it started. */
async function startTask(client: Client): Promise<Task> {
  const r = await client.sendMessage(work());
  if ('messageId' in r) throw new Error('expected a task');
  expect(r.status?.state).toBe(TaskState.TASK_STATE_WORKING);
  return r;
}

describe('unsupportedOperationBody (the extended card without the optional SDK)', () => {
  it('is exactly the SDK’s toRestErrorBody for UnsupportedOperationError', () => {
    expect(unsupportedOperationBody('m')).toStrictEqual(toRestErrorBody(new UnsupportedOperationError('m'), 400));
  });
});

describe.each(PLATFORMS)('A2A protocol conformance of the bindings on %s', (platform) => {
  let idp: TestIssuer;
  let pushOn: AgentApp;
  let pushOff: AgentApp;
  let token: string;
  let otherToken: string;
  const logger = new CapturingLogger();

  beforeAll(async () => {
    idp = await TestIssuer.start({ audience: 'https://work-agent.example' });
    pushOn = await startAgent(platform, idp, { capabilities: { streaming: true, pushNotifications: true }, extendedCard: true }, logger);
    pushOff = await startAgent(platform, idp, { capabilities: { streaming: true } }, logger);
    token = await idp.mint({ claims: { scope: 'work:run', sub: 'caller-a', client_id: 'client-a' } });
    otherToken = await idp.mint({ claims: { scope: 'work:run', sub: 'caller-b', client_id: 'client-b' } });
  });
  afterAll(async () => {
    await pushOn?.app.close();
    await pushOff?.app.close();
    await idp?.close();
  });

  const auditLines = () => logger.lines.filter((l) => l.includes('"type":"a2a.auth"'));
  const call = (base: string, method: 'get' | 'post' | 'delete', path: string, tok?: string) => {
    let r = request(base)[method](path).set('A2A-Version', '1.0');
    if (tok) r = r.set('Authorization', `Bearer ${tok}`);
    return r;
  };
  const rpc = (base: string, body: unknown, tok: string, query = '', version: string | null = '1.0') => {
    let r = request(base).post(`/a2a/jsonrpc${query}`).set('Content-Type', 'application/json').set('Authorization', `Bearer ${tok}`);
    if (version) r = r.set('A2A-Version', version);
    return r.send(JSON.stringify(body));
  };

  describe('push-notification configs over HTTP+JSON (§11.3.3)', () => {
    it('capabilities.pushNotifications off: all four routes answer 400 PushNotificationNotSupportedError, not 404', async () => {
      const routes: Array<['get' | 'post' | 'delete', string]> = [
        ['post', '/tasks/t-1/pushNotificationConfigs'],
        ['get', '/tasks/t-1/pushNotificationConfigs'],
        ['get', '/tasks/t-1/pushNotificationConfigs/cfg-1'],
        ['delete', '/tasks/t-1/pushNotificationConfigs/cfg-1'],
      ];
      for (const [method, path] of routes) {
        let r = call(pushOff.base, method, path, token);
        if (method === 'post') r = r.set('Content-Type', 'application/json').send(JSON.stringify({ url: WEBHOOK }));
        const before = auditLines().length;
        const res = await r;
        expect([method, path, res.status]).toEqual([method, path, 400]);
        expect(res.headers['content-type']).toBe('application/a2a+json');
        expect(res.headers['cache-control']).toBe('no-store');
        expect(JSON.parse(res.text)).toStrictEqual(PUSH_NOT_SUPPORTED);
        expect(auditLines().length - before).toBe(1); // one audit decision per call
      }
      // The JSON-RPC binding already said the same (-32003); both bindings now agree.
      const j = await rpc(pushOff.base, { jsonrpc: '2.0', id: 1, method: 'CreateTaskPushNotificationConfig', params: { taskId: 't-1', url: WEBHOOK } }, token);
      expect(j.body).toStrictEqual({
        jsonrpc: '2.0',
        id: 1,
        error: { code: -32003, message: 'Push Notification is not supported', data: ERROR_INFO('PUSH_NOTIFICATION_NOT_SUPPORTED') },
      });
    });

    it('authenticated callers only: 401 with the challenge on every route, with push on and off', async () => {
      for (const app of [pushOn, pushOff]) {
        for (const [method, path] of [
          ['post', '/tasks/t-1/pushNotificationConfigs'],
          ['get', '/tasks/t-1/pushNotificationConfigs'],
          ['get', '/tasks/t-1/pushNotificationConfigs/cfg-1'],
          ['delete', '/tasks/t-1/pushNotificationConfigs/cfg-1'],
        ] as const) {
          const res = await call(app.base, method, path);
          expect([method, path, res.status]).toEqual([method, path, 401]);
          expect(res.headers['www-authenticate']).toBe(`Bearer realm="Work Agent", resource_metadata="${app.base}/.well-known/oauth-protected-resource"`);
        }
      }
    });

    it('capabilities.pushNotifications on: the SDK REST client creates, gets, lists and deletes a config of its own task', async () => {
      const client = await restClient(pushOn.base, token);
      const task = await startTask(client);
      const created = await client.createTaskPushNotificationConfig({
        tenant: '',
        id: 'cfg-1',
        taskId: task.id,
        url: WEBHOOK,
        token: 'opaque',
        authentication: undefined,
      });
      expect(created).toStrictEqual({ tenant: '', id: 'cfg-1', taskId: task.id, url: WEBHOOK, token: 'opaque', authentication: undefined });
      expect(await client.getTaskPushNotificationConfig({ tenant: '', taskId: task.id, id: 'cfg-1' })).toStrictEqual(created);
      expect(await client.listTaskPushNotificationConfig({ tenant: '', taskId: task.id, pageSize: 0, pageToken: '' })).toStrictEqual({
        configs: [created],
        nextPageToken: '',
      });
      await client.deleteTaskPushNotificationConfig({ tenant: '', taskId: task.id, id: 'cfg-1' });
      const gone = await client.getTaskPushNotificationConfig({ tenant: '', taskId: task.id, id: 'cfg-1' }).catch((e: unknown) => e);
      expect(gone).toBeInstanceOf(A2AError);
      expect((gone as A2AError & { statusCode: number }).statusCode).toBe(404);
    });

    it('on the wire: 201 with the config, 200 list and get, 204 on delete; the path names the task; others’ tasks are 404', async () => {
      const client = await restClient(pushOn.base, token);
      const task = await startTask(client);
      const path = `/tasks/${task.id}/pushNotificationConfigs`;
      const c = await call(pushOn.base, 'post', path, token)
        .set('Content-Type', 'application/a2a+json')
        .send(JSON.stringify({ id: 'cfg-2', taskId: 'some-other-task', url: WEBHOOK }));
      expect(c.status).toBe(201);
      expect(c.headers['content-type']).toBe('application/a2a+json');
      expect(JSON.parse(c.text)).toStrictEqual({ id: 'cfg-2', taskId: task.id, url: WEBHOOK });
      const l = await call(pushOn.base, 'get', path, token);
      expect([l.status, JSON.parse(l.text)]).toStrictEqual([200, { configs: [{ id: 'cfg-2', taskId: task.id, url: WEBHOOK }] }]);
      const g = await call(pushOn.base, 'get', `${path}/cfg-2`, token);
      expect([g.status, JSON.parse(g.text)]).toStrictEqual([200, { id: 'cfg-2', taskId: task.id, url: WEBHOOK }]);
      // Tasks belong to their caller: another client cannot read, list, add or delete this task's configs.
      for (const [method, p] of [
        ['get', path],
        ['get', `${path}/cfg-2`],
        ['delete', `${path}/cfg-2`],
        ['post', path],
      ] as const) {
        let r = call(pushOn.base, method, p, otherToken);
        if (method === 'post') r = r.set('Content-Type', 'application/json').send(JSON.stringify({ url: WEBHOOK }));
        const res = await r;
        expect([method, p, res.status, JSON.parse(res.text).error.status]).toEqual([method, p, 404, 'NOT_FOUND']);
      }
      const d = await call(pushOn.base, 'delete', `${path}/cfg-2`, token);
      expect([d.status, d.text]).toStrictEqual([204, '']);
      const bad = await call(pushOn.base, 'post', path, token).set('Content-Type', 'application/json').send('[1]');
      expect(bad.status).toBe(400);
      expect(JSON.parse(bad.text).error).toMatchObject({ code: 400, status: 'INVALID_ARGUMENT', message: 'request body must be a JSON object' });
      const unknown = await call(pushOn.base, 'get', '/tasks/no-such-task/pushNotificationConfigs', token);
      expect([unknown.status, JSON.parse(unknown.text).error.status]).toStrictEqual([404, 'NOT_FOUND']);
    });
  });

  describe('POST /tasks/{id}:cancel and :subscribe with an empty application/json body (the SDK REST client)', () => {
    it('resubscribeTask and cancelTask of the official SDK client work', async () => {
      const client = await restClient(pushOn.base, token);
      const task = await startTask(client);
      const events: string[] = [];
      for await (const ev of client.resubscribeTask({ tenant: '', id: task.id })) {
        events.push(`${ev.payload?.$case}:${ev.payload?.$case === 'task' ? ev.payload.value.id : ''}`);
      }
      expect(events).toStrictEqual([`task:${task.id}`]);
      const cancelled = await client.cancelTask({ tenant: '', id: task.id, metadata: {} });
      expect(cancelled.id).toBe(task.id);
      expect(cancelled.status?.state).toBe(TaskState.TASK_STATE_CANCELED);
    });

    it('on the wire: Content-Type application/json and no body is 200 on both actions, and a bad body is still the A2A 400', async () => {
      const client = await restClient(pushOn.base, token);
      const task = await startTask(client);
      for (const ct of ['application/json', 'application/a2a+json', 'application/json; charset=utf-8']) {
        const s = await call(pushOn.base, 'post', `/tasks/${task.id}:subscribe`, token).set('Content-Type', ct).send('');
        expect([ct, s.status, s.headers['content-type']]).toEqual([ct, 200, 'text/event-stream']);
      }
      const c = await call(pushOn.base, 'post', `/tasks/${task.id}:cancel`, token).set('Content-Type', 'application/json').send('');
      expect(c.status).toBe(200);
      expect(JSON.parse(c.text).status.state).toBe('TASK_STATE_CANCELED');
      // An empty body is no message: /message:send answers the A2A invalid-argument error, as on express.
      const m = await call(pushOn.base, 'post', '/message:send', token).set('Content-Type', 'application/json').send('');
      expect(m.status).toBe(400);
      expect(JSON.parse(m.text).error.status).toBe('INVALID_ARGUMENT');
      // Malformed JSON is still refused by the platform's parser.
      const bad = await call(pushOn.base, 'post', `/tasks/${task.id}:cancel`, token).set('Content-Type', 'application/json').send('{oops');
      expect(bad.status).toBe(400);
    });
  });

  describe('Get Extended Agent Card when it is off (§3.3.4)', () => {
    it('JSON-RPC GetExtendedAgentCard is the SDK’s UnsupportedOperationError -32004, and GET /extendedAgentCard its HTTP+JSON twin', async () => {
      const j = await rpc(pushOff.base, { jsonrpc: '2.0', id: 4, method: 'GetExtendedAgentCard' }, token);
      expect(j.status).toBe(200);
      expect(j.body.error.code).toBe(-32004);
      expect(j.body.error.data).toStrictEqual(ERROR_INFO('UNSUPPORTED_OPERATION'));
      const r = await call(pushOff.base, 'get', '/extendedAgentCard', token);
      expect(r.status).toBe(400);
      expect(JSON.parse(r.text).error.details).toStrictEqual(ERROR_INFO('UNSUPPORTED_OPERATION'));
    });
  });

  describe('?A2A-Version= in the query string (§3.6.1)', () => {
    it('is honoured on both bindings when no header is sent', async () => {
      const client = await restClient(pushOn.base, token);
      const task = await startTask(client);
      const j = await rpc(pushOn.base, { jsonrpc: '2.0', id: 5, method: 'GetTask', params: { id: task.id } }, token, '?A2A-Version=1.0', null);
      expect(j.body.error).toBeUndefined();
      expect(j.body.result.id).toBe(task.id);
      const g = await request(pushOn.base).get(`/tasks/${task.id}?A2A-Version=1.0`).set('Authorization', `Bearer ${token}`);
      expect(g.status).toBe(200);
      expect(JSON.parse(g.text).id).toBe(task.id);
      const s = await request(pushOn.base)
        .post('/message:send?A2A-Version=1.0')
        .set('Authorization', `Bearer ${token}`)
        .set('Content-Type', 'application/json')
        .send(JSON.stringify(SendMessageRequest.toJSON(work())));
      expect(s.status).toBe(200);
      expect(JSON.parse(s.text).task.status.state).toBe('TASK_STATE_WORKING');
    });

    it('an unsupported query version is VersionNotSupportedError naming it; the header wins over the query', async () => {
      const j = await rpc(pushOn.base, { jsonrpc: '2.0', id: 6, method: 'ListTasks', params: {} }, token, '?A2A-Version=2.0', null);
      expect(j.body.error.code).toBe(-32009);
      expect(j.body.error.message).toBe("The requested A2A protocol version '2.0' is not supported. Supported versions: 1.0");
      const r = await request(pushOn.base).get('/tasks?A2A-Version=2.0').set('Authorization', `Bearer ${token}`);
      expect(r.status).toBe(400);
      expect(JSON.parse(r.text).error.status).toBe('FAILED_PRECONDITION');
      const headerWins = await request(pushOn.base).get('/tasks?A2A-Version=0.3').set('Authorization', `Bearer ${token}`).set('A2A-Version', '1.0');
      expect(headerWins.status).toBe(200);
      const headerWins2 = await rpc(pushOn.base, { jsonrpc: '2.0', id: 7, method: 'ListTasks', params: {} }, token, '?A2A-Version=1.0', '0.3');
      expect(headerWins2.body.error.code).toBe(-32009);
      // Without header and query the version is 0.3, as before.
      const none = await request(pushOn.base).get('/tasks').set('Authorization', `Bearer ${token}`);
      expect(none.status).toBe(400);
    });
  });
});
