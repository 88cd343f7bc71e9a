import { randomUUID } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SendMessageRequest, type Message } from '@a2a-js/sdk';
import { ClientFactory, ClientFactoryOptions, DefaultAgentCardResolver, JsonRpcTransportFactory, RestTransportFactory } from '@a2a-js/sdk/client';
import {
  a2aAuthFetch,
  agentBaseUrl,
  AgentCardDiscoveryError,
  ClientCredentialsError,
  ClientCredentialsTokenProvider,
  connectA2AAgent,
  discoverAgentAuth,
  UntrustedDestinationError,
} from 'nestjs-a2a-auth';
import { bootstrap, type RunningAgent } from '../apps/expense-agent/src/main';
import { startCountingAuthServer, TEST_CLIENTS, type CountingAuthServer } from './fixtures/oidc-dev';
import { CapturingLogger, PLATFORMS } from './fixtures/test-app';

const [SUBMITTER] = TEST_CLIENTS;
const creds = { clientId: SUBMITTER.clientId, clientSecret: SUBMITTER.clientSecret };

/** One request as a server saw it. */
interface Seen {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: string;
}

/** A plain HTTP server on 127.0.0.1 (its own port, so its own origin) that records every request. */
class Recorder {
  server!: Server;
  url = '';
  seen: Seen[] = [];
  handler: (s: Seen, res: import('node:http').ServerResponse) => void = (_s, res) => {
    res.statusCode = 500;
    res.setHeader('content-type', 'application/json');
    res.end('{"error":"recorder"}');
  };

  async start(): Promise<this> {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const s = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks).toString('utf8') };
        this.seen.push(s);
        this.handler(s, res);
      });
    });
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this;
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((r) => this.server.close(() => r()));
  }
}

/** A v1.0 card served by origin A: its token endpoint is the real authorization server, its interfaces are given. */
function cardWith(tokenUrl: string, interfaces: Array<{ url: string; protocolBinding: string }>): Record<string, unknown> {
  return {
    name: 'Expense Agent',
    description: 'd',
    version: '1.0.0',
    supportedInterfaces: interfaces.map((i) => ({ ...i, protocolVersion: '1.0' })),
    capabilities: { streaming: false },
    defaultInputModes: ['application/json'],
    defaultOutputModes: ['application/json'],
    securitySchemes: { oauth2: { oauth2SecurityScheme: { flows: { clientCredentials: { tokenUrl, scopes: { 'expense:submit': 'Submit' } } } } } },
    skills: [
      {
        id: 'submit-expense',
        name: 's',
        description: 'd',
        tags: [],
        securityRequirements: [{ schemes: { oauth2: { list: ['expense:submit'] } } }],
      },
    ],
  };
}

/** What B saw, with any token masked (test output must not show one either). */
const seenBy = (r: Recorder) =>
  r.seen.map((s) => `${s.method} ${s.url} authorization=${s.headers.authorization ? s.headers.authorization.replace(/\S+$/, '<token>') : 'none'}`);

const message = () =>
  SendMessageRequest.fromJSON({
    message: {
      messageId: randomUUID(),
      role: 'ROLE_USER',
      parts: [{ data: { amount: 1, currency: 'EUR', description: 'x' } }],
      metadata: { skillId: 'submit-expense' },
    },
  });

describe('the bearer token goes only to allowed origins (two real servers on 127.0.0.1, the official SDK client)', () => {
  let as: CountingAuthServer;
  let a: Recorder; // origin A: serves the card (and, for the redirect case, an interface)
  let b: Recorder; // origin B: must never see a token
  let card: Record<string, unknown>;

  beforeAll(async () => {
    as = await startCountingAuthServer({ audience: 'http://127.0.0.1/expense-agent', ttl: 300 });
    a = await new Recorder().start();
    b = await new Recorder().start();
    a.handler = (s, res) => {
      if (s.url === '/.well-known/agent-card.json') {
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify(card));
        return;
      }
      // Every other path on A redirects to B, keeping the method and body (307).
      res.statusCode = 307;
      res.setHeader('location', `${b.url}/collect`);
      res.end();
    };
  });
  afterAll(async () => {
    await a?.stop();
    await b?.stop();
    await as?.close();
  });
  beforeEach(() => {
    a.seen = [];
    b.seen = [];
    as.tokenRequests = 0;
  });

  it('connectA2AAgent: a card on A naming interfaces on B is refused (untrusted_interface, naming the URL); B sees nothing, no token is requested', async () => {
    card = cardWith(as.tokenUrl, [
      { url: `${b.url}/a2a/jsonrpc`, protocolBinding: 'JSONRPC' },
      { url: b.url, protocolBinding: 'HTTP+JSON' },
    ]);
    let err: unknown;
    try {
      const { client } = await connectA2AAgent({ agentUrl: a.url, credentials: creds, skillId: 'submit-expense' });
      await client.sendMessage(message());
    } catch (e) {
      err = e;
    }
    expect(seenBy(b)).toEqual([]);
    expect(err).toBeInstanceOf(AgentCardDiscoveryError);
    expect(err).toMatchObject({
      code: 'untrusted_interface',
      url: `${b.url}/a2a/jsonrpc`,
      message: `the card's interface ${b.url}/a2a/jsonrpc may not receive the bearer token: its origin ${b.url} is not ${a.url} (see allowedOrigins / trustBearerUrl)`,
    });
    expect(seenBy(b)).toEqual([]);
    expect(as.tokenRequests).toBe(0);
    expect(a.seen.map((s) => `${s.method} ${s.url} ${s.headers.authorization ?? '-'}`)).toEqual(['GET /.well-known/agent-card.json -']);
  });

  it('the same for discoverAgentAuth, and for a v0.3 card whose additionalInterfaces name B', async () => {
    card = cardWith(as.tokenUrl, [{ url: `${b.url}/rest`, protocolBinding: 'HTTP+JSON' }]);
    await expect(discoverAgentAuth(a.url)).rejects.toMatchObject({ code: 'untrusted_interface', url: `${b.url}/rest` });
    card = {
      ...cardWith(as.tokenUrl, []),
      supportedInterfaces: undefined,
      protocolVersion: '0.3.0',
      url: `${a.url}/a2a/jsonrpc`,
      preferredTransport: 'JSONRPC',
      additionalInterfaces: [{ url: `${b.url}/a2a/jsonrpc`, transport: 'JSONRPC' }],
    };
    await expect(discoverAgentAuth(a.url)).rejects.toMatchObject({ code: 'untrusted_interface', url: `${b.url}/a2a/jsonrpc` });
    expect(seenBy(b)).toEqual([]);
  });

  it('an SDK client built by hand with a2aAuthFetch: a request to B is not sent (UntrustedDestinationError), not even a token request', async () => {
    card = cardWith(as.tokenUrl, [{ url: `${b.url}/a2a/jsonrpc`, protocolBinding: 'JSONRPC' }]);
    const provider = new ClientCredentialsTokenProvider({ tokenUrl: as.tokenUrl, ...creds, scopes: ['expense:submit'] });
    const fetchImpl = a2aAuthFetch(provider, { allowedOrigins: [a.url] });
    const client = await new ClientFactory(
      ClientFactoryOptions.createFrom(ClientFactoryOptions.default, {
        transports: [new JsonRpcTransportFactory({ fetchImpl }), new RestTransportFactory({ fetchImpl })],
        cardResolver: new DefaultAgentCardResolver(),
      }),
    ).createFromUrl(agentBaseUrl(a.url));
    const err = await client.sendMessage(message()).catch((e: unknown) => e);
    expect(seenBy(b)).toEqual([]);
    expect(err).toBeInstanceOf(UntrustedDestinationError);
    expect(err).toMatchObject({
      reason: 'untrusted_origin',
      url: `${b.url}/a2a/jsonrpc`,
      message: `the bearer token is not sent to ${b.url}/a2a/jsonrpc: its origin ${b.url} is not ${a.url} (see allowedOrigins / trustBearerUrl)`,
    });
    expect(seenBy(b)).toEqual([]);
    expect(as.tokenRequests).toBe(0);
  });

  it('a redirect from the allowed origin to B is not followed: neither the token nor the message body reaches B', async () => {
    card = cardWith(as.tokenUrl, [{ url: `${a.url}/a2a/jsonrpc`, protocolBinding: 'JSONRPC' }]);
    const { client } = await connectA2AAgent({ agentUrl: a.url, credentials: creds, skillId: 'submit-expense' });
    const err = await client.sendMessage(message()).catch((e: unknown) => e);
    expect(seenBy(b)).toEqual([]);
    expect(err).toBeInstanceOf(UntrustedDestinationError);
    expect(err).toMatchObject({
      reason: 'redirect',
      url: `${a.url}/a2a/jsonrpc`,
      location: `${b.url}/collect`,
      message: `${a.url}/a2a/jsonrpc answered HTTP 307 (to ${b.url}/collect): redirects are not followed with a bearer token`,
    });
    expect(seenBy(b)).toEqual([]);
    // A, the allowed origin, got the token once.
    const posts = a.seen.filter((s) => s.method === 'POST');
    expect(posts.map((s) => s.url)).toEqual(['/a2a/jsonrpc']);
    expect(posts[0].headers.authorization).toMatch(/^Bearer [\w-]+\.[\w-]+\.[\w-]+$/);
    expect(as.tokenRequests).toBe(1);
  });

  it('plain http to a non-loopback host: never, even when allowed by origin or by hook; nothing is sent', async () => {
    card = cardWith(as.tokenUrl, [{ url: 'http://agent.example.com/a2a/jsonrpc', protocolBinding: 'JSONRPC' }]);
    await expect(connectA2AAgent({ agentUrl: a.url, credentials: creds, skillId: 'submit-expense', trustBearerUrl: () => true })).rejects.toMatchObject({
      code: 'untrusted_interface',
      url: 'http://agent.example.com/a2a/jsonrpc',
      message: "the card's interface http://agent.example.com/a2a/jsonrpc may not receive the bearer token: it is plain http to a non-loopback host",
    });
    await expect(connectA2AAgent({ agentUrl: a.url, credentials: creds, allowedOrigins: ['http://agent.example.com'] })).rejects.toThrow(
      new ClientCredentialsError('allowedOrigins entry "http://agent.example.com" is plain http on a non-loopback host: a bearer token is never sent there'),
    );
    const provider = new ClientCredentialsTokenProvider({ tokenUrl: as.tokenUrl, ...creds });
    const f = a2aAuthFetch(provider, { trustBearerUrl: () => true });
    await expect(f('http://agent.example.com/a2a/jsonrpc', { method: 'POST', body: '{}' })).rejects.toMatchObject({
      name: 'UntrustedDestinationError',
      reason: 'insecure_http',
      message: 'the bearer token is not sent to http://agent.example.com/a2a/jsonrpc: it is plain http to a non-loopback host',
    });
    await expect(f('ftp://agent.example.com/x')).rejects.toMatchObject({ reason: 'not_http' });
    expect(as.tokenRequests).toBe(0);
    expect(seenBy(b)).toEqual([]);
  });

  it('a2aAuthFetch needs to be told where the token may go; origins are checked', () => {
    const provider = new ClientCredentialsTokenProvider({ tokenUrl: as.tokenUrl, ...creds });
    expect(() => a2aAuthFetch(provider)).toThrow(
      new ClientCredentialsError('a2aAuthFetch needs allowedOrigins (or trustBearerUrl): the origins that may receive the bearer token'),
    );
    expect(() => a2aAuthFetch(provider, { scopes: ['expense:submit'] })).toThrow(ClientCredentialsError);
    expect(() => a2aAuthFetch(provider, { allowedOrigins: ['https://a.example/path'] })).toThrow(
      'allowedOrigins entry "https://a.example/path" is not an origin (scheme://host[:port] only)',
    );
    expect(() => a2aAuthFetch(provider, { allowedOrigins: ['not a url'] })).toThrow('allowedOrigins entry "not a url" is not an http(s) origin');
    expect(() => a2aAuthFetch(provider, { allowedOrigins: ['https://a.example:443/'] })).not.toThrow();
  });

  it('a throwing trustBearerUrl hook refuses', async () => {
    const provider = new ClientCredentialsTokenProvider({ tokenUrl: as.tokenUrl, ...creds });
    const f = a2aAuthFetch(provider, {
      trustBearerUrl: () => {
        throw new Error('boom');
      },
    });
    await expect(f(`${b.url}/x`)).rejects.toMatchObject({
      reason: 'untrusted_origin',
      message: `the bearer token is not sent to ${b.url}/x: its origin ${b.url} is not an allowed origin (see allowedOrigins / trustBearerUrl)`,
    });
    expect(seenBy(b)).toEqual([]);
  });
});

describe.each(PLATFORMS)('a card served by another origin than the agent (sample agent on %s)', (platform) => {
  const SECRET = { clientId: 'expense-submitter', clientSecret: 'dest-submitter-secret-5e1b' };
  let agent: RunningAgent;
  let mirror: Recorder; // origin A: serves a copy of the agent's card; the agent is origin B
  let card: Record<string, unknown>;

  beforeAll(async () => {
    agent = await bootstrap({ platform, port: 0, env: { DEV_SUBMITTER_SECRET: SECRET.clientSecret }, logger: new CapturingLogger(), banner: false });
    card = (await (await fetch(`${agent.url}/.well-known/agent-card.json`, { headers: { 'A2A-Version': '1.0' } })).json()) as Record<string, unknown>;
    mirror = await new Recorder().start();
    mirror.handler = (s, res) => {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify(card));
    };
  });
  afterAll(async () => {
    await mirror?.stop();
    await agent?.close();
  });

  it('refused by default; allowed with allowedOrigins or trustBearerUrl, over both bindings (200 from the real agent)', async () => {
    const origin = new URL(agent.publicUrl).origin;
    await expect(connectA2AAgent({ agentUrl: mirror.url, credentials: SECRET, skillId: 'submit-expense' })).rejects.toMatchObject({
      code: 'untrusted_interface',
      url: `${agent.publicUrl}/a2a/jsonrpc`,
    });
    for (const binding of ['JSONRPC', 'HTTP+JSON']) {
      for (const allow of [{ allowedOrigins: [origin] }, { trustBearerUrl: (u: string) => new URL(u).origin === origin }]) {
        const { client } = await connectA2AAgent({
          agentUrl: mirror.url,
          credentials: SECRET,
          skillId: 'submit-expense',
          preferredTransports: [binding],
          ...allow,
        });
        expect(client.transport.protocolName).toBe(binding);
        const reply = (await client.sendMessage(message())) as Message;
        expect(reply.parts[0].content).toMatchObject({
          $case: 'data',
          value: { expense: { amount: 1, currency: 'EUR', status: 'submitted', submittedBy: SECRET.clientId } },
        });
      }
    }
    // The mirror served only the card: no token and no message went to it.
    expect(mirror.seen.every((s) => s.method === 'GET' && s.url === '/.well-known/agent-card.json' && s.headers.authorization === undefined)).toBe(true);
  });
});
