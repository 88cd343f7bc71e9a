import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { promisify } from 'node:util';
import { SendMessageRequest, type Message, type Task } from '@a2a-js/sdk';
import { ClientFactory, ClientFactoryOptions, JsonRpcTransportFactory, RestTransportFactory, type Client } from '@a2a-js/sdk/client';
import { decodeJwt } from 'jose';
import { ClientCredentialsTokenProvider, TokenExchangeProvider, a2aAuthFetch, connectA2AAgent, type AuthAuditEvent } from 'nestjs-a2a-auth';
import { assistantPublicUrl, parseMaxChain } from '../apps/assistant-agent/src/config';
import { AuditCapture, delegationRefusalChallenge, runDelegationDemo } from '../apps/assistant-agent/src/demo-delegation';
import { bootstrapAssistant, delegationBanner, settingsFromEnv, startDelegationSample, type DelegationSample } from '../apps/assistant-agent/src/main';
import { parseDelegation } from '../apps/expense-agent/src/config';
import { PLATFORMS } from './fixtures/test-app';

const BINDINGS = ['JSONRPC', 'HTTP+JSON'] as const;
const REFUSED_BODY = {
  error: 'insufficient_scope',
  error_description: 'The delegation chain of the access token (RFC 8693 act claim) is not accepted for this resource',
};

function message(skillId: string, data: Record<string, unknown>): SendMessageRequest {
  return SendMessageRequest.fromJSON({ message: { messageId: randomUUID(), role: 'ROLE_USER', parts: [{ data }], metadata: { skillId } } });
}

function dataOf(res: Message | Task): unknown {
  return 'messageId' in res && res.parts[0]?.content?.$case === 'data' ? res.parts[0].content.value : res;
}

/** The official SDK client sending one fixed bearer token. */
async function clientWithToken(agentUrl: string, token: string, binding: string): Promise<Client> {
  const fetchImpl = a2aAuthFetch(
    { getToken: async () => ({ accessToken: token, tokenType: 'Bearer' }), invalidate: () => undefined },
    { allowedOrigins: [new URL(agentUrl).origin] },
  );
  return new ClientFactory(
    ClientFactoryOptions.createFrom(ClientFactoryOptions.default, {
      transports: [new JsonRpcTransportFactory({ fetchImpl }), new RestTransportFactory({ fetchImpl })],
      preferredTransports: [binding],
    }),
  ).createFromUrl(`${agentUrl}/`);
}

describe.each(PLATFORMS)('delegation chain on %s: user app → Assistant agent → Expense agent (RFC 8693, real apps)', (platform) => {
  let sample: DelegationSample;
  const audit = new AuditCapture();
  let refused: string;
  let userToken: string;
  const userCreds = () => ({
    clientId: sample.clients.user.clientId,
    clientSecret: sample.clients.user.clientSecret,
    resource: sample.assistant.settings.publicUrl,
  });
  const USER_SCOPES = ['assistant:file-expense', 'expense:submit'];
  /** Events about the Expense agent's submit-expense (`since` an index of `audit.events`). */
  const expenseEvents = (since: number): AuthAuditEvent[] => audit.events.slice(since).filter((e) => e.skillId === 'submit-expense');

  beforeAll(async () => {
    sample = await startDelegationSample({ platform, env: { NODE_ENV: 'test', ASSISTANT_PORT: '0' }, logger: audit });
    const card = (await (await fetch(`${sample.expense.url}/.well-known/agent-card.json`)).json()) as { name: string };
    refused = delegationRefusalChallenge(sample, card.name);
    userToken = await new ClientCredentialsTokenProvider({ tokenUrl: sample.devAuth.tokenUrl, ...userCreds(), scopes: USER_SCOPES }).getAccessToken();
  });
  afterAll(async () => {
    await sample?.close();
  });

  it("the Assistant agent's card advertises file-expense-for-me with its own scope; its tokens are for its own audience", async () => {
    const card = (await (await fetch(`${sample.assistant.url}/.well-known/agent-card.json`)).json()) as {
      name: string;
      skills: Array<{ id: string; securityRequirements: unknown }>;
    };
    expect(card.name).toBe('Expense Assistant Agent');
    expect(card.skills.map((s) => [s.id, s.securityRequirements])).toEqual([
      ['file-expense-for-me', [{ schemes: { oauth2: { list: ['assistant:file-expense'] } } }]],
    ]);
    expect(decodeJwt(userToken)).toMatchObject({ aud: sample.assistant.settings.publicUrl, client_id: 'assistant-user-app', scope: USER_SCOPES.join(' ') });
    expect(decodeJwt(userToken).act).toBeUndefined();
  });

  it.each(BINDINGS)('%s: the chain works; the Expense agent audits the user app as subject and the assistant as the actor', async (binding) => {
    const since = audit.events.length;
    const user = await connectA2AAgent({ agentUrl: sample.assistant.url, credentials: userCreds(), scopes: USER_SCOPES, preferredTransports: [binding] });
    const res = await user.client.sendMessage(message('file-expense-for-me', { amount: 12.9, currency: 'EUR', description: `Lunch (${binding})` }));
    expect(dataOf(res)).toEqual({
      expense: expect.objectContaining({ amount: 12.9, currency: 'EUR', description: `Lunch (${binding})`, status: 'submitted' }),
      onBehalfOf: 'assistant-user-app',
    });
    const own = audit.events.slice(since).filter((e) => e.skillId === 'file-expense-for-me');
    expect(own).toEqual([
      expect.objectContaining({ outcome: 'success', reason: 'ok', status: 200, clientId: 'assistant-user-app', subject: 'assistant-user-app', verified: true }),
    ]);
    expect(own[0].actors).toBeUndefined();
    const ev = expenseEvents(since);
    expect(ev).toHaveLength(1);
    expect(ev[0]).toMatchObject({
      outcome: 'success',
      reason: 'ok',
      status: 200,
      clientId: 'assistant-agent',
      subject: 'assistant-user-app',
      issuer: sample.devAuth.issuer,
      verified: true,
      requiredScopes: ['expense:submit'],
      grantedScopes: ['expense:submit'],
    });
    expect(ev[0].actors).toEqual([{ clientId: 'assistant-agent', subject: 'assistant-agent' }]);
    expect(JSON.stringify(audit.events)).not.toMatch(/eyJ|secret/);
  });

  it.each(BINDINGS)('%s: a token exchanged twice before the assistant is refused by the Expense agent: 403 delegation_too_deep', async (binding) => {
    const hop = new TokenExchangeProvider({ tokenUrl: sample.devAuth.tokenUrl, ...userCreds() });
    const twice = await hop.getAccessToken({ subjectToken: await hop.getAccessToken({ subjectToken: userToken }) });
    const since = audit.events.length;
    const res = await (
      await clientWithToken(sample.assistant.url, twice, binding)
    ).sendMessage(message('file-expense-for-me', { amount: 1, currency: 'EUR', description: 'deep' }));
    expect(dataOf(res)).toEqual({
      error: { status: 403, message: 'the Expense agent refused the call', downstream: { status: 403, wwwAuthenticate: refused } },
    });
    // The assistant itself accepted the two-actor token (its own limit is 2).
    expect(audit.events.slice(since).filter((e) => e.skillId === 'file-expense-for-me')).toEqual([expect.objectContaining({ outcome: 'success' })]);
    const ev = expenseEvents(since);
    expect(ev).toHaveLength(1);
    expect(ev[0]).toMatchObject({ outcome: 'failure', reason: 'delegation_too_deep', status: 403, subject: 'assistant-user-app', verified: true });
    expect(ev[0].actors).toEqual([
      { clientId: 'assistant-agent', subject: 'assistant-agent' },
      { clientId: 'assistant-user-app', subject: 'assistant-user-app' },
      { clientId: 'assistant-user-app', subject: 'assistant-user-app' },
    ]);
  });

  it.each(BINDINGS)('%s: a token exchanged by the untrusted rogue agent is refused: 403 untrusted_actor', async (binding) => {
    const seen: Array<{ status: number; www: string | null; body: unknown }> = [];
    const observing: typeof fetch = async (input, init) => {
      const r = await fetch(input, init);
      if (r.status >= 400) seen.push({ status: r.status, www: r.headers.get('www-authenticate'), body: await r.clone().json() });
      return r;
    };
    const since = audit.events.length;
    const rogue = await connectA2AAgent({
      agentUrl: sample.expense.url,
      credentials: { clientId: sample.clients.rogue.clientId, clientSecret: sample.clients.rogue.clientSecret, resource: sample.expense.publicUrl },
      skillId: 'submit-expense',
      onBehalfOf: userToken,
      preferredTransports: [binding],
      fetch: observing,
    });
    await expect(rogue.client.sendMessage(message('submit-expense', { amount: 999, currency: 'EUR', description: 'rogue' }))).rejects.toThrow();
    expect(seen).toEqual([{ status: 403, www: refused, body: REFUSED_BODY }]);
    const ev = expenseEvents(since);
    expect(ev).toHaveLength(1);
    expect(ev[0]).toMatchObject({
      outcome: 'failure',
      reason: 'untrusted_actor',
      status: 403,
      clientId: 'rogue-agent',
      subject: 'assistant-user-app',
      verified: true,
    });
    expect(ev[0].actors).toEqual([{ clientId: 'rogue-agent', subject: 'rogue-agent' }]);
  });

  it('with A2A_ISSUER the Assistant agent runs alone (settingsFromEnv) against a running Expense agent and issuer', async () => {
    const { settings, port } = await settingsFromEnv({
      A2A_ISSUER: sample.devAuth.issuer,
      A2A_JWKS_URI: sample.devAuth.jwksUri,
      A2A_TOKEN_URL: sample.devAuth.tokenUrl,
      EXPENSE_AGENT_URL: sample.expense.url,
      ASSISTANT_CLIENT_ID: sample.clients.assistant.clientId,
      ASSISTANT_CLIENT_SECRET: sample.clients.assistant.clientSecret,
      ASSISTANT_PORT: '0',
      // The same public URL (audience) as the dev setup's assistant: a second instance behind the same name.
      ASSISTANT_PUBLIC_URL: sample.assistant.settings.publicUrl,
    });
    expect(settings).toMatchObject({ expenseAudience: sample.expense.url, maxChainLength: 2 });
    const alone = await bootstrapAssistant({ settings, port, platform, logger: audit });
    try {
      const since = audit.events.length;
      const r = await fetch(`${alone.url}/message:send`, {
        method: 'POST',
        headers: { authorization: `Bearer ${userToken}`, 'content-type': 'application/json', 'a2a-version': '1.0' },
        body: JSON.stringify(SendMessageRequest.toJSON(message('file-expense-for-me', { amount: 5, currency: 'EUR', description: 'alone' }))),
      });
      expect(r.status).toBe(200);
      expect(((await r.json()) as { message: { parts: Array<{ data: unknown }> } }).message.parts[0].data).toEqual({
        expense: expect.objectContaining({ amount: 5, description: 'alone' }),
        onBehalfOf: 'assistant-user-app',
      });
      expect(expenseEvents(since).map((e) => [e.outcome, e.actors])).toEqual([['success', [{ clientId: 'assistant-agent', subject: 'assistant-agent' }]]]);
    } finally {
      await alone.close();
    }
    await expect(settingsFromEnv({ A2A_ISSUER: sample.devAuth.issuer })).rejects.toThrow(
      "EXPENSE_AGENT_URL is required with A2A_ISSUER (the Expense agent's base URL)",
    );
  });

  it("the start-up banner's curl sequence works as printed (the user app's token, then SendMessage to the assistant)", async () => {
    const script = delegationBanner(sample)
      .split('\n')
      .filter((l) => /^ {2}(USER_TOKEN=|curl )/.test(l))
      .join('\n');
    expect(script.split('\n')).toHaveLength(2);
    const { stdout } = await promisify(execFile)('sh', ['-c', script], { timeout: 20_000 });
    const reply = JSON.parse(stdout) as { result: { message: { parts: Array<{ data: unknown }> } } };
    expect(reply.result.message.parts[0].data).toEqual({
      expense: expect.objectContaining({ amount: 12.9, currency: 'EUR', status: 'submitted' }),
      onBehalfOf: 'assistant-user-app',
    });
  });

  it('the assistant refuses a token without its scope (403 insufficient_scope) and a missing one (401), and never calls the Expense agent', async () => {
    const since = audit.events.length;
    const rogueToken = await new ClientCredentialsTokenProvider({
      tokenUrl: sample.devAuth.tokenUrl,
      clientId: sample.clients.rogue.clientId,
      clientSecret: sample.clients.rogue.clientSecret,
      resource: sample.assistant.settings.publicUrl,
      scopes: ['expense:submit'],
    }).getAccessToken();
    const body = JSON.stringify(SendMessageRequest.toJSON(message('file-expense-for-me', { amount: 1, currency: 'EUR', description: 'x' })));
    const send = (headers: Record<string, string>) =>
      fetch(`${sample.assistant.url}/message:send`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'a2a-version': '1.0', ...headers },
        body,
      });
    const prefix = `Bearer realm="Expense Assistant Agent", resource_metadata="${sample.assistant.settings.publicUrl}/.well-known/oauth-protected-resource"`;
    const noScope = await send({ authorization: `Bearer ${rogueToken}` });
    expect([noScope.status, noScope.headers.get('www-authenticate')]).toEqual([
      403,
      `${prefix}, error="insufficient_scope", error_description="The access token lacks a required scope", scope="assistant:file-expense"`,
    ]);
    const none = await send({});
    expect([none.status, none.headers.get('www-authenticate')]).toEqual([401, prefix]);
    expect(expenseEvents(since)).toEqual([]);
  });
});

describe('the delegation demo (npm run demo, delegation part)', () => {
  it('runs (a), (b), (c) on both bindings as expected, prints the audit lines and no token or secret, and stops what it started', async () => {
    const lines: string[] = [];
    const out = await runDelegationDemo({ log: (l) => lines.push(l), env: { NODE_ENV: 'test', ASSISTANT_PORT: '0' } });
    expect(out.map((x) => [x.binding, x.status, x.audit?.reason, x.ok])).toEqual(
      BINDINGS.flatMap((b) => [
        [b, 200, 'ok', true],
        [b, 403, 'delegation_too_deep', true],
        [b, 403, 'untrusted_actor', true],
      ]),
    );
    const text = lines.join('\n');
    expect(text).toContain('Expense agent audit: {"type":"a2a.auth","outcome":"success"');
    expect(text).not.toMatch(/eyJ|-secret/);
    const url = /→ Expense agent \((http:\/\/127\.0\.0\.1:\d+)\)/.exec(text)?.[1];
    expect(url).toBeDefined();
    await expect(fetch(`${url}/.well-known/agent-card.json`)).rejects.toThrow();
  });
});

describe('the delegation sample with A2A_DELEGATION=off', () => {
  it("the Expense agent refuses the assistant's exchanged token: 403 delegation_not_allowed, relayed by the assistant", async () => {
    const audit = new AuditCapture();
    const sample = await startDelegationSample({ env: { NODE_ENV: 'test', ASSISTANT_PORT: '0', A2A_DELEGATION: 'off' }, logger: audit });
    try {
      const card = (await (await fetch(`${sample.expense.url}/.well-known/agent-card.json`)).json()) as { name: string };
      const user = await connectA2AAgent({
        agentUrl: sample.assistant.url,
        credentials: { clientId: sample.clients.user.clientId, clientSecret: sample.clients.user.clientSecret, resource: sample.assistant.settings.publicUrl },
        scopes: ['assistant:file-expense', 'expense:submit'],
      });
      const res = await user.client.sendMessage(message('file-expense-for-me', { amount: 3, currency: 'EUR', description: 'off' }));
      expect(dataOf(res)).toEqual({
        error: {
          status: 403,
          message: 'the Expense agent refused the call',
          downstream: { status: 403, wwwAuthenticate: delegationRefusalChallenge(sample, card.name) },
        },
      });
      expect(audit.events.filter((e) => e.skillId === 'submit-expense').map((e) => [e.reason, e.status, e.actors])).toEqual([
        ['delegation_not_allowed', 403, [{ clientId: 'assistant-agent', subject: 'assistant-agent' }]],
      ]);
    } finally {
      await sample.close();
    }
  });
});

describe('configuration of the delegation sample', () => {
  const from = (vars: Record<string, string>) => (k: string) => vars[k];
  it("the Expense agent's A2A_DELEGATION* variables: defaults, overrides, refusals naming the variable", () => {
    expect(parseDelegation(from({}))).toEqual({ accept: false });
    expect(parseDelegation(from({ A2A_DELEGATION: 'on' }))).toEqual({ accept: true, maxChainLength: 2 });
    expect(parseDelegation(from({ A2A_DELEGATION: 'on', DEV_ASSISTANT_ID: 'my-assistant' }))).toEqual({
      accept: true,
      maxChainLength: 2,
      trustedActors: ['my-assistant'],
    });
    expect(parseDelegation(from({ A2A_DELEGATION: 'on', A2A_DELEGATION_MAX_CHAIN: '1', A2A_DELEGATION_TRUSTED_ACTORS: 'a, b' }))).toEqual({
      accept: true,
      maxChainLength: 1,
      trustedActors: ['a', 'b'],
    });
    expect(parseDelegation(from({ A2A_DELEGATION: 'OFF' }))).toEqual({ accept: false });
    expect(() => parseDelegation(from({ A2A_DELEGATION: 'yes' }))).toThrow('A2A_DELEGATION must be "on" or "off", got "yes"');
    for (const v of ['0', '17', '2.5', 'two']) {
      expect(() => parseDelegation(from({ A2A_DELEGATION_MAX_CHAIN: v }))).toThrow(`A2A_DELEGATION_MAX_CHAIN must be an integer from 1 to 16, got "${v}"`);
    }
  });
  it('NODE_ENV=production: the dev setup refuses to start; the Assistant agent alone needs ASSISTANT_PUBLIC_URL', async () => {
    await expect(startDelegationSample({ env: { NODE_ENV: 'production' }, logger: false })).rejects.toThrow(/refuses to start with NODE_ENV=production/);
    expect(() => assistantPublicUrl(undefined, 3100, 'production')).toThrow('ASSISTANT_PUBLIC_URL is required with NODE_ENV=production');
    expect(() => assistantPublicUrl('localhost:3100', 3100)).toThrow(/^ASSISTANT_PUBLIC_URL must be an absolute URL/);
    expect(assistantPublicUrl('https://assistant.example.com/', 3100, 'production')).toBe('https://assistant.example.com');
  });
  it('ASSISTANT_DELEGATION_MAX_CHAIN', () => {
    expect(parseMaxChain(undefined)).toBe(2);
    expect(parseMaxChain('3')).toBe(3);
    expect(() => parseMaxChain('0')).toThrow('ASSISTANT_DELEGATION_MAX_CHAIN must be an integer from 1 to 16, got "0"');
  });
});
