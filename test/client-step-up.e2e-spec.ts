import { randomUUID } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SendMessageRequest, type Message } from '@a2a-js/sdk';
import {
  a2aAuthFetch,
  ClientCredentialsTokenProvider,
  connectA2AAgent,
  InsufficientScopeError,
  insufficientScopeChallenge,
  parseWwwAuthenticate,
  planStepUp,
  TokenEndpointError,
} from 'nestjs-a2a-auth';
import { bootstrap, type RunningAgent } from '../apps/expense-agent/src/main';
import { CapturingLogger, PLATFORMS } from './fixtures/test-app';
import { startCountingAuthServer, TEST_CLIENTS } from './fixtures/oidc-dev';

// Step-up on 403 insufficient_scope (RFC 6750 §3.1), and private_key_jwt end to end: the official SDK client, through
// connectA2AAgent, against the sample agent (a real Nest app, express and fastify) and its dev authorization server.

const SUBMITTER = { clientId: 'expense-submitter', clientSecret: 'stepup-submitter-secret-3e1f' };
const APPROVER = { clientId: 'expense-approver', clientSecret: 'stepup-approver-secret-8a0b' };
const BINDINGS = ['JSONRPC', 'HTTP+JSON'] as const;

function msg(skillId: string, data: Record<string, unknown>): SendMessageRequest {
  return SendMessageRequest.fromJSON({ message: { messageId: randomUUID(), role: 'ROLE_USER', parts: [{ data }], metadata: { skillId } } });
}

function dataOf(r: unknown): Record<string, unknown> {
  const c = (r as Message).parts[0].content;
  if (c?.$case !== 'data') throw new Error('expected a data part');
  return c.value as Record<string, unknown>;
}

/** A base fetch that counts the A2A requests (not the card) and records their status. */
function counting() {
  const a2a: number[] = [];
  const f: typeof fetch = async (input, init) => {
    const res = await fetch(input, init);
    const url = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url;
    if (!url.includes('/.well-known/')) a2a.push(res.status);
    return res;
  };
  return { a2a, fetch: f };
}

const TAXI = { amount: 12.5, currency: 'EUR', description: 'Taxi' };

describe.each(PLATFORMS)('step-up and private_key_jwt with the SDK client, sample agent on %s', (platform) => {
  let agent: RunningAgent;
  const logger = new CapturingLogger();
  beforeAll(async () => {
    agent = await bootstrap({
      platform,
      port: 0,
      env: { DEV_SUBMITTER_SECRET: SUBMITTER.clientSecret, DEV_APPROVER_SECRET: APPROVER.clientSecret },
      logger,
      banner: false,
    });
  });
  afterAll(() => agent?.close());

  describe.each(BINDINGS)('%s', (binding) => {
    it('configured for the scope: 403 insufficient_scope → one token with it → one retry → 200; the next call needs no step-up', async () => {
      const n = counting();
      const c = await connectA2AAgent({
        agentUrl: agent.url,
        credentials: SUBMITTER,
        scopes: ['expense:read'],
        stepUpScopes: ['expense:submit'],
        preferredTransports: [binding],
        fetch: n.fetch,
      });
      expect(c.client.transport.protocolName).toBe(binding);
      const out = dataOf(await c.client.sendMessage(msg('submit-expense', TAXI)));
      expect(out.expense).toMatchObject({ status: 'submitted', amount: 12.5, submittedBy: SUBMITTER.clientId });
      expect(n.a2a).toEqual([403, 200]);
      expect(c.provider.requestCount).toBe(2);
      expect((await c.provider.getToken({ scopes: ['expense:read', 'expense:submit'] })).scopes.slice().sort()).toEqual(['expense:read', 'expense:submit']);
      await c.client.sendMessage(msg('submit-expense', TAXI));
      expect(n.a2a).toEqual([403, 200, 200]);
      expect(c.provider.requestCount).toBe(2);
    });

    it('not configured for the scope: InsufficientScopeError naming it; no token is requested for it; one A2A request', async () => {
      const n = counting();
      const c = await connectA2AAgent({
        agentUrl: agent.url,
        credentials: SUBMITTER,
        scopes: ['expense:read'],
        preferredTransports: [binding],
        fetch: n.fetch,
      });
      const e = await c.client.sendMessage(msg('submit-expense', TAXI)).catch((x: unknown) => x);
      expect(e).toBeInstanceOf(InsufficientScopeError);
      expect({ ...(e as InsufficientScopeError) }).toMatchObject({
        requiredScopes: ['expense:submit'],
        missingScopes: ['expense:submit'],
        refusedScopes: ['expense:submit'],
        stepUpAttempted: false,
      });
      expect(n.a2a).toEqual([403]);
      expect(c.provider.requestCount).toBe(1);
    });

    it('the authorization server refuses the wider scope: the typed TokenEndpointError, one A2A request, no loop', async () => {
      const n = counting();
      const c = await connectA2AAgent({
        agentUrl: agent.url,
        credentials: APPROVER,
        scopes: ['expense:read'],
        stepUpScopes: ['expense:submit'],
        preferredTransports: [binding],
        fetch: n.fetch,
      });
      const e = (await c.client.sendMessage(msg('submit-expense', TAXI)).catch((x: unknown) => x)) as TokenEndpointError;
      expect(e).toBeInstanceOf(TokenEndpointError);
      expect(e.error).toBe('invalid_scope');
      expect(n.a2a).toEqual([403]);
      expect(c.provider.requestCount).toBe(2);
    });

    it('private_key_jwt: the sample’s expense-keyed client (key generated by the dev AS at start) is accepted by the agent', async () => {
      const k = agent.devAuth!.clientKeys.get('expense-keyed')!;
      expect(k.alg).toBe('ES256');
      const n = counting();
      const c = await connectA2AAgent({
        agentUrl: agent.url,
        credentials: { clientId: 'expense-keyed', privateKey: { key: k.key, kid: k.kid } },
        skillId: 'submit-expense',
        preferredTransports: [binding],
        fetch: n.fetch,
      });
      expect(dataOf(await c.client.sendMessage(msg('submit-expense', TAXI))).expense).toMatchObject({ status: 'submitted', submittedBy: 'expense-keyed' });
      expect(n.a2a).toEqual([200]);
      expect(c.provider.requestCount).toBe(1);
    });
  });

  it('logs no secret, key or token', () => {
    const all = logger.lines.join('\n');
    expect(all).not.toContain(SUBMITTER.clientSecret);
    expect(all).not.toMatch(/PRIVATE KEY|client_assertion=|eyJhbGci/);
  });
});

describe('a retry refused again after step-up', () => {
  it('is InsufficientScopeError with stepUpAttempted: two resource requests, two token requests, never a third', async () => {
    const as = await startCountingAuthServer({ audience: 'http://127.0.0.1/expense-agent' });
    // A resource server that wants a scope the tokens never satisfy for it (it checks nothing else).
    let hits = 0;
    let first401 = false;
    const rs = createServer((_req, res) => {
      hits++;
      if (first401 && hits === 1) {
        res.writeHead(401, { 'www-authenticate': 'Bearer realm="x", error="invalid_token"' });
        return void res.end('{"error":"invalid_token"}');
      }
      res.writeHead(403, { 'www-authenticate': 'Bearer realm="x", error="insufficient_scope", scope="expense:submit"', 'content-type': 'application/json' });
      res.end('{"error":"insufficient_scope"}');
    });
    await new Promise<void>((r) => rs.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(rs.address() as AddressInfo).port}`;
    try {
      const { clientId, clientSecret } = TEST_CLIENTS[0];
      const p = new ClientCredentialsTokenProvider({ tokenUrl: as.tokenUrl, clientId, clientSecret, scopes: ['expense:read'] });
      const f = a2aAuthFetch(p, { scopes: ['expense:read'], stepUpScopes: ['expense:submit'], allowedOrigins: [url] });
      const e = (await f(`${url}/a2a/jsonrpc`, { method: 'POST', body: '{}' }).catch((x: unknown) => x)) as InsufficientScopeError;
      expect(e).toBeInstanceOf(InsufficientScopeError);
      expect({ ...e }).toMatchObject({
        requiredScopes: ['expense:submit'],
        missingScopes: [],
        refusedScopes: [],
        stepUpAttempted: true,
        url: `${url}/a2a/jsonrpc`,
      });
      expect([hits, p.requestCount, as.tokenRequests]).toEqual([2, 2, 2]);

      // A 403 answering the retry of a 401: the one retry is spent, no step-up was made, and nothing more is sent.
      hits = 0;
      first401 = true;
      const q = new ClientCredentialsTokenProvider({ tokenUrl: as.tokenUrl, clientId, clientSecret, scopes: ['expense:read'] });
      const g = a2aAuthFetch(q, { scopes: ['expense:read'], stepUpScopes: ['expense:submit'], allowedOrigins: [url] });
      const e2 = (await g(`${url}/a2a/jsonrpc`, { method: 'POST', body: '{}' }).catch((x: unknown) => x)) as InsufficientScopeError;
      expect({ ...e2 }).toMatchObject({ missingScopes: ['expense:submit'], refusedScopes: [], stepUpAttempted: false });
      expect([hits, q.requestCount]).toEqual([2, 2]);
    } finally {
      await new Promise<void>((r) => rs.close(() => r()));
      await as.close();
    }
  });
});

describe('WWW-Authenticate parsing and the step-up plan', () => {
  it('finds the insufficient_scope challenge among several (Bearer and DPoP), with quoted values', () => {
    const h =
      'Bearer realm="Expense, Agent", resource_metadata="http://x/.well-known/oauth-protected-resource", error="insufficient_scope", scope="expense:submit expense:read", ' +
      'DPoP realm="Expense, Agent", algs="ES256 RS256"';
    expect(parseWwwAuthenticate(h)).toEqual([
      {
        scheme: 'bearer',
        params: {
          realm: 'Expense, Agent',
          resource_metadata: 'http://x/.well-known/oauth-protected-resource',
          error: 'insufficient_scope',
          scope: 'expense:submit expense:read',
        },
      },
      { scheme: 'dpop', params: { realm: 'Expense, Agent', algs: 'ES256 RS256' } },
    ]);
    expect(insufficientScopeChallenge(h)).toEqual(['expense:submit', 'expense:read']);
    expect(insufficientScopeChallenge('Bearer error="invalid_token"')).toBeUndefined();
    // A quoted-pair is unescaped; `"` is not a scope-token character (RFC 6749 §3.3), so that one is dropped.
    expect(insufficientScopeChallenge('Basic abc==, Bearer error=insufficient_scope, scope="a\\"b c"')).toEqual(['c']);
    for (const junk of ['', '=', '"', 'Bearer ,,,', 'Bearer error="insufficient_scope', '\u0000\u0001'])
      expect(() => insufficientScopeChallenge(junk)).not.toThrow();
  });

  it('plans the union of requested and missing scopes; refuses scopes outside requested ∪ allowed; nothing missing is a refusal too', () => {
    expect(planStepUp({ required: ['b', 'a'], granted: ['a'], requested: ['a'], allowed: ['b'] })).toEqual({ scopes: ['a', 'b'], added: ['b'] });
    expect(() => planStepUp({ required: ['b', 'z'], granted: ['a'], requested: ['a'], allowed: ['b'] })).toThrow(
      expect.objectContaining({ name: 'InsufficientScopeError', missingScopes: ['b', 'z'], refusedScopes: ['z'], stepUpAttempted: false }),
    );
    expect(() => planStepUp({ required: ['a'], granted: ['a'], requested: ['a'], allowed: ['b'] })).toThrow(
      expect.objectContaining({ missingScopes: [], refusedScopes: [] }),
    );
  });
});
