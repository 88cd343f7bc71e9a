import { randomUUID } from 'node:crypto';
import request from 'supertest';
import { AgentCard } from '@a2a-js/sdk';
import { DefaultAgentCardResolver } from '@a2a-js/sdk/client';
import { verifyAgentCard } from 'nestjs-a2a-auth';
import { V03_ONLY_KEYS, V1_ONLY_KEYS } from 'nestjs-a2a-auth/core';
import { generateTestKey, type TestKey } from './fixtures/keys';
import { JwksServer } from './fixtures/jwks-server';
import { mintToken } from './fixtures/tokens';
import { CapturingLogger, PLATFORMS } from './fixtures/test-app';
import { AS, CARD_SCOPES, cardModule, cardOptions, expectedCard, expectedV03Card, freePort, startCardApp, type CardApp } from './fixtures/card-app';

const CARD = '/.well-known/agent-card.json';
const ETAG = /^"[A-Za-z0-9_-]{27}"$/;
const CORS = {
  'access-control-allow-origin': '*',
  'access-control-allow-methods': 'GET, HEAD, OPTIONS',
  'access-control-allow-headers': 'A2A-Version, If-None-Match, Content-Type',
  'access-control-expose-headers': 'ETag, Last-Modified',
};

/** Asserts the SDK reads the card back unchanged (AgentCard.fromJSON → toJSON). */
function expectSdkRoundTrip(card: unknown): void {
  expect(AgentCard.toJSON(AgentCard.fromJSON(card as never))).toStrictEqual(card);
}

describe.each(PLATFORMS)('Agent Card on %s', (platform) => {
  let jwks: JwksServer;
  let key: TestKey;
  let t: CardApp;
  let base: string;
  let logger: CapturingLogger;

  beforeAll(async () => {
    jwks = await new JwksServer().start();
    key = generateTestKey('RS256');
    jwks.keys = [key.publicJwk];
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    logger = new CapturingLogger();
    t = await startCardApp(platform, port, cardModule(cardOptions(base, jwks.issuer, jwks.jwksUri)), logger);
  });
  afterAll(async () => {
    await t?.close();
    await jwks?.stop();
  });

  const token = (scope = 'expense:read') => mintToken({ key, issuer: jwks.issuer, audience: `${base}/expense-agent`, claims: { scope } });

  it('serves the exact v1.0 card with its headers', async () => {
    const res = await request(base).get(CARD);
    expect(res.status).toBe(200);
    expect(res.body).toStrictEqual(expectedCard(base));
    expect(res.headers['content-type']).toBe('application/json');
    expect(res.headers['cache-control']).toBe('public, max-age=120');
    expect(res.headers.etag).toMatch(ETAG);
    expect(new Date(res.headers['last-modified']).toUTCString()).toBe(res.headers['last-modified']);
    expect(res.headers.vary).toBe('A2A-Version');
    expect(res.headers).toMatchObject(CORS);
    expect(res.headers['www-authenticate']).toBeUndefined();
    // Built once at startup: the same bytes and validators on every request.
    const again = await request(base).get(CARD);
    expect(again.text).toBe(res.text);
    expect(again.headers.etag).toBe(res.headers.etag);
    expect(again.headers['last-modified']).toBe(res.headers['last-modified']);
  });

  it('the served v1.0 card and extended card round-trip unchanged through the official SDK', async () => {
    const pub = await request(base).get(CARD);
    expectSdkRoundTrip(pub.body);
    const ext = await request(base)
      .get('/extendedAgentCard')
      .set('Authorization', `Bearer ${await token()}`);
    expect(ext.status).toBe(200);
    expectSdkRoundTrip(ext.body);
  });

  it("the SDK client's DefaultAgentCardResolver reads our tokenUrl and scopes", async () => {
    const card = await new DefaultAgentCardResolver().resolve(base);
    const scheme = card.securitySchemes.oauth2?.scheme;
    expect(scheme?.$case).toBe('oauth2SecurityScheme');
    const oauth = scheme?.$case === 'oauth2SecurityScheme' ? scheme.value : undefined;
    expect(oauth?.oauth2MetadataUrl).toBe(AS.metadataUrl);
    const flow = oauth?.flows?.flow;
    expect(flow?.$case).toBe('clientCredentials');
    expect(flow?.$case === 'clientCredentials' ? flow.value.tokenUrl : undefined).toBe(AS.tokenUrl);
    expect(flow?.$case === 'clientCredentials' ? flow.value.scopes : undefined).toStrictEqual(CARD_SCOPES);
    const submit = card.skills.find((s) => s.id === 'submit-expense');
    expect(submit?.securityRequirements[0].schemes.oauth2.list).toStrictEqual(['expense:submit']);
    const policy = card.skills.find((s) => s.id === 'expense-policy');
    expect(policy?.securityRequirements).toHaveLength(1);
    expect(policy?.securityRequirements[0].schemes).toStrictEqual({});
    expect(card.capabilities?.extendedAgentCard).toBe(true);
    expect(card.skills.map((s) => s.id)).not.toContain('audit-report');
  });

  it('A2A-Version: 0.3 selects the exact v0.3 view, never mixing fields; Vary is set', async () => {
    const res = await request(base).get(CARD).set('A2A-Version', '0.3');
    expect(res.status).toBe(200);
    expect(res.body).toStrictEqual(expectedV03Card(base));
    expect(res.headers.vary).toBe('A2A-Version');
    expect(res.headers['content-type']).toBe('application/json');
    const v1 = await request(base).get(CARD).set('A2A-Version', '1.0');
    expect(v1.body).toStrictEqual(expectedCard(base));
    expect(res.headers.etag).not.toBe(v1.headers.etag);
    for (const k of V1_ONLY_KEYS) expect(Object.keys(res.body)).not.toContain(k);
    for (const k of V03_ONLY_KEYS) expect(Object.keys(v1.body)).not.toContain(k);
    expect(Object.keys(res.body.capabilities)).not.toContain('extendedAgentCard');
    for (const s of res.body.skills) expect(Object.keys(s)).not.toContain('securityRequirements');
    for (const s of v1.body.skills) expect(Object.keys(s)).not.toContain('security');
    for (const s of Object.values(v1.body.securitySchemes) as object[]) expect(Object.keys(s)).not.toContain('type');
    // A 0.3.x patch version also selects the view.
    const patch = await request(base).get(CARD).set('A2A-Version', '0.3.0');
    expect(patch.text).toBe(res.text);
  });

  it('serves the legacy /.well-known/agent.json with the same card', async () => {
    const [a, b] = await Promise.all([request(base).get(CARD), request(base).get('/.well-known/agent.json')]);
    expect(b.status).toBe(200);
    expect(b.text).toBe(a.text);
    expect(b.headers.etag).toBe(a.headers.etag);
    expect(b.headers).toMatchObject(CORS);
  });

  it('304 on a matching If-None-Match (per view), with validators and no body', async () => {
    const first = await request(base).get(CARD);
    const res = await request(base).get(CARD).set('If-None-Match', first.headers.etag);
    expect(res.status).toBe(304);
    expect(res.text).toBe('');
    expect(res.headers.etag).toBe(first.headers.etag);
    expect(res.headers.vary).toBe('A2A-Version');
    expect(res.headers['cache-control']).toBe('public, max-age=120');
    expect(res.headers['last-modified']).toBe(first.headers['last-modified']);
    // Weak comparison and lists match too (RFC 9110 §13.1.2).
    expect((await request(base).get(CARD).set('If-None-Match', `"x", W/${first.headers.etag}`)).status).toBe(304);
    // The v1.0 ETag does not validate the v0.3 view.
    const v03 = await request(base).get(CARD).set('A2A-Version', '0.3').set('If-None-Match', first.headers.etag);
    expect(v03.status).toBe(200);
    expect(v03.body.protocolVersion).toBe('0.3.0');
    expect((await request(base).get(CARD).set('If-None-Match', '"stale"')).status).toBe(200);
  });

  it('HEAD has the headers and no body', async () => {
    const get = await request(base).get(CARD);
    const res = await request(base).head(CARD);
    expect(res.status).toBe(200);
    expect(res.headers.etag).toBe(get.headers.etag);
    expect(res.headers['content-type']).toBe('application/json');
    expect(res.headers).toMatchObject(CORS);
    expect(res.text ?? '').toBe('');
  });

  it('answers the CORS preflight on the card paths', async () => {
    for (const path of [CARD, '/.well-known/agent.json']) {
      const res = await request(base)
        .options(path)
        .set('Origin', 'https://app.example')
        .set('Access-Control-Request-Method', 'GET')
        .set('Access-Control-Request-Headers', 'a2a-version');
      expect(res.status).toBe(204);
      expect(res.headers).toMatchObject({ ...CORS, 'access-control-max-age': '86400', vary: 'A2A-Version' });
      expect(res.text ?? '').toBe('');
    }
  });

  it('sends no CORS header on other routes (protected, public, the extended card)', async () => {
    const noToken = await request(base).get('/card-fx/expenses/plain').set('Origin', 'https://app.example');
    expect(noToken.status).toBe(401);
    expect(noToken.headers['access-control-allow-origin']).toBeUndefined();
    const withToken = await request(base)
      .get('/card-fx/expenses/plain')
      .set('Origin', 'https://app.example')
      .set('Authorization', `Bearer ${await token()}`);
    expect(withToken.status).toBe(200);
    expect(withToken.headers['access-control-allow-origin']).toBeUndefined();
    const pub = await request(base).get('/card-fx/public').set('Origin', 'https://app.example');
    expect(pub.status).toBe(200);
    expect(pub.headers['access-control-allow-origin']).toBeUndefined();
    const ext = await request(base)
      .get('/extendedAgentCard')
      .set('Origin', 'https://app.example')
      .set('Authorization', `Bearer ${await token()}`);
    expect(ext.status).toBe(200);
    expect(ext.headers['access-control-allow-origin']).toBeUndefined();
  });

  it('logs every card request as an event with the client address', async () => {
    const ua = `card-test-${randomUUID()}`;
    await request(base).get(CARD).set('User-Agent', ua).set('A2A-Version', '0.3');
    const line = logger.lines.find((l) => l.includes(ua));
    expect(line).toBeDefined();
    const event = JSON.parse(line!.slice(line!.indexOf('{'), line!.lastIndexOf('}') + 1));
    expect(event).toMatchObject({ type: 'a2a.card.request', peer: '127.0.0.1', view: 'v03', status: 200, userAgent: ua });
    expect(typeof event.time).toBe('string');
  });

  it('logs the unused catalog scopes at boot', () => {
    expect(logger.lines.some((l) => l.includes('scopes in the catalog that no handler requires: expense:admin'))).toBe(true);
  });

  it('odd requests to the card endpoints never give a 5xx', async () => {
    const odd: Array<[string, string, Record<string, string>]> = [
      ['GET', CARD, { 'A2A-Version': 'x'.repeat(4000) }],
      ['GET', CARD, { 'A2A-Version': '0.3, 1.0' }],
      ['GET', CARD, { 'If-None-Match': `${'"a",'.repeat(2000)}"b"` }],
      ['GET', `${CARD}?q=%ZZ&x[y]=1`, {}],
      ['GET', '/.well-known/oauth-protected-resource/%ZZ', {}],
      ['GET', '/.well-known/oauth-protected-resource/a/b/c/d/e', {}],
      ['GET', '/extendedAgentCard', { Authorization: `Bearer ${'a'.repeat(9000)}` }],
      ['GET', '/extendedAgentCard', { Authorization: 'Basic Zm9vOmJhcg==' }],
      ['POST', CARD, { 'Content-Type': 'application/json' }],
      ['DELETE', '/.well-known/agent.json', {}],
    ];
    for (const [method, path, headers] of odd) {
      const res = await fetch(`${base}${path}`, { method, headers, ...(method === 'POST' ? { body: '{' } : {}) });
      await res.arrayBuffer();
      expect([method, path, res.status < 500]).toStrictEqual([method, path, true]);
    }
  });

  describe('RFC 9728 protected resource metadata', () => {
    const doc = () => ({
      resource: `${base}/expense-agent`,
      authorization_servers: [jwks.issuer],
      scopes_supported: Object.keys(CARD_SCOPES),
      bearer_methods_supported: ['header'],
      resource_name: 'Card Fixture Agent',
      resource_documentation: 'https://example.com/docs/agent',
    });

    it('every 401 challenge carries resource_metadata, and that URL serves the document', async () => {
      for (const [path, auth] of [
        ['/card-fx/expenses/plain', undefined],
        ['/extendedAgentCard', undefined],
        ['/card-fx/expenses/plain', 'Bearer not-a-jwt'],
      ] as const) {
        const r = request(base).get(path);
        const res = await (auth ? r.set('Authorization', auth) : r);
        expect(res.status).toBe(401);
        const m = /resource_metadata="([^"]+)"/.exec(res.headers['www-authenticate']);
        expect(m?.[1]).toBe(`${base}/.well-known/oauth-protected-resource/expense-agent`);
        const meta = await fetch(m![1]);
        expect(meta.status).toBe(200);
        expect(meta.headers.get('content-type')).toBe('application/json');
        expect(await meta.json()).toStrictEqual(doc());
      }
    });

    it('is also served at the root path and 404s for other resource paths', async () => {
      const root = await request(base).get('/.well-known/oauth-protected-resource');
      expect(root.status).toBe(200);
      expect(root.body).toStrictEqual(doc());
      expect(root.headers['cache-control']).toBe('public, max-age=120');
      const other = await request(base).get('/.well-known/oauth-protected-resource/other');
      expect(other.status).toBe(404);
      const etag = root.headers.etag;
      expect((await request(base).get('/.well-known/oauth-protected-resource/expense-agent').set('If-None-Match', etag)).status).toBe(304);
    });
  });

  describe('extended card', () => {
    it('401 with WWW-Authenticate without a token', async () => {
      const res = await request(base).get('/extendedAgentCard');
      expect(res.status).toBe(401);
      expect(res.headers['www-authenticate']).toBe(
        `Bearer realm="Card Fixture Agent", resource_metadata="${base}/.well-known/oauth-protected-resource/expense-agent"`,
      );
      expect(res.body).toStrictEqual({
        error: 'invalid_request',
        error_description: 'Authentication required: send an OAuth 2.0 bearer token in the Authorization header',
      });
      expect(JSON.stringify(res.body)).not.toContain('audit-report');
    });

    it('401 invalid_token for a token from an untrusted issuer', async () => {
      const bad = await mintToken({ key, issuer: 'https://evil.example', audience: `${base}/expense-agent` });
      const res = await request(base).get('/extendedAgentCard').set('Authorization', `Bearer ${bad}`);
      expect(res.status).toBe(401);
      expect(res.headers['www-authenticate']).toContain('error="invalid_token"');
      expect(res.text).not.toContain('audit-report');
    });

    it('serves the exact extended card to any authenticated caller, the extendedOnly skill only with its scope', async () => {
      const res = await request(base)
        .get('/extendedAgentCard')
        .set('Authorization', `Bearer ${await token('expense:submit expense:audit')}`);
      expect(res.status).toBe(200);
      expect(res.body).toStrictEqual(expectedCard(base, true));
      const without = await request(base)
        .get('/extendedAgentCard')
        .set('Authorization', `Bearer ${await token('expense:submit')}`);
      expect(without.status).toBe(200);
      expect(without.body).toStrictEqual(expectedCard(base));
      expect(res.headers['content-type']).toBe('application/json');
      expect(res.headers['cache-control']).toBe('private, no-store');
      expect(res.headers.vary).toBe('A2A-Version');
      const auditor = await token('expense:audit');
      const v03 = await request(base).get('/extendedAgentCard').set('A2A-Version', '0.3').set('Authorization', `Bearer ${auditor}`);
      expect(v03.status).toBe(200);
      expect(v03.body).toStrictEqual(expectedV03Card(base, true));
      // A2A v1.0 §3.6.1: the version may come as a request parameter instead of the header; the header wins.
      const q03 = await request(base).get('/extendedAgentCard?A2A-Version=0.3').set('Authorization', `Bearer ${auditor}`);
      expect(q03.body).toStrictEqual(expectedV03Card(base, true));
      const header = await request(base).get('/extendedAgentCard?A2A-Version=0.3').set('A2A-Version', '1.0').set('Authorization', `Bearer ${auditor}`);
      expect(header.body).toStrictEqual(expectedCard(base, true));
    });
  });
});

describe.each(PLATFORMS)('extended card off (card.extendedCard false) on %s', (platform) => {
  let jwks: JwksServer;
  let key: TestKey;
  let t: CardApp;
  let base: string;
  beforeAll(async () => {
    jwks = await new JwksServer().start();
    key = generateTestKey('RS256');
    jwks.keys = [key.publicJwk];
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    t = await startCardApp(platform, port, cardModule(cardOptions(base, jwks.issuer, jwks.jwksUri, {}, { extendedCard: false })));
  });
  afterAll(async () => {
    await t?.close();
    await jwks?.stop();
  });

  // A2A v1.0 §3.3.4 / §13.3: Get Extended Agent Card without the capability is UnsupportedOperationError, which the
  // HTTP+JSON binding answers as 400 with google.rpc ErrorInfo reason UNSUPPORTED_OPERATION, not as an unknown route.
  it('an authenticated caller gets 400 UnsupportedOperationError in the HTTP+JSON error shape, not 404', async () => {
    const tok = await mintToken({ key, issuer: jwks.issuer, audience: `${base}/expense-agent`, claims: { scope: 'expense:read' } });
    for (const version of ['1.0', '0.3', undefined]) {
      let r = request(base).get('/extendedAgentCard').set('Authorization', `Bearer ${tok}`);
      if (version) r = r.set('A2A-Version', version);
      const res = await r;
      expect(res.status).toBe(400);
      expect(res.headers['content-type']).toBe('application/a2a+json');
      expect(res.headers['cache-control']).toBe('no-store');
      expect(res.headers['www-authenticate']).toBeUndefined();
      expect(JSON.parse(res.text)).toStrictEqual({
        error: {
          code: 400,
          status: 'FAILED_PRECONDITION',
          message: 'This agent serves no authenticated extended Agent Card',
          details: [{ '@type': 'type.googleapis.com/google.rpc.ErrorInfo', reason: 'UNSUPPORTED_OPERATION', domain: 'a2a-protocol.org' }],
        },
      });
    }
    const card = await request(base).get(CARD);
    expect(card.body.capabilities.extendedAgentCard).toBe(false);
  });

  it('without a token it is still the 401 challenge (authenticated callers only)', async () => {
    const res = await request(base).get('/extendedAgentCard');
    expect(res.status).toBe(401);
    expect(res.headers['www-authenticate']).toBe(
      `Bearer realm="Card Fixture Agent", resource_metadata="${base}/.well-known/oauth-protected-resource/expense-agent"`,
    );
  });
});

describe.each(PLATFORMS)('card throttling on %s', (platform) => {
  let jwks: JwksServer;
  const apps: CardApp[] = [];
  beforeAll(async () => {
    jwks = await new JwksServer().start();
  });
  afterAll(async () => {
    for (const a of apps) await a.close();
    await jwks?.stop();
  });

  async function start(trustedProxyHops: number, ipv6Prefix?: number): Promise<string> {
    const port = await freePort();
    const base = `http://127.0.0.1:${port}`;
    const app = await startCardApp(
      platform,
      port,
      cardModule(cardOptions(base, jwks.issuer, jwks.jwksUri, {}, { throttle: { limit: 3, ttl: 60, trustedProxyHops, ipv6Prefix } })),
    );
    apps.push(app);
    return base;
  }

  function expect429(res: request.Response): void {
    expect(res.status).toBe(429);
    expect(res.headers['retry-after']).toMatch(/^[1-9]\d*$/);
    expect(Number(res.headers['retry-after'])).toBeLessThanOrEqual(60);
    expect(res.headers['content-type']).toMatch(/^application\/json/);
    expect(res.headers['access-control-allow-origin']).toBe('*'); // a browser can read the 429 and its Retry-After
    expect(res.body).toStrictEqual({ error: 'rate_limited', error_description: 'Too many requests for this document; retry later' });
  }

  it('a client rotating X-Forwarded-For is still limited (trustedProxyHops 0)', async () => {
    const base = await start(0);
    const statuses: number[] = [];
    let last!: request.Response;
    for (let i = 0; i < 5; i++) {
      last = await request(base)
        .get(CARD)
        .set('X-Forwarded-For', `203.0.113.${i + 1}`);
      statuses.push(last.status);
    }
    expect(statuses).toStrictEqual([200, 200, 200, 429, 429]);
    expect429(last);
    // One bucket per client across the card endpoints: the metadata is limited too.
    expect429(await request(base).get('/.well-known/oauth-protected-resource').set('X-Forwarded-For', '198.51.100.7'));
  });

  it('two clients behind a trusted proxy get separate buckets; spoofed left-most entries do not help (trustedProxyHops 1)', async () => {
    const base = await start(1);
    // The proxy (our 127.0.0.1 peer) appends the address it saw, so the right-most X-Forwarded-For entry is the client.
    const a = (spoof?: string) =>
      request(base)
        .get(CARD)
        .set('X-Forwarded-For', spoof ? `${spoof}, 10.0.0.1` : '10.0.0.1');
    const b = () => request(base).get(CARD).set('X-Forwarded-For', '10.0.0.2');
    expect([(await a()).status, (await a()).status, (await a()).status]).toStrictEqual([200, 200, 200]);
    expect429(await a());
    expect429(await a('192.0.2.99')); // the client rotates what it sends; the proxy still appends 10.0.0.1
    expect429(await a('192.0.2.100'));
    expect((await b()).status).toBe(200);
    expect((await b()).status).toBe(200);
  });

  // A host owning an IPv6 /64 rotated its address on every request and was never limited (see docs/security.md).
  it('IPv6 clients are limited per /64: addresses rotating inside one /64 hit 429, another /64 does not (trustedProxyHops 1)', async () => {
    const base = await start(1);
    const get = (xff: string) => request(base).get(CARD).set('X-Forwarded-For', xff);
    // The dotted tail is not an IPv4-mapped address: it stays in the /64 and never becomes the IPv4 client 192.0.2.10.
    const rotating = ['2001:db8:1:2::1', '2001:db8:1:2::2', '2001:db8:1:2::192.0.2.10', '2001:DB8:1:2::abcd', '[2001:db8:1:2::5]:443'];
    const statuses: number[] = [];
    let last!: request.Response;
    for (const a of rotating) {
      last = await get(a);
      statuses.push(last.status);
    }
    expect(statuses).toStrictEqual([200, 200, 200, 429, 429]);
    expect429(last);
    expect429(await get('fe80::1%eth0, 2001:db8:1:2::99')); // zone ids and spoofed left-most entries change nothing
    expect((await get('2001:db8:1:3::1')).status).toBe(200); // the next /64 is another client
    expect((await get('2001:db8:1:3::2')).status).toBe(200);
  });

  it('an IPv4-mapped IPv6 address is the IPv4 client; ports are stripped; garbage counts as the proxy itself (trustedProxyHops 1)', async () => {
    const base = await start(1);
    const get = (xff: string) => request(base).get(CARD).set('X-Forwarded-For', xff);
    expect([(await get('192.0.2.10')).status, (await get('::ffff:192.0.2.10')).status, (await get('192.0.2.10:51234')).status]).toStrictEqual([200, 200, 200]);
    expect429(await get('[::ffff:c000:20a]:8080')); // 192.0.2.10 again, hex-spelled and with a port
    expect((await get('192.0.2.11')).status).toBe(200);
    // An entry that is no address (`unknown`, a host name, garbage) gives the socket peer, never a fresh bucket each time.
    const garbage = ['unknown', 'not-an-ip', '999.1.1.1', 'fe80::zz'];
    const g: number[] = [];
    for (const x of garbage) g.push((await get(x)).status);
    expect(g).toStrictEqual([200, 200, 200, 429]);
    expect((await request(base).get(CARD)).status).toBe(429); // the peer's own bucket, which the garbage used
  });

  it('card.throttle.ipv6Prefix: 128 limits each IPv6 address on its own', async () => {
    const base = await start(1, 128);
    const get = (xff: string) => request(base).get(CARD).set('X-Forwarded-For', xff);
    const s: number[] = [];
    for (let i = 1; i <= 4; i++) s.push((await get(`2001:db8:1:2::${i}`)).status);
    expect(s).toStrictEqual([200, 200, 200, 200]);
    for (let i = 0; i < 3; i++) await get('2001:db8:1:2::1');
    expect429(await get('2001:db8:1:2::1'));
  });
});

describe.each(PLATFORMS)('signed card, v0.3 by default, no legacy path, on %s', (platform) => {
  let jwks: JwksServer;
  let t: CardApp;
  let signing: TestKey;
  let base: string;

  beforeAll(async () => {
    jwks = await new JwksServer().start();
    signing = generateTestKey('ES256', 'card-key-1');
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    const card = {
      defaultVersion: '0.3' as const,
      legacyPath: false,
      signing: { privateKey: signing.privateKey, kid: 'card-key-1', alg: 'ES256', jku: 'https://example.com/.well-known/jwks.json' },
    };
    t = await startCardApp(platform, port, cardModule(cardOptions(base, jwks.issuer, jwks.jwksUri, {}, card)));
  });
  afterAll(async () => {
    await t?.close();
    await jwks?.stop();
  });

  const header = (card: { signatures: Array<{ protected: string }> }) => JSON.parse(Buffer.from(card.signatures[0].protected, 'base64url').toString('utf8'));

  it('serves the v0.3 view without an A2A-Version header when configured, v1.0 on request', async () => {
    const res = await request(base).get(CARD);
    expect(res.status).toBe(200);
    const { signatures, ...rest } = res.body;
    expect(rest).toStrictEqual(expectedV03Card(base));
    expect(signatures).toHaveLength(1);
    const v1 = await request(base).get(CARD).set('A2A-Version', '1.0');
    expect(v1.body.supportedInterfaces).toBeDefined();
    expect(v1.body.url).toBeUndefined();
  });

  it('legacyPath false: no /.well-known/agent.json, nor its preflight', async () => {
    expect((await request(base).get('/.well-known/agent.json')).status).toBe(404);
    expect(
      (await request(base).options('/.well-known/agent.json').set('Origin', 'https://app.example').set('Access-Control-Request-Method', 'GET')).status,
    ).toBe(404);
    expect((await request(base).options(CARD).set('Origin', 'https://app.example').set('Access-Control-Request-Method', 'GET')).status).toBe(204);
  });

  it('signatures[0] has alg, kid, typ JOSE and jku; the served JSON verifies; tampering breaks it', async () => {
    const res = await request(base).get(CARD).set('A2A-Version', '1.0');
    const card = res.body;
    expect(card.signatures).toHaveLength(1);
    expect(Object.keys(card.signatures[0]).sort()).toStrictEqual(['protected', 'signature']);
    expect(header(card)).toStrictEqual({ alg: 'ES256', kid: 'card-key-1', typ: 'JOSE', jku: 'https://example.com/.well-known/jwks.json' });
    const { signatures: _s, ...unsigned } = card;
    expect(unsigned).toStrictEqual(expectedCard(base));
    expectSdkRoundTrip(card);
    const getKey = (h: { kid?: string }) => {
      if (h.kid !== 'card-key-1') throw new Error('unknown kid');
      return signing.publicKey;
    };
    await expect(verifyAgentCard(card, getKey)).resolves.toMatchObject({ alg: 'ES256', kid: 'card-key-1', typ: 'JOSE' });
    const tampered = JSON.parse(res.text);
    tampered.securitySchemes.oauth2.oauth2SecurityScheme.flows.clientCredentials.tokenUrl = 'https://evil.example/token';
    await expect(verifyAgentCard(tampered, getKey)).rejects.toThrow(/no card signature verifies/);
    const dropped = JSON.parse(res.text);
    delete dropped.securitySchemes.bearer;
    await expect(verifyAgentCard(dropped, getKey)).rejects.toThrow(/no card signature verifies/);
    // The v0.3 view is signed on its own.
    const v03 = (await request(base).get(CARD)).body;
    expect(header(v03)).toStrictEqual(header(card));
    await expect(verifyAgentCard(v03, getKey)).resolves.toBeDefined();
  });
});
