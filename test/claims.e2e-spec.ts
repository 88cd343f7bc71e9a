import type { A2AAuthModuleOptions, AuthAuditEvent } from 'nestjs-a2a-auth';
import { TestIssuer } from './fixtures/auth-harness';
import { PLATFORMS, type TestApp } from './fixtures/test-app';
import { expectedWire, sendRaw, ZOO_AUD, zooApp } from './fixtures/zoo';

// Scope claim formats, maxTokenAge, the RFC 9068 strict profile and custom validators, end to end.
const now = () => Math.floor(Date.now() / 1000);

describe.each(PLATFORMS)('claims on %s', (platform) => {
  let idp: TestIssuer;
  const apps: Record<string, TestApp> = {};
  const events: AuthAuditEvent[] = [];
  const configs: Record<string, Partial<A2AAuthModuleOptions>> = {
    plain: {},
    permissions: { scopeClaims: ['scope', 'scp', 'permissions'] },
    maxAge: { maxTokenAge: 60 },
    strict: { strict: true },
    validators: {
      claimValidators: [
        (c) => c.tenant === 'acme' || 'tenant is not acme',
        (c) => {
          if (c.boom) throw new Error('validator exploded');
        },
        (_c, h) => h.cty !== 'forbidden',
      ],
    },
  };

  beforeAll(async () => {
    idp = await TestIssuer.start({ audience: ZOO_AUD, kid: 'k1' });
    for (const [name, extra] of Object.entries(configs)) {
      apps[name] = await idp.startApp(zooApp(platform, { auditSink: { wantsSuccesses: true, emit: (e) => events.push(e) }, ...extra }));
    }
  });
  afterAll(async () => {
    await idp?.close();
  });

  async function run(app: string, path: string, claims: Record<string, unknown>, reason: string, header: Record<string, unknown> = {}) {
    const tok = await idp.mint({ claims, header });
    events.length = 0;
    const res = await sendRaw(apps[app].url, { path, headers: [['Authorization', `Bearer ${tok}`]] });
    const exp = expectedWire(reason);
    expect(res.status).toBe(exp.status);
    expect(res.headers['www-authenticate']).toBe(exp.wwwAuthenticate);
    if (reason !== 'ok') expect(res.body).toEqual(exp.body);
    expect(events).toHaveLength(1);
    expect(events[0].reason).toBe(reason);
    return { body: res.body as Record<string, unknown>, event: events[0] };
  }

  describe('scopes', () => {
    it.each([
      ['scope as a space-delimited string', { scope: 'expense:read expense:submit' }, ['expense:read', 'expense:submit']],
      ['scope as an array', { scope: ['expense:read', 'expense:submit'] }, ['expense:read', 'expense:submit']],
      ['scp as a string', { scope: undefined, scp: 'expense:read' }, ['expense:read']],
      ['scp as an array', { scope: undefined, scp: ['expense:read', 'expense:approve'] }, ['expense:read', 'expense:approve']],
      ['scope and scp together, deduplicated', { scope: 'expense:read', scp: ['expense:read', 'expense:submit'] }, ['expense:read', 'expense:submit']],
      ['extra spaces in scope', { scope: '  expense:read   expense:submit ' }, ['expense:read', 'expense:submit']],
      ['scope of a wrong type is ignored', { scope: 42 }, []],
      ['permissions ignored unless configured', { scope: undefined, permissions: ['expense:approve'] }, []],
    ])('%s', async (_n, claims, scopes) => {
      const { body, event } = await run('plain', '/t/me', claims, 'ok');
      expect(body.scopes).toEqual(scopes);
      expect(event.grantedScopes).toEqual(scopes);
    });

    it('scp as an array grants access to a route that needs it', async () => {
      await run('plain', '/t/approve', { scope: undefined, scp: ['expense:approve'] }, 'ok');
    });

    it('Auth0-style permissions count once configured in scopeClaims', async () => {
      await run('permissions', '/t/approve', { scope: undefined, permissions: ['expense:approve'] }, 'ok');
      const { body } = await run('permissions', '/t/me', { scope: 'expense:read', permissions: ['expense:approve'] }, 'ok');
      expect(body.scopes).toEqual(['expense:read', 'expense:approve']);
      await run('plain', '/t/approve', { scope: undefined, permissions: ['expense:approve'] }, 'insufficient_scope');
    });
  });

  describe('maxTokenAge (60 s)', () => {
    it('a young token is accepted', () => run('maxAge', '/t/me', { iat: now() - 30 }, 'ok'));
    it('within the clock tolerance (5 s) is accepted', () => run('maxAge', '/t/me', { iat: now() - 63 }, 'ok'));
    it('an old but unexpired token is refused with token_too_old', () => run('maxAge', '/t/me', { iat: now() - 120, exp: now() + 600 }, 'token_too_old'));
    it('a token without iat is refused', () => run('maxAge', '/t/me', { iat: undefined }, 'missing_claim'));
    it('without maxTokenAge an old token is fine', () => run('plain', '/t/me', { iat: now() - 100_000, exp: now() + 600 }, 'ok'));
  });

  describe('RFC 9068 strict profile', () => {
    it.each([['at+jwt'], ['application/at+jwt'], ['AT+JWT']])('typ %s is accepted', (typ) => run('strict', '/t/me', {}, 'ok', { typ }));
    it.each([['JWT'], ['jwt'], ['at+jwt; x'], [undefined]])('typ %s is refused (invalid_typ)', (typ) => run('strict', '/t/me', {}, 'invalid_typ', { typ }));
    it.each([['iat'], ['sub'], ['client_id'], ['jti']])('missing %s is refused (missing_claim)', async (claim) => {
      const { event } = await run('strict', '/t/me', { [claim]: undefined }, 'missing_claim');
      expect(event.detail).toContain(claim);
    });
    it('missing exp is refused (missing_claim)', () => run('strict', '/t/me', { exp: undefined }, 'missing_claim'));
    it('outside strict mode, typ JWT and no jti are fine', () => run('plain', '/t/me', { jti: undefined }, 'ok', { typ: 'JWT' }));
  });

  describe('custom claim validators', () => {
    it('pass', () => run('validators', '/t/me', { tenant: 'acme' }, 'ok'));
    it('a validator returning a string fails with claim_validation_failed and that detail', async () => {
      const { event } = await run('validators', '/t/me', { tenant: 'other' }, 'claim_validation_failed');
      expect(event.detail).toBe('tenant is not acme');
    });
    it('a validator that throws fails closed (401, never 500)', async () => {
      const { event } = await run('validators', '/t/me', { tenant: 'acme', boom: true }, 'claim_validation_failed');
      expect(event.detail).toBe('validator threw: validator exploded');
    });
    it('a validator returning false fails; it sees the header too', async () => {
      const { event } = await run('validators', '/t/me', { tenant: 'acme' }, 'claim_validation_failed', { cty: 'forbidden' });
      expect(event.detail).toBe('custom claim validator rejected the token');
    });
  });
});
