import { A2AAuthConfigError, defaultKeyPrefix, InMemoryStore, resolveOptions, StoreUnavailableError, withStoreTimeout } from 'nestjs-a2a-auth';

const BASE = { issuer: 'https://idp.example.com', audience: 'https://agent.example.com/x' };

describe('InMemoryStore', () => {
  it('setIfAbsent is first-use-wins until the entry expires; get/set keep values for ttl seconds', async () => {
    const s = new InMemoryStore('p:');
    expect(await s.setIfAbsent('jti:1', 0.2)).toBe(true);
    expect(await s.setIfAbsent('jti:1', 0.2)).toBe(false);
    await s.set('k', 'v', 0.1);
    expect(await s.get('k')).toBe('v');
    expect(await s.get('p:k')).toBeUndefined(); // the prefix is the store's, not the caller's
    await new Promise((r) => setTimeout(r, 150));
    expect(await s.get('k')).toBeUndefined();
    await new Promise((r) => setTimeout(r, 100));
    expect(await s.setIfAbsent('jti:1', 0.2)).toBe(true);
  });
});

describe('withStoreTimeout', () => {
  it('rejects with StoreUnavailableError after timeoutMs, and wraps other failures', async () => {
    const t = Date.now();
    await expect(withStoreTimeout(new Promise(() => undefined), 50, 'op')).rejects.toStrictEqual(new StoreUnavailableError('op: no answer within 50 ms'));
    expect(Date.now() - t).toBeLessThan(1000);
    const e = await withStoreTimeout(Promise.reject(new Error('ECONNREFUSED')), 50, 'op').catch((x: unknown) => x);
    expect(e).toBeInstanceOf(StoreUnavailableError);
    expect((e as Error).message).toBe('op: ECONNREFUSED');
    await expect(withStoreTimeout(Promise.resolve(7), 50, 'op')).resolves.toBe(7);
  });
});

describe('store and clientRateLimit options', () => {
  it('default: in memory, prefix from card.url or resource, 200 ms; no client limit', () => {
    const o = resolveOptions(BASE);
    expect(o.store).toStrictEqual({ redis: undefined, keyPrefix: 'a2a:agent.example.com/x:', timeoutMs: 200 });
    expect(o.clientRateLimit).toBeUndefined();
    expect(defaultKeyPrefix('https://a.example.com:8443/agents/one/')).toBe('a2a:a.example.com:8443/agents/one:');
    expect(defaultKeyPrefix(undefined)).toBe('a2a:');
    expect(resolveOptions({ ...BASE, audience: 'plain' }).store.keyPrefix).toBe('a2a:plain:');
    expect(resolveOptions({ ...BASE, audience: ['b-api', 'a-api'] }).store.keyPrefix).toBe('a2a:a-api,b-api:');
    expect(defaultKeyPrefix(undefined, ['orders-api'])).toBe('a2a:orders-api:');
  });
  it.each([
    [{ store: { redis: {} } }, 'store.redis'],
    [{ store: { redis: { url: 'redis://x', client: {} } } }, 'store.redis'],
    [{ store: { redis: { url: 'http://x' } } }, 'store.redis.url'],
    [{ store: { keyPrefix: '' } }, 'store.keyPrefix'],
    [{ store: { timeoutMs: 0 } }, 'store.timeoutMs'],
    [{ clientRateLimit: { limit: 0, ttl: 60 } }, 'clientRateLimit.limit'],
    [{ clientRateLimit: { limit: 1.5, ttl: 60 } }, 'clientRateLimit.limit'],
    [{ clientRateLimit: { limit: 5, ttl: 0 } }, 'clientRateLimit.ttl'],
  ])('refuses %j naming %s', (extra, option) => {
    expect(() => resolveOptions({ ...BASE, ...(extra as object) })).toThrow(A2AAuthConfigError);
    expect(() => resolveOptions({ ...BASE, ...(extra as object) })).toThrow(`invalid option \`${option}\``);
  });
});
