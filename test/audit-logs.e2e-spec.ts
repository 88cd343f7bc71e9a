import { mintToken } from './fixtures/tokens';
import { CapturingLogger, PLATFORMS, startTestApp, type TestApp } from './fixtures/test-app';
import { GuardTestController } from './fixtures/test-controllers';
import { createZooWorld, expectedWire, secretsOf, sendRaw, ZOO_AUD, ZOO_CASES, ZOO_CLIENT_SECRET, zooAuthOptions, type ZooWorld } from './fixtures/zoo';

// All log output of a whole zoo run (default Logger sink, every line kept) holds no token,
// no Authorization header value and no client secret.
describe.each(PLATFORMS)('no secrets in the logs on %s', (platform) => {
  let w: ZooWorld;
  let main: TestApp;
  let query: TestApp;
  const logger = new CapturingLogger();
  const sent = new Set<string>([ZOO_CLIENT_SECRET, Buffer.from(`client-a:${ZOO_CLIENT_SECRET}`).toString('base64')]);

  beforeAll(async () => {
    w = await createZooWorld();
    // Default sink (no auditSink), no rate limit, so every decision is written.
    const opts = (extra = {}) => ({ ...zooAuthOptions(w, extra), auditSink: undefined, audit: { failureLogRatePerSecond: 100_000 } });
    main = await startTestApp({ platform, auth: opts(), controllers: [GuardTestController], logger });
    query = await startTestApp({ platform, auth: opts({ allowQueryToken: true }), controllers: [GuardTestController], logger });
  });
  afterAll(async () => {
    await main?.close();
    await query?.close();
    await w?.iss1.stop();
    await w?.iss2.stop();
  });

  it('runs the whole zoo, then finds one audit line per request and no secret anywhere', async () => {
    const startLines = logger.lines.length;
    for (const c of ZOO_CASES) {
      const req = await c.make(w);
      for (const sec of secretsOf(req)) sent.add(sec);
      const res = await sendRaw(c.app === 'query' ? query.url : main.url, req);
      expect([c.name, res.status]).toEqual([c.name, expectedWire(c.reason).status]);
      const authz = req.headers.find(([k]) => k === 'Authorization')?.[1] ?? '';
      if (authz.length >= 8) expect(res.text.includes(authz)).toBe(false);
    }
    // A key-server outage is logged too: an unknown kid after the cooldown forces a refetch, which fails.
    await new Promise((r) => setTimeout(r, 1100));
    w.iss1.mode = 'error500';
    const tok = await mintToken({ key: w.stranger, issuer: w.iss1.issuer, audience: ZOO_AUD, header: { kid: 'rotated-during-outage' } });
    const outage = { path: '/t/me', headers: [['Authorization', `Bearer ${tok}`]] as [string, string][] };
    for (const sec of secretsOf(outage)) sent.add(sec);
    expect((await sendRaw(main.url, outage)).status).toBe(503);
    w.iss1.mode = 'ok';
    const auditLines = logger.lines.slice(startLines).filter((l) => l.includes('"type":"a2a.auth"'));
    expect(auditLines).toHaveLength(ZOO_CASES.length + 1);
    expect(auditLines[auditLines.length - 1]).toContain('"reason":"jwks_unavailable"');
    for (const l of auditLines) expect(l).toMatch(/^(log|warn) \{.*\} A2AAuthAudit$/);
    expect(sent.size).toBeGreaterThan(ZOO_CASES.length);
    const all = logger.lines.join('\n');
    const leaks = [...sent].filter((sec) => all.includes(sec));
    expect(leaks).toEqual([]);
  });
});
