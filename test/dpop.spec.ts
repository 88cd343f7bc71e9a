import { calculateJwkThumbprint } from 'jose';
import { AuthError, ChallengeBuilder, DPoPNonces, InMemoryReplayCache, accessTokenHash, jwkThumbprint, normalizeHtu } from 'nestjs-a2a-auth/core';
import { proofKey } from './dpop-helpers';

// The pure parts of DPoP (RFC 9449): the RFC 7638 thumbprint, ath, htu normalisation, nonces, the replay cache and
// the challenges, each against a public vector or a literal value.

describe('jwkThumbprint (RFC 7638)', () => {
  it('gives the RFC 7638 §3.1 example value', () => {
    const jwk = {
      kty: 'RSA',
      n: '0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw',
      e: 'AQAB',
      alg: 'RS256',
      kid: '2011-04-29',
    };
    expect(jwkThumbprint(jwk)).toBe('NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs');
  });

  it.each(['ES256', 'EdDSA', 'PS256'])('agrees with jose for a %s key', async (alg) => {
    const k = await proofKey(alg);
    expect(jwkThumbprint(k.jwk)).toBe(await calculateJwkThumbprint(k.jwk as never, 'sha256'));
  });

  it('refuses unknown key types and non-string members', () => {
    expect(jwkThumbprint({ kty: 'oct', k: 'x' })).toBeUndefined();
    expect(jwkThumbprint({ kty: 'EC', crv: 'P-256', x: 'a', y: 1 })).toBeUndefined();
  });
});

describe('accessTokenHash (RFC 9449 §4.2 ath)', () => {
  it('is base64url SHA-256 of the token', () => {
    // The example of RFC 9449 §7.1: the access token and its ath.
    expect(accessTokenHash('Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU')).toBe('fUHyO2r2Z3DZ53EsNrWBb0xWXoaNy59IiKCAqksmQEo');
  });
});

describe('normalizeHtu (RFC 9449 §4.3, RFC 3986 §6)', () => {
  it.each([
    ['HTTPS://Example.COM:443/a/./b/../c/%7euser?q=1#f', 'https://example.com/a/c/~user'],
    ['http://example.com:80', 'http://example.com/'],
    ['http://example.com:8080/%2f%41', 'http://example.com:8080/%2FA'],
    ['https://[::1]:8443/x', 'https://[::1]:8443/x'],
  ])('%s → %s', (input, out) => {
    expect(normalizeHtu(input)).toBe(out);
  });
  it.each(['/relative', 'ftp://example.com/x', 'https://user:pw@example.com/x', 'not a url'])('refuses %s', (input) => {
    expect(normalizeHtu(input)).toBeUndefined();
  });
});

describe('DPoPNonces (RFC 9449 §9, stateless)', () => {
  const secret = Buffer.alloc(32, 7);
  it('accepts the current and the previous window only, and only its own nonces', () => {
    const n = new DPoPNonces(secret, 300);
    const t = 1_700_000_000;
    const nonce = n.issue(t);
    expect(nonce).toMatch(/^[0-9a-z]+\.[A-Za-z0-9_-]{22}$/);
    expect(n.accepts(nonce, t)).toBe(true);
    expect(n.accepts(nonce, t + 300)).toBe(true);
    expect(n.accepts(nonce, t + 600)).toBe(false);
    expect(new DPoPNonces(Buffer.alloc(32, 8), 300).accepts(nonce, t)).toBe(false);
    expect(n.accepts(`${nonce.split('.')[0]}.${'A'.repeat(22)}`, t)).toBe(false);
    expect(n.accepts(123, t)).toBe(false);
  });
});

describe('InMemoryReplayCache', () => {
  it('remembers a key for its lifetime, then forgets it', () => {
    let now = 0;
    const c = new InMemoryReplayCache(10, () => now);
    expect(c.checkAndStore('a', 70)).toBe(true);
    expect(c.checkAndStore('a', 70)).toBe(false);
    now = 69_999;
    expect(c.checkAndStore('a', 70)).toBe(false);
    now = 70_000;
    expect(c.checkAndStore('a', 70)).toBe(true);
  });

  it('fails closed when full of live entries, and makes room as they expire', () => {
    let now = 0;
    const c = new InMemoryReplayCache(2, () => now);
    expect(c.checkAndStore('a', 10)).toBe(true);
    expect(c.checkAndStore('b', 10)).toBe(true);
    expect(() => c.checkAndStore('c', 10)).toThrow('DPoP replay cache is full');
    expect(c.checkAndStore('a', 10)).toBe(false);
    now = 10_000;
    expect(c.checkAndStore('c', 10)).toBe(true);
    expect(c.size).toBe(1);
  });
});

describe('ChallengeBuilder with DPoP (RFC 9449 §7.1)', () => {
  const cb = new ChallengeBuilder({ realm: 'r', resourceMetadata: 'https://x/m', dpopAlgorithms: ['ES256', 'EdDSA'] });
  const B = 'Bearer realm="r", resource_metadata="https://x/m"';
  const D = 'DPoP realm="r", resource_metadata="https://x/m", algs="ES256 EdDSA"';
  it.each([
    ['missing_token', undefined, undefined, B],
    ['missing_token', 'allowed', undefined, `${B}, ${D}`],
    ['missing_token', 'required', undefined, D],
    ['expired', 'allowed', undefined, `${B}, error="invalid_token", error_description="The access token expired", ${D}`],
    ['expired', 'allowed', 'DPoP', `${B}, ${D}, error="invalid_token", error_description="The access token expired"`],
    ['dpop_replayed', 'allowed', undefined, `${B}, ${D}, error="invalid_dpop_proof", error_description="The DPoP proof was already used"`],
    ['dpop_nonce_missing', 'required', 'DPoP', `${D}, error="use_dpop_nonce", error_description="Resource server requires nonce in DPoP proof"`],
    ['dpop_required', 'required', 'Bearer', D],
    ['expired', 'off', undefined, `${B}, error="invalid_token", error_description="The access token expired"`],
  ] as const)('%s with mode %s and scheme %s', (reason, mode, scheme, want) => {
    expect(cb.forError(new AuthError(reason), mode ? { mode, scheme } : undefined)).toBe(want);
  });
  it('sends no challenge for the 503 of an unavailable replay store', () => {
    expect(cb.forError(new AuthError('dpop_replay_store_unavailable'), { mode: 'allowed' })).toBeUndefined();
  });
});
