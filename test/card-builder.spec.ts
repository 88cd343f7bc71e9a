import { AgentCard } from '@a2a-js/sdk';
import { checkV03Card, resolveOptions, signAgentCard, verifyAgentCard } from 'nestjs-a2a-auth';
import { buildAgentCard, canonicalCardBytes, toV03Card, V03_ONLY_KEYS, type DiscoveredSkill } from 'nestjs-a2a-auth/core';
import { generateTestKey } from './fixtures/keys';

const opts = (card: Record<string, unknown> = {}, extra: Record<string, unknown> = {}) =>
  resolveOptions({
    issuer: 'https://issuer.example/',
    audience: 'https://agent.example/a',
    tokenUrl: 'https://issuer.example/token',
    scopes: { 'x:read': 'Read', 'x:write': 'Write' },
    ...extra,
    card: {
      name: 'A',
      description: 'B',
      url: 'https://agent.example/a',
      interfaces: [{ url: 'https://agent.example/a', protocolBinding: 'JSONRPC' }],
      ...card,
    },
  } as never);

const skill = (id: string, scopes: string[], isPublic = false, extendedOnly = false): DiscoveredSkill => ({
  skill: { id, name: `Skill ${id}`, description: `Does ${id}`, ...(extendedOnly ? { extendedOnly } : {}) },
  scopes,
  isPublic,
  source: `C.${id}`,
});

describe('buildAgentCard (pure)', () => {
  it('builds the minimal card with defaults, omitting empty values, and it round-trips through the SDK', () => {
    const card = buildAgentCard(opts(), [skill('r', ['x:read']), skill('p', [], true)]);
    expect(card).toStrictEqual({
      name: 'A',
      description: 'B',
      supportedInterfaces: [{ url: 'https://agent.example/a', protocolBinding: 'JSONRPC', protocolVersion: '1.0' }],
      version: '1.0.0',
      capabilities: { streaming: false, pushNotifications: false, extendedAgentCard: false },
      securitySchemes: {
        oauth2: {
          oauth2SecurityScheme: {
            description: 'OAuth 2.0 client credentials grant (RFC 6749 §4.4); send the access token as a Bearer token (RFC 6750)',
            flows: { clientCredentials: { tokenUrl: 'https://issuer.example/token', scopes: { 'x:read': 'Read', 'x:write': 'Write' } } },
            oauth2MetadataUrl: 'https://issuer.example/.well-known/openid-configuration',
          },
        },
      },
      securityRequirements: [{ schemes: { oauth2: {} } }],
      defaultInputModes: ['text/plain', 'application/json'],
      defaultOutputModes: ['text/plain', 'application/json'],
      skills: [
        { id: 'r', name: 'Skill r', description: 'Does r', securityRequirements: [{ schemes: { oauth2: { list: ['x:read'] } } }] },
        { id: 'p', name: 'Skill p', description: 'Does p', securityRequirements: [{}] },
      ],
    });
    expect(AgentCard.toJSON(AgentCard.fromJSON(card as never))).toStrictEqual(card);
    // Same key order as the SDK's toJSON: the JSON text is identical too.
    expect(JSON.stringify(AgentCard.toJSON(AgentCard.fromJSON(card as never)))).toBe(JSON.stringify(card));
  });

  it('advertises bearer, OpenID Connect and mTLS schemes when configured: token schemes OR, mTLS AND', () => {
    const o = opts(
      { advertiseBearerScheme: true, openIdConnectUrl: 'https://issuer.example/.well-known/openid-configuration', description: '' },
      { mtls: { description: 'client certificate' } },
    );
    const card = buildAgentCard(o, [skill('w', ['x:write'])]);
    expect(card.securitySchemes).toStrictEqual({
      oauth2: card.securitySchemes!.oauth2,
      bearer: { httpAuthSecurityScheme: { scheme: 'Bearer', bearerFormat: 'JWT' } },
      oidc: { openIdConnectSecurityScheme: { openIdConnectUrl: 'https://issuer.example/.well-known/openid-configuration' } },
      mtls: { mtlsSecurityScheme: { description: 'client certificate' } },
    });
    expect(card.securityRequirements).toStrictEqual([
      { schemes: { oauth2: {}, mtls: {} } },
      { schemes: { bearer: {}, mtls: {} } },
      { schemes: { oidc: {}, mtls: {} } },
    ]);
    expect(card.skills![0].securityRequirements).toStrictEqual([
      { schemes: { oauth2: { list: ['x:write'] }, mtls: {} } },
      { schemes: { bearer: { list: ['x:write'] }, mtls: {} } },
      { schemes: { oidc: { list: ['x:write'] }, mtls: {} } },
    ]);
    expect('description' in card).toBe(false); // '' is omitted, as ProtoJSON does
    expect(AgentCard.toJSON(AgentCard.fromJSON(card as never))).toStrictEqual(card);

    const v03 = toV03Card(card);
    expect(v03.securitySchemes).toStrictEqual({
      oauth2: {
        type: 'oauth2',
        description: 'OAuth 2.0 client credentials grant (RFC 6749 §4.4); send the access token as a Bearer token (RFC 6750)',
        flows: { clientCredentials: { tokenUrl: 'https://issuer.example/token', scopes: { 'x:read': 'Read', 'x:write': 'Write' } } },
        oauth2MetadataUrl: 'https://issuer.example/.well-known/openid-configuration',
      },
      bearer: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' },
      oidc: { type: 'openIdConnect', openIdConnectUrl: 'https://issuer.example/.well-known/openid-configuration' },
      mtls: { type: 'mutualTLS', description: 'client certificate' },
    });
    expect(v03.security).toStrictEqual([
      { oauth2: [], mtls: [] },
      { bearer: [], mtls: [] },
      { oidc: [], mtls: [] },
    ]);
    expect(v03.skills[0].security).toStrictEqual([
      { oauth2: ['x:write'], mtls: [] },
      { bearer: ['x:write'], mtls: [] },
      { oidc: ['x:write'], mtls: [] },
    ]);
    expect(checkV03Card(v03)).toStrictEqual([]);
    for (const k of V03_ONLY_KEYS) expect(Object.keys(card)).not.toContain(k);
  });

  it('keeps extendedOnly skills out of the public card', () => {
    const o = opts({ extendedCard: true });
    const skills = [skill('a', ['x:read']), skill('secret', ['x:write'], false, true)];
    expect(buildAgentCard(o, skills).skills!.map((s) => s.id)).toStrictEqual(['a']);
    expect(buildAgentCard(o, skills, true).skills!.map((s) => s.id)).toStrictEqual(['a', 'secret']);
    expect(buildAgentCard(o, skills).capabilities.extendedAgentCard).toBe(true);
    expect(toV03Card(buildAgentCard(o, skills)).supportsAuthenticatedExtendedCard).toBe(true);
  });

  it('uses a custom scheme name and resolves interface paths against card.url', () => {
    const card = buildAgentCard(
      opts({
        securitySchemeName: 'corpOAuth',
        interfaces: [
          { url: '/rest', protocolBinding: 'HTTP+JSON' },
          { url: 'https://grpc.example:443', protocolBinding: 'GRPC', protocolVersion: '1.0' },
        ],
      }),
      [skill('r', ['x:read'])],
    );
    expect(Object.keys(card.securitySchemes!)).toStrictEqual(['corpOAuth']);
    expect(card.skills![0].securityRequirements).toStrictEqual([{ schemes: { corpOAuth: { list: ['x:read'] } } }]);
    expect(card.supportedInterfaces).toStrictEqual([
      { url: 'https://agent.example/a/rest', protocolBinding: 'HTTP+JSON', protocolVersion: '1.0' },
      { url: 'https://grpc.example:443', protocolBinding: 'GRPC', protocolVersion: '1.0' },
    ]);
    expect(toV03Card(card)).toMatchObject({ url: 'https://agent.example/a/rest', preferredTransport: 'HTTP+JSON' });
  });

  it('is pure: the same inputs give the same card', () => {
    const o = opts();
    const s = [skill('r', ['x:read'])];
    expect(JSON.stringify(buildAgentCard(o, s))).toBe(JSON.stringify(buildAgentCard(o, s)));
  });
});

describe('card signing (A2A §8.4, RFC 7515 over RFC 8785)', () => {
  it('signs without jku when none is configured, and the JCS bytes ignore key order and signatures', async () => {
    const key = generateTestKey('ES256', 'k2');
    const card = buildAgentCard(opts(), [skill('r', ['x:read'])]);
    const signed = await signAgentCard(card, { privateKey: key.privateKey, kid: 'k2' });
    expect(JSON.parse(Buffer.from(signed.signatures[0].protected, 'base64url').toString())).toStrictEqual({ alg: 'ES256', kid: 'k2', typ: 'JOSE' });
    const reordered = Object.fromEntries(Object.entries(signed).reverse());
    expect(Buffer.from(canonicalCardBytes(reordered)).equals(Buffer.from(canonicalCardBytes(card)))).toBe(true);
    await expect(verifyAgentCard(reordered, () => key.publicKey)).resolves.toMatchObject({ kid: 'k2' });
    const other = generateTestKey('ES256', 'k2');
    await expect(verifyAgentCard(signed, () => other.publicKey)).rejects.toThrow(/no card signature verifies/);
    await expect(verifyAgentCard(card, () => key.publicKey)).rejects.toThrow('card is not signed');
  });
});
