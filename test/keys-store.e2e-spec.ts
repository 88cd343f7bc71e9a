import { AuthError } from 'nestjs-a2a-auth';
import { JwksKeyStore, discoverJwksUri } from 'nestjs-a2a-auth/core';
import { fetchJson, MAX_DOCUMENT_BYTES } from '../libs/a2a-auth/src/core/fetch-json';
import { generateTestKey, type TestKey } from './fixtures/keys';
import { JwksServer } from './fixtures/jwks-server';

// Unit tests of the key store against a real JWKS server on 127.0.0.1 (no Nest).
describe('JwksKeyStore', () => {
  let s: JwksServer;
  let k1: TestKey;
  let k2: TestKey;
  let clock: number;
  const timing = { timeout: 1, cooldown: 30, maxAge: 600 };
  const store = (extra: Partial<typeof timing> = {}, onRemoved?: (iss: string, kids: string[]) => void) =>
    new JwksKeyStore({ issuer: s.issuer, jwksUri: s.jwksUri }, { ...timing, ...extra }, onRemoved, () => clock);
  const reason = (p: Promise<unknown>) =>
    p.then(
      () => 'resolved',
      (e) => (e instanceof AuthError ? e.reason : `other: ${e}`),
    );

  beforeAll(async () => {
    s = await new JwksServer().start();
    k1 = generateTestKey('RS256', 'k1');
    k2 = generateTestKey('RS256', 'k2');
  });
  afterAll(() => s.stop());
  beforeEach(() => {
    s.mode = 'ok';
    s.discoveryMode = undefined;
    s.keys = [k1.publicJwk];
    s.resetCounts();
    clock = 1_000_000;
  });

  it('parses keys once into KeyObjects and shares one fetch among 50 concurrent first requests', async () => {
    const st = store();
    const keys = await Promise.all(Array.from({ length: 50 }, () => st.getKey('k1', 'RS256')));
    expect(keys.every((k) => k.type === 'public' && k.asymmetricKeyType === 'rsa')).toBe(true);
    expect(new Set(keys).size).toBe(1);
    expect(s.jwksFetches).toBe(1);
    expect(st.fetchCount).toBe(1);
  });

  it('does not cache failures: the next call after recovery fetches again and succeeds', async () => {
    const st = store();
    s.mode = 'error500';
    expect(await reason(st.getKey('k1', 'RS256'))).toBe('jwks_unavailable');
    expect(await reason(st.getKey('k1', 'RS256'))).toBe('jwks_unavailable');
    s.mode = 'ok';
    expect(await reason(st.getKey('k1', 'RS256'))).toBe('resolved');
    expect(s.jwksFetches).toBe(3);
  });

  it('unknown kids share one cooldown: 1,000 kids make one refetch per cooldown', async () => {
    const st = store({ cooldown: 30 });
    await st.getKey('k1', 'RS256');
    const kids = Array.from({ length: 1000 }, (_, i) => `random-${i}`);
    expect(new Set(await Promise.all(kids.map((k) => reason(st.getKey(k, 'RS256')))))).toEqual(new Set(['unknown_kid']));
    expect(s.jwksFetches).toBe(1); // only the initial load: within the cooldown
    clock += 30_000;
    expect(new Set(await Promise.all(kids.map((k) => reason(st.getKey(k, 'RS256')))))).toEqual(new Set(['unknown_kid']));
    expect(s.jwksFetches).toBe(2); // one refetch, shared by all kids
  });

  it('a rotated-in kid is found at the first refetch the cooldown allows; concurrent requests wait for it', async () => {
    const st = store({ cooldown: 30 });
    await st.getKey('k1', 'RS256');
    s.keys = [k1.publicJwk, k2.publicJwk];
    expect(await reason(st.getKey('k2', 'RS256'))).toBe('unknown_kid');
    clock += 30_000;
    expect(await Promise.all(Array.from({ length: 10 }, () => reason(st.getKey('k2', 'RS256'))))).toEqual(Array(10).fill('resolved'));
    expect(s.jwksFetches).toBe(2);
  });

  it('known keys keep working during an outage, and a stale set is refreshed at most once per cooldown', async () => {
    const st = store({ cooldown: 5, maxAge: 10 });
    await st.getKey('k1', 'RS256');
    s.mode = 'error500';
    clock += 11_000;
    for (let i = 0; i < 20; i++) expect(await reason(st.getKey('k1', 'RS256'))).toBe('resolved');
    await new Promise((r) => setTimeout(r, 50));
    expect(s.jwksFetches).toBe(2); // initial + one background attempt
  });

  it('no kid: accepted with a one-key JWKS, missing_kid with two keys', async () => {
    expect(await reason(store().getKey(undefined, 'RS256'))).toBe('resolved');
    s.keys = [k1.publicJwk, k2.publicJwk];
    expect(await reason(store().getKey(undefined, 'RS256'))).toBe('missing_kid');
  });

  it('a JWK with another alg refuses the token alg (unsupported_alg)', async () => {
    s.keys = [{ ...k1.publicJwk, alg: 'PS256' }];
    expect(await reason(store().getKey('k1', 'RS256'))).toBe('unsupported_alg');
  });

  it('skips unusable JWKs (garbage, encryption keys, private keys) and keeps the good ones', async () => {
    const priv = k2.privateKey.export({ format: 'jwk' });
    s.keys = [
      { kty: 'RSA', kid: 'bad', e: 'AQAB' },
      { kty: 'EC', kid: 'bad2', crv: 'P-999', x: 'AA', y: 'AA' },
      { kid: 'bad3' },
      { ...k2.publicJwk, kid: 'enc', use: 'enc' },
      { ...priv, kid: 'priv' },
      k1.publicJwk,
    ];
    const st = store();
    expect(await reason(st.getKey('k1', 'RS256'))).toBe('resolved');
    expect(
      Object.fromEntries(await Promise.all(['bad', 'bad2', 'bad3', 'enc', 'priv'].map(async (kid) => [kid, await reason(st.getKey(kid, 'RS256'))]))),
    ).toEqual({ bad: 'unknown_kid', bad2: 'unknown_kid', bad3: 'unknown_kid', enc: 'unknown_kid', priv: 'unknown_kid' });
  });

  it('reports removed kids after a refetch', async () => {
    const removed: string[][] = [];
    s.keys = [k1.publicJwk, k2.publicJwk];
    const st = store({ cooldown: 0 }, (_iss, kids) => removed.push(kids));
    await st.getKey('k1', 'RS256');
    s.keys = [k2.publicJwk];
    expect(await reason(st.getKey('k1', 'RS256'))).toBe('resolved'); // still known: no refetch needed
    expect(await reason(st.getKey('k3', 'RS256'))).toBe('unknown_kid'); // triggers the refetch
    expect(removed).toEqual([['k1']]);
    expect(await reason(st.getKey('k1', 'RS256'))).toBe('unknown_kid');
  });

  it('parses EC and OKP keys', async () => {
    const es = generateTestKey('ES256', 'es');
    const ed = generateTestKey('EdDSA', 'ed');
    s.keys = [es.publicJwk, ed.publicJwk];
    const st = store();
    expect((await st.getKey('es', 'ES256')).asymmetricKeyType).toBe('ec');
    expect((await st.getKey('ed', 'EdDSA')).asymmetricKeyType).toBe('ed25519');
  });

  it('a hanging JWKS fails within the timeout (1 s)', async () => {
    s.mode = 'hang';
    const t0 = Date.now();
    expect(await reason(store().getKey('k1', 'RS256'))).toBe('jwks_unavailable');
    expect(Date.now() - t0).toBeGreaterThanOrEqual(900);
    expect(Date.now() - t0).toBeLessThan(2000);
  });

  it('discovery: finds jwks_uri, and a hanging issuer fails within one total deadline', async () => {
    expect(await discoverJwksUri(s.issuer, 1000)).toBe(s.jwksUri);
    s.discoveryMode = 'hang';
    const t0 = Date.now();
    await expect(discoverJwksUri(s.issuer, 1000)).rejects.toMatchObject({ reason: 'jwks_unavailable' });
    expect(Date.now() - t0).toBeLessThan(1800);
  });

  it('discovery: an issuer mismatch in the metadata is refused (RFC 8414 §3.3)', async () => {
    s.issuerOverride = 'https://evil.example';
    try {
      await expect(discoverJwksUri(s.url, 1000)).rejects.toMatchObject({ reason: 'jwks_unavailable' });
    } finally {
      s.issuerOverride = undefined;
    }
  });

  it('fetchJson: refuses documents over 1 MiB, redirects, non-2xx and non-JSON', async () => {
    expect(MAX_DOCUMENT_BYTES).toBe(1024 * 1024);
    for (const [mode, msg] of [
      ['huge', /too large/],
      ['redirect', /fetch failed|redirect/],
      ['error500', /HTTP 500/],
      ['notjson', /JSON/],
    ] as const) {
      s.mode = mode;
      await expect(fetchJson(s.jwksUri, 1000)).rejects.toThrow(msg);
    }
  });
});
