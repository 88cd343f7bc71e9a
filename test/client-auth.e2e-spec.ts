import { createPrivateKey, createPublicKey } from 'node:crypto';
import { decodeJwt, decodeProtectedHeader } from 'jose';
import {
  CLIENT_ASSERTION_TYPE,
  createClientAssertion,
  ClientCredentialsError,
  ClientCredentialsTokenProvider,
  TokenEndpointError,
  TokenExchangeProvider,
  resolveOptions,
  A2AAuthConfigError,
  AuthError,
} from 'nestjs-a2a-auth';
import { TokenIntrospector } from '../libs/a2a-auth/src/core/introspection';
import { startCountingAuthServer, TEST_CLIENTS, type CountingAuthServer } from './fixtures/oidc-dev';
import { opensslKeySync, readPooledKey, type KeyKind } from './fixtures/key-pool';

// private_key_jwt (RFC 7523 §2.2, §3; OIDC Core §9) and rotating credentials, against the sample's real oidc-provider
// dev server: it checks every assertion itself (signature against the client's registered jwks, iss, sub, aud, exp,
// jti replay) before it issues a token or answers an introspection.

const AUD = 'http://127.0.0.1/expense-agent';
const SUBMITTER = TEST_CLIENTS[0];
const OPAQUE = TEST_CLIENTS.find((c) => c.accessTokenFormat === 'opaque')!;
const pem = (kind: KeyKind, i: number) => readPooledKey(kind, i) ?? opensslKeySync(kind);
const publicJwkOf = (privatePem: string, kid: string): Record<string, unknown> => ({
  ...(createPublicKey(privatePem).export({ format: 'jwk' }) as object),
  kid,
  use: 'sig',
});

const RSA_PEM = pem('rsa', 0);
const ED_PEM = pem('ed25519', 0);
const OTHER_EC_PEM = pem('ec', 0);

describe('private_key_jwt and rotation against a real oidc-provider', () => {
  let as: CountingAuthServer;
  const sent: URLSearchParams[] = [];
  const recording: typeof fetch = async (input, init) => {
    sent.push(new URLSearchParams(String(init?.body ?? '')));
    return fetch(input, init);
  };
  const keyed = () => as.dev.clientKeys.get('keyed-client')!;

  beforeAll(async () => {
    as = await startCountingAuthServer({
      audience: AUD,
      keyClients: [
        { clientId: 'keyed-client', scopes: ['expense:submit', 'expense:read'] },
        { clientId: 'rsa-client', scopes: ['expense:read'], publicJwk: publicJwkOf(RSA_PEM, 'rsa-1') },
        { clientId: 'ed-client', scopes: ['expense:read'], publicJwk: publicJwkOf(ED_PEM, 'ed-1') },
        { clientId: 'keyed-introspector', scopes: [], introspector: true },
      ],
    });
  });
  afterAll(() => as?.close());
  beforeEach(() => {
    as.tokenRequests = 0;
    as.introspectionRequests = 0;
    sent.length = 0;
  });

  it('gets a token with a generated ES256 key; the assertion is RFC 7523 §3 shaped (iss = sub = client_id, aud = token URL, jti, 60 s)', async () => {
    const k = keyed();
    const p = new ClientCredentialsTokenProvider({
      tokenUrl: as.dev.tokenUrl,
      clientId: 'keyed-client',
      privateKey: { key: k.key, kid: k.kid },
      scopes: ['expense:submit'],
      fetch: recording,
    });
    const t = await p.getToken();
    expect(t.tokenType).toBe('Bearer');
    expect(t.scopes).toEqual(['expense:submit']);
    expect(decodeJwt(t.accessToken).client_id).toBe('keyed-client');
    expect(p.requestCount).toBe(1);
    const form = sent[0];
    expect(form.get('client_assertion_type')).toBe(CLIENT_ASSERTION_TYPE);
    expect(form.get('client_secret')).toBeNull();
    const assertion = form.get('client_assertion')!;
    expect(decodeProtectedHeader(assertion)).toEqual({ alg: 'ES256', typ: 'JWT', kid: k.kid });
    const claims = decodeJwt(assertion);
    expect(Object.keys(claims).sort()).toEqual(['aud', 'exp', 'iat', 'iss', 'jti', 'sub']);
    expect([claims.iss, claims.sub, claims.aud]).toEqual(['keyed-client', 'keyed-client', as.dev.tokenUrl]);
    expect(claims.exp! - claims.iat!).toBe(60);
    expect(Math.abs(claims.iat! - Date.now() / 1000)).toBeLessThan(5);
    // A second token request signs a new assertion (a replayed jti would be refused).
    await p.getToken({ scopes: ['expense:read'] });
    expect(decodeJwt(sent[1].get('client_assertion')!).jti).not.toBe(claims.jti);
  });

  it('alg from the key: RSA PEM → RS256, RSA with assertionAlgorithm PS256, Ed25519 → EdDSA, a private JWK with its kid', async () => {
    const cases = [
      { clientId: 'rsa-client', privateKey: RSA_PEM, privateKeyId: 'rsa-1', alg: 'RS256', kid: 'rsa-1' },
      { clientId: 'rsa-client', privateKey: RSA_PEM, privateKeyId: 'rsa-1', assertionAlgorithm: 'PS256' as const, alg: 'PS256', kid: 'rsa-1' },
      {
        clientId: 'ed-client',
        privateKey: { ...(createPrivateKey(ED_PEM).export({ format: 'jwk' }) as object), kid: 'ed-1' } as never,
        alg: 'EdDSA',
        kid: 'ed-1',
      },
    ];
    for (const { alg, kid, ...o } of cases) {
      sent.length = 0;
      const p = new ClientCredentialsTokenProvider({ tokenUrl: as.dev.tokenUrl, ...o, scopes: ['expense:read'], fetch: recording });
      expect((await p.getToken()).scopes).toEqual(['expense:read']);
      expect(decodeProtectedHeader(sent[0].get('client_assertion')!)).toEqual({ alg, typ: 'JWT', kid });
    }
  });

  it('through a proxy the token URL is not the server’s own: assertionAudience = the issuer is accepted', async () => {
    const k = keyed();
    const viaProxy = new ClientCredentialsTokenProvider({
      tokenUrl: as.tokenUrl,
      clientId: 'keyed-client',
      privateKey: { key: k.key, kid: k.kid },
      scopes: ['expense:read'],
    });
    const e = await viaProxy.getToken().catch((x: unknown) => x);
    expect(e).toBeInstanceOf(TokenEndpointError);
    expect([(e as TokenEndpointError).error, (e as TokenEndpointError).status]).toEqual(['invalid_client', 401]);
    const p = new ClientCredentialsTokenProvider({
      tokenUrl: as.tokenUrl,
      clientId: 'keyed-client',
      privateKey: { key: k.key, kid: k.kid },
      assertionAudience: as.issuer,
      scopes: ['expense:read'],
    });
    expect((await p.getToken()).scopes).toEqual(['expense:read']);
    expect(as.tokenRequests).toBe(2);
  });

  it('a wrong key is invalid_client (401), typed, one request, no key material in the error', async () => {
    const p = new ClientCredentialsTokenProvider({
      tokenUrl: as.tokenUrl,
      clientId: 'keyed-client',
      privateKey: OTHER_EC_PEM,
      privateKeyId: keyed().kid,
      assertionAudience: as.issuer,
    });
    const e = (await p.getToken().catch((x: unknown) => x)) as TokenEndpointError;
    expect(e).toBeInstanceOf(TokenEndpointError);
    expect({ error: e.error, status: e.status, clientId: e.clientId }).toEqual({ error: 'invalid_client', status: 401, clientId: 'keyed-client' });
    expect(as.tokenRequests).toBe(1);
    expect(JSON.stringify(e) + e.message + e.stack).not.toMatch(/PRIVATE KEY|eyJ/);
  });

  it('rotation (secret): the source gives the old secret, then the new one: one retry succeeds, 2 requests', async () => {
    const values = ['submitter-secret-OLD', SUBMITTER.clientSecret];
    let calls = 0;
    const p = new ClientCredentialsTokenProvider({
      tokenUrl: as.tokenUrl,
      clientId: SUBMITTER.clientId,
      clientSecret: () => values[Math.min(calls++, 1)],
      scopes: ['expense:submit'],
    });
    expect((await p.getToken()).scopes).toEqual(['expense:submit']);
    expect([calls, p.requestCount, as.tokenRequests]).toEqual([2, 2, 2]);
    // The function is read for every token request, not cached.
    await p.getToken({ scopes: ['expense:read'] });
    expect([calls, as.tokenRequests]).toEqual([3, 3]);
  });

  it('rotation (key): a stale key, then the current one: one retry succeeds; with client_secret_post too', async () => {
    let calls = 0;
    const p = new ClientCredentialsTokenProvider({
      tokenUrl: as.tokenUrl,
      clientId: 'keyed-client',
      assertionAudience: as.issuer,
      privateKey: async () => (calls++ === 0 ? { key: OTHER_EC_PEM, kid: 'stale' } : { key: keyed().key, kid: keyed().kid }),
      scopes: ['expense:read'],
    });
    expect((await p.getToken()).scopes).toEqual(['expense:read']);
    expect([calls, as.tokenRequests]).toEqual([2, 2]);
    as.tokenRequests = 0;
    let n = 0;
    const post = new ClientCredentialsTokenProvider({
      tokenUrl: as.tokenUrl,
      clientId: SUBMITTER.clientId,
      authMethod: 'client_secret_post',
      clientSecret: () => (n++ ? SUBMITTER.clientSecret : 'stale'),
      scopes: ['expense:read'],
    });
    await post.getToken();
    expect(as.tokenRequests).toBe(2);
  });

  it('a source that stays wrong: exactly one retry, then the typed invalid_client; a static wrong secret is not retried', async () => {
    let calls = 0;
    const p = new ClientCredentialsTokenProvider({ tokenUrl: as.tokenUrl, clientId: SUBMITTER.clientId, clientSecret: () => `wrong-${calls++}` });
    const e = (await p.getToken().catch((x: unknown) => x)) as TokenEndpointError;
    expect([e.name, e.error, e.status]).toEqual(['TokenEndpointError', 'invalid_client', 401]);
    expect([calls, as.tokenRequests]).toEqual([2, 2]);
    expect(e.message).not.toContain('wrong-');
    as.tokenRequests = 0;
    const fixed = new ClientCredentialsTokenProvider({ tokenUrl: as.tokenUrl, clientId: SUBMITTER.clientId, clientSecret: 'wrong-static' });
    await expect(fixed.getToken()).rejects.toMatchObject({ error: 'invalid_client', status: 401 });
    expect(as.tokenRequests).toBe(1);
  });

  it('a source that never answers is bounded by the request timeout: ClientCredentialsError, nothing is sent, no hang', async () => {
    const never = () => new Promise<never>(() => undefined);
    const t0 = Date.now();
    const secret = new ClientCredentialsTokenProvider({ tokenUrl: as.tokenUrl, clientId: SUBMITTER.clientId, clientSecret: never, timeoutMs: 300 });
    await expect(secret.getToken()).rejects.toThrow(new ClientCredentialsError('the clientSecret source gave no answer within 300 ms'));
    const key = new ClientCredentialsTokenProvider({ tokenUrl: as.tokenUrl, clientId: 'keyed-client', privateKey: never, timeoutMs: 300 });
    const e = (await key.getToken().catch((x: unknown) => x)) as Error;
    expect(e).toBeInstanceOf(ClientCredentialsError);
    expect(e.message).toBe('the privateKey source gave no answer within 300 ms');
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(as.tokenRequests).toBe(0);
  });

  it('the dev authorization server itself refuses a replayed assertion (same jti) and one for another audience: 401 invalid_client', async () => {
    const k = keyed();
    const post = (assertion: string) =>
      fetch(as.dev.tokenUrl, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({
          grant_type: 'client_credentials',
          scope: 'expense:read',
          client_id: 'keyed-client',
          client_assertion_type: CLIENT_ASSERTION_TYPE,
          client_assertion: assertion,
        }).toString(),
        signal: AbortSignal.timeout(10_000),
      });
    const good = await createClientAssertion({ clientId: 'keyed-client', audience: as.dev.tokenUrl, key: { key: k.key, kid: k.kid }, lifetimeSeconds: 60 });
    const first = await post(good);
    expect(first.status).toBe(200);
    const replay = await post(good);
    expect(replay.status).toBe(401);
    expect(((await replay.json()) as { error: string }).error).toBe('invalid_client');
    const wrongAud = await createClientAssertion({
      clientId: 'keyed-client',
      audience: 'https://elsewhere.example/token',
      key: { key: k.key, kid: k.kid },
      lifetimeSeconds: 60,
    });
    const other = await post(wrongAud);
    expect(other.status).toBe(401);
    expect(((await other.json()) as { error: string }).error).toBe('invalid_client');
  });

  it('a source that throws or gives nothing is a ClientCredentialsError naming the source, not the value; nothing is sent', async () => {
    const thrower = new ClientCredentialsTokenProvider({
      tokenUrl: as.tokenUrl,
      clientId: SUBMITTER.clientId,
      clientSecret: () => {
        throw new Error('vault down: s3cr3t-in-message');
      },
    });
    const e = (await thrower.getToken().catch((x: unknown) => x)) as Error;
    expect(e).toBeInstanceOf(ClientCredentialsError);
    expect(e.message).toBe('the clientSecret source threw');
    const empty = new ClientCredentialsTokenProvider({ tokenUrl: as.tokenUrl, clientId: SUBMITTER.clientId, clientSecret: async () => '' });
    await expect(empty.getToken()).rejects.toThrow(new ClientCredentialsError('the clientSecret source gave no secret'));
    const badKey = new ClientCredentialsTokenProvider({ tokenUrl: as.tokenUrl, clientId: 'keyed-client', privateKey: () => 'not a pem' });
    await expect(badKey.getToken()).rejects.toThrow(new ClientCredentialsError('privateKey is not a private key (PEM, private JWK or KeyObject)'));
    expect(as.tokenRequests).toBe(0);
  });

  it('token exchange (RFC 8693) with private_key_jwt and a rotated key', async () => {
    const subject = await new ClientCredentialsTokenProvider({
      tokenUrl: as.dev.tokenUrl,
      ...SUBMITTER,
      scopes: ['expense:submit', 'expense:read'],
    }).getAccessToken();
    let calls = 0;
    const ex = new TokenExchangeProvider({
      tokenUrl: as.tokenUrl,
      clientId: 'keyed-client',
      assertionAudience: as.issuer,
      privateKey: () => (calls++ === 0 ? OTHER_EC_PEM : { key: keyed().key, kid: keyed().kid }),
      scopes: ['expense:read'],
    });
    as.tokenRequests = 0;
    const t = await ex.getToken({ subjectToken: subject });
    expect(t.scopes).toEqual(['expense:read']);
    const claims = decodeJwt(t.accessToken);
    expect([claims.client_id, (claims.act as { client_id?: string }).client_id]).toEqual(['keyed-client', 'keyed-client']);
    expect([calls, ex.requestCount, as.tokenRequests]).toEqual([2, 2, 2]);
  });

  it('introspection (RFC 7662) with private_key_jwt: aud defaults to the issuer; a rotated key is read again once', async () => {
    const opaque = await new ClientCredentialsTokenProvider({ tokenUrl: as.dev.tokenUrl, ...OPAQUE, scopes: ['expense:read'] }).getAccessToken();
    let calls = 0;
    const r = resolveOptions({
      issuer: as.issuer,
      audience: AUD,
      introspection: {
        endpoint: as.introspectionUrl,
        clientId: 'keyed-introspector',
        privateKey: () =>
          calls++ === 0
            ? { key: OTHER_EC_PEM, kid: 'stale' }
            : { key: as.dev.clientKeys.get('keyed-introspector')!.key, kid: as.dev.clientKeys.get('keyed-introspector')!.kid },
        cacheMaxTtl: 0,
      },
    }).introspection!;
    expect([r.auth.method, r.auth.audience]).toEqual(['private_key_jwt', as.issuer]);
    expect(JSON.stringify(r)).not.toContain('BEGIN');
    const i = new TokenIntrospector(r);
    const res = await i.introspect(opaque, 'h1');
    expect(res.active).toBe(true);
    expect(res.active && res.claims.client_id).toBe(OPAQUE.clientId);
    expect([calls, i.callCount, as.introspectionRequests]).toEqual([2, 2, 2]);
    // Always the wrong key: one retry, then 503-class introspection_unavailable (the token's fate is unknown).
    const wrong = new TokenIntrospector(
      resolveOptions({
        issuer: as.issuer,
        audience: AUD,
        introspection: { endpoint: as.introspectionUrl, clientId: 'keyed-introspector', privateKey: () => OTHER_EC_PEM },
      }).introspection!,
    );
    as.introspectionRequests = 0;
    const e = (await wrong.introspect(opaque, 'h2').catch((x: unknown) => x)) as AuthError;
    expect([e.reason, e.status]).toEqual(['introspection_unavailable', 503]);
    expect(as.introspectionRequests).toBe(2);
  });
});

describe('client authentication options', () => {
  const tokenUrl = 'https://as.example.com/token';
  const refusals: Array<[Record<string, unknown>, string]> = [
    [{ clientId: 'c' }, 'clientSecret or privateKey is required (exactly one)'],
    [{ clientId: 'c', clientSecret: 's', privateKey: OTHER_EC_PEM }, 'privateKey and clientSecret are exclusive: give exactly one'],
    [{ clientId: 'c', clientSecret: 's', authMethod: 'private_key_jwt' }, 'authMethod private_key_jwt needs privateKey, not clientSecret'],
    [
      { clientId: 'c', privateKey: OTHER_EC_PEM, authMethod: 'client_secret_basic' },
      'authMethod client_secret_basic needs clientSecret; privateKey is used with private_key_jwt',
    ],
    [{ clientId: 'c', privateKey: OTHER_EC_PEM, assertionAlgorithm: 'RS256' }, 'privateKey algorithm RS256 does not fit a ec key (use ES256)'],
    [
      { clientId: 'c', privateKey: createPublicKey(OTHER_EC_PEM).export({ format: 'pem', type: 'spki' }) },
      'privateKey is not a private key (PEM, private JWK or KeyObject)',
    ],
    [{ clientId: 'c', privateKey: createPublicKey(OTHER_EC_PEM) }, 'privateKey must be a private key (got a public or secret key)'],
    [{ clientId: 'c', privateKey: OTHER_EC_PEM, assertionLifetimeSeconds: 0 }, 'assertionLifetimeSeconds must be a number of seconds in (0, 3600]'],
    [
      { clientId: 'c', privateKey: OTHER_EC_PEM, assertionAudience: 'issuer' },
      'assertionAudience must be an absolute URL (the token endpoint or the issuer identifier)',
    ],
    [{ clientId: '', clientSecret: 's' }, 'clientId is required'],
  ];
  it.each(refusals.map(([o, m]) => [m, o] as [string, Record<string, unknown>]))('refused: %s', (message, o) => {
    expect(() => new ClientCredentialsTokenProvider({ tokenUrl, ...o } as never)).toThrow(new ClientCredentialsError(message));
    expect(() => new TokenExchangeProvider({ tokenUrl, ...o } as never)).toThrow(new ClientCredentialsError(message));
  });

  it('introspection options name the option in A2AAuthConfigError', () => {
    const base = { issuer: 'https://as.example.com', audience: 'https://rs.example.com' };
    expect(() => resolveOptions({ ...base, introspection: { clientId: 'rs', clientSecret: 's', privateKey: OTHER_EC_PEM } })).toThrow(
      new A2AAuthConfigError('introspection.privateKey', 'and clientSecret are exclusive: give exactly one'),
    );
    expect(() => resolveOptions({ ...base, introspection: { clientId: 'rs', privateKey: 'junk' } })).toThrow(
      new A2AAuthConfigError('introspection.privateKey', 'is not a private key (PEM, private JWK or KeyObject)'),
    );
  });

  it('a provider never shows its key or secret when inspected', () => {
    const p = new ClientCredentialsTokenProvider({ tokenUrl, clientId: 'c', privateKey: OTHER_EC_PEM });
    expect(JSON.stringify(p)).toBe('{"tokenUrl":"https://as.example.com/token","clientId":"c"}');
    expect(Object.values(p).map(String).join(' ')).not.toContain('PRIVATE KEY');
  });
});
