import { execFile } from 'node:child_process';
import { createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto';
import { promisify } from 'node:util';
import { AuthError } from 'nestjs-a2a-auth';
import { JwksKeyStore, discoverJwksUri, type KeyStoreOptions } from 'nestjs-a2a-auth/core';
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
  const store = (extra: Partial<typeof timing> = {}, onRemoved?: (iss: string, kids: string[]) => void, options: KeyStoreOptions = {}) =>
    new JwksKeyStore({ issuer: s.issuer, jwksUri: s.jwksUri }, { ...timing, ...extra }, { onKeysRemoved: onRemoved, ...options }, () => clock);
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

  it('a failed first load backs off (1 s, doubling, at most the cooldown): calls in between fail at once without a fetch', async () => {
    const st = store({ cooldown: 3 });
    s.mode = 'error500';
    expect(await reason(st.getKey('k1', 'RS256'))).toBe('jwks_unavailable');
    expect(s.jwksFetches).toBe(1);
    for (let i = 0; i < 30; i++) expect(await reason(st.getKey('k1', 'RS256'))).toBe('jwks_unavailable');
    expect(s.jwksFetches).toBe(1);
    // Backoffs after each failure: 1 s, 2 s, 3 s (capped by the cooldown), 3 s.
    for (const [wait, fetches] of [
      [999, 1],
      [1, 2],
      [1999, 2],
      [1, 3],
      [2999, 3],
      [1, 4],
      [2999, 4],
      [1, 5],
    ]) {
      clock += wait;
      expect(await reason(st.getKey('k1', 'RS256'))).toBe('jwks_unavailable');
      expect(s.jwksFetches).toBe(fetches);
    }
    // Recovery at the first attempt the backoff allows.
    s.mode = 'ok';
    clock += 2999;
    expect(await reason(st.getKey('k1', 'RS256'))).toBe('jwks_unavailable');
    expect(s.jwksFetches).toBe(5);
    clock += 1;
    expect(await reason(st.getKey('k1', 'RS256'))).toBe('resolved');
    expect(s.jwksFetches).toBe(6);
  });

  it('a failed first load: concurrent calls share one attempt; the backoff starts over after a success', async () => {
    const st = store({ cooldown: 30, maxAge: 600 });
    s.mode = 'error500';
    expect(new Set(await Promise.all(Array.from({ length: 40 }, () => reason(st.getKey('k1', 'RS256')))))).toEqual(new Set(['jwks_unavailable']));
    expect(s.jwksFetches).toBe(1);
    clock += 1000;
    s.mode = 'ok';
    expect(await reason(st.getKey('k1', 'RS256'))).toBe('resolved');
    expect(s.jwksFetches).toBe(2);
  });

  it('with cooldown 0 a failed first load is retried at the next call, as configured', async () => {
    const st = store({ cooldown: 0 });
    s.mode = 'error500';
    expect(await reason(st.getKey('k1', 'RS256'))).toBe('jwks_unavailable');
    expect(await reason(st.getKey('k1', 'RS256'))).toBe('jwks_unavailable');
    expect(s.jwksFetches).toBe(2);
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

  it('reports new material under a known kid as a removal and a change; an identical refetch reports nothing', async () => {
    const removed: string[][] = [];
    const changes: string[] = [];
    const other = generateTestKey('RS256', 'k1'); // same kid as k1, other modulus
    const st = store({ cooldown: 0 }, (_iss, kids) => removed.push(kids), { onChange: (iss) => changes.push(iss) });
    await st.getKey('k1', 'RS256');
    const first = st.identity('k1')!;
    expect(first).toMatch(/^[A-Za-z0-9_-]{43}\.RS256$/);
    expect(await reason(st.getKey('nope', 'RS256'))).toBe('unknown_kid'); // refetch, same set
    expect([removed, changes]).toEqual([[], []]);
    s.keys = [other.publicJwk];
    expect(await reason(st.getKey('nope', 'RS256'))).toBe('unknown_kid');
    expect(removed).toEqual([['k1']]);
    expect(changes).toEqual([s.issuer]);
    expect(st.identity('k1')).not.toBe(first);
    await st.getKey('k1', 'RS256');
    // A kid-less token's key is the only key, or none.
    expect(st.identity(undefined)).toBe(st.identity('k1'));
    s.keys = [other.publicJwk, k2.publicJwk];
    await st.refresh();
    expect(st.identity(undefined)).toBeUndefined();
    expect(changes).toHaveLength(2);
  });

  describe('keys that cannot be trusted are refused at load, each with one logged reason', () => {
    let rsa1024: KeyObject;
    let rsaE3: KeyObject;
    const openssl = async (...opts: string[]) =>
      createPrivateKey(
        (await promisify(execFile)('openssl', ['genpkey', '-algorithm', 'RSA', ...opts.flatMap((o) => ['-pkeyopt', o])], { encoding: 'utf8', timeout: 30_000 }))
          .stdout,
      );
    const jwkOf = (k: KeyObject, kid: string): Record<string, unknown> => ({ ...createPublicKey(k).export({ format: 'jwk' }), kid });
    beforeAll(async () => {
      [rsa1024, rsaE3] = await Promise.all([openssl('rsa_keygen_bits:1024'), openssl('rsa_keygen_bits:2048', 'rsa_keygen_pubexp:3')]);
    });

    it('refuses each bad key with its reason, keeps the good ones, and logs each refusal once', async () => {
      const es = generateTestKey('ES256', 'es');
      const ed = generateTestKey('EdDSA', 'ed');
      const big = Buffer.concat([Buffer.from([1]), Buffer.alloc(32)]).toString('base64url'); // 2^256
      const priv = k2.privateKey.export({ format: 'jwk' }) as Record<string, unknown>;
      s.keys = [
        k1.publicJwk,
        jwkOf(rsaE3, 'e3'),
        { ...k1.publicJwk, kid: 'e1', e: 'AQ' },
        { ...k1.publicJwk, kid: 'e-even', e: 'AQAA' },
        { ...k1.publicJwk, kid: 'e-big', e: big },
        jwkOf(rsa1024, 'rsa1024'),
        { ...k2.publicJwk, kid: 'pq', p: priv.p, q: priv.q },
        { ...k2.publicJwk, kid: 'd', d: priv.d },
        { ...es.publicJwk, kid: 'ec-d', d: 'AAAA' },
        { ...k2.publicJwk, kid: 'enc', use: 'enc' },
        { ...k2.publicJwk, kid: 'ops', key_ops: ['encrypt'] },
        { ...k2.publicJwk, kid: 'ops-str', key_ops: 'verify' },
        { ...k2.publicJwk, kid: 'ops-ok', key_ops: ['verify'] },
        { ...k2.publicJwk, kid: 'alg-es', alg: 'ES256' },
        { ...k2.publicJwk, kid: 'alg-hs', alg: 'HS256' },
        { ...k2.publicJwk, kid: 7 },
        { kty: 'oct', kid: 'oct', k: 'c2VjcmV0' },
        es.publicJwk,
        ed.publicJwk,
        { ...ed.publicJwk, kid: 'x25519', crv: 'X25519' },
      ];
      const lines: string[] = [];
      const st = store({ cooldown: 0 }, undefined, { algorithms: ['RS256', 'EdDSA'], logger: { warn: (m) => lines.push(m) } });
      const got = async (kid: string) => reason(st.getKey(kid, kid === 'ed' ? 'EdDSA' : 'RS256'));
      expect(await got('k1')).toBe('resolved');
      expect(await got('e3')).toBe('resolved');
      expect(await got('ops-ok')).toBe('resolved');
      expect(await got('ed')).toBe('resolved');
      const refused = ['e1', 'e-even', 'e-big', 'rsa1024', 'pq', 'd', 'ec-d', 'enc', 'ops', 'ops-str', 'alg-es', 'alg-hs', 'oct', 'es', 'x25519'];
      for (const kid of refused) expect([kid, await got(kid)]).toEqual([kid, 'unknown_kid']);
      const why = (kid: string) => lines.filter((l) => l.startsWith(`JWKS key ${JSON.stringify(kid)} of ${s.issuer} refused: `));
      expect(Object.fromEntries(refused.map((kid) => [kid, why(kid).length]))).toEqual(Object.fromEntries(refused.map((kid) => [kid, 1])));
      expect(why('e1')[0]).toMatch(/public exponent is not odd, at least 3 and below 2\^256$/);
      expect(why('e-even')[0]).toMatch(/public exponent/);
      expect(why('e-big')[0]).toMatch(/public exponent/);
      expect(why('rsa1024')[0]).toMatch(/RSA modulus of 1024 bits; at least 2048 are required \(RFC 7518 §3\.3\)$/);
      expect(why('pq')[0]).toMatch(/private key members published \(p, q\)$/);
      expect(why('d')[0]).toMatch(/private key members published \(d\)$/);
      expect(why('ec-d')[0]).toMatch(/private key members published \(d\)$/);
      expect(why('enc')[0]).toMatch(/use is "enc", not "sig"$/);
      expect(why('ops')[0]).toMatch(/key_ops does not include "verify"$/);
      expect(why('ops-str')[0]).toMatch(/key_ops does not include "verify"$/);
      expect(why('alg-es')[0]).toMatch(/alg "ES256" does not fit kty "RSA"$/);
      expect(why('alg-hs')[0]).toMatch(/alg "HS256" does not fit kty "RSA"$/);
      expect(why('oct')[0]).toMatch(/private key members published \(k\)$/);
      expect(why('es')[0]).toMatch(/kty "EC" crv "P-256" fits none of the allowed algorithms \(RS256, EdDSA\)$/);
      expect(why('x25519')[0]).toMatch(/kty "OKP" crv "X25519" fits none of the allowed algorithms/);
      expect(lines.filter((l) => l.includes('(no kid)'))).toEqual([`JWKS key (no kid) of ${s.issuer} refused: kid is not a non-empty string`]);
      // Every refetch above saw the same refused keys: still one line each, and never key material.
      expect(lines).toHaveLength(refused.length + 1);
      for (const l of lines) for (const m of [k1.publicJwk.n, k2.publicJwk.n, priv.d, priv.p]) expect(l).not.toContain((m as string).slice(0, 16));
    });

    it('a JWKS whose every key is refused counts as unavailable (503)', async () => {
      s.keys = [{ ...k1.publicJwk, e: 'AQ' }, jwkOf(rsa1024, 'rsa1024')];
      const lines: string[] = [];
      expect(await reason(store({}, undefined, { logger: { warn: (m) => lines.push(m) } }).getKey('rsa1024', 'RS256'))).toBe('jwks_unavailable');
      expect(lines).toHaveLength(2);
    });
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
