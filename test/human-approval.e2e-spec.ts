import { randomUUID } from 'node:crypto';
import {
  CancelTaskRequest,
  GetTaskRequest,
  SendMessageRequest,
  taskStateToJSON,
  type Message,
  type StreamResponse,
  type Task,
  type TaskStatus,
} from '@a2a-js/sdk';
import { connectA2AAgent, type ConnectedA2AAgent } from '../libs/a2a-auth/src/client/a2a-client-auth';
import { Test } from '@nestjs/testing';
import {
  HUMAN_APPROVAL_EXTENSION_URI,
  A2A_HUMAN_APPROVAL_OPTIONS,
  HumanApprovalInputError,
  HumanApprovalService,
} from '../libs/a2a-auth/src/nest/a2a/approval';
import { bootstrap, type RunningAgent } from '../apps/expense-agent/src/main';
import { DEV_CLIENT_DEFAULTS } from '../apps/expense-agent/src/dev-clients';
import { runApprovalDemo } from '../apps/expense-agent/src/a2a/demo-approval';
import { EXPENSE_APPROVAL, type ExpenseApproval } from '../apps/expense-agent/src/a2a/expense-approval';
import { CapturingLogger, PLATFORMS } from './fixtures/test-app';

const BINDINGS = ['JSONRPC', 'HTTP+JSON'] as const;
/** Every wait of this suite is bounded by this, milliseconds. */
const WAIT_MS = 10_000;
/** The agents' approval timeout (A2A_APPROVAL_TIMEOUT_MS), milliseconds: long enough for a loaded machine to approve. */
const APPROVAL_TIMEOUT_MS = 6000;

/** Access tokens the CIBA grant returned (observed on the wire, passed through unchanged), to prove they are never logged. */
const cibaTokens: string[] = [];
const realFetch = globalThis.fetch;
globalThis.fetch = (async (input: Parameters<typeof fetch>[0], init?: RequestInit) => {
  const res = await realFetch(input, init);
  if (typeof init?.body === 'string' && init.body.includes('grant_type=urn%3Aopenid%3Aparams%3Agrant-type%3Aciba') && res.ok) {
    const text = await res.clone().text();
    const t = (JSON.parse(text) as { access_token?: string }).access_token;
    if (t) cibaTokens.push(t);
  }
  return res;
}) as typeof fetch;
afterAll(() => {
  globalThis.fetch = realFetch;
});

interface SeenStatus {
  state: string;
  text?: string;
  data?: unknown;
  extensions: string[];
}

function seen(s: TaskStatus | undefined): SeenStatus {
  const m: Message | undefined = s?.message;
  const text = m?.parts.find((p) => p.content?.$case === 'text')?.content?.value as string | undefined;
  const data = m?.parts.find((p) => p.content?.$case === 'data')?.content?.value as unknown;
  return {
    state: taskStateToJSON(s!.state),
    ...(text !== undefined ? { text } : {}),
    ...(data !== undefined ? { data } : {}),
    extensions: m?.extensions ?? [],
  };
}

function submit(amount: number, metadata: Record<string, unknown> = {}): SendMessageRequest {
  return SendMessageRequest.fromJSON({
    message: {
      messageId: randomUUID(),
      role: 'ROLE_USER',
      parts: [{ data: { amount, currency: 'EUR', description: 'Conference hotel' } }],
      metadata: { skillId: 'submit-expense', ...metadata },
    },
  });
}

const pendingData = (amount: number, loginHint = 'alice') => ({
  humanApproval: {
    status: 'pending',
    method: 'openid-ciba',
    loginHint,
    operation: 'submit-expense',
    bindingMessage: `Submit expense ${amount} EUR`,
    scopes: ['expense:submit'],
    expiresIn: 120,
  },
});
const endData = (amount: number, status: string, error?: string, loginHint = 'alice') => ({
  humanApproval: {
    status,
    method: 'openid-ciba',
    loginHint,
    operation: 'submit-expense',
    bindingMessage: `Submit expense ${amount} EUR`,
    scopes: ['expense:submit'],
    ...(error ? { error } : {}),
  },
});

async function until<T>(what: string, f: () => Promise<T | undefined> | T | undefined): Promise<T> {
  const end = Date.now() + WAIT_MS;
  for (;;) {
    const v = await f();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe.each(PLATFORMS)('human approval through CIBA in the sample on %s', (platform) => {
  let agent: RunningAgent;
  let logs: CapturingLogger;
  let approval: ExpenseApproval;
  const clients: Partial<Record<(typeof BINDINGS)[number], ConnectedA2AAgent>> = {};

  beforeAll(async () => {
    logs = new CapturingLogger();
    agent = await bootstrap({
      platform,
      port: 0,
      env: { NODE_ENV: 'test', A2A_APPROVAL_THRESHOLD: '1000', A2A_APPROVAL_TIMEOUT_MS: String(APPROVAL_TIMEOUT_MS) },
      logger: logs,
      banner: false,
    });
    approval = agent.app.get<ExpenseApproval>(EXPENSE_APPROVAL);
    for (const b of BINDINGS) {
      clients[b] = await connectA2AAgent({
        agentUrl: agent.url,
        preferredTransports: [b],
        credentials: { clientId: DEV_CLIENT_DEFAULTS.submitter.clientId, clientSecret: DEV_CLIENT_DEFAULTS.submitter.clientSecret },
        skillId: 'submit-expense',
      });
    }
  });
  afterAll(async () => {
    await agent?.close();
  });

  /** The newest pending CIBA request for `user` that is not in `exclude`. */
  const pendingFor = (user: string, exclude: string[] = []) =>
    until(`a pending CIBA request for ${user}`, () => agent.devAuth!.ciba!.pending().find((p) => p.user === user && !exclude.includes(p.authReqId)));
  /** The developer endpoint, as the demo uses it. */
  const answer = async (id: string, action: 'approve' | 'deny') => {
    const res = await fetch(`${agent.devAuth!.issuer}/dev/ciba/${id}/${action}`, { method: 'POST', signal: AbortSignal.timeout(WAIT_MS) });
    expect(res.status).toBe(200);
  };
  const taskNow = (c: ConnectedA2AAgent, id: string) => c.client.getTask(GetTaskRequest.fromJSON({ id }));
  const finalTask = (c: ConnectedA2AAgent, id: string, state: string) =>
    until(`task ${id} in ${state}`, async () => {
      const t = await taskNow(c, id);
      return taskStateToJSON(t.status!.state) === state ? t : undefined;
    });

  describe.each(BINDINGS)('%s', (binding) => {
    it('streaming, approved: AUTH_REQUIRED naming alice, then WORKING, then COMPLETED with the expense', async () => {
      const c = clients[binding]!;
      const events: StreamResponse[] = [];
      const before = agent.devAuth!.ciba!.pending().map((p) => p.authReqId);
      const t0 = Date.now();
      for await (const ev of c.client.sendMessageStream(submit(1500))) {
        events.push(ev);
        if (ev.payload?.$case === 'statusUpdate' && taskStateToJSON(ev.payload.value.status!.state) === 'TASK_STATE_AUTH_REQUIRED') {
          const p = await pendingFor('alice', before);
          expect(p).toMatchObject({ user: 'alice', clientId: 'expense-agent-ciba', bindingMessage: 'Submit expense 1500 EUR', scope: 'openid expense:submit' });
          await answer(p.authReqId, 'approve');
        }
      }
      expect(Date.now() - t0).toBeLessThan(WAIT_MS);
      const kinds = events.map((e) => e.payload?.$case);
      expect(kinds).toEqual(['task', 'statusUpdate', 'statusUpdate', 'statusUpdate']);
      const task = events[0].payload!.value as Task;
      expect(taskStateToJSON(task.status!.state)).toBe('TASK_STATE_WORKING');
      const statuses = events.slice(1).map((e) => seen((e.payload!.value as { status?: TaskStatus }).status));
      expect(statuses.slice(0, 2)).toEqual([
        {
          state: 'TASK_STATE_AUTH_REQUIRED',
          text: 'Waiting for alice to approve: Submit expense 1500 EUR',
          data: pendingData(1500),
          extensions: [HUMAN_APPROVAL_EXTENSION_URI],
        },
        { state: 'TASK_STATE_WORKING', text: 'Approved by alice', data: endData(1500, 'approved'), extensions: [HUMAN_APPROVAL_EXTENSION_URI] },
      ]);
      expect(statuses[2]).toMatchObject({
        state: 'TASK_STATE_COMPLETED',
        data: { approvedBy: 'alice', expense: { amount: 1500, currency: 'EUR', description: 'Conference hotel', submittedBy: 'expense-submitter' } },
      });
      // The approval covered that submission only: released when it ended, unknown to any other task.
      expect(approval.service!.approvalFor(task.id, 'submit-expense')).toBeUndefined();
      expect(approval.service!.pendingCount).toBe(0);
    });

    it('connectA2AAgent.sendMessageStream yields a human approval through: no follow-up, the same states', async () => {
      const c = clients[binding]!;
      const before = agent.devAuth!.ciba!.pending().map((p) => p.authReqId);
      const states: string[] = [];
      for await (const ev of c.sendMessageStream(submit(1600))) {
        const s = ev.payload?.$case === 'task' ? ev.payload.value.status : ev.payload?.$case === 'statusUpdate' ? ev.payload.value.status : undefined;
        states.push(`${ev.payload?.$case}:${taskStateToJSON(s!.state)}`);
        if (ev.payload?.$case === 'statusUpdate' && taskStateToJSON(s!.state) === 'TASK_STATE_AUTH_REQUIRED') {
          expect(seen(s).data).toEqual(pendingData(1600));
          await answer((await pendingFor('alice', before)).authReqId, 'approve');
        }
      }
      expect(states).toEqual([
        'task:TASK_STATE_WORKING',
        'statusUpdate:TASK_STATE_AUTH_REQUIRED',
        'statusUpdate:TASK_STATE_WORKING',
        'statusUpdate:TASK_STATE_COMPLETED',
      ]);
    });

    it('blocking SendMessage, denied: the snapshot is AUTH_REQUIRED; the task ends REJECTED with the reason', async () => {
      const c = clients[binding]!;
      const before = agent.devAuth!.ciba!.pending().map((p) => p.authReqId);
      const snapshot = (await c.client.sendMessage(submit(2000, { loginHint: 'bob' }))) as Task;
      expect(seen(snapshot.status)).toEqual({
        state: 'TASK_STATE_AUTH_REQUIRED',
        text: 'Waiting for bob to approve: Submit expense 2000 EUR',
        data: pendingData(2000, 'bob'),
        extensions: [HUMAN_APPROVAL_EXTENSION_URI],
      });
      await answer((await pendingFor('bob', before)).authReqId, 'deny');
      const done = await finalTask(c, snapshot.id, 'TASK_STATE_REJECTED');
      expect(seen(done.status)).toEqual({
        state: 'TASK_STATE_REJECTED',
        text: 'bob denied the approval (access_denied)',
        data: endData(2000, 'denied', 'access_denied', 'bob'),
        extensions: [HUMAN_APPROVAL_EXTENSION_URI],
      });
    });

    it('a second task gets no approval from the first: it asks again; CancelTask stops the wait', async () => {
      const c = clients[binding]!;
      const before = agent.devAuth!.ciba!.pending().map((p) => p.authReqId);
      const first = (await c.client.sendMessage(submit(1200))) as Task;
      const p1 = await pendingFor('alice', before);
      await answer(p1.authReqId, 'approve');
      await finalTask(c, first.id, 'TASK_STATE_COMPLETED');
      const second = (await c.client.sendMessage(submit(1200))) as Task;
      expect(seen(second.status).state).toBe('TASK_STATE_AUTH_REQUIRED');
      const p2 = await pendingFor('alice', [...before, p1.authReqId]);
      expect(p2.authReqId).not.toBe(p1.authReqId);
      expect(approval.service!.approvalFor(second.id, 'submit-expense')).toBeUndefined();
      expect(approval.service!.approvalFor(first.id, 'submit-expense')).toBeUndefined();
      const canceled = await c.client.cancelTask(CancelTaskRequest.fromJSON({ id: second.id }));
      expect(seen(canceled.status)).toEqual({
        state: 'TASK_STATE_CANCELED',
        text: "Canceled while waiting for alice's approval",
        data: endData(1200, 'canceled'),
        extensions: [HUMAN_APPROVAL_EXTENSION_URI],
      });
      expect(approval.service!.pendingCount).toBe(0);
      // Approving the abandoned request afterwards changes nothing.
      await answer(p2.authReqId, 'approve');
      await new Promise((r) => setTimeout(r, 1500));
      expect(seen((await taskNow(c, second.id)).status).state).toBe('TASK_STATE_CANCELED');
    });

    it('an amount under the threshold needs no approval (a message, no task)', async () => {
      const r = (await clients[binding]!.client.sendMessage(submit(10))) as Message;
      expect(r.parts[0].content).toMatchObject({ $case: 'data', value: { expense: { amount: 10 } } });
    });
  });

  it('no answer: the task fails at A2A_APPROVAL_TIMEOUT_MS with the reason (JSON-RPC, streaming)', async () => {
    const c = clients.JSONRPC!;
    const t0 = Date.now();
    const states: SeenStatus[] = [];
    for await (const ev of c.client.sendMessageStream(submit(3000))) {
      if (ev.payload?.$case === 'statusUpdate') states.push(seen(ev.payload.value.status));
    }
    expect(Date.now() - t0).toBeGreaterThanOrEqual(APPROVAL_TIMEOUT_MS - 200);
    expect(Date.now() - t0).toBeLessThan(APPROVAL_TIMEOUT_MS + WAIT_MS);
    expect(states.map((s) => s.state)).toEqual(['TASK_STATE_AUTH_REQUIRED', 'TASK_STATE_FAILED']);
    expect(states[1]).toEqual({
      state: 'TASK_STATE_FAILED',
      text: 'No approval from alice in time (timeout)',
      data: endData(3000, 'expired', 'timeout'),
      extensions: [HUMAN_APPROVAL_EXTENSION_URI],
    });
  }, 30_000);

  it('an unknown user: the task fails with unknown_user_id (HTTP+JSON, blocking)', async () => {
    const t = (await clients['HTTP+JSON']!.client.sendMessage(submit(5000, { loginHint: 'mallory' }))) as Task;
    expect(seen(t.status)).toEqual({
      state: 'TASK_STATE_FAILED',
      text: 'The approval request to mallory could not be completed (unknown_user_id)',
      data: endData(5000, 'failed', 'unknown_user_id', 'mallory'),
      extensions: [HUMAN_APPROVAL_EXTENSION_URI],
    });
  });

  it("npm run demo's approval steps: approved and denied on both bindings, streaming, through the dev endpoint", async () => {
    const r = await runApprovalDemo({
      agentUrl: agent.url,
      devAuthUrl: agent.devAuth!.issuer,
      submitter: { id: DEV_CLIENT_DEFAULTS.submitter.clientId, secret: DEV_CLIENT_DEFAULTS.submitter.clientSecret },
    });
    const approved = ['TASK_STATE_AUTH_REQUIRED', 'TASK_STATE_WORKING', 'TASK_STATE_COMPLETED'];
    expect(r.map((x) => [x.binding, x.step, x.states, x.ok])).toEqual(
      BINDINGS.flatMap((b) => [
        [b, "submit-expense 1500 EUR needing alice's approval (streaming); alice approves", approved, true],
        [b, "submit-expense 2500 EUR needing alice's approval (streaming); alice denies", ['TASK_STATE_AUTH_REQUIRED', 'TASK_STATE_REJECTED'], true],
      ]),
    );
    expect(r[1].texts).toEqual(['Waiting for alice to approve: Submit expense 2500 EUR', 'alice denied the approval (access_denied)']);
  });

  it('logs name the steps and never an approval token', () => {
    expect(cibaTokens.length).toBeGreaterThan(0);
    const all = logs.lines.join('\n');
    expect(all).toMatch(/approval of submit-expense on task [0-9a-f-]+: approved by alice/);
    for (const t of cibaTokens) expect(all).not.toContain(t);
  });
});

describe.each(PLATFORMS)('human approval inputs and the per-owner cap in the sample on %s', (platform) => {
  let agent: RunningAgent;
  let approval: ExpenseApproval;
  const connect = (binding: (typeof BINDINGS)[number], who: { clientId: string; clientSecret: string }) =>
    connectA2AAgent({ agentUrl: agent.url, preferredTransports: [binding], credentials: who, skillId: 'submit-expense' });
  const submitter = { clientId: DEV_CLIENT_DEFAULTS.submitter.clientId, clientSecret: DEV_CLIENT_DEFAULTS.submitter.clientSecret };
  const other = { clientId: DEV_CLIENT_DEFAULTS.opaque.clientId, clientSecret: DEV_CLIENT_DEFAULTS.opaque.clientSecret };

  beforeAll(async () => {
    agent = await bootstrap({
      platform,
      port: 0,
      env: { NODE_ENV: 'test', A2A_APPROVAL_THRESHOLD: '1000', A2A_APPROVAL_TIMEOUT_MS: '20000', A2A_APPROVAL_MAX_PENDING_PER_OWNER: '2' },
      logger: false,
      banner: false,
    });
    approval = agent.app.get<ExpenseApproval>(EXPENSE_APPROVAL);
  });
  afterAll(async () => {
    await agent?.close();
  });

  it.each(BINDINGS)('%s: a loginHint out of bounds: TASK_STATE_REJECTED with the reason, nothing sent to the authorization server', async (binding) => {
    const c = await connect(binding, submitter);
    const before = agent.devAuth!.ciba!.pending().length;
    const cases: [string, string, string][] = [
      ['a'.repeat(257), 'too_long', "the approval request's loginHint is longer than 256 characters"],
      ['alice\u0007', 'control_character', "the approval request's loginHint contains a control character"],
      ['alice\nbob', 'control_character', "the approval request's loginHint contains a control character"],
      ['alice\u202e', 'control_character', "the approval request's loginHint contains a control character"],
    ];
    for (const [loginHint, reason, text] of cases) {
      const t = (await c.client.sendMessage(submit(1500, { loginHint }))) as Task;
      expect(seen(t.status)).toEqual({ state: 'TASK_STATE_REJECTED', text, data: { error: 'invalid_request', reason, field: 'loginHint' }, extensions: [] });
      const states: string[] = [];
      for await (const ev of c.client.sendMessageStream(submit(1500, { loginHint }))) {
        states.push(`${ev.payload?.$case}:${taskStateToJSON((ev.payload!.value as Task).status!.state)}`);
      }
      expect(states).toEqual(['task:TASK_STATE_REJECTED']);
    }
    expect(agent.devAuth!.ciba!.pending().length).toBe(before);
    expect(approval.service!.pendingCount).toBe(0);
    // 256 characters is within bounds: it reaches the authorization server, which knows no such user.
    const t = (await c.client.sendMessage(submit(1500, { loginHint: 'a'.repeat(256) }))) as Task;
    const end = await until('the task to fail', async () => {
      const now = await c.client.getTask(GetTaskRequest.fromJSON({ id: t.id }));
      return taskStateToJSON(now.status!.state) === 'TASK_STATE_FAILED' ? now : undefined;
    });
    expect((seen(end.status).data as { humanApproval: { error: string } }).humanApproval.error).toBe('unknown_user_id');
  });

  it('bindingMessage bounds: HumanApprovalInputError before anything is published or sent', async () => {
    const service = approval.service!;
    const before = agent.devAuth!.ciba!.pending().length;
    const { RequestContext, DefaultExecutionEventBus } = await import('@a2a-js/sdk/server');
    const { ServerCallContext } = await import('@a2a-js/sdk/server');
    for (const [bindingMessage, reason] of [
      ['x'.repeat(257), 'too_long'],
      ['Submit\u0000expense', 'control_character'],
      ['Submit expense\r\n1500 EUR', 'control_character'],
    ] as const) {
      const bus = new DefaultExecutionEventBus();
      const published: unknown[] = [];
      bus.on('event', (e: unknown) => published.push(e));
      const context = new RequestContext(submit(1500), randomUUID(), randomUUID(), new ServerCallContext());
      const err = await service
        .requestApproval({ context, eventBus: bus, loginHint: 'alice', bindingMessage, scopes: ['expense:submit'], operation: 'submit-expense' })
        .catch((e: unknown) => e);
      expect(err).toBeInstanceOf(HumanApprovalInputError);
      expect([(err as HumanApprovalInputError).field, (err as HumanApprovalInputError).reason]).toEqual(['bindingMessage', reason]);
      expect(published).toEqual([]);
    }
    expect(agent.devAuth!.ciba!.pending().length).toBe(before);
    expect(service.pendingCount).toBe(0);
  });

  it.each(BINDINGS)('%s: one owner gets at most A2A_APPROVAL_MAX_PENDING_PER_OWNER waiting approvals; another owner still gets one', async (binding) => {
    const c = await connect(binding, submitter);
    const o = await connect(binding, other);
    const waiting: string[] = [];
    try {
      for (let i = 0; i < 2; i++) {
        const t = (await c.client.sendMessage(submit(1100 + i))) as Task;
        expect(taskStateToJSON(t.status!.state)).toBe('TASK_STATE_AUTH_REQUIRED');
        waiting.push(t.id);
      }
      const third = (await c.client.sendMessage(submit(1102))) as Task;
      const failed = await until('the third task to fail', async () => {
        const now = await c.client.getTask(GetTaskRequest.fromJSON({ id: third.id }));
        return taskStateToJSON(now.status!.state) === 'TASK_STATE_FAILED' ? now : undefined;
      });
      expect(seen(failed.status)).toEqual({
        state: 'TASK_STATE_FAILED',
        text: 'The approval request to alice could not be completed (too_many_pending_approvals)',
        data: endData(1102, 'failed', 'too_many_pending_approvals'),
        extensions: [HUMAN_APPROVAL_EXTENSION_URI],
      });
      const theirs = (await o.client.sendMessage(submit(1103))) as Task;
      expect(taskStateToJSON(theirs.status!.state)).toBe('TASK_STATE_AUTH_REQUIRED');
      await o.client.cancelTask(CancelTaskRequest.fromJSON({ id: theirs.id }));
      // A slot freed (canceled) is usable again.
      await c.client.cancelTask(CancelTaskRequest.fromJSON({ id: waiting.shift()! }));
      const again = (await c.client.sendMessage(submit(1104))) as Task;
      expect(taskStateToJSON(again.status!.state)).toBe('TASK_STATE_AUTH_REQUIRED');
      waiting.push(again.id);
    } finally {
      for (const id of waiting) await c.client.cancelTask(CancelTaskRequest.fromJSON({ id })).catch(() => undefined);
    }
    expect(approval.service!.pendingCount).toBe(0);
  });
});

describe('HumanApprovalService in a Nest module', () => {
  it('is injectable with A2A_HUMAN_APPROVAL_OPTIONS, and refuses to start without them', async () => {
    const mod = await Test.createTestingModule({
      providers: [
        { provide: A2A_HUMAN_APPROVAL_OPTIONS, useValue: { ciba: { issuer: 'http://127.0.0.1:9', clientId: 'c', clientSecret: 's' } } },
        HumanApprovalService,
      ],
    }).compile();
    expect(mod.get(HumanApprovalService).pendingCount).toBe(0);
    await mod.close();
    await expect(Test.createTestingModule({ providers: [HumanApprovalService] }).compile()).rejects.toThrow(
      'HumanApprovalService needs options with a ciba client (A2A_HUMAN_APPROVAL_OPTIONS)',
    );
  });
});

describe.each(PLATFORMS)('human approval when the authorization server is down, on %s', (platform) => {
  let agent: RunningAgent;

  beforeAll(async () => {
    // The backchannel authentication endpoint points at a closed port: every CIBA request fails to connect.
    agent = await bootstrap({
      platform,
      port: 0,
      env: { NODE_ENV: 'test', A2A_APPROVAL_BACKCHANNEL_URL: 'http://127.0.0.1:9/backchannel', A2A_APPROVAL_THRESHOLD: '1000' },
      logger: false,
      banner: false,
    });
  });
  afterAll(async () => {
    await agent?.close();
  });

  it.each(BINDINGS)('%s: the task fails with "unavailable", streaming and not, no 500 and no hang', async (binding) => {
    const c = await connectA2AAgent({
      agentUrl: agent.url,
      preferredTransports: [binding],
      credentials: { clientId: DEV_CLIENT_DEFAULTS.submitter.clientId, clientSecret: DEV_CLIENT_DEFAULTS.submitter.clientSecret },
      skillId: 'submit-expense',
    });
    const expected = {
      state: 'TASK_STATE_FAILED',
      text: 'The approval request to alice could not be completed (unavailable)',
      data: endData(1500, 'failed', 'unavailable'),
      extensions: [HUMAN_APPROVAL_EXTENSION_URI],
    };
    const t0 = Date.now();
    expect(seen(((await c.client.sendMessage(submit(1500))) as Task).status)).toEqual(expected);
    const states: SeenStatus[] = [];
    for await (const ev of c.client.sendMessageStream(submit(1500))) if (ev.payload?.$case === 'statusUpdate') states.push(seen(ev.payload.value.status));
    expect(states).toEqual([expected]);
    expect(Date.now() - t0).toBeLessThan(WAIT_MS);
  });
});
