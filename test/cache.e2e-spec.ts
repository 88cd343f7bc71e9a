import { Controller, Get, UseGuards } from '@nestjs/common';
import request from 'supertest';
import { A2AAuthGuard, RequireScopes, type A2AAuthModuleOptions } from 'nestjs-a2a-auth';
import { KeyRegistry, VerifiedTokenCache } from 'nestjs-a2a-auth/core';
import { generateTestKey, type TestKey } from './fixtures/keys';
import { JwksServer } from './fixtures/jwks-server';
import { mintToken } from './fixtures/tokens';
import { PLATFORMS, startTestApp, type Platform, type TestApp } from './fixtures/test-app';
import { GuardTestController, TEST_SCOPES } from './fixtures/test-controllers';

const AUD = 'http://127.0.0.1/expense-agent';
const RM = 'http://127.0.0.1/.well-known/oauth-protected-resource/expense-agent';
const CHALLENGE = `Bearer realm="Cache Agent", resource_metadata="${RM}"`;
const ME = { clientId: 'client-a', subject: 'client-a', scopes: ['expense:submit', 'expense:read'] };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, Math.max(0, ms)));
const nowS = () => Math.floor(Date.now() / 1000);

/** The global guard plus the same guard at route level: the second run must only authorize. */
@Controller('double')
class DoubleGuardController {
  @UseGuards(A2AAuthGuard)
  @RequireScopes('expense:read')
  @Get()
  ok() {
    return { ok: true };
  }

  @UseGuards(A2AAuthGuard)
  @RequireScopes('expense:approve')
  @Get('approve')
  approve() {
    return { ok: true };
  }
}

interface CacheApp {
  t: TestApp;
  cache: VerifiedTokenCache;
  /** Full verifications: a spy (calling through) on the key lookup that every cache miss makes once. */
  verifications: jest.SpyInstance;
}

async function start(platform: Platform, jwks: JwksServer, extra: Partial<A2AAuthModuleOptions>): Promise<CacheApp> {
  const t = await startTestApp({
    platform,
    auth: {
      issuer: jwks.issuer,
      audience: AUD,
      jwksUri: jwks.jwksUri,
      scopes: TEST_SCOPES,
      resource: AUD,
      realm: 'Cache Agent',
      audit: { successes: false },
      ...extra,
    },
    controllers: [GuardTestController, DoubleGuardController],
  });
  return { t, cache: t.app.get(VerifiedTokenCache), verifications: jest.spyOn(t.app.get(KeyRegistry), 'getKey') };
}

describe.each(PLATFORMS)('verified-token cache on %s', (platform) => {
  let jwks: JwksServer;
  let key: TestKey;
  let next: TestKey;
  const token = (o: { claims?: Record<string, unknown>; ttl?: number; k?: TestKey } = {}) =>
    mintToken({ key: o.k ?? key, issuer: jwks.issuer, audience: AUD, claims: o.claims, ttl: o.ttl });
  const me = (a: CacheApp, tok: string) => request(a.t.url).get('/t/me').set('Authorization', `Bearer ${tok}`);

  beforeAll(async () => {
    jwks = await new JwksServer().start();
    key = generateTestKey('RS256');
    next = generateTestKey('RS256');
    jwks.keys = [key.publicJwk];
  });
  afterAll(async () => {
    await jwks?.stop();
  });

  describe('cache on', () => {
    let a: CacheApp;
    beforeAll(async () => {
      a = await start(platform, jwks, { clockTolerance: 0, jwksCooldown: 0 });
    });
    afterAll(async () => {
      await a?.t.close();
    });
    beforeEach(() => a.verifications.mockClear());

    it('a hit skips passport and yields the same caller', async () => {
      const tok = await token();
      const r1 = await me(a, tok);
      expect(r1.status).toBe(200);
      expect(a.verifications).toHaveBeenCalledTimes(1);
      const size = a.cache.size;
      const r2 = await me(a, tok);
      expect(r2.status).toBe(200);
      expect(r2.body).toEqual(r1.body);
      expect(r2.body).toEqual({ ...ME, issuer: jwks.issuer });
      expect(a.verifications).toHaveBeenCalledTimes(1);
      expect(a.cache.size).toBe(size);
    });

    it('on a hit the route scopes are still checked: 403 insufficient_scope', async () => {
      const tok = await token();
      expect((await me(a, tok)).status).toBe(200); // cached, with scopes expense:submit expense:read
      const res = await request(a.t.url).get('/t/approve').set('Authorization', `Bearer ${tok}`);
      expect(res.status).toBe(403);
      expect(res.headers['www-authenticate']).toBe(
        `${CHALLENGE}, error="insufficient_scope", error_description="The access token lacks a required scope", scope="expense:approve"`,
      );
      expect(res.body).toEqual({ error: 'insufficient_scope', error_description: 'The access token lacks a required scope', scope: 'expense:approve' });
      expect(a.verifications).toHaveBeenCalledTimes(1); // the 403 came from the cached caller
    });

    it('failures are never cached: each retry is verified again', async () => {
      const size = a.cache.size;
      const bad = [
        await token({ claims: { exp: nowS() - 60, iat: nowS() - 400 } }),
        await mintToken({ key, issuer: jwks.issuer, audience: 'https://other.example' }),
      ];
      for (const tok of bad) {
        for (let i = 0; i < 2; i++) {
          const res = await me(a, tok);
          expect(res.status).toBe(401);
          expect(res.headers['www-authenticate']).toMatch(
            /^Bearer realm="Cache Agent", resource_metadata="[^"]+", error="invalid_token", error_description="The access token (expired|is invalid)"$/,
          );
        }
      }
      expect(a.verifications).toHaveBeenCalledTimes(4);
      expect(a.cache.size).toBe(size);
    });

    it('an entry ends at exp: the next request is verified and rejected as expired', async () => {
      const tok = await token({ ttl: 2 });
      const exp = JSON.parse(Buffer.from(tok.split('.')[1], 'base64url').toString()).exp as number;
      expect((await me(a, tok)).status).toBe(200);
      expect((await me(a, tok)).status).toBe(200);
      expect(a.verifications).toHaveBeenCalledTimes(1);
      await sleep(exp * 1000 - Date.now() + 50);
      const res = await me(a, tok);
      expect(res.status).toBe(401);
      expect(res.headers['www-authenticate']).toBe(`${CHALLENGE}, error="invalid_token", error_description="The access token expired"`);
      expect(res.body).toEqual({ error: 'invalid_token', error_description: 'The access token expired' });
      expect(a.verifications).toHaveBeenCalledTimes(2);
    });

    it('a key that leaves the JWKS drops its cached tokens: the token is then rejected', async () => {
      const old = await token();
      expect((await me(a, old)).status).toBe(200);
      expect((await me(a, old)).status).toBe(200);
      expect(a.verifications).toHaveBeenCalledTimes(1);

      // Rotate: the old kid disappears; a token with the new kid forces the refetch that notices it.
      jwks.keys = [next.publicJwk];
      const fetches = jwks.jwksFetches;
      const fresh = await token({ k: next });
      expect((await me(a, fresh)).status).toBe(200);
      expect(jwks.jwksFetches).toBe(fetches + 1);

      const res = await me(a, old);
      expect(res.status).toBe(401);
      expect(res.headers['www-authenticate']).toBe(`${CHALLENGE}, error="invalid_token", error_description="The access token is invalid"`);
      expect(res.body).toEqual({ error: 'invalid_token', error_description: 'The access token is invalid' });
      expect(a.verifications).toHaveBeenCalledTimes(3); // old (miss) + fresh + old again (dropped, so a miss)
      jwks.keys = [key.publicJwk, next.publicJwk];
    });
  });

  describe('with maxTokenAge', () => {
    let a: CacheApp;
    beforeAll(async () => {
      a = await start(platform, jwks, { clockTolerance: 0, maxTokenAge: 2 });
    });
    afterAll(async () => {
      await a?.t.close();
    });

    it('an entry ends at iat + maxTokenAge, long before exp', async () => {
      const iat = nowS() - 1;
      const tok = await token({ claims: { iat, exp: iat + 600 } });
      expect((await me(a, tok)).status).toBe(200);
      expect((await me(a, tok)).status).toBe(200);
      expect(a.verifications).toHaveBeenCalledTimes(1);
      await sleep((iat + 2) * 1000 - Date.now() + 150);
      const res = await me(a, tok);
      expect(res.status).toBe(401);
      expect(res.headers['www-authenticate']).toBe(`${CHALLENGE}, error="invalid_token", error_description="The access token is too old"`);
      expect(res.body).toEqual({ error: 'invalid_token', error_description: 'The access token is too old' });
      expect(a.verifications).toHaveBeenCalledTimes(2);
    });
  });

  describe('with tokenCache.maxTtl', () => {
    let a: CacheApp;
    beforeAll(async () => {
      a = await start(platform, jwks, { tokenCache: { maxTtl: 1 } });
    });
    afterAll(async () => {
      await a?.t.close();
    });

    it('an entry ends after maxTtl: the token is verified again (and still accepted)', async () => {
      const tok = await token({ ttl: 3600 });
      expect((await me(a, tok)).status).toBe(200);
      // The entry was stored before the first answer was sent: it ends at most maxTtl after this moment.
      const stored = Date.now();
      expect((await me(a, tok)).status).toBe(200);
      if (Date.now() - stored < 1000) expect(a.verifications).toHaveBeenCalledTimes(1); // the second request was within maxTtl
      await sleep(stored + 1100 - Date.now());
      a.verifications.mockClear();
      const res = await me(a, tok);
      expect(res.status).toBe(200);
      expect(res.body).toEqual({ ...ME, issuer: jwks.issuer });
      expect(a.verifications).toHaveBeenCalledTimes(1);
    });
  });

  describe('cache off (tokenCache.enabled false)', () => {
    let a: CacheApp;
    beforeAll(async () => {
      a = await start(platform, jwks, { tokenCache: { enabled: false } });
    });
    afterAll(async () => {
      await a?.t.close();
    });
    beforeEach(() => a.verifications.mockClear());

    it('every request is verified, and nothing is stored', async () => {
      const tok = await token();
      for (let i = 0; i < 3; i++) {
        const res = await me(a, tok);
        expect(res.status).toBe(200);
        expect(res.body).toEqual({ ...ME, issuer: jwks.issuer });
      }
      expect(a.verifications).toHaveBeenCalledTimes(3);
      expect(a.cache.enabled).toBe(false);
      expect(a.cache.size).toBe(0);
    });

    it('a route-level guard after the global one authenticates once and authorizes twice', async () => {
      const tok = await token();
      const ok = await request(a.t.url).get('/double').set('Authorization', `Bearer ${tok}`);
      expect(ok.status).toBe(200);
      expect(ok.body).toEqual({ ok: true });
      const denied = await request(a.t.url).get('/double/approve').set('Authorization', `Bearer ${tok}`);
      expect(denied.status).toBe(403);
      expect(denied.headers['www-authenticate']).toBe(
        `${CHALLENGE}, error="insufficient_scope", error_description="The access token lacks a required scope", scope="expense:approve"`,
      );
      expect(a.verifications).toHaveBeenCalledTimes(2); // one per request, not one per guard
    });

    it('scopes and failures behave the same', async () => {
      const tok = await token();
      const r403 = await request(a.t.url).get('/t/approve').set('Authorization', `Bearer ${tok}`);
      expect(r403.status).toBe(403);
      expect(r403.body).toEqual({ error: 'insufficient_scope', error_description: 'The access token lacks a required scope', scope: 'expense:approve' });
      const r401 = await me(a, await token({ claims: { exp: nowS() - 60, iat: nowS() - 400 } }));
      expect(r401.status).toBe(401);
      expect(r401.headers['www-authenticate']).toBe(`${CHALLENGE}, error="invalid_token", error_description="The access token expired"`);
    });
  });
});
