import { A2AAuthConfigError, resolveOptions, type A2AAuthModuleOptions } from 'nestjs-a2a-auth';

const base: A2AAuthModuleOptions = { issuer: 'https://issuer.example', audience: 'https://agent.example' };

describe('resolveOptions', () => {
  it('applies the documented defaults', () => {
    const r = resolveOptions(base);
    expect(r.algorithms).toEqual(['RS256']);
    expect(r.clockTolerance).toBe(5);
    expect(r.scopeClaims).toEqual(['scope', 'scp']);
    expect(r.jwksTimeout).toBe(5);
    expect(r.jwksCooldown).toBe(30);
    expect(r.jwksCacheMaxAge).toBe(600);
    expect(r.allowQueryToken).toBe(false);
    expect(r.maxTokenLength).toBe(8192);
    expect(r.strict).toBe(false);
    expect(r.tokenCache).toEqual({ enabled: true, maxEntries: 10000, maxTtl: 300 });
    expect(r.throttle).toEqual({ limit: 60, ttl: 60, trustedProxyHops: 0, ipv6Prefix: 64 });
    expect(r.issuers).toEqual([{ issuer: 'https://issuer.example', jwksUri: undefined, audience: ['https://agent.example'] }]);
    expect(r.oauth2MetadataUrl).toBe('https://issuer.example/.well-known/openid-configuration');
    expect(r.resource).toBe('https://agent.example');
  });

  it.each<[string, Partial<A2AAuthModuleOptions> & Record<string, unknown>, string]>([
    ['missing issuer', { issuer: undefined }, 'nestjs-a2a-auth: invalid option `issuer`: is required and must not be empty'],
    ['empty issuer list', { issuer: [] }, 'nestjs-a2a-auth: invalid option `issuer`: is required and must not be empty'],
    ['empty issuer string', { issuer: '' }, 'nestjs-a2a-auth: invalid option `issuer`: every issuer must be a non-empty string'],
    ['missing audience', { audience: undefined }, 'nestjs-a2a-auth: invalid option `audience`: is required and must not be empty'],
    ['empty audience', { audience: [] }, 'nestjs-a2a-auth: invalid option `audience`: is required and must not be empty'],
    [
      'HS256',
      { algorithms: ['HS256'] },
      'nestjs-a2a-auth: invalid option `algorithms`: "HS256" is not allowed; allowed: RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, ES512, EdDSA (never none or HS*)',
    ],
    [
      'none',
      { algorithms: ['none'] },
      'nestjs-a2a-auth: invalid option `algorithms`: "none" is not allowed; allowed: RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, ES512, EdDSA (never none or HS*)',
    ],
    ['negative clockTolerance', { clockTolerance: -1 }, 'nestjs-a2a-auth: invalid option `clockTolerance`: must be a non-negative number, got -1'],
    ['relative jwksUri', { jwksUri: '/jwks' }, 'nestjs-a2a-auth: invalid option `jwksUri`: must be an absolute http(s) URL, got "/jwks"'],
    [
      'card without interfaces',
      { tokenUrl: 'https://as.example/token', card: { name: 'A', description: 'd', url: 'https://agent.example' } as never },
      'nestjs-a2a-auth: invalid option `card.interfaces`: is required: list the A2A bindings this app serves, e.g. [{ url: "/a2a/jsonrpc", protocolBinding: "JSONRPC" }], or [] for none',
    ],
    [
      'card without tokenUrl',
      { card: { name: 'A', description: 'd', url: 'https://agent.example', interfaces: [{ url: '/rpc', protocolBinding: 'JSONRPC' }] } },
      'nestjs-a2a-auth: invalid option `tokenUrl`: is required when `card` is configured (the card advertises the client-credentials token endpoint)',
    ],
    ...[0, 129, 48.5, Number.NaN].map((ipv6Prefix): [string, Partial<A2AAuthModuleOptions>, string] => [
      `card.throttle.ipv6Prefix ${ipv6Prefix}`,
      {
        tokenUrl: 'https://as.example/token',
        card: { name: 'A', description: 'd', url: 'https://agent.example', interfaces: [], throttle: { ipv6Prefix } },
      },
      `nestjs-a2a-auth: invalid option \`card.throttle.ipv6Prefix\`: must be an integer number of bits from 1 to 128, got ${ipv6Prefix}`,
    ]),
  ])('refuses %s with a message naming the option', (_n, patch, message) => {
    const o = { ...base, ...patch } as A2AAuthModuleOptions;
    expect(() => resolveOptions(o)).toThrow(A2AAuthConfigError);
    expect(() => resolveOptions(o)).toThrow(message);
  });

  it('keeps one key set per issuer with its own audience', () => {
    const r = resolveOptions({ ...base, issuer: [{ issuer: 'https://a.example', jwksUri: 'https://a.example/jwks', audience: 'aud-a' }, 'https://b.example'] });
    expect(r.issuers).toEqual([
      { issuer: 'https://a.example', jwksUri: 'https://a.example/jwks', audience: ['aud-a'] },
      { issuer: 'https://b.example', jwksUri: undefined, audience: ['https://agent.example'] },
    ]);
  });
});
