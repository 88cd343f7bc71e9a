import { randomUUID } from 'node:crypto';
import request from 'supertest';
import { AgentCard, SendMessageRequest, type Message } from '@a2a-js/sdk';
import { ClientFactory, ClientFactoryOptions, JsonRpcTransportFactory, RestTransportFactory, type Client } from '@a2a-js/sdk/client';
import { connectA2AAgent, discoverAgentAuth, ClientCredentialsTokenProvider, InsufficientScopeError, type ConnectedA2AAgent } from 'nestjs-a2a-auth';
import { bootstrap, type RunningAgent } from '../apps/expense-agent/src/main';
import { runA2ADemo } from '../apps/expense-agent/src/a2a/demo-a2a';
import { PLATFORMS, CapturingLogger } from './fixtures/test-app';

const SUBMITTER = { clientId: 'expense-submitter', clientSecret: 'e2e-submitter-secret-91af' };
const APPROVER = { clientId: 'expense-approver', clientSecret: 'e2e-approver-secret-4c2d' };
const BINDINGS = ['JSONRPC', 'HTTP+JSON'] as const;

/** A `SendMessageRequest` for a skill with a JSON data part (skill id in `message.metadata.skillId`). */
function msg(skillId: string | undefined, data: Record<string, unknown> = {}): SendMessageRequest {
  return SendMessageRequest.fromJSON({
    message: { messageId: randomUUID(), role: 'ROLE_USER', parts: [{ data }], ...(skillId ? { metadata: { skillId } } : {}) },
  });
}

/** The single data part of an agent reply. */
function dataOf(r: unknown): Record<string, unknown> {
  const m = r as Message;
  expect('messageId' in m).toBe(true);
  const c = m.parts[0].content;
  if (c?.$case !== 'data') throw new Error('expected a data part');
  return c.value as Record<string, unknown>;
}

describe.each(PLATFORMS)('A2A bindings of the sample agent on %s', (platform) => {
  let agent: RunningAgent;
  const logger = new CapturingLogger();
  const tokens = new Set<string>();
  let challenge: string;
  // dpop: 'allowed' in the sample: every challenge names both schemes (RFC 6750 §3 and RFC 9449 §7.1), the error on the one used.
  let bearer: string;
  let dpopChallenge: string;
  let submitterToken: string;
  let approverToken: string;

  beforeAll(async () => {
    agent = await bootstrap({
      platform,
      port: 0,
      env: { DEV_SUBMITTER_SECRET: SUBMITTER.clientSecret, DEV_APPROVER_SECRET: APPROVER.clientSecret },
      logger,
      banner: false,
    });
    bearer = `Bearer realm="Expense Reimbursement Agent", resource_metadata="${agent.publicUrl}/.well-known/oauth-protected-resource"`;
    dpopChallenge = `DPoP realm="Expense Reimbursement Agent", resource_metadata="${agent.publicUrl}/.well-known/oauth-protected-resource", algs="ES256 PS256 RS256 EdDSA"`;
    challenge = `${bearer}, ${dpopChallenge}`;
    const tokenUrl = agent.devAuth!.tokenUrl;
    submitterToken = await new ClientCredentialsTokenProvider({ tokenUrl, ...SUBMITTER, scopes: ['expense:submit', 'expense:read'] }).getAccessToken();
    approverToken = await new ClientCredentialsTokenProvider({ tokenUrl, ...APPROVER, scopes: ['expense:approve', 'expense:read'] }).getAccessToken();
    tokens.add(submitterToken).add(approverToken);
  });
  afterAll(() => agent?.close());

  const rpc = (body: unknown, token?: string, version: string | null = '1.0') => {
    let r = request(agent.url).post('/a2a/jsonrpc').set('Content-Type', 'application/json');
    if (token) r = r.set('Authorization', `Bearer ${token}`);
    if (version) r = r.set('A2A-Version', version);
    return r.send(JSON.stringify(body));
  };
  const rest = (path: string, body: unknown, token?: string, version: string | null = '1.0') => {
    let r = request(agent.url).post(path).set('Content-Type', 'application/json');
    if (token) r = r.set('Authorization', `Bearer ${token}`);
    if (version) r = r.set('A2A-Version', version);
    return r.send(JSON.stringify(body));
  };
  const wire = (skillId: string | undefined, data: Record<string, unknown> = {}) => ({
    message: { messageId: randomUUID(), role: 'ROLE_USER', parts: [{ data }], ...(skillId ? { metadata: { skillId } } : {}) },
  });

  it('the card lists both bindings', async () => {
    const res = await request(agent.url).get('/.well-known/agent-card.json');
    expect(res.status).toBe(200);
    expect(res.body.supportedInterfaces).toEqual([
      { url: `${agent.publicUrl}/a2a/jsonrpc`, protocolBinding: 'JSONRPC', protocolVersion: '1.0' },
      { url: agent.publicUrl, protocolBinding: 'HTTP+JSON', protocolVersion: '1.0' },
    ]);
  });

  describe.each(BINDINGS)('official SDK client over %s', (binding) => {
    let sub: ConnectedA2AAgent;
    let appr: ConnectedA2AAgent;
    beforeAll(async () => {
      sub = await connectA2AAgent({ agentUrl: agent.url, credentials: SUBMITTER, skillId: 'submit-expense', preferredTransports: [binding] });
      appr = await connectA2AAgent({ agentUrl: agent.url, credentials: APPROVER, skillId: 'approve-expense', preferredTransports: [binding] });
    });
    afterAll(async () => {
      for (const c of [sub, appr]) if (c) tokens.add(await c.provider.getAccessToken());
    });

    it('discovers the token endpoint and the skill scopes from the card', () => {
      expect(sub.client.transport.protocolName).toBe(binding);
      expect(sub.auth.tokenUrl).toBe(agent.devAuth!.tokenUrl);
      expect(sub.auth.scopesForSkill('submit-expense')).toEqual(['expense:submit']);
      expect(sub.auth.scopesForSkill('approve-expense')).toEqual(['expense:approve']);
      expect(sub.auth.skillIds).toEqual(['submit-expense', 'approve-expense', 'list-expenses']);
    });

    it('the v0.3 view of the same card gives the same token endpoint and scopes', async () => {
      const v03 = await discoverAgentAuth(agent.url, { a2aVersion: '0.3' });
      expect(v03.cardVersion).toBe('0.3');
      expect(v03.tokenUrl).toBe(sub.auth.tokenUrl);
      for (const id of sub.auth.skillIds) expect(v03.scopesForSkill(id)).toEqual(sub.auth.scopesForSkill(id));
    });

    it('200: submit-expense, then the approver approves it over A2A', async () => {
      const submitted = dataOf(await sub.client.sendMessage(msg('submit-expense', { amount: 42.5, currency: 'EUR', description: 'Taxi' })));
      expect(submitted.expense).toMatchObject({ amount: 42.5, currency: 'EUR', description: 'Taxi', status: 'submitted', submittedBy: SUBMITTER.clientId });
      const id = (submitted.expense as { id: string }).id;
      const approved = dataOf(await appr.client.sendMessage(msg('approve-expense', { id })));
      expect(approved.expense).toMatchObject({ id, status: 'approved', approvedBy: APPROVER.clientId });
      // Business errors come back as data (409 for approving twice), not as auth failures.
      expect(dataOf(await appr.client.sendMessage(msg('approve-expense', { id })))).toEqual({ error: { status: 409, message: 'expense is already approved' } });
      expect(sub.provider.requestCount).toBe(1);
    });

    it('streaming through the SDK client (server-sent events on this binding)', async () => {
      const cases: string[] = [];
      let data: Record<string, unknown> | undefined;
      for await (const ev of sub.client.sendMessageStream(msg('submit-expense', { amount: 7, currency: 'USD', description: 'Coffee' }))) {
        cases.push(String(ev.payload?.$case));
        if (ev.payload?.$case === 'message') data = dataOf(ev.payload.value);
      }
      expect(cases).toEqual(['message']);
      expect(data?.expense).toMatchObject({ amount: 7, currency: 'USD', status: 'submitted', submittedBy: SUBMITTER.clientId });
    });

    it('403: the submitter’s token lacks expense:approve, so approve-expense never runs (no step-up configured: InsufficientScopeError)', async () => {
      const e = await sub.client.sendMessage(msg('approve-expense', { id: 'x' })).catch((x: unknown) => x);
      // connectA2AAgent's fetch turns the 403 into the typed error on both bindings, with the agent's challenge.
      expect(e).toBeInstanceOf(InsufficientScopeError);
      const ie = e as InsufficientScopeError;
      expect([ie.statusCode, ie.requiredScopes, ie.refusedScopes, ie.stepUpAttempted]).toEqual([403, ['expense:approve'], ['expense:approve'], false]);
      expect(ie.headers!['www-authenticate']).toBe(
        `${bearer}, error="insufficient_scope", error_description="The access token lacks a required scope", scope="expense:approve", ${dpopChallenge}`,
      );
    });

    it('401: the SDK client without our handler', async () => {
      const factory = new ClientFactory(
        ClientFactoryOptions.createFrom(ClientFactoryOptions.default, {
          transports: [new JsonRpcTransportFactory(), new RestTransportFactory()],
          preferredTransports: [binding],
        }),
      );
      const anon: Client = await factory.createFromUrl(`${agent.url}/`);
      const e = await anon.sendMessage(msg('submit-expense', { amount: 1, currency: 'EUR', description: 'x' })).catch((x: unknown) => x);
      if (binding === 'HTTP+JSON') {
        expect((e as { statusCode: number }).statusCode).toBe(401);
        expect((e as { headers: Record<string, string> }).headers['www-authenticate']).toBe(challenge);
      } else {
        expect((e as Error).message).toMatch(/^HTTP error for SendMessage! Status: 401 Unauthorized\. /);
      }
      const ce = await anon.getAgentCard().catch((x: unknown) => x);
      expect(ce).toBeInstanceOf(Error);
      expect(String((ce as Error).message)).toMatch(/401/);
    });

    it('the extended card with auth equals the library’s GET /extendedAgentCard', async () => {
      const served = await request(agent.url).get('/extendedAgentCard').set('Authorization', `Bearer ${submitterToken}`);
      expect(served.status).toBe(200);
      const ext = await sub.client.getAgentCard();
      expect(AgentCard.toJSON(ext)).toEqual(served.body);
      expect(served.body.capabilities.extendedAgentCard).toBe(true);
    });
  });

  it('runA2ADemo: submit 200, approve without the scope 403, no token 401, approver 200, on both bindings', async () => {
    const outcomes = await runA2ADemo({
      agentUrl: agent.url,
      submitter: { id: SUBMITTER.clientId, secret: SUBMITTER.clientSecret },
      approver: { id: APPROVER.clientId, secret: APPROVER.clientSecret },
    });
    expect(outcomes.map((x) => [x.binding, x.step, x.status, x.ok])).toEqual(
      BINDINGS.flatMap((b) => [
        [b, 'submit-expense as expense-submitter', 200, true],
        [b, 'approve-expense as expense-submitter (no expense:approve)', 403, true],
        [b, 'submit-expense with no token', 401, true],
        [b, 'approve-expense as expense-approver', 200, true],
      ]),
    );
    // InsufficientScopeError carries the challenge on both bindings.
    for (const i of [1, 5]) {
      expect(outcomes[i].wwwAuthenticate).toBe(
        `${bearer}, error="insufficient_scope", error_description="The access token lacks a required scope", scope="expense:approve", ${dpopChallenge}`,
      );
    }
    expect(JSON.stringify(outcomes)).not.toContain(SUBMITTER.clientSecret);
  });

  describe('raw wire behaviour', () => {
    it('401 with WWW-Authenticate on both bindings without a token or with a bad one, never a 200 envelope', async () => {
      const body = { error: 'invalid_request', error_description: 'Authentication required: send an OAuth 2.0 bearer token in the Authorization header' };
      for (const r of [
        await rpc({ jsonrpc: '2.0', id: 1, method: 'SendMessage', params: wire('submit-expense') }),
        await rest('/message:send', wire('submit-expense')),
      ]) {
        expect(r.status).toBe(401);
        expect(r.headers['www-authenticate']).toBe(challenge);
        expect(r.body).toEqual(body);
      }
      for (const r of [
        await rpc({ jsonrpc: '2.0', id: 1, method: 'GetExtendedAgentCard' }),
        await request(agent.url).get('/extendedAgentCard'),
        await request(agent.url).get('/tasks/abc'),
      ]) {
        expect(r.status).toBe(401);
        expect(r.headers['www-authenticate']).toBe(challenge);
      }
      const bad = await rpc({ jsonrpc: '2.0', id: 1, method: 'SendMessage', params: wire('submit-expense') }, `${submitterToken.slice(0, -4)}AAAA`);
      expect(bad.status).toBe(401);
      expect(bad.headers['www-authenticate']).toBe(`${bearer}, error="invalid_token", error_description="The access token is invalid", ${dpopChallenge}`);
      const badRest = await rest('/message:send', wire('submit-expense'), 'not-a-jwt');
      expect(badRest.status).toBe(401);
      expect(badRest.headers['www-authenticate']).toBe(`${bearer}, error="invalid_token", error_description="The access token is invalid", ${dpopChallenge}`);
    });

    it('403 insufficient_scope on both bindings, with the guard’s header and body', async () => {
      const want = { error: 'insufficient_scope', error_description: 'The access token lacks a required scope', scope: 'expense:approve' };
      for (const r of [
        await rpc({ jsonrpc: '2.0', id: 7, method: 'SendMessage', params: wire('approve-expense', { id: 'x' }) }, submitterToken),
        await rpc({ jsonrpc: '2.0', id: 7, method: 'SendStreamingMessage', params: wire('approve-expense', { id: 'x' }) }, submitterToken),
        await rest('/message:send', wire('approve-expense', { id: 'x' }), submitterToken),
        await rest('/message:stream', wire('approve-expense', { id: 'x' }), submitterToken),
        // request-level metadata.skillId counts too
        await rest('/message:send', { ...wire(undefined, { id: 'x' }), metadata: { skillId: 'approve-expense' } }, submitterToken),
      ]) {
        expect(r.status).toBe(403);
        expect(r.headers['www-authenticate']).toBe(
          `${bearer}, error="insufficient_scope", error_description="The access token lacks a required scope", scope="expense:approve", ${dpopChallenge}`,
        );
        expect(r.body).toEqual(want);
      }
      const audit = logger.lines.filter((l) => l.includes('"skillId":"approve-expense"') && l.includes('"reason":"insufficient_scope"'));
      expect(audit.length).toBeGreaterThanOrEqual(5);
    });

    it('JSON-RPC SendMessage returns the message; GetExtendedAgentCard returns the library’s extended card', async () => {
      const r = await rpc({ jsonrpc: '2.0', id: 'a', method: 'SendMessage', params: wire('list-expenses') }, approverToken);
      expect(r.status).toBe(200);
      expect(r.headers['content-type']).toMatch(/^application\/json/);
      expect(r.body.jsonrpc).toBe('2.0');
      expect(r.body.id).toBe('a');
      expect(r.body.result.message.role).toBe('ROLE_AGENT');
      expect(Array.isArray(r.body.result.message.parts[0].data.expenses)).toBe(true);
      const ext = await request(agent.url).get('/extendedAgentCard').set('Authorization', `Bearer ${approverToken}`);
      const c = await rpc({ jsonrpc: '2.0', id: 3, method: 'GetExtendedAgentCard' }, approverToken);
      expect(c.status).toBe(200);
      expect(c.body).toEqual({ jsonrpc: '2.0', id: 3, result: ext.body });
    });

    it('accepts the A2A media type application/a2a+json on both bindings (enableA2AMediaType)', async () => {
      const post = (path: string, body: unknown) =>
        request(agent.url)
          .post(path)
          .set('Content-Type', 'application/a2a+json')
          .set('Authorization', `Bearer ${approverToken}`)
          .set('A2A-Version', '1.0')
          .send(JSON.stringify(body));
      const r1 = await post('/message:send', wire('list-expenses'));
      expect(r1.status).toBe(200);
      expect(r1.body.message.role).toBe('ROLE_AGENT');
      const r2 = await post('/a2a/jsonrpc', { jsonrpc: '2.0', id: 9, method: 'SendMessage', params: wire('list-expenses') });
      expect(r2.status).toBe(200);
      expect(r2.body.result.message.role).toBe('ROLE_AGENT');
      const bad = await request(agent.url)
        .post('/message:send')
        .set('Content-Type', 'application/a2a+json')
        .set('Authorization', `Bearer ${approverToken}`)
        .set('A2A-Version', '1.0')
        .send('{oops');
      expect(bad.status).toBe(400);
    });

    it('a JSON-RPC body that is not a parsed JSON object never reaches the SDK (no skill-check bypass)', async () => {
      const envelope = { jsonrpc: '2.0', id: 5, method: 'SendMessage', params: wire('approve-expense', { id: 'x' }) };
      const asText = await request(agent.url)
        .post('/a2a/jsonrpc')
        .set('Content-Type', 'text/plain')
        .set('Authorization', `Bearer ${submitterToken}`)
        .set('A2A-Version', '1.0')
        .send(JSON.stringify(envelope));
      const doubleEncoded = await rpc(JSON.stringify(envelope), submitterToken);
      for (const r of [asText, doubleEncoded]) {
        expect(r.body?.result).toBeUndefined(); // the executor never ran
        if (r.status === 200) expect(r.body.error.code).toBe(-32602);
        else expect([400, 403, 415]).toContain(r.status);
      }
    });

    it('HTTP+JSON serves exactly /message:send and /message:stream (no /messagesend, /MESSAGE:send, /message:send/)', async () => {
      for (const path of ['/messagesend', '/MESSAGE:send', '/message:send/', '/message%3Asend']) {
        const r = await rest(path, wire('list-expenses'), approverToken);
        expect([path, r.status]).toEqual([path, 404]);
      }
      expect((await rest('/message:send', wire('list-expenses'), approverToken)).status).toBe(200);
    });

    it('unknown skill id: JSON-RPC -32602 (HTTP 200), HTTP+JSON 400 INVALID_ARGUMENT; no skill id: routed by the agent', async () => {
      const info = [{ '@type': 'type.googleapis.com/google.rpc.ErrorInfo', reason: 'INVALID_PARAMS', domain: 'a2a-protocol.org' }];
      const unknown = 'message.metadata.skillId names no skill of this agent';
      const r1 = await rpc({ jsonrpc: '2.0', id: 9, method: 'SendMessage', params: wire('delete-everything') }, submitterToken);
      expect(r1.status).toBe(200);
      expect(r1.body).toEqual({ jsonrpc: '2.0', id: 9, error: { code: -32602, message: unknown, data: info } });
      // No skillId: the agent routes the message itself (here to list-expenses, which expense:read allows).
      const r2 = await rpc({ jsonrpc: '2.0', id: 10, method: 'SendMessage', params: wire(undefined) }, submitterToken);
      expect(Object.keys(r2.body.result.message.parts[0].data)).toEqual(['expenses']);
      const r3 = await rest('/message:send', wire('delete-everything'), submitterToken);
      expect(r3.status).toBe(400);
      expect(r3.headers['content-type']).toMatch(/^application\/a2a\+json/);
      expect(r3.body).toEqual({ error: { code: 400, status: 'INVALID_ARGUMENT', message: unknown, details: info } });
      const r4 = await rest('/message:send', { ...wire('submit-expense'), metadata: { skillId: 'list-expenses' } }, submitterToken);
      expect(r4.status).toBe(400);
      expect(r4.body.error.message).toBe('message.metadata.skillId and metadata.skillId name different skills');
      const r5 = await rest('/message:send', wire(123 as never), submitterToken);
      expect(r5.status).toBe(400);
    });

    it('A2A-Version is checked: missing (= 0.3) is -32009 / 400 FAILED_PRECONDITION', async () => {
      const r1 = await rpc({ jsonrpc: '2.0', id: 1, method: 'SendMessage', params: wire('list-expenses') }, approverToken, null);
      expect(r1.status).toBe(200);
      expect(r1.body.error.code).toBe(-32009);
      expect(r1.body.error.message).toBe("The requested A2A protocol version '0.3' is not supported. Supported versions: 1.0");
      const r2 = await rest('/message:send', wire('list-expenses'), approverToken, null);
      expect(r2.status).toBe(400);
      expect(r2.body.error.status).toBe('FAILED_PRECONDITION');
    });

    it('streams: SendStreamingMessage and POST /message:stream answer with server-sent events', async () => {
      const s1 = await rpc({ jsonrpc: '2.0', id: 5, method: 'SendStreamingMessage', params: wire('list-expenses') }, approverToken);
      expect(s1.status).toBe(200);
      expect(s1.headers['content-type']).toMatch(/^text\/event-stream/);
      const ev1 = JSON.parse(s1.text.trim().replace(/^data: /, ''));
      expect(ev1.jsonrpc).toBe('2.0');
      expect(ev1.id).toBe(5);
      expect(Array.isArray(ev1.result.message.parts[0].data.expenses)).toBe(true);
      const s2 = await rest('/message:stream', wire('list-expenses'), approverToken);
      expect(s2.status).toBe(200);
      expect(s2.headers['content-type']).toMatch(/^text\/event-stream/);
      const ev2 = JSON.parse(s2.text.trim().replace(/^data: /, ''));
      expect(ev2.message.role).toBe('ROLE_AGENT');
    });

    it('tasks: unknown task is -32001 / 404; other /message… segments are 404', async () => {
      const r1 = await rpc({ jsonrpc: '2.0', id: 2, method: 'GetTask', params: { id: 'nope' } }, approverToken);
      expect(r1.status).toBe(200);
      expect(r1.body.error.code).toBe(-32001);
      const r2 = await request(agent.url).get('/tasks/nope').set('Authorization', `Bearer ${approverToken}`).set('A2A-Version', '1.0');
      expect(r2.status).toBe(404);
      expect(r2.body.error.status).toBe('NOT_FOUND');
      const r3 = await request(agent.url).get('/tasks').set('Authorization', `Bearer ${approverToken}`).set('A2A-Version', '1.0');
      expect(r3.status).toBe(200);
      const r4 = await rest('/messageXsend', wire('list-expenses'), approverToken);
      expect(r4.status).toBe(404);
      const r5 = await rest('/tasks/nope:explode', {}, approverToken);
      expect(r5.status).toBe(404);
    });

    it('push-notification configs: the sample offers none, so HTTP+JSON answers 400 PUSH_NOTIFICATION_NOT_SUPPORTED like JSON-RPC -32003', async () => {
      const info = [{ '@type': 'type.googleapis.com/google.rpc.ErrorInfo', reason: 'PUSH_NOTIFICATION_NOT_SUPPORTED', domain: 'a2a-protocol.org' }];
      const want = { error: { code: 400, status: 'FAILED_PRECONDITION', message: 'Push Notification is not supported', details: info } };
      const auth = (r: request.Test) => r.set('Authorization', `Bearer ${approverToken}`).set('A2A-Version', '1.0');
      for (const r of [
        await rest('/tasks/t-1/pushNotificationConfigs', { url: 'https://client.example.com/hook' }, approverToken),
        await auth(request(agent.url).get('/tasks/t-1/pushNotificationConfigs')),
        await auth(request(agent.url).get('/tasks/t-1/pushNotificationConfigs/c-1')),
        await auth(request(agent.url).delete('/tasks/t-1/pushNotificationConfigs/c-1')),
      ]) {
        expect(r.status).toBe(400);
        expect(r.headers['content-type']).toBe('application/a2a+json');
        expect(JSON.parse(r.text)).toEqual(want);
      }
      const j = await rpc({ jsonrpc: '2.0', id: 8, method: 'ListTaskPushNotificationConfigs', params: { taskId: 't-1' } }, approverToken);
      expect(j.body).toEqual({ jsonrpc: '2.0', id: 8, error: { code: -32003, message: 'Push Notification is not supported', data: info } });
    });

    it('no secret and no token in the agent’s logs', () => {
      const all = logger.lines.join('\n');
      expect(logger.lines.length).toBeGreaterThan(5);
      for (const s of [SUBMITTER.clientSecret, APPROVER.clientSecret, ...tokens]) expect(all).not.toContain(s);
    });
  });
});
