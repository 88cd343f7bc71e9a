import { Agent } from 'node:http';
import type { AuthAuditEvent } from 'nestjs-a2a-auth';
import { generateTestKey, type TestKey } from './fixtures/keys';
import { JwksServer, type JwksMode } from './fixtures/jwks-server';
import { mintToken } from './fixtures/tokens';
import { PLATFORMS, startTestApp, type TestApp } from './fixtures/test-app';
import { GuardTestController, TEST_SCOPES } from './fixtures/test-controllers';
import { expectedWire, randomKid, sendRaw, ZOO_AUD } from './fixtures/zoo';

// Key-server outages answer 503 + Retry-After within the timeout, failed first loads back off (no fetch per request),
// known keys keep working, and unknown kids cannot flood the key server. End to end, both platforms.
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const UNAVAILABLE = expectedWire('jwks_unavailable').body;

describe.each(PLATFORMS)('key-server resilience on %s', (platform) => {
  let s: JwksServer;
  let d: JwksServer;
  let f: JwksServer;
  let key: TestKey;
  let app: TestApp;
  let disco: TestApp;
  let flood: TestApp;
  const events: AuthAuditEvent[] = [];
  const sink = { wantsSuccesses: true, emit: (e: AuthAuditEvent) => events.push(e) };
  const auth = (srv: JwksServer, extra: Record<string, unknown> = {}) => ({
    issuer: srv.issuer,
    audience: ZOO_AUD,
    resource: ZOO_AUD,
    realm: 'zoo',
    scopes: TEST_SCOPES,
    jwksTimeout: 1,
    jwksCooldown: 1,
    auditSink: sink,
    ...extra,
  });

  beforeAll(async () => {
    key = generateTestKey('RS256', 'k1');
    s = await new JwksServer().start();
    d = await new JwksServer().start();
    f = await new JwksServer().start();
    for (const srv of [s, d, f]) srv.keys = [key.publicJwk];
    app = await startTestApp({ platform, auth: { ...auth(s), jwksUri: s.jwksUri }, controllers: [GuardTestController] });
    disco = await startTestApp({ platform, auth: auth(d), controllers: [GuardTestController] }); // jwks_uri from discovery
    flood = await startTestApp({ platform, auth: { ...auth(f, { jwksCooldown: 3 }), jwksUri: f.jwksUri }, controllers: [GuardTestController] });
  });
  afterAll(async () => {
    for (const a of [app, disco, flood]) await a?.close();
    for (const srv of [s, d, f]) await srv?.stop();
  });

  const tokenFor = (srv: JwksServer, header: Record<string, unknown> = {}, k: TestKey = key) =>
    mintToken({ key: k, issuer: srv.issuer, audience: ZOO_AUD, header });
  async function get(url: string, tok: string) {
    events.length = 0;
    const t0 = Date.now();
    const res = await sendRaw(url, { path: '/t/me', headers: [['Authorization', `Bearer ${tok}`]] });
    return { res, ms: Date.now() - t0, events: [...events] };
  }
  function expect503(r: Awaited<ReturnType<typeof get>>) {
    expect(r.res.status).toBe(503);
    expect(r.res.headers['retry-after']).toBe('1');
    expect(r.res.headers['www-authenticate']).toBeUndefined();
    expect(r.res.headers['cache-control']).toBe('no-store');
    expect(r.res.body).toEqual(UNAVAILABLE);
    expect(r.events).toHaveLength(1);
    expect(r.events[0]).toMatchObject({ outcome: 'failure', reason: 'jwks_unavailable', status: 503 });
  }

  it('a hanging JWKS before any key is loaded: 503 + Retry-After within the 1 s timeout', async () => {
    s.mode = 'hang';
    s.resetCounts();
    const r = await get(app.url, await tokenFor(s));
    expect503(r);
    expect(r.ms).toBeGreaterThanOrEqual(900);
    expect(r.ms).toBeLessThan(2500);
    expect(s.jwksFetches).toBe(1);
  });

  // Before the first successful load, a failed attempt is followed by a backoff (1 s here: the cooldown caps it),
  // during which requests get the same 503 at once, without a fetch.
  const modes: JwksMode[] = ['error500', 'garbage', 'notjson', 'huge', 'reset', 'redirect', 'empty', { slowMs: 3000 }];
  it.each(modes.map((m) => [JSON.stringify(m), m] as const))(
    'JWKS answers %s: 503; the next request during the backoff gets 503 at once without a fetch',
    async (_n, m) => {
      await sleep(1100); // the backoff after the previous failure
      s.mode = m;
      s.resetCounts();
      const r = await get(app.url, await tokenFor(s));
      expect503(r);
      expect(r.ms).toBeLessThan(2500);
      expect(s.jwksFetches).toBe(1);
      const again = await get(app.url, await tokenFor(s));
      expect503(again);
      expect(again.ms).toBeLessThan(900);
      expect(s.jwksFetches).toBe(1);
    },
  );

  it('recovery: the first request after the backoff, with the server back, succeeds', async () => {
    await sleep(1100);
    s.mode = 'ok';
    s.resetCounts();
    const r = await get(app.url, await tokenFor(s));
    expect(r.res.status).toBe(200);
    expect(r.events[0]).toMatchObject({ outcome: 'success', reason: 'ok', kid: 'k1' });
    expect(s.jwksFetches).toBe(1);
  });

  it.each(['hang', 'error500'] as const)('known keys keep working while the JWKS is down (%s), with no fetch', async (m) => {
    s.mode = m;
    s.resetCounts();
    for (let i = 0; i < 10; i++) {
      const r = await get(app.url, await tokenFor(s)); // fresh tokens: no verified-token cache hit
      expect(r.res.status).toBe(200);
      expect(r.ms).toBeLessThan(900); // never waits for the hanging fetch (1 s timeout)
    }
    expect(s.jwksFetches).toBe(0);
    s.mode = 'ok';
  });

  it('an unknown kid during an outage: one refetch (503), then unknown_kid without fetches until the cooldown ends', async () => {
    await sleep(1100);
    s.mode = 'hang';
    s.resetCounts();
    const other = generateTestKey('RS256', 'k-new');
    const r1 = await get(app.url, await tokenFor(s, { kid: 'k-new' }, other));
    expect503(r1);
    expect(r1.ms).toBeLessThan(2500);
    const r2 = await get(app.url, await tokenFor(s, { kid: 'k-new-2' }, other));
    expect(r2.res.status).toBe(401);
    expect(r2.events[0]).toMatchObject({ reason: 'unknown_kid' });
    expect(r2.ms).toBeLessThan(900);
    expect(s.jwksFetches).toBe(1);
    // Known keys are unaffected.
    expect((await get(app.url, await tokenFor(s))).res.status).toBe(200);
    s.mode = 'ok';
  });

  it('a stale key set is refreshed in the background at most once per cooldown during an outage', async () => {
    const stale = await startTestApp({ platform, auth: { ...auth(s, { jwksCacheMaxAge: 1 }), jwksUri: s.jwksUri }, controllers: [GuardTestController] });
    try {
      s.mode = 'ok';
      expect((await get(stale.url, await tokenFor(s))).res.status).toBe(200);
      s.mode = 'error500';
      await sleep(1200);
      s.resetCounts();
      for (let i = 0; i < 20; i++) expect((await get(stale.url, await tokenFor(s))).res.status).toBe(200);
      expect(s.jwksFetches).toBeLessThanOrEqual(1);
    } finally {
      s.mode = 'ok';
      await stale.close();
    }
  });

  it('discovery hangs: 503 within the timeout (one deadline for discovery + JWKS), then recovery', async () => {
    d.mode = 'hang';
    d.resetCounts();
    const r = await get(disco.url, await tokenFor(d));
    expect503(r);
    expect(r.ms).toBeGreaterThanOrEqual(900);
    expect(r.ms).toBeLessThan(2000);
    d.mode = 'ok';
    d.discoveryMode = 'error500';
    await sleep(1100); // the backoff after the failed first load
    d.resetCounts();
    expect503(await get(disco.url, await tokenFor(d)));
    expect(d.discoveryFetches).toBe(1);
    expect(d.jwksFetches).toBe(0);
    d.discoveryMode = undefined;
    await sleep(1100);
    d.resetCounts();
    const ok = await get(disco.url, await tokenFor(d));
    expect(ok.res.status).toBe(200);
    expect(d.discoveryFetches).toBe(1);
    expect(d.jwksFetches).toBe(1);
    // The discovered jwks_uri is kept: the next fetch goes straight to the JWKS.
    expect((await get(disco.url, await tokenFor(d))).res.status).toBe(200);
    expect(d.totalFetches).toBe(2);
  });

  it('1,000 random kids make at most 2 fetches; a rotated-in kid is verified once the cooldown allows', async () => {
    f.resetCounts();
    expect((await get(flood.url, await tokenFor(f))).res.status).toBe(200);
    const loadedAt = Date.now();
    const agent = new Agent({ keepAlive: true, maxSockets: 50 });
    const [h] = (await tokenFor(f)).split('.');
    const fake = (kid: string) => {
      const hdr = Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(h, 'base64url').toString()), kid })).toString('base64url');
      return `${hdr}.${Buffer.from(JSON.stringify({ iss: f.issuer, aud: ZOO_AUD, exp: 9e9 })).toString('base64url')}.${Buffer.alloc(256, 1).toString('base64url')}`;
    };
    const statuses = new Map<number, number>();
    try {
      for (let b = 0; b < 20; b++) {
        const batch = await Promise.all(
          Array.from({ length: 50 }, () => sendRaw(flood.url, { path: '/t/me', headers: [['Authorization', `Bearer ${fake(randomKid())}`]] }, agent)),
        );
        for (const r of batch) statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
      }
    } finally {
      agent.destroy();
    }
    expect(Object.fromEntries(statuses)).toEqual({ 401: 1000 });
    expect(f.jwksFetches).toBeLessThanOrEqual(2);
    const afterFlood = f.jwksFetches;
    // A legitimate new key appears.
    const k2 = generateTestKey('RS256', 'k2');
    f.keys = [key.publicJwk, k2.publicJwk];
    const elapsed = Date.now() - loadedAt;
    if (elapsed < 2500) {
      const early = await get(flood.url, await tokenFor(f, { kid: 'k2' }, k2));
      expect(early.res.status).toBe(401);
      expect(early.events[0]).toMatchObject({ reason: 'unknown_kid', kid: 'k2' });
      expect(f.jwksFetches).toBe(afterFlood);
    }
    await sleep(3100);
    const late = await get(flood.url, await tokenFor(f, { kid: 'k2' }, k2));
    expect(late.res.status).toBe(200);
    expect(late.events[0]).toMatchObject({ reason: 'ok', kid: 'k2' });
    expect(f.jwksFetches).toBe(afterFlood + 1);
  });
});
