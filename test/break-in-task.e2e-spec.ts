import { randomUUID } from 'node:crypto';
import request from 'supertest';
import { ClientCredentialsTokenProvider } from 'nestjs-a2a-auth';
import { bootstrap, type RunningAgent } from '../apps/expense-agent/src/main';
import { DEV_CLIENT_DEFAULTS } from '../apps/expense-agent/src/dev-clients';
import { CapturingLogger, PLATFORMS } from './fixtures/test-app';

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
    submitter = await new ClientCredentialsTokenProvider({ tokenUrl, ...DEV_CLIENT_DEFAULTS.submitter, scopes: ['expense:submit', 'expense:read'] }).getAccessToken();
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
    const r = await send('HTTP+JSON', { message: { messageId: randomUUID(), role: 'ROLE_USER', parts: [{ data: {} }], metadata: { skillId: 'list-expenses' } } }, submitter);
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
        { message: { messageId: randomUUID(), role: 'ROLE_USER', parts: [{ data: {} }], metadata: { skillId: 'list-expenses' }, taskId: task.id, contextId: task.contextId } },
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
