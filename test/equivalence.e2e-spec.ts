import { randomUUID } from 'node:crypto';
import { X509Certificate } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { Controller, Get, Req, UseGuards } from '@nestjs/common';
import { AuthGuard } from '@nestjs/passport';
import { A2A_JWT_STRATEGY, A2ASkillAuthorizer, AgentSkill, Public, RequireScopes, certificateThumbprint, type A2AAuthModuleOptions } from 'nestjs-a2a-auth';
import { generateTestPki, type TestPki } from './fixtures/certs';
import { mintToken } from './fixtures/tokens';
import { A2AJsonRpcController, A2ARestController } from '../apps/expense-agent/src/a2a/a2a.controllers';
import { replyingTransport } from './fixtures/a2a-reply';
import { PLATFORMS, startTestApp, type Platform, type TestApp } from './fixtures/test-app';
import { createZooWorld, expectedWire, ZOO_AUD, ZOO_CASES, zooAuthOptions, type ZooCase, type ZooRequest, type ZooWorld } from './fixtures/zoo';

// One decision for every entry point: the whole token zoo goes through the global guard, through
// AuthGuard('a2a-jwt') (the Passport strategy, globalGuard off), and through both A2A bindings (JSON-RPC and
// HTTP+JSON, as a message to a skill), with mTLS binding off and on, on express and fastify. Each request must leave
// exactly one audit event, with the same reason code at every entry point; the guard and both bindings also give the
// same status, WWW-Authenticate and body.

/** The zoo's routes, declared as skills so that the same policy is reachable over A2A. */

const TRANSPORT = replyingTransport('done');

@Controller('t')
class ZooSkillsController {
  @AgentSkill({ id: 'zoo-me', name: 'Who am I', description: 'Needs any valid token' })
  @Get('me')
  me(@Req() req: { user: { clientId?: string } }) {
    return { clientId: req.user.clientId };
  }

  @AgentSkill({ id: 'approve-expense', name: 'Approve', description: 'Needs expense:approve' })
  @RequireScopes('expense:approve')
  @Get('approve')
  approve() {
    return { ok: true };
  }

  @AgentSkill({ id: 'zoo-public', name: 'Public', description: 'Needs nothing' })
  @Public()
  @Get('public')
  open() {
    return { ok: true };
  }
}

/** The Passport strategy on its own. */
@Controller('t')
class PassportOnlyController {
  @UseGuards(AuthGuard(A2A_JWT_STRATEGY))
  @Get('me')
  me(@Req() req: { user: { clientId?: string } }) {
    return { clientId: req.user.clientId };
  }
}

const CERTIFICATE_MISMATCH = (() => {
  const d = 'The access token is not bound to this client certificate';
  const bare = expectedWire('missing_token').wwwAuthenticate;
  return { status: 401, wwwAuthenticate: `${bare}, error="invalid_token", error_description="${d}"`, body: { error: 'invalid_token', error_description: d } };
})();

type EntryPoint = 'guard' | 'strategy' | 'jsonrpc' | 'rest';
const ENTRY_POINTS: readonly EntryPoint[] = ['guard', 'strategy', 'jsonrpc', 'rest'];

interface Answer {
  status: number;
  wwwAuthenticate?: string;
  body: unknown;
}

/** TLS client settings for an https app: the CA to trust and, optionally, a client certificate. */
interface Tls {
  ca: string;
  cert?: string;
  key?: string;
}

function send(baseUrl: string, method: string, path: string, headers: Array<[string, string]>, body?: unknown, tls?: Tls): Promise<Answer> {
  const u = new URL(baseUrl);
  const doRequest = (tls ? httpsRequest : httpRequest) as typeof httpRequest;
  const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
  const flat: string[] = ['Host', u.host];
  for (const [k, v] of headers) flat.push(k, v);
  if (payload) flat.push('Content-Type', 'application/json', 'Content-Length', String(payload.length), 'A2A-Version', '1.0');
  return new Promise((resolve, reject) => {
    const req = doRequest({ host: u.hostname, port: u.port, path, method, headers: flat as never, agent: false, timeout: 10_000, ...(tls ?? {}) }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let parsed: unknown = text;
        try {
          parsed = JSON.parse(text);
        } catch {
          /* not JSON */
        }
        resolve({ status: res.statusCode ?? 0, wwwAuthenticate: res.headers['www-authenticate'] as string | undefined, body: parsed });
      });
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('request timed out')));
    req.on('error', reject);
    req.end(payload);
  });
}

function sendMessageRequest(skillId: string) {
  return {
    message: { messageId: randomUUID(), role: 'ROLE_USER', parts: [{ text: 'hello' }], metadata: { skillId } },
  };
}

/** Sends one zoo request to one entry point. */
function viaEntryPoint(e: EntryPoint, url: string, r: ZooRequest, tls?: Tls): Promise<Answer> {
  const [path, query] = r.path.split('?');
  const q = query === undefined ? '' : `?${query}`;
  const skillId = path === '/t/approve' ? 'approve-expense' : 'zoo-me';
  switch (e) {
    case 'guard':
    case 'strategy':
      return send(url, 'GET', r.path, r.headers, undefined, tls);
    case 'jsonrpc':
      return send(url, 'POST', `/a2a/jsonrpc${q}`, r.headers, { jsonrpc: '2.0', id: 1, method: 'SendMessage', params: sendMessageRequest(skillId) }, tls);
    case 'rest':
      return send(url, 'POST', `/message:send${q}`, r.headers, sendMessageRequest(skillId), tls);
  }
}

describe.each(PLATFORMS)('one decision at every entry point on %s', (platform: Platform) => {
  describe.each([
    ['mTLS binding off', false, false],
    ['mTLS binding on (no client certificate)', true, false],
    ['signatures checked on the thread pool (verifyOffThread)', false, true],
  ] as const)('%s', (_label, mtls, verifyOffThread) => {
    let w: ZooWorld;
    const apps: Record<string, TestApp> = {};

    beforeAll(async () => {
      w = await createZooWorld();
      for (const variant of ['main', 'query'] as const) {
        const auth: A2AAuthModuleOptions = zooAuthOptions(w, {
          allowQueryToken: variant === 'query',
          verifyOffThread,
          tokenUrl: `${w.iss1.url}/token`,
          ...(mtls ? { mtls: { requireBoundTokens: true, advertise: false } } : {}),
          card: {
            name: 'Zoo Agent',
            description: 'equivalence',
            url: ZOO_AUD,
            interfaces: [
              { url: '/a2a/jsonrpc', protocolBinding: 'JSONRPC' },
              { url: '/', protocolBinding: 'HTTP+JSON' },
            ],
          },
        });
        apps[`${variant}:a2a`] = await startTestApp({
          platform,
          auth,
          controllers: [ZooSkillsController, A2AJsonRpcController, A2ARestController],
          providers: [A2ASkillAuthorizer, TRANSPORT],
          logger: false,
        });
        auths[variant] = auth;
      }
    });

    // Passport keeps one strategy registry per process: the strategy app booted last owns 'a2a-jwt'. So each variant's
    // strategy app is booted when its first case runs (cases run in variant order), making it the registered one.
    const auths: Record<string, A2AAuthModuleOptions> = {};
    const strategyApp = async (variant: string) => {
      apps[`${variant}:strategy`] ??= await startTestApp({
        platform,
        auth: auths[variant],
        controllers: [PassportOnlyController],
        globalGuard: false,
        logger: false,
      });
      return apps[`${variant}:strategy`];
    };
    afterAll(async () => {
      for (const a of Object.values(apps)) await a.close();
      await w?.iss1.stop();
      await w?.iss2.stop();
    });

    const expectedReason = (c: ZooCase) => (mtls && (c.reason === 'ok' || c.reason === 'insufficient_scope') ? 'certificate_mismatch' : c.reason);

    const cases = [...ZOO_CASES.filter((c) => c.app !== 'query'), ...ZOO_CASES.filter((c) => c.app === 'query')];
    it.each(cases.map((c) => [c.name, c] as const))('%s', async (_n, c) => {
      const variant = c.app === 'query' ? 'query' : 'main';
      const reason = expectedReason(c);
      const seen: Record<string, { reason: string; status: number; events: number }> = {};
      const wire: Record<string, Answer> = {};
      for (const e of ENTRY_POINTS) {
        const r = await c.make(w);
        // AuthGuard authenticates only: the scope check has no counterpart there.
        if (e === 'strategy' && r.path.startsWith('/t/approve')) continue;
        w.events.length = 0;
        const a = await viaEntryPoint(e, (e === 'strategy' ? await strategyApp(variant) : apps[`${variant}:a2a`]).url, r);
        const events = [...w.events];
        seen[e] = { reason: events.length === 1 ? events[0].reason : `${events.length} events`, status: a.status, events: events.length };
        wire[e] = a;
      }
      for (const [e, s] of Object.entries(seen)) {
        expect({ entryPoint: e, reason: s.reason }).toEqual({ entryPoint: e, reason });
      }
      const want = reason === 'certificate_mismatch' ? CERTIFICATE_MISMATCH : expectedWire(reason);
      if (reason === 'ok') {
        for (const e of Object.keys(wire)) expect({ entryPoint: e, status: wire[e].status }).toEqual({ entryPoint: e, status: 200 });
      } else {
        for (const e of ['guard', 'jsonrpc', 'rest']) {
          expect({ entryPoint: e, status: wire[e].status, wwwAuthenticate: wire[e].wwwAuthenticate, body: wire[e].body }).toEqual({
            entryPoint: e,
            status: want.status,
            wwwAuthenticate: want.wwwAuthenticate,
            body: want.body,
          });
        }
        if (wire.strategy) expect(wire.strategy).toEqual({ status: 401, wwwAuthenticate: undefined, body: { message: 'Unauthorized', statusCode: 401 } });
      }
    });

    it('a message to a @Public() skill runs without a token on both bindings, and nothing else does', async () => {
      const url = apps['main:a2a'].url;
      w.events.length = 0;
      const rpc = await send(url, 'POST', '/a2a/jsonrpc', [], { jsonrpc: '2.0', id: 7, method: 'SendMessage', params: sendMessageRequest('zoo-public') });
      expect(rpc.status).toBe(200);
      expect(rpc.body).toMatchObject({ jsonrpc: '2.0', id: 7, result: { message: { role: 'ROLE_AGENT', parts: [{ text: 'done' }] } } });
      const rest = await send(url, 'POST', '/message:send', [], sendMessageRequest('zoo-public'));
      expect(rest.status).toBe(200);
      expect(rest.body).toMatchObject({ message: { role: 'ROLE_AGENT', parts: [{ text: 'done' }] } });
      // The public REST route agrees with the card and the bindings.
      expect((await send(url, 'GET', '/t/public', [])).status).toBe(200);
      expect(w.events).toEqual([]);

      const bare = expectedWire('missing_token');
      for (const a of [
        await send(url, 'POST', '/a2a/jsonrpc', [], { jsonrpc: '2.0', id: 8, method: 'GetTask', params: { id: 'x' } }),
        await send(url, 'GET', '/tasks/x', []),
        await send(url, 'POST', '/message:send', [], sendMessageRequest('zoo-me')),
      ]) {
        expect({ status: a.status, wwwAuthenticate: a.wwwAuthenticate, body: a.body }).toEqual(bare);
      }
      expect(w.events.map((e) => e.reason)).toEqual(['missing_token', 'missing_token', 'missing_token']);
      const card = (await send(url, 'GET', '/.well-known/agent-card.json', [])).body as { skills: Array<{ id: string; securityRequirements: unknown }> };
      expect(card.skills.find((s) => s.id === 'zoo-public')?.securityRequirements).toEqual([{}]);
    });
  });
});

// The RFC 8705 binding with real client certificates over TLS: every entry point accepts a token bound to the
// presented certificate and refuses every other combination with certificate_mismatch.
describe.each(PLATFORMS)('one mTLS decision at every entry point on %s (TLS with client certificates)', (platform: Platform) => {
  let w: ZooWorld;
  let pki: TestPki;
  let a2a: TestApp;
  let strategy: TestApp;
  let auth: A2AAuthModuleOptions;

  beforeAll(async () => {
    pki = generateTestPki();
    w = await createZooWorld();
    auth = zooAuthOptions(w, {
      tokenUrl: `${w.iss1.url}/token`,
      mtls: { requireBoundTokens: true, advertise: false },
      card: {
        name: 'Zoo Agent',
        description: 'mTLS',
        url: ZOO_AUD,
        interfaces: [
          { url: '/a2a/jsonrpc', protocolBinding: 'JSONRPC' },
          { url: '/', protocolBinding: 'HTTP+JSON' },
        ],
      },
    });
    const httpsOptions = { key: pki.serverKey, cert: pki.serverCert, ca: pki.caCert, requestCert: true, rejectUnauthorized: false };
    a2a = await startTestApp({
      platform,
      auth,
      controllers: [ZooSkillsController, A2AJsonRpcController, A2ARestController],
      providers: [A2ASkillAuthorizer, TRANSPORT],
      logger: false,
      httpsOptions,
    });
    strategy = await startTestApp({ platform, auth, controllers: [PassportOnlyController], globalGuard: false, logger: false, httpsOptions });
  });
  afterAll(async () => {
    await a2a?.close();
    await strategy?.close();
    await w?.iss1.stop();
    await w?.iss2.stop();
  });

  const bound = (certPem: string) => ({ 'x5t#S256': certificateThumbprint(new X509Certificate(certPem)) });
  const cases: Array<[string, (p: TestPki) => { cnf?: unknown; cert?: string; key?: string }, string]> = [
    ['token bound to the presented certificate', (p) => ({ cnf: bound(p.clientCert), cert: p.clientCert, key: p.clientKey }), 'ok'],
    ['token bound to another certificate', (p) => ({ cnf: bound(p.otherClientCert), cert: p.clientCert, key: p.clientKey }), 'certificate_mismatch'],
    ['bound token, no client certificate', (p) => ({ cnf: bound(p.clientCert) }), 'certificate_mismatch'],
    ['unbound token with a client certificate', (p) => ({ cert: p.clientCert, key: p.clientKey }), 'certificate_mismatch'],
  ];
  it.each(cases)('%s', async (_n, make, reason) => {
    const c = make(pki);
    const token = await mintToken({ key: w.k1, issuer: w.iss1.issuer, audience: ZOO_AUD, claims: c.cnf ? { cnf: c.cnf } : {} });
    const tls: Tls = { ca: pki.caCert, cert: c.cert, key: c.key };
    for (const e of ENTRY_POINTS) {
      w.events.length = 0;
      const a = await viaEntryPoint(e, (e === 'strategy' ? strategy : a2a).url, { path: '/t/me', headers: [['Authorization', `Bearer ${token}`]] }, tls);
      expect({ entryPoint: e, reasons: w.events.map((ev) => ev.reason), status: a.status }).toEqual({
        entryPoint: e,
        reasons: [reason],
        status: reason === 'ok' ? 200 : 401,
      });
    }
  });
});
