import { createHash } from 'node:crypto';
import { type A2ACaller } from 'nestjs-a2a-auth';
import { cacheNotAfter, tokenHash, VerifiedTokenCache } from 'nestjs-a2a-auth/core';

const ISS = 'https://issuer.example';

function caller(o: { sub?: string; exp?: number; iat?: number; kid?: string; iss?: string; scopes?: string[] } = {}): A2ACaller {
  const exp = o.exp ?? 2_000_000_000;
  return Object.freeze({
    clientId: o.sub ?? 'client-a',
    subject: o.sub ?? 'client-a',
    issuer: o.iss ?? ISS,
    scopes: Object.freeze(o.scopes ?? ['expense:read']),
    claims: Object.freeze({ iss: o.iss ?? ISS, sub: o.sub ?? 'client-a', exp, iat: o.iat }),
    actors: Object.freeze([]),
    expiresAt: exp,
    keyId: 'kid' in o ? o.kid : 'k1',
  });
}

/** A hand-driven clock in milliseconds. */
function clock(startMs = 1_700_000_000_000) {
  const c = { t: startMs, now: () => c.t };
  return c;
}

describe('tokenHash', () => {
  it('is the base64url SHA-256 of the token (43 chars), never the token', () => {
    const t = 'eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhIn0.c2ln';
    expect(tokenHash(t)).toBe(createHash('sha256').update(t).digest('base64url'));
    expect(tokenHash(t)).toHaveLength(43);
    expect(tokenHash(t)).not.toContain(t);
  });
});

describe('cacheNotAfter (seconds)', () => {
  it('is exp + clock tolerance without maxTokenAge', () => {
    expect(cacheNotAfter({ exp: 1000, iat: 900 }, 5)).toBe(1005);
  });
  it('is iat + maxTokenAge + tolerance when that comes first', () => {
    expect(cacheNotAfter({ exp: 1000, iat: 900 }, 5, 30)).toBe(935);
  });
  it('is exp + tolerance when exp comes before iat + maxTokenAge', () => {
    expect(cacheNotAfter({ exp: 1000, iat: 900 }, 0, 500)).toBe(1000);
  });
  it('ignores maxTokenAge when iat is absent (the verifier rejects such tokens anyway)', () => {
    expect(cacheNotAfter({ exp: 1000 }, 0, 10)).toBe(1000);
  });
});

describe('VerifiedTokenCache', () => {
  it('expires an entry at exp: served 1 ms before, gone at exp', () => {
    const c = clock();
    const cache = new VerifiedTokenCache(10, 3600, c.now);
    const exp = c.t / 1000 + 10;
    const who = caller({ exp });
    cache.set('h', who, cacheNotAfter(who.claims, 0));
    c.t += 10_000 - 1;
    expect(cache.get('h')).toBe(who);
    c.t += 1;
    expect(cache.get('h')).toBeUndefined();
    expect(cache.size).toBe(0); // removed on read
  });

  it('expires an entry at iat + maxTokenAge', () => {
    const c = clock();
    const cache = new VerifiedTokenCache(10, 3600, c.now);
    const nowS = c.t / 1000;
    const who = caller({ iat: nowS - 2, exp: nowS + 600 });
    cache.set('h', who, cacheNotAfter(who.claims, 0, 5)); // ends at iat + 5 = now + 3 s
    c.t += 2_999;
    expect(cache.get('h')).toBe(who);
    c.t += 1;
    expect(cache.get('h')).toBeUndefined();
  });

  it('expires an entry at insertion + maxTtl, however long the token lives', () => {
    const c = clock();
    const cache = new VerifiedTokenCache(10, 2, c.now);
    const who = caller({ exp: c.t / 1000 + 3600 });
    cache.set('h', who, cacheNotAfter(who.claims, 5));
    c.t += 1_999;
    expect(cache.get('h')).toBe(who);
    c.t += 1;
    expect(cache.get('h')).toBeUndefined();
  });

  it('stores nothing for a token already past its end', () => {
    const c = clock();
    const cache = new VerifiedTokenCache(10, 300, c.now);
    const who = caller({ exp: c.t / 1000 - 1 });
    cache.set('h', who, cacheNotAfter(who.claims, 0));
    cache.set('h2', who, c.t / 1000); // ends right now
    expect(cache.size).toBe(0);
    expect(cache.get('h')).toBeUndefined();
  });

  it('evicts the least recently used entry at maxEntries', () => {
    const c = clock();
    const cache = new VerifiedTokenCache(3, 300, c.now);
    const far = c.t / 1000 + 3600;
    const [a, b, d, e] = ['a', 'b', 'd', 'e'].map((s) => caller({ sub: s }));
    cache.set('a', a, far);
    cache.set('b', b, far);
    cache.set('d', d, far);
    expect(cache.get('a')).toBe(a); // a is now more recent than b
    cache.set('e', e, far);
    expect(cache.size).toBe(3);
    expect(cache.get('b')).toBeUndefined();
    expect([cache.get('a'), cache.get('d'), cache.get('e')]).toEqual([a, d, e]);
  });

  it('never grows past maxEntries', () => {
    const cache = new VerifiedTokenCache(100, 300);
    const far = Date.now() / 1000 + 3600;
    for (let i = 0; i < 1000; i++) cache.set(`h${i}`, caller({ sub: `c${i}` }), far);
    expect(cache.size).toBe(100);
  });

  it('drops the entries of removed keys of that issuer only', () => {
    const cache = new VerifiedTokenCache(10, 300);
    const far = Date.now() / 1000 + 3600;
    const k1 = caller({ kid: 'k1' });
    const k2 = caller({ kid: 'k2' });
    const otherIss = caller({ kid: 'k1', iss: 'https://other.example' });
    cache.set('k1', k1, far);
    cache.set('k2', k2, far);
    cache.set('other', otherIss, far);
    cache.dropKeys(ISS, ['k1']);
    expect(cache.get('k1')).toBeUndefined();
    expect(cache.get('k2')).toBe(k2);
    expect(cache.get('other')).toBe(otherIss);
    expect(cache.size).toBe(2);
  });

  describe('with a key material resolver', () => {
    // The current material per issuer and kid ('' stands for a kid-less token), as the key registry would report it.
    let material: Map<string, string>;
    const resolve = (iss: string, kid: string | undefined) => material.get(`${iss} ${kid ?? ''}`);
    const far = Date.now() / 1000 + 3600;
    beforeEach(() => {
      material = new Map([
        [`${ISS} k1`, 'M1'],
        [`${ISS} k2`, 'M2'],
        [`${ISS} `, 'M1'],
        ['https://other.example k1', 'X1'],
      ]);
    });

    it('drops, on a recheck, the entries whose kid now names other material, and keeps the rest', () => {
      const cache = new VerifiedTokenCache(10, 300, Date.now, resolve);
      const k1 = caller({ kid: 'k1' });
      const k2 = caller({ kid: 'k2' });
      const other = caller({ kid: 'k1', iss: 'https://other.example' });
      cache.set('k1', k1, far);
      cache.set('k2', k2, far);
      cache.set('other', other, far);
      material.set(`${ISS} k1`, 'M1-new'); // same kid, new material
      material.set('https://other.example k1', 'X1-new'); // another issuer: not rechecked below
      cache.recheckKeys(ISS);
      expect(cache.get('k1')).toBeUndefined();
      expect(cache.get('k2')).toBe(k2);
      expect(cache.get('other')).toBe(other);
    });

    it('drops a kid-less entry when its key is replaced or stops being the only key, and when a kid disappears', () => {
      const cache = new VerifiedTokenCache(10, 300, Date.now, resolve);
      const none = caller({ kid: undefined });
      const k2 = caller({ kid: 'k2' });
      cache.set('none', none, far);
      cache.set('k2', k2, far);
      cache.recheckKeys(ISS); // nothing changed
      expect([cache.get('none'), cache.get('k2')]).toEqual([none, k2]);
      material.delete(`${ISS} `); // a second key appeared: a kid-less token has no key any more
      material.delete(`${ISS} k2`); // k2 left
      cache.recheckKeys(ISS);
      expect(cache.get('none')).toBeUndefined();
      expect(cache.get('k2')).toBeUndefined();
      expect(cache.size).toBe(0);
    });

    it('stores nothing when the key left the set while the token was verified', () => {
      const cache = new VerifiedTokenCache(10, 300, Date.now, resolve);
      cache.set('gone', caller({ kid: 'k9' }), far);
      expect(cache.get('gone')).toBeUndefined();
      expect(cache.size).toBe(0);
    });

    it('recheckKeys is a no-op without a resolver or with the cache off', () => {
      const plain = new VerifiedTokenCache(10, 300);
      const who = caller();
      plain.set('h', who, far);
      plain.recheckKeys(ISS);
      expect(plain.get('h')).toBe(who);
      const off = new VerifiedTokenCache(0, 300, Date.now, resolve);
      off.recheckKeys(ISS);
      expect(off.size).toBe(0);
    });
  });

  it('is off with maxEntries 0 or maxTtl 0: stores nothing, returns nothing', () => {
    for (const cache of [new VerifiedTokenCache(0, 300), new VerifiedTokenCache(10, 0)]) {
      expect(cache.enabled).toBe(false);
      cache.set('h', caller(), Date.now() / 1000 + 3600);
      expect(cache.get('h')).toBeUndefined();
      expect(cache.size).toBe(0);
      cache.dropKeys(ISS, ['k1']);
      cache.clear();
    }
  });

  it('clear() empties it', () => {
    const cache = new VerifiedTokenCache(10, 300);
    cache.set('h', caller(), Date.now() / 1000 + 3600);
    cache.clear();
    expect(cache.size).toBe(0);
    expect(cache.get('h')).toBeUndefined();
  });
});
