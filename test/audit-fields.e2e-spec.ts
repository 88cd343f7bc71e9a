import { createHash } from 'node:crypto';
import { Logger } from '@nestjs/common';
import { LoggerAuditSink, type AuthAuditEvent } from 'nestjs-a2a-auth';
import { startIssuerApp, useIssuerApp } from './fixtures/auth-harness';
import { CapturingLogger, PLATFORMS } from './fixtures/test-app';
import { GuardTestController, TEST_SCOPES } from './fixtures/test-controllers';
import { sendRaw, ZOO_AUD, zooApp } from './fixtures/zoo';

// Every decision emits exactly one event with all its fields; the default sink writes one JSON line.
const hash22 = (v: string) => createHash('sha256').update(v).digest('base64url').slice(0, 22);
const PEER = /^(::ffff:)?127\.0\.0\.1$/;

describe.each(PLATFORMS)('audit events on %s', (platform) => {
  const events: AuthAuditEvent[] = [];
  const env = useIssuerApp(() => zooApp(platform, { auditSink: { wantsSuccesses: true, emit: (e) => events.push(e) } }));

  async function one(method: string, path: string, auth?: string) {
    events.length = 0;
    const t0 = Date.now();
    const res = await new Promise<number>((resolve, reject) => {
      const u = new URL(env.app.url);
      const req = require('node:http').request(
        {
          host: u.hostname,
          port: u.port,
          path,
          method,
          headers: { ...(auth ? { authorization: auth } : {}), 'content-type': 'application/json' },
          agent: false,
        },
        (r: import('node:http').IncomingMessage) => {
          r.resume();
          r.on('end', () => resolve(r.statusCode ?? 0));
        },
      );
      req.on('error', reject);
      req.end(method === 'POST' ? '{"amount":1}' : undefined);
    });
    expect(events).toHaveLength(1);
    const e = events[0];
    expect(Date.parse(e.time)).toBeGreaterThanOrEqual(t0 - 5);
    expect(Date.parse(e.time)).toBeLessThanOrEqual(Date.now() + 5);
    expect(e.time).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    expect(e.peer).toMatch(PEER);
    return { status: res, e };
  }

  it('success: every field, the token id is a hash of jti', async () => {
    const jti = 'jti-123';
    const tok = await env.idp.mint({ claims: { jti } });
    const { status, e } = await one('POST', '/t/submit', `Bearer ${tok}`);
    expect(status).toBe(201);
    expect(e).toEqual({
      type: 'a2a.auth',
      outcome: 'success',
      reason: 'ok',
      status: 200,
      clientId: 'client-a',
      subject: 'client-a',
      issuer: env.idp.issuer,
      tokenId: hash22(jti),
      kid: 'k1',
      verified: true,
      method: 'POST',
      route: '/t/submit',
      skillId: 'submit-expense',
      requiredScopes: ['expense:submit'],
      grantedScopes: ['expense:submit', 'expense:read'],
      peer: expect.stringMatching(PEER),
      time: expect.any(String),
    });
  });

  it('403: verified identity, required and granted scopes', async () => {
    const tok = await env.idp.mint({ claims: { jti: 'j-403', client_id: 'client-b', sub: 'svc-b' } });
    const { status, e } = await one('GET', '/t/approve', `Bearer ${tok}`);
    expect(status).toBe(403);
    expect(e).toMatchObject({
      outcome: 'failure',
      reason: 'insufficient_scope',
      status: 403,
      clientId: 'client-b',
      subject: 'svc-b',
      issuer: env.idp.issuer,
      tokenId: hash22('j-403'),
      kid: 'k1',
      verified: true,
      method: 'GET',
      route: '/t/approve',
      skillId: 'approve-expense',
      requiredScopes: ['expense:approve'],
      grantedScopes: ['expense:submit', 'expense:read'],
    });
  });

  it('401 bad signature: unverified identity, verified=false, token id = hash of the token when there is no jti', async () => {
    const good = await env.idp.mint({ claims: { jti: undefined } });
    const [h, p, sig] = good.split('.');
    const bad = `${h}.${p}.${sig.startsWith('A') ? 'B' : 'A'}${sig.slice(1)}`;
    const { status, e } = await one('GET', '/t/me', `Bearer ${bad}`);
    expect(status).toBe(401);
    expect(e).toMatchObject({
      outcome: 'failure',
      reason: 'invalid_signature',
      status: 401,
      clientId: 'client-a',
      subject: 'client-a',
      issuer: env.idp.issuer,
      kid: 'k1',
      verified: false,
      method: 'GET',
      route: '/t/me',
      requiredScopes: [],
    });
    expect(e.grantedScopes).toBeUndefined();
    expect(e.tokenId).toBe(hash22(bad));
    expect(JSON.stringify(e)).not.toContain(sig.slice(1));
  });

  it('401 without a token: no identity fields', async () => {
    const { status, e } = await one('GET', '/t/me?x=1');
    expect(status).toBe(401);
    expect(e).toMatchObject({ outcome: 'failure', reason: 'missing_token', status: 401, verified: false, method: 'GET', route: '/t/me' });
    for (const f of ['clientId', 'subject', 'issuer', 'tokenId', 'kid', 'grantedScopes'] as const) expect(e[f]).toBeUndefined();
  });

  it('a public route makes no decision and emits nothing', async () => {
    events.length = 0;
    const res = await sendRaw(env.app.url, { path: '/t/public', headers: [] });
    expect(res.status).toBe(200);
    expect(events).toHaveLength(0);
  });

  it('exactly one event per request over a mixed run', async () => {
    const good = await env.idp.mint();
    const auths = [`Bearer ${good}`, 'Basic eDp5', '', `Bearer ${good}x`, 'Bearer a.b.c', `Bearer ${good}`];
    events.length = 0;
    for (let i = 0; i < 30; i++) {
      const a = auths[i % auths.length];
      await sendRaw(env.app.url, { path: i % 4 === 0 ? '/t/approve' : '/t/me', headers: a ? [['Authorization', a]] : [] });
    }
    expect(events).toHaveLength(30);
  });
});

describe.each(PLATFORMS)('a throwing audit sink on %s', (platform) => {
  it('never changes the HTTP outcome', async () => {
    const { idp, app } = await startIssuerApp(
      zooApp(platform, {
        auditSink: {
          wantsSuccesses: true,
          emit: () => {
            throw new Error('sink down');
          },
        },
      }),
    );
    try {
      const tok = await idp.mint();
      expect((await sendRaw(app.url, { path: '/t/me', headers: [['Authorization', `Bearer ${tok}`]] })).status).toBe(200);
      expect((await sendRaw(app.url, { path: '/t/me', headers: [['Authorization', `Bearer ${tok}x`]] })).status).toBe(401);
      expect((await sendRaw(app.url, { path: '/t/approve', headers: [['Authorization', `Bearer ${tok}`]] })).status).toBe(403);
    } finally {
      await idp.close();
    }
  });
});

describe('LoggerAuditSink (default sink)', () => {
  const logger = new CapturingLogger();
  beforeAll(() => Logger.overrideLogger(logger));
  afterAll(() => Logger.overrideLogger(false as never));
  const ev = (outcome: 'success' | 'failure', i = 0): AuthAuditEvent => ({
    type: 'a2a.auth',
    outcome,
    reason: outcome === 'success' ? 'ok' : 'expired',
    status: outcome === 'success' ? 200 : 401,
    verified: outcome === 'success',
    clientId: `c${i}`,
    time: new Date().toISOString(),
  });
  const parse = (line: string) => {
    const m = /^(\w+) (\{.*\}) A2AAuthAudit$/.exec(line);
    expect(m).not.toBeNull();
    return { level: m![1], event: JSON.parse(m![2]) };
  };

  it('one JSON line per event: successes at log, failures at warn', () => {
    logger.lines = [];
    const sink = new LoggerAuditSink();
    expect(sink.wantsSuccesses).toBe(true);
    sink.emit(ev('success'));
    sink.emit(ev('failure'));
    expect(logger.lines.map(parse)).toEqual([
      { level: 'log', event: expect.objectContaining({ outcome: 'success', reason: 'ok' }) },
      { level: 'warn', event: expect.objectContaining({ outcome: 'failure', reason: 'expired' }) },
    ]);
  });

  it('failures are rate-limited per second, then summarised; successes are not limited', async () => {
    logger.lines = [];
    const sink = new LoggerAuditSink(true, 5);
    for (let i = 0; i < 50; i++) sink.emit(ev('failure', i));
    for (let i = 0; i < 3; i++) sink.emit(ev('success', i));
    expect(logger.lines.filter((l) => l.startsWith('warn'))).toHaveLength(5);
    expect(logger.lines.filter((l) => l.startsWith('log'))).toHaveLength(3);
    await new Promise((r) => setTimeout(r, 1050));
    sink.emit(ev('failure', 99));
    const tail = logger.lines.slice(-2).map(parse);
    expect(tail[0]).toEqual({ level: 'warn', event: { type: 'a2a.auth.suppressed', count: 45, time: expect.any(String) } });
    expect(tail[1].event).toMatchObject({ clientId: 'c99' });
  });

  it('a success after the window also reports what was suppressed', async () => {
    logger.lines = [];
    const sink = new LoggerAuditSink(true, 2);
    for (let i = 0; i < 7; i++) sink.emit(ev('failure', i));
    await new Promise((r) => setTimeout(r, 1050));
    sink.emit(ev('success', 1));
    expect(logger.lines.slice(-2).map(parse)).toEqual([
      { level: 'warn', event: { type: 'a2a.auth.suppressed', count: 5, time: expect.any(String) } },
      { level: 'log', event: expect.objectContaining({ outcome: 'success' }) },
    ]);
  });

  it('wantsSuccesses=false', () => {
    expect(new LoggerAuditSink(false).wantsSuccesses).toBe(false);
  });
});

describe.each(PLATFORMS)('audit token id with the verified-token cache off on %s', (platform) => {
  it('a failed token without jti still gets tokenId = hash of the token', async () => {
    const events: AuthAuditEvent[] = [];
    const { idp, app } = await startIssuerApp({
      platform,
      audience: ZOO_AUD,
      kid: 'k1',
      auth: { scopes: TEST_SCOPES, tokenCache: { enabled: false }, auditSink: { wantsSuccesses: false, emit: (e) => events.push(e) } },
      controllers: [GuardTestController],
    });
    try {
      const expired = await idp.mint({ claims: { jti: undefined, exp: Math.floor(Date.now() / 1000) - 60 } });
      const res = await sendRaw(app.url, { path: '/t/me', headers: [['Authorization', `Bearer ${expired}`]] });
      expect(res.status).toBe(401);
      expect(events).toHaveLength(1);
      expect(events[0]).toMatchObject({ outcome: 'failure', reason: 'expired', tokenId: hash22(expired) });
    } finally {
      await idp.close();
    }
  });
});
