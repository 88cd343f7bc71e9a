import { randomUUID } from 'node:crypto';
import request from 'supertest';
import { decodeJwt } from 'jose';
import { SendMessageRequest, taskStateToJSON, type StreamResponse, type Task, type TaskStatusUpdateEvent } from '@a2a-js/sdk';
import {
  A2AAuthorizationRequiredError,
  ClientCredentialsTokenProvider,
  HUMAN_APPROVAL_EXTENSION_URI,
  IN_TASK_AUTH_EXTENSION_URI,
  connectA2AAgent,
} from 'nestjs-a2a-auth';
import { bootstrap, type RunningAgent } from '../apps/expense-agent/src/main';
import { runInTaskDemo } from '../apps/expense-agent/src/a2a/demo-in-task';
import { PLATFORMS, CapturingLogger } from './fixtures/test-app';

const SUBMITTER = { clientId: 'expense-submitter', clientSecret: 'e2e-submitter-secret-5e1d' };
const APPROVER = { clientId: 'expense-approver', clientSecret: 'e2e-approver-secret-8a3c' };
const BINDINGS = ['JSONRPC', 'HTTP+JSON'] as const;
type Binding = (typeof BINDINGS)[number];
type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

/** A user message as ProtoJSON: data or text, optional skill id and task. */
function wire(content: { data?: Json; text?: string }, o: { skillId?: string; taskId?: string; contextId?: string } = {}): Json {
  return {
    message: {
      messageId: randomUUID(),
      role: 'ROLE_USER',
      parts: [content.data ? { data: content.data } : { text: content.text }],
      ...(o.skillId ? { metadata: { skillId: o.skillId } } : {}),
      ...(o.taskId ? { taskId: o.taskId } : {}),
      ...(o.contextId ? { contextId: o.contextId } : {}),
    },
  };
}

/** Reads a `text/event-stream` response event by event (each `data:` line parsed as JSON). */
class SseReader {
  private buf = '';
  private readonly reader: ReadableStreamDefaultReader<Uint8Array>;
  constructor(res: Response) {
    this.reader = res.body!.getReader();
  }
  /** The next event, or `undefined` when the stream ended; fails after `ms` milliseconds. */
  async next(ms = 10_000): Promise<Json | undefined> {
    const deadline = Date.now() + ms;
    for (;;) {
      const i = this.buf.indexOf('\n\n');
      if (i >= 0) {
        const chunk = this.buf.slice(0, i);
        this.buf = this.buf.slice(i + 2);
        const line = chunk.split('\n').find((l) => l.startsWith('data:'));
        if (line) return JSON.parse(line.slice(5)) as Json;
        continue;
      }
      const left = deadline - Date.now();
      if (left <= 0) throw new Error('no SSE event in time');
      let timer: NodeJS.Timeout | undefined;
      const r = await Promise.race([
        this.reader.read(),
        new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error('no SSE event in time')), left))),
      ]).finally(() => clearTimeout(timer));
      if (r.done) return undefined;
      this.buf += Buffer.from(r.value).toString('utf8').replace(/\r\n/g, '\n');
    }
  }
  async cancel(): Promise<void> {
    await this.reader.cancel().catch(() => undefined);
  }
}

describe.each(PLATFORMS)('in-task authorization in the sample agent on %s', (platform) => {
  let agent: RunningAgent;
  const logger = new CapturingLogger();
  let tokenUrl: string;
  let submitterToken: string;
  let approverToken: string;
  let largeToken: string;

  beforeAll(async () => {
    agent = await bootstrap({
      platform,
      port: 0,
      env: { DEV_SUBMITTER_SECRET: SUBMITTER.clientSecret, DEV_APPROVER_SECRET: APPROVER.clientSecret, EXPENSE_APPROVAL_LIMIT: '1000' },
      logger,
      banner: false,
    });
    tokenUrl = agent.devAuth!.tokenUrl;
    submitterToken = await new ClientCredentialsTokenProvider({ tokenUrl, ...SUBMITTER, scopes: ['expense:submit', 'expense:read'] }).getAccessToken();
    approverToken = await new ClientCredentialsTokenProvider({ tokenUrl, ...APPROVER, scopes: ['expense:approve', 'expense:read'] }).getAccessToken();
    largeToken = await new ClientCredentialsTokenProvider({ tokenUrl, ...APPROVER, scopes: ['expense:approve-large'] }).getAccessToken();
  });
  afterAll(() => agent?.close());

  /** One SendMessage on a binding: the JSON-RPC `result` or HTTP+JSON body, with the HTTP status and headers. */
  const send = async (binding: Binding, params: Json, token?: string) => {
    const path = binding === 'JSONRPC' ? '/a2a/jsonrpc' : '/message:send';
    const body = binding === 'JSONRPC' ? { jsonrpc: '2.0', id: 1, method: 'SendMessage', params } : params;
    let r = request(agent.url).post(path).set('Content-Type', 'application/json').set('A2A-Version', '1.0');
    if (token) r = r.set('Authorization', `Bearer ${token}`);
    const res = await r.send(JSON.stringify(body));
    const payload = binding === 'JSONRPC' && res.status === 200 ? (res.body.result ?? { error: res.body.error }) : res.body;
    return { status: res.status, headers: res.headers, payload: payload as Json };
  };
  const getTask = async (binding: Binding, id: string, token: string) => {
    if (binding === 'JSONRPC') {
      const res = await request(agent.url)
        .post('/a2a/jsonrpc')
        .set('Content-Type', 'application/json')
        .set('A2A-Version', '1.0')
        .set('Authorization', `Bearer ${token}`)
        .send(JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'GetTask', params: { id } }));
      return res.body.result as Json;
    }
    const res = await request(agent.url).get(`/tasks/${id}`).set('A2A-Version', '1.0').set('Authorization', `Bearer ${token}`);
    return res.body as Json;
  };
  const stream = async (binding: Binding, params: Json, token: string) => {
    const path = binding === 'JSONRPC' ? '/a2a/jsonrpc' : '/message:stream';
    const body = binding === 'JSONRPC' ? { jsonrpc: '2.0', id: 3, method: 'SendStreamingMessage', params } : params;
    const res = await fetch(`${agent.url}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'text/event-stream', 'a2a-version': '1.0', authorization: `Bearer ${token}` },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(20_000),
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const sse = new SseReader(res);
    return { next: async () => unwrap(binding, await sse.next()), cancel: () => sse.cancel() };
  };
  const unwrap = (binding: Binding, ev: Json | undefined) => (ev && binding === 'JSONRPC' ? ev.result : ev);
  const submit = async (amount: number) => {
    const r = await send(
      'HTTP+JSON',
      wire({ data: { amount, currency: 'EUR', description: `expense of ${amount}` } }, { skillId: 'submit-expense' }),
      submitterToken,
    );
    expect(r.status).toBe(200);
    return r.payload.message.parts[0].data.expense.id as string;
  };
  const statusData = (task: Json) => (task.status.message.parts as Json[]).find((p) => p.data)?.data as Json;
  const statusText = (task: Json) => (task.status.message.parts as Json[]).find((p) => p.text)?.text as string;

  it('the card declares the in-task authorization extension and the step-up scope', async () => {
    const res = await request(agent.url).get('/.well-known/agent-card.json');
    expect(res.body.capabilities.extensions).toEqual([
      { uri: IN_TASK_AUTH_EXTENSION_URI, description: expect.stringContaining('TASK_STATE_AUTH_REQUIRED'), params: { scopes: ['expense:approve-large'] } },
      // The embedded dev server gives the agent a CIBA client, so human approval is declared as well.
      {
        uri: HUMAN_APPROVAL_EXTENSION_URI,
        description: "A task may wait in TASK_STATE_AUTH_REQUIRED for a named user's approval (see docs/human-approval.md)",
      },
    ]);
    expect(res.body.securitySchemes.oauth2.oauth2SecurityScheme.flows.clientCredentials.scopes['expense:approve-large']).toBeDefined();
  });

  it('the demo steps (demo-in-task.ts) on both bindings: generic client, refused skill, step-up granted and refused', async () => {
    const r = await runInTaskDemo({
      agentUrl: agent.url,
      submitter: { id: SUBMITTER.clientId, secret: SUBMITTER.clientSecret },
      approver: { id: APPROVER.clientId, secret: APPROVER.clientSecret },
    });
    expect(r.map((x) => [x.binding, x.ok])).toEqual(
      BINDINGS.flatMap((b) => [
        [b, true],
        [b, true],
        [b, true],
        [b, true],
      ]),
    );
    expect(r.map((x) => x.detail)).toEqual(
      BINDINGS.flatMap(() => [
        'message',
        'TASK_STATE_REJECTED: skill approve-expense needs the scopes expense:approve; the token lacks expense:approve',
        expect.stringMatching(/^TASK_STATE_COMPLETED/),
        'A2AAuthorizationRequiredError (scope_not_allowed)',
      ]),
    );
  });

  describe.each(BINDINGS)('over %s', (binding) => {
    it('a generic client (no skillId) uses every skill its token allows', async () => {
      const sub = await send(binding, wire({ data: { amount: 12, currency: 'EUR', description: 'Lunch' } }), submitterToken);
      expect(sub.status).toBe(200);
      const expense = sub.payload.message.parts[0].data.expense;
      expect(expense).toMatchObject({ amount: 12, status: 'submitted', submittedBy: SUBMITTER.clientId });
      const list = await send(binding, wire({ text: 'list' }), submitterToken);
      expect(list.payload.message.parts[0].data.expenses.map((e: Json) => e.id)).toContain(expense.id);
      const approved = await send(binding, wire({ text: `approve ${expense.id}` }), approverToken);
      expect(approved.status).toBe(200);
      expect(approved.payload.message.parts[0].data.expense).toMatchObject({ id: expense.id, status: 'approved', approvedBy: APPROVER.clientId });
    });

    it('a generic client is refused the skills its token does not allow: TASK_STATE_REJECTED naming the missing scopes', async () => {
      const id = await submit(20);
      const r = await send(binding, wire({ text: `approve ${id}` }), submitterToken);
      expect(r.status).toBe(200);
      const task = r.payload.task;
      expect(task.status.state).toBe('TASK_STATE_REJECTED');
      expect(statusText(task)).toBe('skill approve-expense needs the scopes expense:approve; the token lacks expense:approve');
      expect(statusData(task)).toEqual({
        error: 'insufficient_scope',
        reason: 'insufficient_scope',
        skillId: 'approve-expense',
        requiredScopes: ['expense:approve'],
        missingScopes: ['expense:approve'],
      });
      // Nothing ran: the expense is still submitted.
      const seen = await send(binding, wire({ data: { skill: 'list-expenses', id } }), submitterToken);
      expect(seen.payload.message.parts[0].data.expense.status).toBe('submitted');
      const audit = logger.lines.filter((l) => l.includes('"skillId":"approve-expense"') && l.includes('"outcome":"failure"'));
      expect(audit.length).toBeGreaterThan(0);
    });

    it('approving above the limit: TASK_STATE_AUTH_REQUIRED with the request; wrong follow-ups are refused; the right one completes it', async () => {
      const id = await submit(5000);
      const first = await send(binding, wire({ data: { id } }, { skillId: 'approve-expense' }), approverToken);
      expect(first.status).toBe(200);
      const task = first.payload.task;
      expect(task.status.state).toBe('TASK_STATE_AUTH_REQUIRED');
      expect(statusData(task)).toEqual({
        authorizationRequest: {
          extension: IN_TASK_AUTH_EXTENSION_URI,
          type: 'oauth2_scopes',
          scopes: ['expense:approve-large'],
          resource: agent.publicUrl,
          resourceMetadata: `${agent.publicUrl}/.well-known/oauth-protected-resource`,
          operation: `approve-expense:${id}`,
          expiresAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
        },
      });
      const follow = (token: string) => send(binding, wire({ text: 'here is the token' }, { taskId: task.id, contextId: task.contextId }), token);

      // The same token again: 403 insufficient_scope naming the pending scope; the task stays where it is.
      const again = await follow(approverToken);
      expect(again.status).toBe(403);
      expect(again.headers['www-authenticate']).toMatch(
        /^Bearer realm="[^"]+", resource_metadata="[^"]+", error="insufficient_scope", error_description="[^"]+", scope="expense:approve-large"/,
      );
      expect((await getTask(binding, task.id, approverToken)).status.state).toBe('TASK_STATE_AUTH_REQUIRED');

      // Another owner: answered as an unknown task.
      const other = await follow(submitterToken);
      if (binding === 'JSONRPC') expect(other.payload.error.code).toBe(-32001);
      else expect(other.status).toBe(404);
      expect((await getTask(binding, task.id, approverToken)).status.state).toBe('TASK_STATE_AUTH_REQUIRED');

      // The owner with the scope: the waiting executor continues and the task completes.
      const done = await follow(largeToken);
      expect(done.status).toBe(200);
      expect(done.payload.task.status.state).toBe('TASK_STATE_COMPLETED');
      expect(statusData(done.payload.task)).toMatchObject({ expense: { id, status: 'approved', approvedBy: APPROVER.clientId } });
      expect((await getTask(binding, task.id, approverToken)).status.state).toBe('TASK_STATE_COMPLETED');

      // Not a standing grant: another large approval asks again.
      const id2 = await submit(3000);
      const second = await send(binding, wire({ data: { id: id2 } }, { skillId: 'approve-expense' }), approverToken);
      expect(second.payload.task.status.state).toBe('TASK_STATE_AUTH_REQUIRED');
      expect(statusData(second.payload.task).authorizationRequest.operation).toBe(`approve-expense:${id2}`);
      const t2 = second.payload.task;
      expect((await send(binding, wire({ text: 'ok' }, { taskId: t2.id, contextId: t2.contextId }), largeToken)).payload.task.status.state).toBe(
        'TASK_STATE_COMPLETED',
      );
    });

    it('connectA2AAgent continues a task waiting for scopes it may ask for, and surfaces a typed error otherwise', async () => {
      const common = { agentUrl: agent.url, skillId: 'approve-expense', preferredTransports: [binding] };
      const stepping = await connectA2AAgent({ ...common, credentials: APPROVER, stepUpScopes: ['expense:approve-large'] });
      const plain = await connectA2AAgent({ ...common, credentials: APPROVER });
      const approve = (id: string) =>
        SendMessageRequest.fromJSON({
          message: { messageId: randomUUID(), role: 'ROLE_USER', parts: [{ data: { id } }], metadata: { skillId: 'approve-expense' } },
        });

      const id = await submit(2500);
      const done = (await stepping.sendMessage(approve(id))) as Task;
      expect(done.status?.state).toBe(3); // TASK_STATE_COMPLETED
      const part = done.status?.message?.parts[0]?.content;
      expect(part?.$case === 'data' && (part.value as Json).expense).toMatchObject({ id, status: 'approved', approvedBy: APPROVER.clientId });

      const id2 = await submit(2600);
      const err = await plain.sendMessage(approve(id2)).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(A2AAuthorizationRequiredError);
      expect((err as A2AAuthorizationRequiredError).reason).toBe('scope_not_allowed');
      expect((err as A2AAuthorizationRequiredError).request?.scopes).toEqual(['expense:approve-large']);
      expect((err as A2AAuthorizationRequiredError).task.status?.state).toBe(8); // still TASK_STATE_AUTH_REQUIRED
      // Small approvals never ask.
      const id3 = await submit(10);
      const small = await plain.sendMessage(approve(id3));
      expect('messageId' in small).toBe(true);
    });

    it('connectA2AAgent.sendMessageStream: follows up on the same stream with a token for that follow-up only, or throws', async () => {
      const bearer: { path: string; scope: string }[] = [];
      // Observes which token each A2A request carries (its scope claim only; nothing is kept or printed).
      const observing = (async (input: Parameters<typeof fetch>[0], init?: RequestInit) => {
        const auth = new Headers(init?.headers ?? (input instanceof Request ? input.headers : undefined)).get('authorization');
        const url = new URL(input instanceof Request ? input.url : String(input));
        if (auth && /^(Bearer|DPoP) /.test(auth)) bearer.push({ path: url.pathname, scope: String(decodeJwt(auth.split(' ')[1]).scope) });
        return fetch(input, init);
      }) as typeof fetch;
      const common = { agentUrl: agent.url, skillId: 'approve-expense', preferredTransports: [binding], fetch: observing };
      const stepping = await connectA2AAgent({ ...common, credentials: APPROVER, stepUpScopes: ['expense:approve-large'] });
      const plain = await connectA2AAgent({ ...common, credentials: APPROVER });
      const approve = (id: string) =>
        SendMessageRequest.fromJSON({
          message: { messageId: randomUUID(), role: 'ROLE_USER', parts: [{ data: { id } }], metadata: { skillId: 'approve-expense' } },
        });
      const stateOf = (ev: StreamResponse) =>
        ev.payload?.$case === 'task' ? ev.payload.value.status?.state : ev.payload?.$case === 'statusUpdate' ? ev.payload.value.status?.state : undefined;
      const sendPath = binding === 'JSONRPC' ? '/a2a/jsonrpc' : '/message:send';
      const streamPath = binding === 'JSONRPC' ? '/a2a/jsonrpc' : '/message:stream';

      const id = await submit(4200);
      const events: StreamResponse[] = [];
      const t0 = Date.now();
      for await (const ev of stepping.sendMessageStream(approve(id))) events.push(ev);
      expect(Date.now() - t0).toBeLessThan(15_000);
      expect(events.map((e) => [e.payload?.$case, taskStateToJSON(stateOf(e)!)])).toEqual([
        ['task', 'TASK_STATE_SUBMITTED'],
        ['statusUpdate', 'TASK_STATE_AUTH_REQUIRED'],
        ['statusUpdate', 'TASK_STATE_WORKING'],
        ['statusUpdate', 'TASK_STATE_COMPLETED'],
      ]);
      const last = events[3].payload!.value as TaskStatusUpdateEvent;
      expect(last.taskId).toBe((events[0].payload!.value as Task).id);
      const part = last.status?.message?.parts.find((p) => p.content?.$case === 'data')?.content;
      expect(part?.$case === 'data' && (part.value as Json).expense).toMatchObject({ id, status: 'approved', approvedBy: APPROVER.clientId });
      // The stream with the skill's token, the follow-up alone with exactly the requested scope.
      expect(bearer).toEqual([
        { path: streamPath, scope: 'expense:approve' },
        { path: sendPath, scope: 'expense:approve-large' },
      ]);
      // Not kept: the next call carries the skill's token again, and the next large approval asks again.
      bearer.length = 0;
      const small = await submit(15);
      const smallEvents: StreamResponse[] = [];
      for await (const ev of stepping.sendMessageStream(approve(small))) smallEvents.push(ev);
      expect(smallEvents.map((e) => e.payload?.$case)).toEqual(['message']);
      expect(bearer).toEqual([{ path: streamPath, scope: 'expense:approve' }]);

      // Without stepUpScopes: the AUTH_REQUIRED event is yielded, then the typed error; nothing else is sent.
      bearer.length = 0;
      const id2 = await submit(4300);
      const seen: (string | undefined)[] = [];
      const err = await (async () => {
        for await (const ev of plain.sendMessageStream(approve(id2))) seen.push(ev.payload?.$case + ':' + taskStateToJSON(stateOf(ev)!));
      })().catch((e: unknown) => e);
      expect(seen).toEqual(['task:TASK_STATE_SUBMITTED', 'statusUpdate:TASK_STATE_AUTH_REQUIRED']);
      expect(err).toBeInstanceOf(A2AAuthorizationRequiredError);
      const e = err as A2AAuthorizationRequiredError;
      expect([e.reason, e.request?.scopes, e.request?.operation, taskStateToJSON(e.task.status!.state)]).toEqual([
        'scope_not_allowed',
        ['expense:approve-large'],
        `approve-expense:${id2}`,
        'TASK_STATE_AUTH_REQUIRED',
      ]);
      expect(bearer).toEqual([{ path: streamPath, scope: 'expense:approve' }]);
      // The task still waits: another client with the scope may continue it.
      expect((await getTask(binding, e.task.id, approverToken)).status.state).toBe('TASK_STATE_AUTH_REQUIRED');
    });

    it('streaming: the stream stays open while the task waits and carries the rest of the task after the follow-up', async () => {
      const id = await submit(4000);
      const s = await stream(binding, wire({ data: { id } }, { skillId: 'approve-expense' }), approverToken);
      try {
        const e1 = await s.next();
        expect(e1?.task?.status?.state).toBe('TASK_STATE_SUBMITTED');
        const e2 = await s.next();
        expect(e2?.statusUpdate?.status?.state).toBe('TASK_STATE_AUTH_REQUIRED');
        const taskId = e1!.task.id as string;
        expect(statusData(e2!.statusUpdate).authorizationRequest.scopes).toEqual(['expense:approve-large']);

        // The follow-up is itself a stream: the task, then what the resumed executor publishes.
        const f = await stream(binding, wire({ text: 'token attached' }, { taskId, contextId: e1!.task.contextId }), largeToken);
        const f1 = await f.next();
        expect(f1?.task?.id).toBe(taskId);
        const fStates: string[] = [];
        for (let ev = await f.next(); ev; ev = await f.next()) fStates.push(ev.statusUpdate?.status?.state);
        expect(fStates).toEqual(['TASK_STATE_WORKING', 'TASK_STATE_COMPLETED']);

        const states: string[] = [];
        let last: Json | undefined;
        for (let ev = await s.next(); ev; ev = await s.next()) {
          states.push(ev.statusUpdate?.status?.state);
          last = ev;
        }
        expect(states).toEqual(['TASK_STATE_WORKING', 'TASK_STATE_COMPLETED']);
        expect(statusData(last!.statusUpdate)).toMatchObject({ expense: { id, status: 'approved' } });
      } finally {
        await s.cancel();
      }
    });
  });
});
