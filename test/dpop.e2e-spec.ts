import { randomUUID } from 'node:crypto';
import { Controller, Get } from '@nestjs/common';
import { A2ACaller, DPoP, type AuditSink, type AuthAuditEvent, type DPoPReplayCache } from 'nestjs-a2a-auth';
import { TestIssuer } from './fixtures/auth-harness';
import { PLATFORMS, type TestApp } from './fixtures/test-app';
import { GuardTestController, TEST_SCOPES } from './fixtures/test-controllers';
import { mintProof, proofKey, send, type Answer, type ProofKey, type ProofOptions } from './dpop-helpers';

// DPoP (RFC 9449) at the resource server, through real apps on express and fastify, against a real JWKS server:
// every proof failure with its own reason code and its exact wire answer (status, WWW-Authenticate, body), the
// modes, the per-route @DPoP override, nonces, the replay cache behind its interface, and the RFC 9728 metadata.

const AUD = 'http://127.0.0.1/dpop-agent';
const RM = 'http://127.0.0.1/.well-known/oauth-protected-resource/dpop-agent';
const BEARER = `Bearer realm="dpop", resource_metadata="${RM}"`;
const DPOP = `DPoP realm="dpop", resource_metadata="${RM}", algs="ES256 PS256 RS256 EdDSA"`;
const NONCE_SECRET = 'a-dpop-nonce-secret-of-at-least-32-bytes';

// The generic error_description of each reason (literal, as on the wire).
const DESCRIPTION: Record<string, [error: string, description: string]> = {
  dpop_proof_missing: ['invalid_dpop_proof', 'The DPoP proof is missing'],
  dpop_multiple_proofs: ['invalid_dpop_proof', 'More than one DPoP proof was sent'],
  dpop_malformed_proof: ['invalid_dpop_proof', 'The DPoP proof is invalid'],
  dpop_invalid_typ: ['invalid_dpop_proof', 'The DPoP proof is invalid'],
  dpop_unsupported_alg: ['invalid_dpop_proof', 'The DPoP proof is invalid'],
  dpop_invalid_jwk: ['invalid_dpop_proof', 'The DPoP proof is invalid'],
  dpop_invalid_signature: ['invalid_dpop_proof', 'The DPoP proof is invalid'],
  dpop_missing_claim: ['invalid_dpop_proof', 'The DPoP proof is invalid'],
  dpop_htm_mismatch: ['invalid_dpop_proof', 'The DPoP proof does not match this request'],
  dpop_htu_mismatch: ['invalid_dpop_proof', 'The DPoP proof does not match this request'],
  dpop_iat_too_old: ['invalid_dpop_proof', 'The DPoP proof is too old or not yet valid'],
  dpop_iat_in_future: ['invalid_dpop_proof', 'The DPoP proof is too old or not yet valid'],
  dpop_ath_mismatch: ['invalid_dpop_proof', 'The DPoP proof is not bound to this access token'],
  dpop_replayed: ['invalid_dpop_proof', 'The DPoP proof was already used'],
  dpop_nonce_missing: ['use_dpop_nonce', 'Resource server requires nonce in DPoP proof'],
  dpop_nonce_invalid: ['use_dpop_nonce', 'Resource server requires nonce in DPoP proof'],
  dpop_jkt_mismatch: ['invalid_token', 'The access token is not bound to the DPoP proof key'],
  dpop_unbound_token: ['invalid_token', 'The access token is not DPoP-bound'],
  expired: ['invalid_token', 'The access token expired'],
};

/** The exact answer for a refusal with mode 'allowed' (both challenges, the error on the DPoP one). */
function onDPoP(reason: string): Omit<Answer, 'dpopNonce' | 'retryAfter'> {
  const [error, d] = DESCRIPTION[reason];
  return { status: 401, wwwAuthenticate: `${BEARER}, ${DPOP}, error="${error}", error_description="${d}"`, body: { error, error_description: d } };
}

const BOUND_AS_BEARER = {
  status: 401,
  wwwAuthenticate: `${BEARER}, error="invalid_token", error_description="The access token is DPoP-bound: send it with the DPoP scheme and a proof", ${DPOP}`,
  body: { error: 'invalid_token', error_description: 'The access token is DPoP-bound: send it with the DPoP scheme and a proof' },
};
const DPOP_REQUIRED = {
  status: 401,
  wwwAuthenticate: DPOP,
  body: { error: 'invalid_request', error_description: 'Authentication required: use the DPoP scheme with a DPoP proof' },
};
const SCHEME_OFF = {
  status: 401,
  wwwAuthenticate: BEARER,
  body: { error: 'invalid_request', error_description: 'Authentication required: use the Bearer scheme' },
};

@Controller('d')
class DPoPRoutesController {
  @DPoP('required')
  @Get('required')
  required(@A2ACaller() c: A2ACaller) {
    return { clientId: c.clientId };
  }

  @DPoP('off')
  @Get('off')
  off(@A2ACaller() c: A2ACaller) {
    return { clientId: c.clientId };
  }
}

@DPoP('required')
@Controller('r')
class RequiredController {
  @Get()
  strict() {
    return { ok: true };
  }

  @DPoP('allowed')
  @Get('relaxed')
  relaxed() {
    return { ok: true };
  }
}

function capture(): { sink: AuditSink; events: AuthAuditEvent[] } {
  const events: AuthAuditEvent[] = [];
  return { events, sink: { wantsSuccesses: true, emit: (e) => events.push(e) } };
}

const strip = (a: Answer) => ({ status: a.status, wwwAuthenticate: a.wwwAuthenticate, body: a.body });

describe.each(PLATFORMS)('DPoP (RFC 9449) on %s', (platform) => {
  let idp: TestIssuer;
  let pk: ProofKey;
  let other: ProofKey;
  const audit = capture();

  beforeAll(async () => {
    idp = await TestIssuer.start({ audience: AUD });
    pk = await proofKey('ES256');
    other = await proofKey('ES256');
  });
  afterAll(async () => {
    await idp?.close();
  });

  const boundToken = (k: ProofKey = pk, o: { ttl?: number; claims?: Record<string, unknown> } = {}) =>
    idp.mint({ ttl: o.ttl, claims: { cnf: { jkt: k.jkt }, ...o.claims } });
  const appOf = (app: () => TestApp) => ({
    htu: (path = '/t/me') => `${app().url}${path.split('?')[0]}`,
    call: (token: string, proof: string | string[] | undefined, path = '/t/me', method = 'GET') => {
      const headers: Array<[string, string]> = [['Authorization', `DPoP ${token}`]];
      for (const p of proof === undefined ? [] : Array.isArray(proof) ? proof : [proof]) headers.push(['DPoP', p]);
      return send(app().url, method, path, headers);
    },
    bearer: (token: string, path = '/t/me') => send(app().url, 'GET', path, [['Authorization', `Bearer ${token}`]]),
  });

  describe("dpop: 'allowed'", () => {
    let app: TestApp;
    beforeAll(async () => {
      app = await idp.startApp({
        platform,
        auth: { dpop: 'allowed', realm: 'dpop', scopes: TEST_SCOPES, auditSink: audit.sink },
        controllers: [GuardTestController, DPoPRoutesController, RequiredController],
      });
    });
    const a = appOf(() => app);
    const proof = (token: string, o: Partial<ProofOptions> = {}, k: ProofKey = pk) => mintProof(k, { htm: 'GET', htu: a.htu(), token, ...o });

    it('accepts a DPoP-bound token with a valid proof, then from the cache with a fresh proof, proof checked again', async () => {
      const token = await boundToken();
      audit.events.length = 0;
      const first = await a.call(token, proof(token));
      expect(strip(first)).toEqual({
        status: 200,
        wwwAuthenticate: undefined,
        body: { clientId: 'client-a', subject: 'client-a', issuer: idp.issuer, scopes: ['expense:submit', 'expense:read'] },
      });
      const again = proof(token);
      expect((await a.call(token, again)).status).toBe(200);
      // The cached token still needs its proof: a replay, a missing proof and another key's proof are refused.
      expect(strip(await a.call(token, again))).toEqual(onDPoP('dpop_replayed'));
      expect(strip(await a.call(token, undefined))).toEqual(onDPoP('dpop_proof_missing'));
      expect(strip(await a.call(token, proof(token, {}, other)))).toEqual(onDPoP('dpop_jkt_mismatch'));
      expect(audit.events.map((e) => e.reason)).toEqual(['ok', 'ok', 'dpop_replayed', 'dpop_proof_missing', 'dpop_jkt_mismatch']);
    });

    it.each(['PS256', 'RS256', 'EdDSA'])('accepts a proof signed with %s', async (alg) => {
      const k = await proofKey(alg);
      const token = await boundToken(k);
      expect((await a.call(token, proof(token, {}, k))).status).toBe(200);
    });

    it('still accepts plain Bearer tokens', async () => {
      const r = await a.bearer(await idp.mint());
      expect(r.status).toBe(200);
    });

    it('ignores the query and normalises htu (RFC 3986 §6: case, percent-encoding of unreserved characters)', async () => {
      const token = await boundToken();
      expect((await a.call(token, proof(token), '/t/me?x=1')).status).toBe(200);
      expect((await a.call(token, proof(token, { htu: `${a.htu()}?y=2#f` }), '/t/me?x=1')).status).toBe(200);
      const port = new URL(app.url).port;
      expect((await a.call(token, proof(token, { htu: `HTTP://127.0.0.1:${port}/t/%6De` }))).status).toBe(200);
      expect((await a.call(token, proof(token, { htu: `http://127.0.0.1:${port}/t/./me` }))).status).toBe(200);
    });

    type Case = [name: string, make: (token: string) => Promise<{ proof: string | string[] | undefined; token?: string }>, reason: string];
    const port = () => new URL(app.url).port;
    const cases: Case[] = [
      ['missing proof', async () => ({ proof: undefined }), 'dpop_proof_missing'],
      ['two DPoP headers', async (t) => ({ proof: [proof(t), proof(t)] }), 'dpop_multiple_proofs'],
      ['malformed proof (not a JWS)', async () => ({ proof: 'not-a-jws' }), 'dpop_malformed_proof'],
      ['malformed proof (header not JSON)', async () => ({ proof: 'e30x.e30.AAAA' }), 'dpop_malformed_proof'],
      ['typ JWT', async (t) => ({ proof: proof(t, { header: { typ: 'JWT' } }) }), 'dpop_invalid_typ'],
      ['no typ', async (t) => ({ proof: proof(t, { header: { typ: undefined } }) }), 'dpop_invalid_typ'],
      ['alg none', async (t) => ({ proof: proof(t, { header: { alg: 'none' } }) }), 'dpop_unsupported_alg'],
      ['HMAC alg (HS256)', async (t) => ({ proof: proof(t, { hmacSecret: Buffer.from('0123456789abcdef0123456789abcdef') }) }), 'dpop_unsupported_alg'],
      ['alg outside the allow-list (ES384)', async (t) => ({ proof: proof(t, { header: { alg: 'ES384' } }) }), 'dpop_unsupported_alg'],
      [
        'private key in jwk (d)',
        async (t) => ({ proof: proof(t, { header: { jwk: { ...pk.jwk, d: (pk.key.privateKey.export({ format: 'jwk' }) as { d: string }).d } } }) }),
        'dpop_invalid_jwk',
      ],
      ['symmetric jwk (k)', async (t) => ({ proof: proof(t, { header: { jwk: { kty: 'oct', k: 'c2VjcmV0' } } }) }), 'dpop_invalid_jwk'],
      ['no jwk', async (t) => ({ proof: proof(t, { header: { jwk: undefined } }) }), 'dpop_invalid_jwk'],
      ['bad signature (signed by another key)', async (t) => ({ proof: proof(t, { signWith: other.key.privateKey }) }), 'dpop_invalid_signature'],
      ['no jti', async (t) => ({ proof: proof(t, { claims: { jti: undefined } }) }), 'dpop_missing_claim'],
      ['no iat', async (t) => ({ proof: proof(t, { claims: { iat: undefined } }) }), 'dpop_missing_claim'],
      ['wrong htm', async (t) => ({ proof: proof(t, { htm: 'POST' }) }), 'dpop_htm_mismatch'],
      ['wrong htu scheme', async (t) => ({ proof: proof(t, { htu: `https://127.0.0.1:${port()}/t/me` }) }), 'dpop_htu_mismatch'],
      ['wrong htu host', async (t) => ({ proof: proof(t, { htu: `http://localhost:${port()}/t/me` }) }), 'dpop_htu_mismatch'],
      ['wrong htu port', async (t) => ({ proof: proof(t, { htu: `http://127.0.0.1:${Number(port()) + 1}/t/me` }) }), 'dpop_htu_mismatch'],
      ['wrong htu path', async (t) => ({ proof: proof(t, { htu: `http://127.0.0.1:${port()}/t/public` }) }), 'dpop_htu_mismatch'],
      ['stale iat (120 s ago)', async (t) => ({ proof: proof(t, { iat: Math.floor(Date.now() / 1000) - 120 }) }), 'dpop_iat_too_old'],
      ['future iat (30 s ahead)', async (t) => ({ proof: proof(t, { iat: Math.floor(Date.now() / 1000) + 30 }) }), 'dpop_iat_in_future'],
      ['wrong ath', async (t) => ({ proof: proof(t, { token: 'another-token' }) }), 'dpop_ath_mismatch'],
      ['no ath', async (t) => ({ proof: proof(t, { claims: { ath: undefined } }) }), 'dpop_ath_mismatch'],
      ['cnf.jkt of another key', async () => withProof(await boundToken(other)), 'dpop_jkt_mismatch'],
      ['DPoP scheme with an unbound token', async () => withProof(await idp.mint()), 'dpop_unbound_token'],
      ['an expired DPoP-bound token', async () => withProof(await boundToken(pk, { ttl: -60 })), 'expired'],
    ];
    // A token of its own, with a valid proof (signed by the usual proof key) for it.
    const withProof = (token: string) => ({ token, proof: proof(token) });
    it.each(cases)('%s', async (_n, make, reason) => {
      const base = await boundToken();
      const m = await make(base);
      const token = m.token ?? base;
      audit.events.length = 0;
      const r = await a.call(token, m.proof);
      expect({ reasons: audit.events.map((e) => e.reason), ...strip(r) }).toEqual({ reasons: [reason], ...onDPoP(reason) });
    });

    it('refuses the same proof twice (replayed jti), even on a fresh token miss', async () => {
      const token = await boundToken();
      const p = proof(token);
      expect((await a.call(token, p)).status).toBe(200);
      audit.events.length = 0;
      expect(strip(await a.call(token, p))).toEqual(onDPoP('dpop_replayed'));
      expect(audit.events.map((e) => e.reason)).toEqual(['dpop_replayed']);
    });

    it('refuses a DPoP-bound token presented as Bearer (RFC 9449 §7.1), cached or not', async () => {
      const token = await boundToken();
      audit.events.length = 0;
      expect(strip(await a.bearer(token))).toEqual(BOUND_AS_BEARER);
      expect((await a.call(token, proof(token))).status).toBe(200); // now cached
      expect(strip(await a.bearer(token))).toEqual(BOUND_AS_BEARER);
      expect(audit.events.map((e) => e.reason)).toEqual(['dpop_bound_token_as_bearer', 'ok', 'dpop_bound_token_as_bearer']);
    });

    it('answers a request without credentials with both challenges', async () => {
      const r = await send(app.url, 'GET', '/t/me', []);
      expect(strip(r)).toEqual({
        status: 401,
        wwwAuthenticate: `${BEARER}, ${DPOP}`,
        body: { error: 'invalid_request', error_description: 'Authentication required: send an OAuth 2.0 bearer token in the Authorization header' },
      });
    });

    it('puts insufficient_scope on the DPoP challenge for a DPoP caller', async () => {
      const token = await boundToken();
      const r = await a.call(token, proof(token, { htu: a.htu('/t/approve') }), '/t/approve');
      const d = 'The access token lacks a required scope';
      expect(strip(r)).toEqual({
        status: 403,
        wwwAuthenticate: `${BEARER}, ${DPOP}, error="insufficient_scope", error_description="${d}", scope="expense:approve"`,
        body: { error: 'insufficient_scope', error_description: d, scope: 'expense:approve' },
      });
    });

    it("@DPoP('required') on a handler refuses Bearer there and accepts DPoP", async () => {
      const r = await a.bearer(await idp.mint(), '/d/required');
      expect(strip(r)).toEqual(DPOP_REQUIRED);
      const token = await boundToken();
      expect((await a.call(token, proof(token, { htu: a.htu('/d/required') }), '/d/required')).status).toBe(200);
    });

    it("@DPoP('off') on a handler refuses the DPoP scheme there, with the Bearer-only challenge", async () => {
      const token = await boundToken();
      const r = await a.call(token, proof(token, { htu: a.htu('/d/off') }), '/d/off');
      expect(strip(r)).toEqual(SCHEME_OFF);
      const bound = await a.bearer(token, '/d/off');
      const d = 'The access token is bound to a proof-of-possession key this resource does not accept';
      expect(strip(bound)).toEqual({
        status: 401,
        wwwAuthenticate: `${BEARER}, error="invalid_token", error_description="${d}"`,
        body: { error: 'invalid_token', error_description: d },
      });
    });

    it("@DPoP on a controller applies to its handlers, and a handler's own @DPoP wins", async () => {
      expect(strip(await a.bearer(await idp.mint(), '/r'))).toEqual(DPOP_REQUIRED);
      expect((await a.bearer(await idp.mint(), '/r/relaxed')).status).toBe(200);
    });

    it('publishes dpop_signing_alg_values_supported in the RFC 9728 metadata', async () => {
      const r = await send(app.url, 'GET', '/.well-known/oauth-protected-resource/dpop-agent', []);
      expect(r.body).toEqual({
        resource: AUD,
        authorization_servers: [idp.issuer],
        scopes_supported: ['expense:submit', 'expense:approve', 'expense:read'],
        bearer_methods_supported: ['header'],
        dpop_signing_alg_values_supported: ['ES256', 'PS256', 'RS256', 'EdDSA'],
        dpop_bound_access_tokens_required: false,
      });
    });
  });

  describe("dpop: 'required'", () => {
    let app: TestApp;
    beforeAll(async () => {
      app = await idp.startApp({
        platform,
        auth: { dpop: 'required', realm: 'dpop', scopes: TEST_SCOPES, auditSink: audit.sink },
        controllers: [GuardTestController],
      });
    });
    const a = appOf(() => app);

    it('refuses a Bearer token with the bare DPoP challenge', async () => {
      audit.events.length = 0;
      expect(strip(await a.bearer(await idp.mint()))).toEqual(DPOP_REQUIRED);
      expect(audit.events.map((e) => e.reason)).toEqual(['dpop_required']);
    });

    it('accepts DPoP, and answers proof errors with the DPoP challenge only', async () => {
      const token = await boundToken();
      expect((await a.call(token, mintProof(pk, { htm: 'GET', htu: a.htu(), token }))).status).toBe(200);
      const d = 'The DPoP proof is missing';
      expect(strip(await a.call(token, undefined))).toEqual({
        status: 401,
        wwwAuthenticate: `${DPOP}, error="invalid_dpop_proof", error_description="${d}"`,
        body: { error: 'invalid_dpop_proof', error_description: d },
      });
    });

    it('says dpop_bound_access_tokens_required: true in the RFC 9728 metadata', async () => {
      const r = await send(app.url, 'GET', '/.well-known/oauth-protected-resource/dpop-agent', []);
      expect(r.body).toMatchObject({ dpop_signing_alg_values_supported: ['ES256', 'PS256', 'RS256', 'EdDSA'], dpop_bound_access_tokens_required: true });
    });
  });

  describe("dpop: 'off' (the default)", () => {
    let app: TestApp;
    beforeAll(async () => {
      app = await idp.startApp({ platform, auth: { realm: 'dpop', scopes: TEST_SCOPES, auditSink: audit.sink }, controllers: [GuardTestController] });
    });
    const a = appOf(() => app);

    it('refuses the DPoP scheme as unsupported_scheme, with the Bearer-only challenge', async () => {
      const token = await boundToken();
      audit.events.length = 0;
      expect(strip(await a.call(token, mintProof(pk, { htm: 'GET', htu: a.htu(), token })))).toEqual(SCHEME_OFF);
      expect(audit.events.map((e) => e.reason)).toEqual(['unsupported_scheme']);
    });

    it('publishes no DPoP metadata', async () => {
      const r = (await send(app.url, 'GET', '/.well-known/oauth-protected-resource/dpop-agent', [])).body as Record<string, unknown>;
      expect(Object.keys(r).filter((k) => k.startsWith('dpop'))).toEqual([]);
    });
  });

  describe('server-provided nonces (RFC 9449 §9)', () => {
    let app: TestApp;
    beforeAll(async () => {
      app = await idp.startApp({
        platform,
        auth: { dpop: { mode: 'allowed', nonce: { secret: NONCE_SECRET } }, realm: 'dpop', scopes: TEST_SCOPES, auditSink: audit.sink },
        controllers: [GuardTestController],
      });
    });
    const a = appOf(() => app);

    it('answers use_dpop_nonce with a DPoP-Nonce header, then accepts the proof that carries it', async () => {
      const token = await boundToken();
      audit.events.length = 0;
      const first = await a.call(token, mintProof(pk, { htm: 'GET', htu: a.htu(), token }));
      expect(strip(first)).toEqual(onDPoP('dpop_nonce_missing'));
      expect(first.dpopNonce).toMatch(/^[0-9a-z]+\.[A-Za-z0-9_-]{22}$/);
      const ok = await a.call(token, mintProof(pk, { htm: 'GET', htu: a.htu(), token, nonce: first.dpopNonce }));
      expect(ok.status).toBe(200);
      const forged = await a.call(token, mintProof(pk, { htm: 'GET', htu: a.htu(), token, nonce: `${first.dpopNonce!.split('.')[0]}.${'A'.repeat(22)}` }));
      expect(strip(forged)).toEqual(onDPoP('dpop_nonce_invalid'));
      expect(forged.dpopNonce).toBe(first.dpopNonce);
      const old = await a.call(token, mintProof(pk, { htm: 'GET', htu: a.htu(), token, nonce: `1.${'A'.repeat(22)}` }));
      expect(strip(old)).toEqual(onDPoP('dpop_nonce_invalid'));
      expect(audit.events.map((e) => e.reason)).toEqual(['dpop_nonce_missing', 'ok', 'dpop_nonce_invalid', 'dpop_nonce_invalid']);
    });
  });

  describe('a replay cache of your own (asynchronous, behind the DPoPReplayCache interface)', () => {
    let app: TestApp;
    const seen = new Set<string>();
    let broken = false;
    const store: DPoPReplayCache = {
      checkAndStore: async (key, ttl) => {
        await new Promise((r) => setTimeout(r, 1));
        if (broken) throw new Error('store down');
        expect(ttl).toBe(70);
        if (seen.has(key)) return false;
        seen.add(key);
        return true;
      },
    };
    beforeAll(async () => {
      app = await idp.startApp({
        platform,
        auth: { dpop: { mode: 'allowed', replayCache: store }, realm: 'dpop', scopes: TEST_SCOPES, auditSink: audit.sink },
        controllers: [GuardTestController],
      });
    });
    const a = appOf(() => app);

    it('uses it on misses and cache hits, keyed by thumbprint and jti', async () => {
      const token = await boundToken();
      const jti = randomUUID();
      const p = mintProof(pk, { htm: 'GET', htu: a.htu(), token, jti });
      expect((await a.call(token, p)).status).toBe(200);
      expect(seen.has(`${pk.jkt}:${jti}`)).toBe(true);
      expect(strip(await a.call(token, p))).toEqual(onDPoP('dpop_replayed'));
      expect((await a.call(token, mintProof(pk, { htm: 'GET', htu: a.htu(), token }))).status).toBe(200);
    });

    it('fails closed with 503 when the store fails', async () => {
      const token = await boundToken();
      broken = true;
      try {
        audit.events.length = 0;
        const r = await a.call(token, mintProof(pk, { htm: 'GET', htu: a.htu(), token }));
        expect({ ...strip(r), retryAfter: r.retryAfter }).toEqual({
          status: 503,
          wwwAuthenticate: undefined,
          body: { error: 'temporarily_unavailable', error_description: 'The DPoP replay check is temporarily unavailable; retry later' },
          retryAfter: '5',
        });
        expect(audit.events.map((e) => e.reason)).toEqual(['dpop_replay_store_unavailable']);
      } finally {
        broken = false;
      }
    });
  });

  describe('htu behind a proxy', () => {
    let pub: TestApp;
    let proxied: TestApp;
    beforeAll(async () => {
      pub = await idp.startApp({
        platform,
        auth: { dpop: { mode: 'allowed', publicOrigin: 'https://agents.example.com' }, realm: 'dpop', scopes: TEST_SCOPES },
        controllers: [GuardTestController],
      });
      proxied = await idp.startApp({
        platform,
        auth: { dpop: 'allowed', realm: 'dpop', scopes: TEST_SCOPES },
        controllers: [GuardTestController],
      });
    });

    it('uses publicOrigin when set', async () => {
      const token = await boundToken();
      const call = (htu: string) =>
        send(pub.url, 'GET', '/t/me', [
          ['Authorization', `DPoP ${token}`],
          ['DPoP', mintProof(pk, { htm: 'GET', htu, token })],
        ]);
      expect((await call('https://agents.example.com/t/me')).status).toBe(200);
      expect((await call('https://AGENTS.example.com:443/t/me')).status).toBe(200);
      expect(strip(await call(`${pub.url}/t/me`))).toEqual(onDPoP('dpop_htu_mismatch'));
    });

    it('ignores X-Forwarded-Proto/Host unless card.throttle.trustedProxyHops > 0', async () => {
      const token = await boundToken();
      const r = await send(proxied.url, 'GET', '/t/me', [
        ['Authorization', `DPoP ${token}`],
        ['X-Forwarded-Proto', 'https'],
        ['X-Forwarded-Host', 'agents.example.com'],
        ['DPoP', mintProof(pk, { htm: 'GET', htu: 'https://agents.example.com/t/me', token })],
      ]);
      expect(strip(r)).toEqual(onDPoP('dpop_htu_mismatch'));
    });
  });

  describe('trusted proxies', () => {
    let app: TestApp;
    beforeAll(async () => {
      app = await idp.startApp({
        platform,
        auth: {
          dpop: 'allowed',
          realm: 'dpop',
          scopes: TEST_SCOPES,
          tokenUrl: 'https://auth.example.com/token',
          card: { name: 'dpop', description: 'd', url: AUD, interfaces: [], throttle: { trustedProxyHops: 1 } },
        },
        controllers: [GuardTestController],
      });
    });

    it('takes the origin from X-Forwarded-Proto/Host as the trusted proxy set them', async () => {
      const token = await boundToken();
      const call = (headers: Array<[string, string]>, htu: string) =>
        send(app.url, 'GET', '/t/me', [['Authorization', `DPoP ${token}`], ...headers, ['DPoP', mintProof(pk, { htm: 'GET', htu, token })]]);
      const fwd: Array<[string, string]> = [
        ['X-Forwarded-Proto', 'https'],
        ['X-Forwarded-Host', 'agents.example.com'],
      ];
      expect((await call(fwd, 'https://agents.example.com/t/me')).status).toBe(200);
      // A client-written entry to the left of the proxy's is not trusted.
      const spoofed: Array<[string, string]> = [
        ['X-Forwarded-Proto', 'http, https'],
        ['X-Forwarded-Host', 'evil.example, agents.example.com'],
      ];
      expect((await call(spoofed, 'https://agents.example.com/t/me')).status).toBe(200);
      expect(strip(await call(spoofed, 'http://evil.example/t/me'))).toEqual(onDPoP('dpop_htu_mismatch'));
    });
  });
});

describe('DPoP boot options', () => {
  it.each([
    [{ dpop: 'sometimes' }, 'dpop.mode'],
    [{ dpop: { algorithms: ['HS256'] } }, 'dpop.algorithms'],
    [{ dpop: { algorithms: ['none'] } }, 'dpop.algorithms'],
    [{ dpop: { nonce: { secret: 'short' } } }, 'dpop.nonce.secret'],
    [{ dpop: { publicOrigin: 'https://a.example/path' } }, 'dpop.publicOrigin'],
    [{ dpop: { iatWindow: 0 } }, 'dpop.iatWindow'],
  ])('refuses %j', async (extra, option) => {
    const { resolveOptions } = await import('nestjs-a2a-auth');
    expect(() => resolveOptions({ issuer: 'https://as.example', audience: AUD, ...(extra as object) })).toThrow(`invalid option \`${option}\``);
  });
});
