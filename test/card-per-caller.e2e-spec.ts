import 'reflect-metadata';
import { Module, type INestApplication } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { ExpressAdapter } from '@nestjs/platform-express';
import { FastifyAdapter } from '@nestjs/platform-fastify';
import request from 'supertest';
import { AgentCard } from '@a2a-js/sdk';
import { ClientFactory, ClientFactoryOptions, JsonRpcTransportFactory, RestTransportFactory } from '@a2a-js/sdk/client';
import { A2AAuthModule, A2ASkillAuthorizer, verifyAgentCard, type A2AAuthModuleOptions, type AgentCardJson } from 'nestjs-a2a-auth';
import type { A2ACaller } from 'nestjs-a2a-auth/core';
import { A2AJsonRpcController } from '../apps/expense-agent/src/a2a/a2a.controllers';
import { generateTestKey, type TestKey } from './fixtures/keys';
import { JwksServer } from './fixtures/jwks-server';
import { mintToken } from './fixtures/tokens';
import { replyingTransport } from './fixtures/a2a-reply';
import { CapturingLogger, PLATFORMS, type Platform } from './fixtures/test-app';
import { CARD_CONTROLLERS, CARD_PROVIDERS, cardOptions, expectedCard, expectedV03Card, freePort } from './fixtures/card-app';

// A2A v1.0 §13.3: the extended card MAY differ per authenticated caller. Here an `extendedOnly` skill (audit-report,
// @RequireScopes('expense:audit')) is listed only for callers granted its scope, and `card.extendedCardFor` changes
// the card of one client further. GET /extendedAgentCard, JSON-RPC GetExtendedAgentCard and the official SDK client on
// both bindings must give each caller the same, exact card.

const PARTNER_DESCRIPTION = 'Agent whose card is under test (partner terms)';
const PARTNER_DOCS = 'https://example.com/docs/partner';
const FAILED = 'the extended Agent Card could not be built for this caller';

/** The app's callback: partners get their own description and docs; the `broken-*` clients exercise each failure. */
async function extendedCardFor(caller: A2ACaller, card: AgentCardJson): Promise<AgentCardJson> {
  switch (caller.clientId) {
    case 'partner-co':
      // Mutates the copy it was given: the cached variant must not change for the next caller.
      card.description = PARTNER_DESCRIPTION;
      card.documentationUrl = PARTNER_DOCS;
      return card;
    case 'broken-throw':
      throw new Error('partner directory unreachable');
    case 'broken-invalid':
      return { ...card, skills: [{ id: 'x', name: 'X', description: 'no requirements' }] } as AgentCardJson;
    case 'broken-undefined':
      return undefined as unknown as AgentCardJson;
    case 'broken-hang':
      return new Promise<AgentCardJson>(() => undefined);
    default:
      return card;
  }
}

interface App {
  app: INestApplication;
  close(): Promise<void>;
}

async function startApp(platform: Platform, port: number, auth: A2AAuthModuleOptions, logger: CapturingLogger): Promise<App> {
  @Module({
    imports: [A2AAuthModule.forRoot(auth)],
    controllers: [...CARD_CONTROLLERS, A2AJsonRpcController],
    providers: [...CARD_PROVIDERS, A2ASkillAuthorizer, replyingTransport('ok')],
  })
  class PerCallerModule {}
  const adapter = platform === 'express' ? new ExpressAdapter() : new FastifyAdapter();
  const app = await NestFactory.create(PerCallerModule, adapter as never, { logger, abortOnError: false });
  await app.listen(port, '127.0.0.1');
  return { app, close: () => app.close() };
}

/** The fixture card with the HTTP+JSON interface at the app root, where `GET /extendedAgentCard` is served. */
const INTERFACES = [
  { url: '/a2a/jsonrpc', protocolBinding: 'JSONRPC' as const },
  { url: '/', protocolBinding: 'HTTP+JSON' as const },
];
function v1(base: string, extended: boolean, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    ...expectedCard(base, extended),
    supportedInterfaces: [
      { url: `${base}/a2a/jsonrpc`, protocolBinding: 'JSONRPC', protocolVersion: '1.0' },
      { url: `${base}/`, protocolBinding: 'HTTP+JSON', protocolVersion: '1.0' },
    ],
    ...extra,
  };
}
function v03(base: string, extended: boolean, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    ...expectedV03Card(base, extended),
    additionalInterfaces: [
      { url: `${base}/a2a/jsonrpc`, transport: 'JSONRPC' },
      { url: `${base}/`, transport: 'HTTP+JSON' },
    ],
    ...extra,
  };
}

/** The official SDK client on one binding; `getAgentCard()` fetches the extended card (the card's capability is on). */
async function sdkCard(base: string, token: string, binding: 'JSONRPC' | 'HTTP+JSON'): Promise<unknown> {
  const fetchImpl: typeof fetch = (input, init) => {
    const headers = new Headers(init?.headers);
    headers.set('Authorization', `Bearer ${token}`);
    return fetch(input, { ...init, headers });
  };
  const factory = new ClientFactory(
    ClientFactoryOptions.createFrom(ClientFactoryOptions.default, {
      transports: [new JsonRpcTransportFactory({ fetchImpl }), new RestTransportFactory({ fetchImpl })],
      preferredTransports: [binding],
    }),
  );
  const client = await factory.createFromUrl(`${base}/`);
  return AgentCard.toJSON(await client.getAgentCard());
}

describe.each(PLATFORMS)('a card for each caller on %s', (platform) => {
  let jwks: JwksServer;
  let key: TestKey;
  let t: App;
  let base: string;
  const logger = new CapturingLogger();
  const issued: string[] = [];

  beforeAll(async () => {
    jwks = await new JwksServer().start();
    key = generateTestKey('RS256');
    jwks.keys = [key.publicJwk];
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    t = await startApp(platform, port, cardOptions(base, jwks.issuer, jwks.jwksUri, {}, { interfaces: INTERFACES, extendedCardFor }), logger);
  });
  afterAll(async () => {
    await t?.close();
    await jwks?.stop();
  });

  const token = async (clientId: string, scope: string) => {
    const tok = await mintToken({ key, issuer: jwks.issuer, audience: `${base}/expense-agent`, claims: { scope, client_id: clientId, sub: clientId } });
    issued.push(tok);
    return tok;
  };
  const http = (tok?: string, version?: string) => {
    let r = request(base).get('/extendedAgentCard');
    if (tok) r = r.set('Authorization', `Bearer ${tok}`);
    if (version) r = r.set('A2A-Version', version);
    return r;
  };
  const rpc = (tok?: string, id: number | string = 1) => {
    let r = request(base).post('/a2a/jsonrpc').set('Content-Type', 'application/json').set('A2A-Version', '1.0');
    if (tok) r = r.set('Authorization', `Bearer ${tok}`);
    return r.send(JSON.stringify({ jsonrpc: '2.0', id, method: 'GetExtendedAgentCard' }));
  };

  /** The caller's card on every way of fetching it: exact, and the same everywhere. */
  async function expectCardEverywhere(tok: string, want: Record<string, unknown>, want03: Record<string, unknown>): Promise<void> {
    const h = await http(tok);
    expect([h.status, h.headers['content-type'], h.headers['cache-control']]).toStrictEqual([200, 'application/json', 'private, no-store']);
    expect(h.body).toStrictEqual(want);
    const j = await rpc(tok, 7);
    expect(j.status).toBe(200);
    expect(j.body).toStrictEqual({ jsonrpc: '2.0', id: 7, result: want });
    expect(await sdkCard(base, tok, 'JSONRPC')).toStrictEqual(want);
    expect(await sdkCard(base, tok, 'HTTP+JSON')).toStrictEqual(want);
    const old = await http(tok, '0.3');
    expect(old.status).toBe(200);
    expect(old.body).toStrictEqual(want03);
  }

  it('anonymous: 401 on the extended card on both bindings, and the public card never lists the extendedOnly skill', async () => {
    const challenge = `Bearer realm="Card Fixture Agent", resource_metadata="${base}/.well-known/oauth-protected-resource/expense-agent"`;
    const body = { error: 'invalid_request', error_description: 'Authentication required: send an OAuth 2.0 bearer token in the Authorization header' };
    for (const r of [await http(), await rpc()]) {
      expect(r.status).toBe(401);
      expect(r.headers['www-authenticate']).toBe(challenge);
      expect(r.body).toStrictEqual(body);
    }
    const pub = await request(base).get('/.well-known/agent-card.json');
    expect(pub.status).toBe(200);
    expect(pub.body).toStrictEqual(v1(base, false));
    expect(pub.text).not.toContain('audit-report');
    const pub03 = await request(base).get('/.well-known/agent-card.json').set('A2A-Version', '0.3');
    expect(pub03.body).toStrictEqual(v03(base, false));
  });

  it('a caller granted expense:audit sees the extendedOnly skill; one without it does not, on every binding', async () => {
    const auditor = await token('auditor-co', 'expense:read expense:audit');
    const reader = await token('reader-co', 'expense:read expense:submit');
    await expectCardEverywhere(auditor, v1(base, true), v03(base, true));
    await expectCardEverywhere(reader, v1(base, false), v03(base, false));
    // Interleaved again: each variant is cached under its own key and never served to the other caller.
    expect((await http(auditor)).body).toStrictEqual(v1(base, true));
    expect((await http(reader)).text).not.toContain('audit-report');
    expect((await rpc(reader)).text).not.toContain('audit-report');
  });

  it('skills the caller lacks scopes for that are not extendedOnly stay listed, as on the public card', async () => {
    const none = await token('scopeless-co', '');
    const r = await http(none);
    expect(r.status).toBe(200);
    expect(r.body).toStrictEqual(v1(base, false));
    expect(r.body.skills.map((s: { id: string }) => s.id)).toContain('approve-expense');
  });

  it('card.extendedCardFor changes one client’s card, on every binding; other callers keep theirs', async () => {
    const partner = await token('partner-co', 'expense:read');
    await expectCardEverywhere(
      partner,
      v1(base, false, { description: PARTNER_DESCRIPTION, documentationUrl: PARTNER_DOCS }),
      v03(base, false, { description: PARTNER_DESCRIPTION, documentationUrl: PARTNER_DOCS }),
    );
    // The callback mutated its copy; the cached variant of the same scopes is unchanged.
    expect((await http(await token('reader-2', 'expense:read'))).body).toStrictEqual(v1(base, false));
  });

  it.each([
    ['broken-throw', 'card.extendedCardFor partner directory unreachable'],
    ['broken-invalid', 'card.extendedCardFor returned an invalid Agent Card: card: skill "x" has no securityRequirements'],
    ['broken-undefined', 'card.extendedCardFor returned undefined, not an Agent Card'],
  ])('a failing callback (%s): HTTP 500 INTERNAL and JSON-RPC -32603 with a fixed message, logged without the token', async (clientId, reason) => {
    const tok = await token(clientId, 'expense:read expense:audit');
    const h = await http(tok);
    expect(h.status).toBe(500);
    expect(h.headers['content-type']).toBe('application/a2a+json');
    expect(h.headers['cache-control']).toBe('no-store');
    expect(JSON.parse(h.text)).toStrictEqual({ error: { code: 500, status: 'INTERNAL', message: FAILED, details: [] } });
    const j = await rpc(tok, 'x');
    expect(j.status).toBe(200);
    expect(j.body).toStrictEqual({ jsonrpc: '2.0', id: 'x', error: { code: -32603, message: FAILED } });
    const lines = logger.lines.filter((l) => l.includes('"type":"a2a.card.extended.failed"') && l.includes(`"clientId":"${clientId}"`));
    expect(lines).toHaveLength(2);
    const entry = JSON.parse(lines[0].slice(lines[0].indexOf('{'), lines[0].lastIndexOf('}') + 1));
    expect(entry).toStrictEqual({ type: 'a2a.card.extended.failed', clientId, issuer: jwks.issuer, reason, time: expect.any(String) });
    expect(lines[0]).toMatch(/^warn /);
  });

  it('a callback that never answers: 500 INTERNAL after the timeout (5000 ms), not a hang', async () => {
    const tok = await token('broken-hang', 'expense:read');
    const started = Date.now();
    const h = await http(tok);
    expect(h.status).toBe(500);
    expect(JSON.parse(h.text)).toStrictEqual({ error: { code: 500, status: 'INTERNAL', message: FAILED, details: [] } });
    expect(Date.now() - started).toBeGreaterThanOrEqual(4900);
    expect(Date.now() - started).toBeLessThan(20_000);
    expect(logger.lines.some((l) => l.includes('"clientId":"broken-hang"') && l.includes('no answer within 5000 ms'))).toBe(true);
  }, 30_000);

  it('no log line contains a token or an Authorization header', () => {
    const all = logger.lines.join('\n');
    for (const tok of issued) expect(all).not.toContain(tok);
    expect(all).not.toMatch(/Bearer ey/);
  });
});

describe.each(PLATFORMS)('signed per-caller cards on %s', (platform) => {
  let jwks: JwksServer;
  let key: TestKey;
  let signing: TestKey;
  let t: App;
  let base: string;

  beforeAll(async () => {
    jwks = await new JwksServer().start();
    key = generateTestKey('RS256');
    signing = generateTestKey('ES256', 'card-key-1');
    jwks.keys = [key.publicJwk];
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    const card = { interfaces: INTERFACES, extendedCardFor, signing: { privateKey: signing.privateKey, kid: 'card-key-1', alg: 'ES256' } };
    t = await startApp(platform, port, cardOptions(base, jwks.issuer, jwks.jwksUri, {}, card), new CapturingLogger());
  });
  afterAll(async () => {
    await t?.close();
    await jwks?.stop();
  });

  const token = (clientId: string, scope: string) =>
    mintToken({ key, issuer: jwks.issuer, audience: `${base}/expense-agent`, claims: { scope, client_id: clientId, sub: clientId } });
  const getKey = (h: { kid?: string }) => {
    if (h.kid !== 'card-key-1') throw new Error('unknown kid');
    return signing.publicKey;
  };

  it('each variant (scopes, callback, v0.3 view) carries its own signature over exactly what it serves', async () => {
    const cases: Array<[string, string, Record<string, unknown>]> = [
      ['auditor-co', 'expense:read expense:audit', v1(base, true)],
      ['reader-co', 'expense:read', v1(base, false)],
      ['partner-co', 'expense:read', v1(base, false, { description: PARTNER_DESCRIPTION, documentationUrl: PARTNER_DOCS })],
    ];
    const signatures = new Set<string>();
    for (const [clientId, scope, want] of cases) {
      const tok = await token(clientId, scope);
      const h = await request(base).get('/extendedAgentCard').set('Authorization', `Bearer ${tok}`);
      expect(h.status).toBe(200);
      const { signatures: sig, ...unsigned } = h.body;
      expect(unsigned).toStrictEqual(want);
      expect(sig).toHaveLength(1);
      signatures.add(sig[0].signature);
      await expect(verifyAgentCard(h.body, getKey)).resolves.toMatchObject({ alg: 'ES256', kid: 'card-key-1', typ: 'JOSE' });
      // JSON-RPC serves the same signed document.
      const j = await request(base)
        .post('/a2a/jsonrpc')
        .set('Content-Type', 'application/json')
        .set('A2A-Version', '1.0')
        .set('Authorization', `Bearer ${tok}`)
        .send(JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'GetExtendedAgentCard' }));
      // A card the callback left unchanged is the built variant (one signature); a changed one is signed on each fetch.
      if (clientId === 'partner-co') {
        const { signatures: rpcSig, ...rpcUnsigned } = j.body.result;
        expect(rpcUnsigned).toStrictEqual(want);
        expect(rpcSig).toHaveLength(1);
      } else expect(j.body).toStrictEqual({ jsonrpc: '2.0', id: 1, result: h.body });
      await expect(verifyAgentCard(j.body.result, getKey)).resolves.toBeDefined();
      const old = await request(base).get('/extendedAgentCard').set('A2A-Version', '0.3').set('Authorization', `Bearer ${tok}`);
      await expect(verifyAgentCard(old.body, getKey)).resolves.toBeDefined();
    }
    expect(signatures.size).toBe(3);
    // An unchanged variant is signed once: the same bytes and ETag on every fetch.
    const tok = await token('auditor-co', 'expense:audit');
    const [a, b] = [
      await request(base).get('/extendedAgentCard').set('Authorization', `Bearer ${tok}`),
      await request(base).get('/extendedAgentCard').set('Authorization', `Bearer ${tok}`),
    ];
    expect(b.text).toBe(a.text);
    expect(b.headers.etag).toBe(a.headers.etag);
  });
});
