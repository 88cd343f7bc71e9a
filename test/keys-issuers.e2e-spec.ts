import type { AuthAuditEvent } from 'nestjs-a2a-auth';
import { generateTestKey, type TestKey } from './fixtures/keys';
import { JwksServer } from './fixtures/jwks-server';
import { mintToken } from './fixtures/tokens';
import { PLATFORMS, startTestApp, type TestApp } from './fixtures/test-app';
import { GuardTestController, TEST_SCOPES } from './fixtures/test-controllers';
import { expectedWire, sendRaw, ZOO_AUD } from './fixtures/zoo';

// Several trusted issuers, one key set each; any other issuer is refused before any network call.
describe.each(PLATFORMS)('several issuers on %s', (platform) => {
  let a: JwksServer;
  let b: JwksServer;
  let c: JwksServer;
  let ka: TestKey;
  let kb: TestKey;
  let kc: TestKey;
  let list: TestApp;
  let perIssuer: TestApp;
  const events: AuthAuditEvent[] = [];
  const sink = { wantsSuccesses: true, emit: (e: AuthAuditEvent) => events.push(e) };
  const base = { audience: ZOO_AUD, resource: ZOO_AUD, realm: 'zoo', scopes: TEST_SCOPES, jwksTimeout: 1, jwksCooldown: 1, auditSink: sink };

  beforeAll(async () => {
    [a, b, c] = await Promise.all([new JwksServer().start(), new JwksServer().start(), new JwksServer().start()]);
    ka = generateTestKey('RS256', 'ka');
    kb = generateTestKey('RS256', 'kb');
    kc = generateTestKey('RS256', 'kc');
    a.keys = [ka.publicJwk];
    b.keys = [kb.publicJwk];
    c.keys = [kc.publicJwk];
    // `issuer: [a, b]`: each key set found by OIDC discovery.
    list = await startTestApp({ platform, auth: { ...base, issuer: [a.issuer, b.issuer] }, controllers: [GuardTestController] });
    // Per-issuer objects with their own jwksUri and audience.
    perIssuer = await startTestApp({
      platform,
      auth: {
        ...base,
        issuer: [
          { issuer: a.issuer, jwksUri: a.jwksUri, audience: 'https://aud-a.example' },
          { issuer: b.issuer, jwksUri: b.jwksUri, audience: ['https://aud-b.example', 'https://aud-b2.example'] },
        ],
      },
      controllers: [GuardTestController],
    });
  });
  afterAll(async () => {
    await list?.close();
    await perIssuer?.close();
    for (const s of [a, b, c]) await s?.stop();
  });

  async function get(url: string, tok: string) {
    events.length = 0;
    const res = await sendRaw(url, { path: '/t/me', headers: [['Authorization', `Bearer ${tok}`]] });
    expect(events).toHaveLength(1);
    return { res, ev: events[0] };
  }
  function expectReason(r: Awaited<ReturnType<typeof get>>, reason: string, issuer?: string) {
    const exp = expectedWire(reason);
    expect(r.res.status).toBe(exp.status);
    expect(r.res.headers['www-authenticate']).toBe(exp.wwwAuthenticate);
    if (reason !== 'ok') expect(r.res.body).toEqual(exp.body);
    else expect(r.res.body).toMatchObject({ issuer });
    expect(r.ev).toMatchObject({ reason, ...(issuer ? { issuer } : {}) });
  }

  it('issuer: [a, b]: a token from each is accepted; one key set per issuer (one discovery + one JWKS fetch each)', async () => {
    for (const s of [a, b, c]) s.resetCounts();
    expectReason(await get(list.url, await mintToken({ key: ka, issuer: a.issuer, audience: ZOO_AUD })), 'ok', a.issuer);
    expectReason(await get(list.url, await mintToken({ key: kb, issuer: b.issuer, audience: ZOO_AUD })), 'ok', b.issuer);
    expectReason(await get(list.url, await mintToken({ key: ka, issuer: a.issuer, audience: ZOO_AUD })), 'ok', a.issuer);
    expect([a.discoveryFetches, a.jwksFetches, b.discoveryFetches, b.jwksFetches]).toEqual([1, 1, 1, 1]);
  });

  it("issuer: [a, b]: a's key does not verify b's tokens (key sets are not shared)", async () => {
    // Signed by a's key, naming a's kid, but claiming to be from b: b's key set has no such kid.
    expectReason(await get(list.url, await mintToken({ key: ka, issuer: b.issuer, audience: ZOO_AUD })), 'unknown_kid', b.issuer);
    // Without a kid, b's single key is tried, and the signature fails.
    expectReason(
      await get(list.url, await mintToken({ key: ka, issuer: b.issuer, audience: ZOO_AUD, header: { kid: undefined } })),
      'invalid_signature',
      b.issuer,
    );
  });

  it.each([
    ['a third, running issuer', () => c.issuer],
    ['a trailing-slash variant of a trusted issuer', () => `${a.issuer}/`],
    ['an issuer with another port', () => a.issuer.replace(/:(\d+)$/, (_m, p) => `:${Number(p) + 1}`)],
  ])('a token from %s is refused before any network call (zero fetches)', async (_n, iss) => {
    for (const app of [list, perIssuer]) {
      for (const s of [a, b, c]) s.resetCounts();
      expectReason(await get(app.url, await mintToken({ key: kc, issuer: iss(), audience: ZOO_AUD })), 'invalid_issuer');
      expect([a.totalFetches, b.totalFetches, c.totalFetches]).toEqual([0, 0, 0]);
    }
  });

  it('per-issuer objects: each issuer has its own audience', async () => {
    const t = (key: TestKey, iss: string, aud: string | string[]) => mintToken({ key, issuer: iss, audience: aud });
    expectReason(await get(perIssuer.url, await t(ka, a.issuer, 'https://aud-a.example')), 'ok', a.issuer);
    expectReason(await get(perIssuer.url, await t(kb, b.issuer, 'https://aud-b2.example')), 'ok', b.issuer);
    // b's audience in a's token, and vice versa: refused.
    expectReason(await get(perIssuer.url, await t(ka, a.issuer, 'https://aud-b.example')), 'invalid_audience', a.issuer);
    expectReason(await get(perIssuer.url, await t(kb, b.issuer, 'https://aud-a.example')), 'invalid_audience', b.issuer);
    // The module-level audience is replaced by the per-issuer one.
    expectReason(await get(perIssuer.url, await t(ka, a.issuer, ZOO_AUD)), 'invalid_audience', a.issuer);
  });

  it("per-issuer objects: one issuer's outage does not affect the other", async () => {
    const fresh = await startTestApp({
      platform,
      auth: {
        ...base,
        issuer: [
          { issuer: a.issuer, jwksUri: a.jwksUri },
          { issuer: b.issuer, jwksUri: b.jwksUri },
        ],
      },
      controllers: [GuardTestController],
    });
    try {
      b.mode = 'error500';
      expectReason(await get(fresh.url, await mintToken({ key: kb, issuer: b.issuer, audience: ZOO_AUD })), 'jwks_unavailable', b.issuer);
      expectReason(await get(fresh.url, await mintToken({ key: ka, issuer: a.issuer, audience: ZOO_AUD })), 'ok', a.issuer);
      b.mode = 'ok';
      // b's failed first load backs off for 1 s (the cooldown caps it); its first attempt after that succeeds.
      await new Promise((r) => setTimeout(r, 1100));
      expectReason(await get(fresh.url, await mintToken({ key: kb, issuer: b.issuer, audience: ZOO_AUD })), 'ok', b.issuer);
    } finally {
      b.mode = 'ok';
      await fresh.close();
    }
  });
});
