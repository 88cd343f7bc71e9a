import { execFile } from 'node:child_process';
import { createHash, createPrivateKey, createPublicKey, randomUUID, sign, type KeyObject } from 'node:crypto';
import { promisify } from 'node:util';
import type { AuthAuditEvent } from 'nestjs-a2a-auth';
import { generateTestKey, type TestKey } from './fixtures/keys';
import { JwksServer } from './fixtures/jwks-server';
import { baseClaims } from './fixtures/tokens';
import { CapturingLogger, PLATFORMS, startTestApp, type TestApp } from './fixtures/test-app';
import { GuardTestController, TEST_SCOPES } from './fixtures/test-controllers';
import { expectedWire, sendRaw, ZOO_AUD } from './fixtures/zoo';

// Keys that cannot be trusted are refused when the key set is loaded, with one logged reason per key:
// - an RSA key with e = 1 lets anyone "sign" (LadybirdBrowser/ladybird#11910): the signature is the encoded message;
// - RSA keys under 2048 bits (RFC 7518 §3.3).
// A token naming a refused key gets 401 unknown_kid, as if the key were not published.

const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
// RFC 8017 §9.2 note 1: the DER DigestInfo prefix of SHA-256.
const SHA256_DIGEST_INFO = Buffer.from('3031300d060960864801650304020105000420', 'hex');

/** EMSA-PKCS1-v1_5 (RFC 8017 §9.2) of SHA-256(input), `k` bytes: with e = 1 this *is* a valid RS256 signature. */
function forgedE1Signature(input: string, k: number): Buffer {
  const t = Buffer.concat([SHA256_DIGEST_INFO, createHash('sha256').update(input).digest()]);
  return Buffer.concat([Buffer.from([0x00, 0x01]), Buffer.alloc(k - t.length - 3, 0xff), Buffer.from([0x00]), t]);
}

/** A hand-built RS256 token (jose refuses to sign with RSA keys under 2048 bits, so Node's crypto signs). */
function rs256Token(claims: Record<string, unknown>, kid: string | undefined, signer: (input: string) => Buffer): string {
  const input = `${b64({ alg: 'RS256', typ: 'at+jwt', ...(kid === undefined ? {} : { kid }) })}.${b64(claims)}`;
  return `${input}.${signer(input).toString('base64url')}`;
}

async function opensslRsa(bits: number): Promise<KeyObject> {
  const { stdout } = await promisify(execFile)('openssl', ['genpkey', '-algorithm', 'RSA', '-pkeyopt', `rsa_keygen_bits:${bits}`], {
    encoding: 'utf8',
    timeout: 30_000,
  });
  return createPrivateKey(stdout);
}
const publicJwk = (priv: KeyObject, kid: string): Record<string, unknown> => ({ ...createPublicKey(priv).export({ format: 'jwk' }), kid, use: 'sig' });

describe.each(PLATFORMS)('untrusted keys are refused at load on %s', (platform) => {
  let s: JwksServer;
  let app: TestApp;
  let good: TestKey;
  let rsa512: KeyObject;
  let rsa1024: KeyObject;
  const logger = new CapturingLogger();
  const events: AuthAuditEvent[] = [];
  const UNKNOWN = expectedWire('unknown_kid');

  beforeAll(async () => {
    good = generateTestKey('RS256', 'good');
    [rsa512, rsa1024] = await Promise.all([opensslRsa(512), opensslRsa(1024)]);
    s = await new JwksServer().start();
    // e = 1 on a genuine 2048-bit modulus: only the exponent is wrong.
    s.keys = [good.publicJwk, { ...good.publicJwk, kid: 'e1', e: 'AQ' }, publicJwk(rsa1024, 'rsa1024'), publicJwk(rsa512, 'rsa512')];
    app = await startTestApp({
      platform,
      logger,
      auth: {
        issuer: s.issuer,
        jwksUri: s.jwksUri,
        audience: ZOO_AUD,
        resource: ZOO_AUD,
        realm: 'zoo',
        scopes: TEST_SCOPES,
        auditSink: { wantsSuccesses: true, emit: (e: AuthAuditEvent) => events.push(e) },
      },
      controllers: [GuardTestController],
    });
  });
  afterAll(async () => {
    await app?.close();
    await s?.stop();
  });

  async function get(tok: string) {
    events.length = 0;
    const res = await sendRaw(app.url, { path: '/t/me', headers: [['Authorization', `Bearer ${tok}`]] });
    return { res, events: [...events] };
  }
  function expectUnknownKid(r: Awaited<ReturnType<typeof get>>, kid: string) {
    expect(r.res.status).toBe(UNKNOWN.status);
    expect(r.res.headers['www-authenticate']).toBe(UNKNOWN.wwwAuthenticate);
    expect(r.res.body).toEqual(UNKNOWN.body);
    expect(r.events).toHaveLength(1);
    expect(r.events[0]).toMatchObject({ outcome: 'failure', reason: 'unknown_kid', status: 401, kid });
  }

  it('the good key of the same JWKS verifies', async () => {
    const tok = rs256Token(baseClaims(s.issuer, ZOO_AUD), 'good', (input) => sign('sha256', Buffer.from(input), good.privateKey));
    const r = await get(tok);
    expect(r.res.status).toBe(200);
    expect(r.res.body).toEqual({ clientId: 'client-a', subject: 'client-a', issuer: s.issuer, scopes: ['expense:submit'] });
  });

  it('a token forged for an RSA key with e = 1 (no private key involved) gets 401 unknown_kid', async () => {
    const k = Buffer.from(good.publicJwk.n as string, 'base64url').length;
    const forged = rs256Token(baseClaims(s.issuer, ZOO_AUD, { sub: 'attacker', client_id: 'attacker' }), 'e1', (input) => forgedE1Signature(input, k));
    expectUnknownKid(await get(forged), 'e1');
  });

  it.each([
    ['1024', 'rsa1024'],
    ['512', 'rsa512'],
  ])('a token signed by a real %s-bit RSA key gets 401 unknown_kid (RFC 7518 §3.3: at least 2048 bits)', async (_bits, kid) => {
    const priv = kid === 'rsa1024' ? rsa1024 : rsa512;
    const tok = rs256Token(baseClaims(s.issuer, ZOO_AUD), kid, (input) => sign('sha256', Buffer.from(input), priv));
    expectUnknownKid(await get(tok), kid);
  });

  it('each refused key is logged once, with its kid and reason and no key material', async () => {
    // A later refetch (an unknown kid) sees the same refused keys and does not log them again.
    await get(rs256Token(baseClaims(s.issuer, ZOO_AUD), randomUUID(), () => Buffer.alloc(256, 1)));
    const refused = logger.lines.filter((l) => l.includes('refused'));
    expect(refused).toHaveLength(3);
    expect(refused.every((l) => l.startsWith('warn '))).toBe(true);
    expect(refused.find((l) => l.includes('"e1"'))).toMatch(/public exponent/);
    expect(refused.find((l) => l.includes('"rsa1024"'))).toMatch(/1024 bits.*2048/);
    expect(refused.find((l) => l.includes('"rsa512"'))).toMatch(/512 bits.*2048/);
    const material = [good.publicJwk.n, publicJwk(rsa1024, 'x').n, publicJwk(rsa512, 'x').n].map((n) => (n as string).slice(0, 24));
    for (const line of logger.lines) for (const m of material) expect(line).not.toContain(m);
    expect(logger.lines.some((l) => l.includes('"good"'))).toBe(false);
  });
});
