import { randomUUID } from 'node:crypto';
import { SendMessageRequest, TaskState, type Message, type Task } from '@a2a-js/sdk';
import { ClientFactory, ClientFactoryOptions, JsonRpcTransportFactory, RestTransportFactory, type Client } from '@a2a-js/sdk/client';
import { ClientCredentialsTokenProvider } from 'nestjs-a2a-auth';
import { bootstrap, type RunningAgent } from '../apps/expense-agent/src/main';
import { CapturingLogger, PLATFORMS } from './fixtures/test-app';

// A generic A2A client (the official SDK, as the a2a-tck or an LLM agent would use it) never sets
// message.metadata.skillId: it sends what the card's skill examples suggest. The sample must route such messages from
// their content, then the library checks the chosen skill's scopes: every skill the token allows works, the others are
// refused with a reason (a task in TASK_STATE_REJECTED whose status message names the missing scope).
//

const SUBMITTER = { clientId: 'expense-submitter', clientSecret: 'e2e-generic-submitter-7d1e' };
const APPROVER = { clientId: 'expense-approver', clientSecret: 'e2e-generic-approver-2b9a' };
const BINDINGS = ['JSONRPC', 'HTTP+JSON'] as const;

/** What a generic client sends for each skill: text after the skill's `examples` in the card, no skillId. */
const MESSAGES = {
  submit: '{"amount": 42.5, "currency": "EUR", "description": "Taxi to the airport"}',
  list: 'Which expenses are waiting for approval?',
  approve: (id: string) => `Approve expense ${id}`,
};

/** A user message with one text part and no metadata at all. */
function text(t: string): SendMessageRequest {
  return SendMessageRequest.fromJSON({ message: { messageId: randomUUID(), role: 'ROLE_USER', parts: [{ text: t }] } });
}

/** The single data part of an agent reply message. */
function dataOf(r: Message | Task): Record<string, unknown> {
  expect('messageId' in r).toBe(true);
  const c = (r as Message).parts[0].content;
  if (c?.$case !== 'data') throw new Error(`expected a data part, got ${JSON.stringify(r)}`);
  return c.value as Record<string, unknown>;
}

describe.each(PLATFORMS)('a generic A2A client (no metadata.skillId) drives the sample on %s', (platform) => {
  let agent: RunningAgent;
  const sent: string[] = [];
  let submitterToken: string;
  let approverToken: string;

  beforeAll(async () => {
    agent = await bootstrap({
      platform,
      port: 0,
      env: { DEV_SUBMITTER_SECRET: SUBMITTER.clientSecret, DEV_APPROVER_SECRET: APPROVER.clientSecret },
      logger: new CapturingLogger(),
      banner: false,
    });
    const tokenUrl = agent.devAuth!.tokenUrl;
    submitterToken = await new ClientCredentialsTokenProvider({ tokenUrl, ...SUBMITTER, scopes: ['expense:submit', 'expense:read'] }).getAccessToken();
    approverToken = await new ClientCredentialsTokenProvider({ tokenUrl, ...APPROVER, scopes: ['expense:approve', 'expense:read'] }).getAccessToken();
  });
  afterAll(() => agent?.close());

  /** The stock SDK client from the agent's URL, with a bearer token added to each request; request bodies are recorded. */
  async function genericClient(binding: (typeof BINDINGS)[number], token?: string): Promise<Client> {
    const fetchImpl: typeof fetch = (input, init) => {
      if (typeof init?.body === 'string') sent.push(init.body);
      const headers = new Headers(init?.headers);
      if (token) headers.set('Authorization', `Bearer ${token}`);
      return fetch(input, { ...init, headers });
    };
    const factory = new ClientFactory(
      ClientFactoryOptions.createFrom(ClientFactoryOptions.default, {
        transports: [new JsonRpcTransportFactory({ fetchImpl }), new RestTransportFactory({ fetchImpl })],
        preferredTransports: [binding],
      }),
    );
    const client = await factory.createFromUrl(`${agent.url}/`);
    expect(client.transport.protocolName).toBe(binding);
    return client;
  }

  describe.each(BINDINGS)('over %s', (binding) => {
    it('uses every skill its token allows: submit and list as the submitter, approve as the approver', async () => {
      const sub = await genericClient(binding, submitterToken);
      const submitted = dataOf(await sub.sendMessage(text(MESSAGES.submit)));
      expect(submitted.expense).toMatchObject({
        amount: 42.5,
        currency: 'EUR',
        description: 'Taxi to the airport',
        status: 'submitted',
        submittedBy: SUBMITTER.clientId,
      });
      const id = (submitted.expense as { id: string }).id;
      const listed = dataOf(await sub.sendMessage(text(MESSAGES.list)));
      expect((listed.expenses as Array<{ id: string }>).map((e) => e.id)).toContain(id);
      const appr = await genericClient(binding, approverToken);
      const approved = dataOf(await appr.sendMessage(text(MESSAGES.approve(id))));
      expect(approved.expense).toMatchObject({ id, status: 'approved', approvedBy: APPROVER.clientId });
    });

    it('is refused a skill its token does not allow, with a reason naming the missing scope; nothing runs', async () => {
      const sub = await genericClient(binding, submitterToken);
      const id = (dataOf(await sub.sendMessage(text(MESSAGES.submit))).expense as { id: string }).id;
      const r = await sub.sendMessage(text(MESSAGES.approve(id)));
      expect('status' in r).toBe(true);
      const task = r as Task;
      expect(task.status?.state).toBe(TaskState.TASK_STATE_REJECTED);
      expect(JSON.stringify(task.status?.message ?? null)).toContain('expense:approve');
      // The expense is still waiting: the approve skill never ran.
      const listed = dataOf(await sub.sendMessage(text(MESSAGES.list)));
      expect((listed.expenses as Array<{ id: string; status: string }>).find((e) => e.id === id)?.status).toBe('submitted');
    });

    it('without a token: HTTP 401 before any routing', async () => {
      const anon = await genericClient(binding);
      const e = await anon.sendMessage(text(MESSAGES.list)).catch((x: unknown) => x);
      expect(e).toBeInstanceOf(Error);
      expect(binding === 'HTTP+JSON' ? (e as { statusCode?: number }).statusCode : String((e as Error).message)).toEqual(
        binding === 'HTTP+JSON' ? 401 : expect.stringMatching(/Status: 401 Unauthorized/),
      );
    });
  });

  it('really was generic: no request it sent named a skill', () => {
    expect(sent.length).toBeGreaterThan(0);
    for (const b of sent) expect(b).not.toContain('skillId');
  });
});
