import { randomUUID } from 'node:crypto';
import type { AuthAuditEvent } from 'nestjs-a2a-auth';
import { KeyRegistry } from 'nestjs-a2a-auth/core';
import { generateTestKey, type TestKey } from './fixtures/keys';
import { JwksServer } from './fixtures/jwks-server';
import { mintToken } from './fixtures/tokens';
import { PLATFORMS, startTestApp, type TestApp } from './fixtures/test-app';
import { GuardTestController, TEST_SCOPES } from './fixtures/test-controllers';
import { expectedWire, sendRaw, ZOO_AUD } from './fixtures/zoo';

// A token cached before its key left the JWKS must not outlive the key: after the refetch that notices the change it
// gets what the same token gets uncached (auth0/node-jwks-rsa#110, keycloak/keycloak#14794). The key is identified by
// its material, so a kid-less key that is replaced, and new material under the same kid, both count as "left".
describe.each(PLATFORMS)('cached tokens follow the key material on %s', (platform) => {
  let s: JwksServer;
  let cached: TestApp;
  let uncached: TestApp;
  let a: TestKey;
  let b: TestKey;
  let other: TestKey;
  const events: AuthAuditEvent[] = [];
  const INVALID = expectedWire('invalid_signature');
  const UNKNOWN = expectedWire('unknown_kid');

  const auth = (extra: Record<string, unknown>) => ({
    issuer: s.issuer,
    jwksUri: s.jwksUri,
    audience: ZOO_AUD,
    resource: ZOO_AUD,
    realm: 'zoo',
    scopes: TEST_SCOPES,
    // Every unknown kid may refetch at once, so a test can force the refetch that notices the change.
    jwksCooldown: 0,
    auditSink: { wantsSuccesses: true, emit: (e: AuthAuditEvent) => events.push(e) },
    ...extra,
  });

  beforeAll(async () => {
    s = await new JwksServer().start();
    // Two different RSA keys under the same kid, and a third for the refetch trigger.
    a = generateTestKey('RS256', 'rot');
    b = generateTestKey('RS256', 'rot');
    other = generateTestKey('RS256', 'trigger');
    s.keys = [a.publicJwk];
    cached = await startTestApp({ platform, auth: auth({ tokenCache: { maxTtl: 300 } }), controllers: [GuardTestController] });
    uncached = await startTestApp({ platform, auth: auth({ tokenCache: { enabled: false } }), controllers: [GuardTestController] });
  });
  afterAll(async () => {
    for (const app of [cached, uncached]) await app?.close();
    await s?.stop();
  });

  async function get(app: TestApp, tok: string) {
    events.length = 0;
    const res = await sendRaw(app.url, { path: '/t/me', headers: [['Authorization', `Bearer ${tok}`]] });
    return { res, events: [...events] };
  }
  function expectWire(r: Awaited<ReturnType<typeof get>>, wire: ReturnType<typeof expectedWire>, reason: string) {
    expect(r.res.status).toBe(wire.status);
    expect(r.res.headers['www-authenticate']).toBe(wire.wwwAuthenticate);
    expect(r.res.body).toEqual(wire.body);
    expect(r.events).toHaveLength(1);
    expect(r.events[0]).toMatchObject({ outcome: 'failure', reason, status: wire.status });
  }
  const ME = (issuer: string) => ({ clientId: 'client-a', subject: 'client-a', issuer, scopes: ['expense:submit', 'expense:read'] });
  const noKid = (k: TestKey) => Object.fromEntries(Object.entries(k.publicJwk).filter(([name]) => name !== 'kid'));

  // An unknown kid makes both apps refetch the JWKS (cooldown 0), which is when they see the change.
  async function refetchBoth() {
    const before = s.jwksFetches;
    const trigger = await mintToken({ key: other, issuer: s.issuer, audience: ZOO_AUD, header: { kid: randomUUID() } });
    for (const app of [cached, uncached]) expectWire(await get(app, trigger), UNKNOWN, 'unknown_kid');
    expect(s.jwksFetches).toBe(before + 2);
  }

  it('new key material under the same kid: the token cached before the change gets 401, as it does uncached', async () => {
    s.keys = [a.publicJwk];
    const old = await mintToken({ key: a, issuer: s.issuer, audience: ZOO_AUD });
    for (const app of [cached, uncached]) {
      const r = await get(app, old);
      expect(r.res.status).toBe(200);
      expect(r.res.body).toEqual(ME(s.issuer));
    }
    const hit = await get(cached, old);
    expect(hit.res.status).toBe(200);
    expect(hit.events[0]).toMatchObject({ outcome: 'success', kid: 'rot' });

    s.keys = [b.publicJwk]; // same kid "rot", other modulus
    await refetchBoth();

    expectWire(await get(uncached, old), INVALID, 'invalid_signature');
    expectWire(await get(cached, old), INVALID, 'invalid_signature');
    // The new material verifies its own tokens.
    const fresh = await mintToken({ key: b, issuer: s.issuer, audience: ZOO_AUD });
    for (const app of [cached, uncached]) expect((await get(app, fresh)).res.status).toBe(200);
  });

  it('a kid-less key replaced by another kid-less key: the token cached before the change gets 401, as it does uncached', async () => {
    s.keys = [noKid(a)];
    await refetchBoth();
    const old = await mintToken({ key: a, issuer: s.issuer, audience: ZOO_AUD, header: { kid: undefined } });
    for (const app of [cached, uncached]) {
      const r = await get(app, old);
      expect(r.res.status).toBe(200);
      expect(r.res.body).toEqual(ME(s.issuer));
    }
    expect((await get(cached, old)).res.status).toBe(200);

    s.keys = [noKid(b)];
    await refetchBoth();

    expectWire(await get(uncached, old), INVALID, 'invalid_signature');
    expectWire(await get(cached, old), INVALID, 'invalid_signature');
    const fresh = await mintToken({ key: b, issuer: s.issuer, audience: ZOO_AUD, header: { kid: undefined } });
    for (const app of [cached, uncached]) expect((await get(app, fresh)).res.status).toBe(200);
  });

  it('a kid-less token whose key gets a sibling: missing_kid cached and uncached alike', async () => {
    s.keys = [noKid(a)];
    await refetchBoth();
    const old = await mintToken({ key: a, issuer: s.issuer, audience: ZOO_AUD, header: { kid: undefined } });
    expect((await get(cached, old)).res.status).toBe(200);
    expect((await get(cached, old)).res.status).toBe(200);

    s.keys = [noKid(a), other.publicJwk]; // the kid-less key stays, but it is no longer the only one
    await refetchBoth();

    const MISSING = expectedWire('missing_kid');
    expectWire(await get(uncached, old), MISSING, 'missing_kid');
    expectWire(await get(cached, old), MISSING, 'missing_kid');
  });

  it('an unchanged key keeps its cached tokens across a refetch', async () => {
    s.keys = [a.publicJwk];
    await refetchBoth();
    const tok = await mintToken({ key: a, issuer: s.issuer, audience: ZOO_AUD });
    expect((await get(cached, tok)).res.status).toBe(200);
    await refetchBoth();
    const lookups = jest.spyOn(cached.app.get(KeyRegistry), 'getKey');
    try {
      const hit = await get(cached, tok);
      expect(hit.res.status).toBe(200);
      expect(hit.events[0]).toMatchObject({ outcome: 'success', kid: 'rot' });
      expect(lookups).not.toHaveBeenCalled(); // served from the cache
    } finally {
      lookups.mockRestore();
    }
  });
});
