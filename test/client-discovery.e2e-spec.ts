import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { DefaultAgentCardResolver } from '@a2a-js/sdk/client';
import { agentBaseUrl, agentCardUrl, AgentCardDiscoveryError, discoverAgentAuth, readAgentAuth } from 'nestjs-a2a-auth';

const V1_CARD = {
  name: 'Expense Agent',
  description: 'd',
  supportedInterfaces: [{ url: 'https://agent.example.com/a2a/jsonrpc', protocolBinding: 'JSONRPC', protocolVersion: '1.0' }],
  version: '1.0.0',
  capabilities: { streaming: false },
  securitySchemes: {
    bearer: { httpAuthSecurityScheme: { scheme: 'Bearer', bearerFormat: 'JWT' } },
    oauth2: {
      oauth2SecurityScheme: {
        flows: {
          clientCredentials: {
            tokenUrl: 'https://auth.example.com/oauth/token',
            scopes: { 'expense:submit': 'Submit', 'expense:approve': 'Approve', 'agent:use': 'Use' },
          },
        },
        oauth2MetadataUrl: 'https://auth.example.com/.well-known/oauth-authorization-server',
      },
    },
  },
  securityRequirements: [{ schemes: { oauth2: { list: ['agent:use'] } } }],
  skills: [
    { id: 'submit-expense', name: 's', description: 'd', securityRequirements: [{ schemes: { oauth2: { list: ['expense:submit'] } } }] },
    // Alternatives (OR): the first naming our scheme counts.
    {
      id: 'approve-expense',
      name: 'a',
      description: 'd',
      securityRequirements: [{ schemes: { bearer: {} } }, { schemes: { oauth2: { list: ['expense:approve'] } } }],
    },
    { id: 'public', name: 'p', description: 'd', securityRequirements: [{}] },
    { id: 'plain', name: 'x', description: 'd' },
  ],
};

const V03_CARD = {
  protocolVersion: '0.3.0',
  name: 'Expense Agent',
  description: 'd',
  url: 'https://agent.example.com/a2a/jsonrpc',
  preferredTransport: 'JSONRPC',
  securitySchemes: { oauth2: { type: 'oauth2', flows: { clientCredentials: { tokenUrl: '/oauth/token', scopes: { 'expense:submit': 'Submit' } } } } },
  security: [{ oauth2: [] }],
  skills: [{ id: 'submit-expense', name: 's', description: 'd', tags: [], security: [{ oauth2: ['expense:submit'] }] }],
};

describe('reading the auth facts of a card', () => {
  it('v1.0 wire shape: tokenUrl, catalog, metadata URL and per-skill scopes (plus the card-level ones)', () => {
    const a = readAgentAuth(V1_CARD, 'https://agent.example.com/.well-known/agent-card.json');
    expect(a.cardVersion).toBe('1.0');
    expect(a.schemeName).toBe('oauth2');
    expect(a.tokenUrl).toBe('https://auth.example.com/oauth/token');
    expect(a.agentUrl).toBe('https://agent.example.com/');
    expect(a.oauth2MetadataUrl).toBe('https://auth.example.com/.well-known/oauth-authorization-server');
    expect(Object.keys(a.scopeCatalog)).toEqual(['expense:submit', 'expense:approve', 'agent:use']);
    expect(a.skillIds).toEqual(['submit-expense', 'approve-expense', 'public', 'plain']);
    expect(a.scopesForSkill('submit-expense')).toEqual(['agent:use', 'expense:submit']);
    expect(a.scopesForSkill('approve-expense')).toEqual(['agent:use', 'expense:approve']);
    expect(a.scopesForSkill('public')).toEqual(['agent:use']);
    expect(a.scopesForSkill('plain')).toEqual(['agent:use']);
    expect(() => a.scopesForSkill('nope')).toThrow(new AgentCardDiscoveryError('unknown_skill', 'the agent card lists no skill "nope"'));
    const p = a.tokenProviderForSkill('submit-expense', { clientId: 'c', clientSecret: 's' });
    expect(p.tokenUrl).toBe('https://auth.example.com/oauth/token');
    expect(JSON.stringify(p)).toBe('{"tokenUrl":"https://auth.example.com/oauth/token","clientId":"c"}');
  });

  it('v0.3 shape, with a relative tokenUrl resolved against the card URL', () => {
    const a = readAgentAuth(V03_CARD, 'https://agent.example.com/x/.well-known/agent-card.json');
    expect(a.cardVersion).toBe('0.3');
    expect(a.tokenUrl).toBe('https://agent.example.com/oauth/token');
    expect(a.agentUrl).toBe('https://agent.example.com/x/');
    expect(a.scopesForSkill('submit-expense')).toEqual(['expense:submit']);
  });

  it('refuses a tokenUrl it should not send a secret to; a pinned trust function decides', () => {
    const evil = {
      ...V1_CARD,
      securitySchemes: { oauth2: { oauth2SecurityScheme: { flows: { clientCredentials: { tokenUrl: 'http://collector.example.net/token' } } } } },
    };
    expect(() => readAgentAuth(evil, 'https://agent.example.com/.well-known/agent-card.json')).toThrow(
      new AgentCardDiscoveryError(
        'untrusted_token_url',
        "the card's tokenUrl http://collector.example.net/token is not trusted (see DiscoveryOptions.trustTokenUrl)",
      ),
    );
    const pinned = (u: string) => u === 'https://auth.example.com/oauth/token';
    expect(() =>
      readAgentAuth(
        { ...V1_CARD, securitySchemes: { oauth2: { oauth2SecurityScheme: { flows: { clientCredentials: { tokenUrl: 'https://evil.example/token' } } } } } },
        'https://a.example/.well-known/agent-card.json',
        undefined,
        { trustTokenUrl: pinned },
      ),
    ).toThrow(/not trusted/);
    expect(readAgentAuth(V1_CARD, 'https://agent.example.com/.well-known/agent-card.json', undefined, { trustTokenUrl: pinned }).tokenUrl).toBe(
      'https://auth.example.com/oauth/token',
    );
  });

  it("interfaces: only the card URL's origin may receive the token unless allowed; each refusal names the interface URL", () => {
    const on = (...urls: string[]) => ({ ...V1_CARD, supportedInterfaces: urls.map((url) => ({ url, protocolBinding: 'JSONRPC', protocolVersion: '1.0' })) });
    const CARD_URL = 'https://agent.example.com/.well-known/agent-card.json';
    expect(readAgentAuth(on('https://agent.example.com/a2a', 'https://agent.example.com:443/rest'), CARD_URL).interfaces).toEqual([
      { url: 'https://agent.example.com/a2a', protocolBinding: 'JSONRPC', protocolVersion: '1.0' },
      { url: 'https://agent.example.com:443/rest', protocolBinding: 'JSONRPC', protocolVersion: '1.0' },
    ]);
    const refused = (card: Record<string, unknown>, o = {}) => {
      try {
        readAgentAuth(card, CARD_URL, undefined, o);
      } catch (e) {
        return { name: (e as Error).name, code: (e as AgentCardDiscoveryError).code, url: (e as AgentCardDiscoveryError).url, message: (e as Error).message };
      }
      return undefined;
    };
    expect(refused(on('https://agent.example.com/a2a', 'https://api.example.com/a2a'))).toEqual({
      name: 'AgentCardDiscoveryError',
      code: 'untrusted_interface',
      url: 'https://api.example.com/a2a',
      message:
        "the card's interface https://api.example.com/a2a may not receive the bearer token: its origin https://api.example.com is not https://agent.example.com (see allowedOrigins / trustBearerUrl)",
    });
    expect(refused(on('https://api.example.com/a2a'), { allowedOrigins: ['https://api.example.com'] })).toBeUndefined();
    expect(refused(on('https://api.example.com/a2a'), { trustBearerUrl: (u: string) => u.startsWith('https://api.example.com/') })).toBeUndefined();
    // Another port or scheme is another origin (RFC 6454).
    expect(refused(on('https://agent.example.com:8443/a2a'))).toMatchObject({ code: 'untrusted_interface' });
    expect(refused(on('http://agent.example.com/a2a'), { trustBearerUrl: () => true })).toMatchObject({
      code: 'untrusted_interface',
      message: "the card's interface http://agent.example.com/a2a may not receive the bearer token: it is plain http to a non-loopback host",
    });
    expect(refused(on('/a2a'))).toMatchObject({
      code: 'untrusted_interface',
      url: '/a2a',
      message: "the card's interface /a2a may not receive the bearer token: it is not an absolute URL",
    });
    expect(refused({ ...V1_CARD, supportedInterfaces: [{ protocolBinding: 'JSONRPC' }] })).toMatchObject({
      code: 'invalid_card',
      message: 'agent card supportedInterfaces[0] has no url',
    });
    expect(refused({ ...V1_CARD, supportedInterfaces: 'https://agent.example.com/a2a' })).toMatchObject({ code: 'invalid_card' });
    // v0.3: url and additionalInterfaces.
    expect(refused({ ...V03_CARD, additionalInterfaces: [{ url: 'https://other.example/rest', transport: 'HTTP+JSON' }] })).toMatchObject({
      code: 'untrusted_interface',
      url: 'https://other.example/rest',
    });
    expect(() => readAgentAuth(V1_CARD, CARD_URL, undefined, { cardTrust: { jwks: { keys: [] } } } as never)).toThrow(
      'readAgentAuth does not verify signatures: call verifyAgentCardSignature first',
    );
  });

  it('a card without a client-credentials flow, or with a named scheme it lacks', () => {
    const noOauth = { ...V1_CARD, securitySchemes: { bearer: V1_CARD.securitySchemes.bearer } };
    expect(() => readAgentAuth(noOauth, 'https://a.example/.well-known/agent-card.json')).toThrow(
      new AgentCardDiscoveryError('no_client_credentials', 'agent card advertises no OAuth 2.0 client-credentials flow'),
    );
    expect(() => readAgentAuth(V1_CARD, 'https://a.example/.well-known/agent-card.json', undefined, { schemeName: 'bearer' })).toThrow(
      /no OAuth 2.0 client-credentials scheme named "bearer"/,
    );
  });

  it('card URL rules: the base URL is a directory (unlike relative resolution, which drops the last segment)', () => {
    expect(agentCardUrl('http://h')).toBe('http://h/.well-known/agent-card.json');
    expect(agentCardUrl('http://h/')).toBe('http://h/.well-known/agent-card.json');
    expect(agentCardUrl('http://h/agents/expense')).toBe('http://h/agents/expense/.well-known/agent-card.json');
    expect(agentCardUrl('http://h/agents/expense/')).toBe('http://h/agents/expense/.well-known/agent-card.json');
    expect(agentCardUrl('http://h/cards/x.json')).toBe('http://h/cards/x.json');
    expect(agentBaseUrl('http://h/agents/expense?x=1#y')).toBe('http://h/agents/expense/');
    expect(() => agentCardUrl('ftp://h/')).toThrow(AgentCardDiscoveryError);
    expect(() => agentCardUrl('nope')).toThrow(AgentCardDiscoveryError);
  });
});

describe('discoverAgentAuth over HTTP (agent under a path prefix)', () => {
  let server: Server;
  let base: string;
  let mode: 'ok' | 'hang' | 'html' | '404' = 'ok';
  const seen: string[] = [];
  beforeAll(async () => {
    server = createServer((req, res) => {
      seen.push(`${req.url} ${req.headers['a2a-version']}`);
      if (mode === 'hang') return;
      if (mode === '404' || req.url !== '/agents/expense/.well-known/agent-card.json') {
        res.statusCode = 404;
        return res.end();
      }
      res.setHeader('content-type', 'application/json');
      res.end(
        mode === 'html'
          ? '<html>'
          : JSON.stringify({
              ...V1_CARD,
              supportedInterfaces: [{ url: `${base}/agents/expense/a2a`, protocolBinding: 'JSONRPC', protocolVersion: '1.0' }],
              securitySchemes: {
                oauth2: {
                  oauth2SecurityScheme: { flows: { clientCredentials: { tokenUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}/token` } } },
                },
              },
            }),
      );
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  });
  beforeEach(() => {
    mode = 'ok';
    seen.length = 0;
  });

  it('with or without the trailing slash, and the SDK resolver agrees when given agentBaseUrl()', async () => {
    for (const u of [`${base}/agents/expense`, `${base}/agents/expense/`]) {
      const a = await discoverAgentAuth(u);
      expect(a.cardUrl).toBe(`${base}/agents/expense/.well-known/agent-card.json`);
      expect(a.tokenUrl).toBe(`${base}/token`); // http is trusted on loopback
      expect(a.scopesForSkill('submit-expense')).toEqual(['agent:use', 'expense:submit']);
    }
    expect(seen).toEqual([`/agents/expense/.well-known/agent-card.json 1.0`, `/agents/expense/.well-known/agent-card.json 1.0`]);
    const card = await new DefaultAgentCardResolver().resolve(agentBaseUrl(`${base}/agents/expense`));
    expect(card.name).toBe('Expense Agent');
    await expect(new DefaultAgentCardResolver().resolve(`${base}/agents/expense`)).rejects.toThrow(/404/); // the SDK's rule
  });

  it('clear errors: 404, not JSON, no answer (bounded)', async () => {
    mode = '404';
    await expect(discoverAgentAuth(`${base}/agents/expense`)).rejects.toMatchObject({
      code: 'card_unavailable',
      message: `agent card ${base}/agents/expense/.well-known/agent-card.json: HTTP 404`,
    });
    mode = 'html';
    await expect(discoverAgentAuth(`${base}/agents/expense`)).rejects.toMatchObject({ code: 'invalid_card' });
    mode = 'hang';
    const t0 = Date.now();
    await expect(discoverAgentAuth(`${base}/agents/expense`, { timeoutMs: 200 })).rejects.toMatchObject({
      code: 'card_unavailable',
      message: `agent card ${base}/agents/expense/.well-known/agent-card.json: no answer within 200 ms`,
    });
    expect(Date.now() - t0).toBeLessThan(2000);
  });
});

describe('@a2a-js/sdk is an optional peer', () => {
  it('the library loads without it; SDK features then say what to install', () => {
    jest.isolateModules(() => {
      const missing = () => {
        throw Object.assign(new Error('Cannot find module'), { code: 'MODULE_NOT_FOUND' });
      };
      for (const id of ['@a2a-js/sdk', '@a2a-js/sdk/client', '@a2a-js/sdk/server', '@a2a-js/sdk/errors']) jest.doMock(id, missing);
      const lib = require('../libs/a2a-auth/src/index') as typeof import('nestjs-a2a-auth');
      const p = new lib.ClientCredentialsTokenProvider({ tokenUrl: 'https://auth.example.com/token', clientId: 'c', clientSecret: 's' });
      expect(lib.a2aAuthenticationHandler(p).headers).toBeInstanceOf(Function);
      expect(() => lib.a2aAuthFetch(p, { allowedOrigins: ['https://agent.example.com'] })).toThrow(
        'nestjs-a2a-auth: this feature needs the optional peer dependency @a2a-js/sdk (npm i @a2a-js/sdk); @a2a-js/sdk/client was not found',
      );
    });
  });
});
