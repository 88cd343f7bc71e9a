import { generateTestKey } from './fixtures/keys';
import { mintToken } from './fixtures/tokens';
import { PLATFORMS, startTestApp, type TestApp } from './fixtures/test-app';
import { GuardTestController } from './fixtures/test-controllers';
import { createZooWorld, expectedWire, sendRaw, ZOO_AUD, ZOO_CASES, zooAuthOptions, type ZooCase, type ZooWorld } from './fixtures/zoo';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// Every case asserts status, WWW-Authenticate, body and the audit reason, on both platforms.
describe.each(PLATFORMS)('token zoo on %s', (platform) => {
  let w: ZooWorld;
  let main: TestApp;
  let query: TestApp;

  beforeAll(async () => {
    w = await createZooWorld();
    main = await startTestApp({ platform, auth: zooAuthOptions(w), controllers: [GuardTestController] });
    query = await startTestApp({ platform, auth: zooAuthOptions(w, { allowQueryToken: true }), controllers: [GuardTestController] });
  });
  afterAll(async () => {
    await main?.close();
    await query?.close();
    await w?.iss1.stop();
    await w?.iss2.stop();
  });

  async function check(url: string, req: Awaited<ReturnType<ZooCase['make']>>, reason: string, audit: Record<string, unknown> = {}) {
    w.events.length = 0;
    const res = await sendRaw(url, req);
    const exp = expectedWire(reason);
    expect({ status: res.status, wwwAuthenticate: res.headers['www-authenticate'] }).toEqual({ status: exp.status, wwwAuthenticate: exp.wwwAuthenticate });
    if (reason === 'ok') {
      expect(res.body).toEqual({
        clientId: 'client-a',
        subject: 'client-a',
        issuer: expect.stringMatching(/^http:\/\/127\.0\.0\.1:\d+$/),
        scopes: ['expense:submit', 'expense:read'],
      });
    } else {
      expect(res.body).toEqual(exp.body);
      expect(res.headers['cache-control']).toBe('no-store');
    }
    expect(w.events).toHaveLength(1);
    expect(w.events[0]).toMatchObject({ type: 'a2a.auth', outcome: reason === 'ok' ? 'success' : 'failure', reason, status: exp.status, ...audit });
    return res;
  }

  it.each(ZOO_CASES.map((c) => [c.name, c] as const))('%s', async (_name, c) => {
    const req = await c.make(w);
    await check(c.app === 'query' ? query.url : main.url, req, c.reason, c.audit?.(w));
  });

  it('a kid rotated in is accepted after one refetch (cooldown 1 s)', async () => {
    await check(
      main.url,
      { path: '/t/me', headers: [['Authorization', `Bearer ${await mintToken({ key: w.k1, issuer: w.iss1.issuer, audience: ZOO_AUD })}`]] },
      'ok',
    );
    await sleep(1100);
    const k3 = generateTestKey('RS256', 'k3');
    w.iss1.keys = [w.k1.publicJwk, k3.publicJwk];
    const before = w.iss1.jwksFetches;
    const t3 = await mintToken({ key: k3, issuer: w.iss1.issuer, audience: ZOO_AUD });
    await check(main.url, { path: '/t/me', headers: [['Authorization', `Bearer ${t3}`]] }, 'ok', { kid: 'k3', issuer: w.iss1.issuer });
    expect(w.iss1.jwksFetches - before).toBe(1);
    const t3b = await mintToken({ key: k3, issuer: w.iss1.issuer, audience: ZOO_AUD });
    await check(main.url, { path: '/t/me', headers: [['Authorization', `Bearer ${t3b}`]] }, 'ok', { kid: 'k3' });
    expect(w.iss1.jwksFetches - before).toBe(1);
  });

  it('a kid removed is refused after the next refetch, tokens cached before included', async () => {
    const k4 = generateTestKey('RS256', 'k4');
    w.iss1.keys = [w.k1.publicJwk, k4.publicJwk];
    await sleep(1100);
    const t4 = await mintToken({ key: k4, issuer: w.iss1.issuer, audience: ZOO_AUD });
    const h4: [string, string][] = [['Authorization', `Bearer ${t4}`]];
    await check(main.url, { path: '/t/me', headers: h4 }, 'ok', { kid: 'k4' });
    // Twice: the second answer comes from the verified-token cache.
    await check(main.url, { path: '/t/me', headers: h4 }, 'ok', { kid: 'k4' });
    w.iss1.keys = [w.k1.publicJwk];
    await sleep(1100);
    const before = w.iss1.jwksFetches;
    // A removed key stays trusted until the next refetch (jwksCacheMaxAge, or an unknown kid after the cooldown).
    const unknown = await mintToken({ key: w.stranger, issuer: w.iss1.issuer, audience: ZOO_AUD, header: { kid: 'k5-not-yet' } });
    await check(main.url, { path: '/t/me', headers: [['Authorization', `Bearer ${unknown}`]] }, 'unknown_kid', { kid: 'k5-not-yet' });
    expect(w.iss1.jwksFetches - before).toBe(1);
    const t4b = await mintToken({ key: k4, issuer: w.iss1.issuer, audience: ZOO_AUD });
    await check(main.url, { path: '/t/me', headers: [['Authorization', `Bearer ${t4b}`]] }, 'unknown_kid', { kid: 'k4' });
    expect(w.iss1.jwksFetches - before).toBe(1);
    // The cached token signed by the removed key is dropped too.
    await check(main.url, { path: '/t/me', headers: h4 }, 'unknown_kid', { kid: 'k4' });
    // k1 still works.
    await check(
      main.url,
      { path: '/t/me', headers: [['Authorization', `Bearer ${await mintToken({ key: w.k1, issuer: w.iss1.issuer, audience: ZOO_AUD })}`]] },
      'ok',
    );
  });
});
