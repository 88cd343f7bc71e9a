import { AuthError, InMemoryPendingAuthorizationStore, type PendingAuthorization } from 'nestjs-a2a-auth';
import { checkPendingAnswer } from 'nestjs-a2a-auth/core';

const pending = (o: Partial<PendingAuthorization> = {}): PendingAuthorization => ({
  taskId: 't1',
  owner: { issuer: 'https://iss', subject: 'alice', clientId: 'app' },
  scopes: ['x:large'],
  operation: 'op-1',
  expiresAt: 10_000,
  ...o,
});
const caller = (o: Record<string, unknown> = {}) =>
  ({ issuer: 'https://iss', subject: 'alice', clientId: 'app', scopes: ['x:large'], claims: {}, actors: [], expiresAt: 0, ...o }) as never;
const direct = { accept: false, maxChainLength: 2 }; // direct callers only (the default policy)

describe('InMemoryPendingAuthorizationStore', () => {
  it('keeps one pending operation per task, expires it, and take() consumes it once and only for its operation', async () => {
    let now = 0;
    const s = new InMemoryPendingAuthorizationStore(10, () => now);
    await s.put(pending());
    expect(await s.take('t1', 'other-op')).toBeUndefined();
    expect((await s.get('t1'))?.operation).toBe('op-1');
    expect((await s.take('t1', 'op-1'))?.scopes).toEqual(['x:large']);
    expect(await s.take('t1', 'op-1')).toBeUndefined();
    await s.put(pending());
    now = 10_000;
    expect(await s.get('t1')).toBeUndefined();
  });

  it('is bounded: the oldest entries go first', async () => {
    const s = new InMemoryPendingAuthorizationStore(3, () => 0);
    for (let i = 0; i < 5; i++) await s.put(pending({ taskId: `t${i}` }));
    expect(await s.get('t0')).toBeUndefined();
    expect(await s.get('t1')).toBeUndefined();
    expect(await s.get('t4')).toBeDefined();
  });
});

describe('checkPendingAnswer (A2A §7.6.4)', () => {
  it('the owner through the same client with every pending scope answers it', () => {
    expect(checkPendingAnswer(pending(), caller(), direct)).toBeUndefined();
  });
  it('another issuer or subject is not the owner', () => {
    expect(checkPendingAnswer(pending(), caller({ issuer: 'https://other' }), direct)).toBe('not_owner');
    expect(checkPendingAnswer(pending(), caller({ subject: 'bob' }), direct)).toBe('not_owner');
  });
  it('the owner through another client, or without the scopes, is 403 insufficient_scope naming the pending scopes', () => {
    for (const c of [caller({ clientId: 'other-app' }), caller({ scopes: ['x:small'] })]) {
      let err: unknown;
      try {
        checkPendingAnswer(pending(), c, direct);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(AuthError);
      expect((err as AuthError).status).toBe(403);
      expect((err as AuthError).error).toBe('insufficient_scope');
      expect((err as AuthError).requiredScopes).toEqual(['x:large']);
    }
  });
});
