import { Agent } from 'node:http';
import type { AuthAuditEvent } from 'nestjs-a2a-auth';
import { generateTestKey, type TestKey } from './fixtures/keys';
import { JwksServer } from './fixtures/jwks-server';
import { mintToken } from './fixtures/tokens';
import { PLATFORMS, startTestApp, type TestApp } from './fixtures/test-app';
import { GuardTestController, TEST_SCOPES } from './fixtures/test-controllers';
import { expectedWire, sendRaw, ZOO_AUD } from './fixtures/zoo';

// While the key server fails before the first successful load, failed attempts back off like every other refetch
// (apache/airflow#73472: each request was a JWKS fetch). Requests during the backoff get 503 jwks_unavailable with
// Retry-After at once, without a fetch; concurrent requests share one attempt; the first attempt the backoff allows
// after the key server recovers succeeds. Fetches are counted by the JWKS server itself.
const sleep = (ms: number) => new Promise((r) => setTimeout(r, Math.max(0, ms)));
const UNAVAILABLE = expectedWire('jwks_unavailable').body;

/**
 * The most attempts the backoff allows in `elapsedMs` with a 2 s cooldown: one at once, one after 1 s, then one per
 * 2 s. On an idle machine every burst below ends within the first second, so the bound is exactly 1; on a loaded one
 * the bound still holds, where the unbounded behaviour made one fetch per request.
 */
function expectAttempts(s: JwksServer, elapsedMs: number) {
  if (elapsedMs < 1000) expect(s.jwksFetches).toBe(1);
  else expect(s.jwksFetches).toBeLessThanOrEqual(2 + Math.floor((elapsedMs - 1000) / 2000));
}

describe.each(PLATFORMS)('failed cold key loads back off on %s', (platform) => {
  let key: TestKey;
  const servers: JwksServer[] = [];
  const apps: TestApp[] = [];
  const events: AuthAuditEvent[] = [];

  beforeAll(() => {
    key = generateTestKey('RS256', 'k1');
  });
  afterAll(async () => {
    for (const a of apps) await a.close();
    for (const s of servers) await s.stop();
  });

  /** A fresh JWKS server in `mode` and an app that has never loaded its keys. Cooldown 2 s: backoff 1 s, then 2 s. */
  async function coldApp(mode: JwksServer['mode']) {
    const s = await new JwksServer().start();
    s.keys = [key.publicJwk];
    s.mode = mode;
    servers.push(s);
    const app = await startTestApp({
      platform,
      auth: {
        issuer: s.issuer,
        jwksUri: s.jwksUri,
        audience: ZOO_AUD,
        resource: ZOO_AUD,
        realm: 'zoo',
        scopes: TEST_SCOPES,
        jwksTimeout: 1,
        jwksCooldown: 2,
        auditSink: { wantsSuccesses: true, emit: (e: AuthAuditEvent) => events.push(e) },
      },
      controllers: [GuardTestController],
    });
    apps.push(app);
    const token = await mintToken({ key, issuer: s.issuer, audience: ZOO_AUD });
    const get = (agent?: Agent) => sendRaw(app.url, { path: '/t/me', headers: [['Authorization', `Bearer ${token}`]] }, agent);
    return { s, get };
  }
  function expect503(r: Awaited<ReturnType<typeof sendRaw>>) {
    expect(r.status).toBe(503);
    expect(r.headers['retry-after']).toBe('1');
    expect(r.headers['www-authenticate']).toBeUndefined();
    expect(r.headers['cache-control']).toBe('no-store');
    expect(r.body).toEqual(UNAVAILABLE);
  }

  it('30 sequential requests while the JWKS answers 500 make one fetch; each gets 503 with Retry-After at once', async () => {
    const { s, get } = await coldApp('error500');
    events.length = 0;
    const t0 = Date.now();
    for (let i = 0; i < 30; i++) expect503(await get());
    expectAttempts(s, Date.now() - t0);
    expect(events).toHaveLength(30);
    expect(events.every((e) => e.reason === 'jwks_unavailable' && e.status === 503)).toBe(true);
  });

  it('40 concurrent requests make one fetch, and so do the next 40 during the backoff', async () => {
    const { s, get } = await coldApp('error500');
    const agent = new Agent({ keepAlive: true, maxSockets: 40 });
    const t0 = Date.now();
    try {
      for (let round = 0; round < 2; round++) {
        const all = await Promise.all(Array.from({ length: 40 }, () => get(agent)));
        all.forEach(expect503);
      }
    } finally {
      agent.destroy();
    }
    expectAttempts(s, Date.now() - t0);
  });

  it('a hanging JWKS: concurrent requests share the one attempt (503 at the 1 s timeout), then back off without a fetch', async () => {
    const { s, get } = await coldApp('hang');
    const t0 = Date.now();
    const all = await Promise.all(Array.from({ length: 20 }, () => get()));
    all.forEach(expect503);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(900);
    expect(Date.now() - t0).toBeLessThan(2500);
    expect(s.jwksFetches).toBe(1);
    const t1 = Date.now();
    expect503(await get());
    expect(Date.now() - t1).toBeLessThan(900); // did not wait for another 1 s attempt
    expect(s.jwksFetches).toBe(1);
  });

  it('the backoff grows (1 s, then 2 s = the cooldown) and recovery comes at the first attempt it allows', async () => {
    const { s, get } = await coldApp('error500');
    expect503(await get());
    const failedAt = Date.now();
    expect(s.jwksFetches).toBe(1);
    await sleep(failedAt + 1100 - Date.now());
    expect503(await get()); // second attempt, fails: the next waits 2 s
    const failedAgainAt = Date.now();
    expect(s.jwksFetches).toBe(2);
    s.mode = 'ok';
    await sleep(failedAgainAt + 1100 - Date.now());
    expect503(await get()); // the key server is back, but the backoff has 2 s to run: no fetch
    expect(s.jwksFetches).toBe(2);
    await sleep(failedAgainAt + 2100 - Date.now());
    const ok = await get();
    expect(ok.status).toBe(200);
    expect(ok.body).toEqual({ clientId: 'client-a', subject: 'client-a', issuer: s.issuer, scopes: ['expense:submit', 'expense:read'] });
    expect(s.jwksFetches).toBe(3);
  });
});
