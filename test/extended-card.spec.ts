import { AgentCardService, EXTENDED_CARD_VARIANTS_MAX, resolveOptions, type SkillRegistry } from 'nestjs-a2a-auth';
import { assertScopes, extendedCardVariant, grantsScopes, type A2ACaller, type DiscoveredSkill } from 'nestjs-a2a-auth/core';

const skill = (id: string, scopes: string[], o: { isPublic?: boolean; extendedOnly?: boolean } = {}): DiscoveredSkill => ({
  skill: { id, name: `Skill ${id}`, description: `Does ${id}`, ...(o.extendedOnly ? { extendedOnly: true } : {}) },
  scopes,
  isPublic: o.isPublic ?? false,
  source: `C.${id}`,
});

describe('grantsScopes (the predicate form of the one scope check)', () => {
  it.each<[string[], string[], boolean]>([
    [[], [], true],
    [['a'], [], true],
    [['a', 'b'], ['a', 'b'], true],
    [['a'], ['a', 'b'], false],
    [[], ['a'], false],
  ])('granted %j, required %j: %s, exactly when assertScopes passes', (granted, required, want) => {
    expect(grantsScopes(granted, required)).toBe(want);
    expect(grantsScopes(new Set(granted), required)).toBe(want);
    const passes = (() => {
      try {
        assertScopes(granted, required);
        return true;
      } catch {
        return false;
      }
    })();
    expect(passes).toBe(want);
  });
});

describe('extendedCardVariant', () => {
  const skills = [
    skill('read', ['x:read']),
    skill('write', ['x:write']),
    skill('audit', ['x:audit'], { extendedOnly: true }),
    skill('admin', ['x:audit', 'x:admin'], { extendedOnly: true }),
    skill('hello', [], { isPublic: true, extendedOnly: true }),
  ];
  const ids = (granted: string[]) => extendedCardVariant(skills, granted).skills.map((s) => s.skill.id);

  it('lists an extendedOnly skill only when every one of its scopes is granted; other skills always', () => {
    expect(ids([])).toStrictEqual(['read', 'write', 'hello']);
    expect(ids(['x:audit'])).toStrictEqual(['read', 'write', 'audit', 'hello']);
    expect(ids(['x:admin'])).toStrictEqual(['read', 'write', 'hello']);
    expect(ids(['x:admin', 'x:audit'])).toStrictEqual(['read', 'write', 'audit', 'admin', 'hello']);
  });

  it('keys the variant by the visible extendedOnly skills (sorted), never by the raw scopes', () => {
    expect(extendedCardVariant(skills, []).key).toBe('hello');
    expect(extendedCardVariant(skills, ['x:audit', 'x:read', 'unrelated']).key).toBe('audit hello');
    expect(extendedCardVariant(skills, ['x:audit', 'x:admin']).key).toBe('admin audit hello');
    expect(extendedCardVariant(skills, ['x:admin', 'x:audit', 'x:write']).key).toBe(extendedCardVariant(skills, ['x:audit', 'x:admin']).key);
  });
});

describe('resolveOptions: card.extendedCardFor', () => {
  const card = { name: 'A', description: 'B', url: 'https://agent.example/a', interfaces: [] };
  const base = { issuer: 'https://issuer.example', audience: 'https://agent.example/a', tokenUrl: 'https://issuer.example/token' };

  it('needs card.extendedCard and must be a function', () => {
    expect(() => resolveOptions({ ...base, card: { ...card, extendedCardFor: (_c, k) => k } })).toThrow(
      'nestjs-a2a-auth: invalid option `card.extendedCardFor`: needs `card.extendedCard: true`',
    );
    expect(() => resolveOptions({ ...base, card: { ...card, extendedCard: true, extendedCardFor: 'x' as never } })).toThrow(
      'nestjs-a2a-auth: invalid option `card.extendedCardFor`: must be a function (caller, card) => card',
    );
    expect(resolveOptions({ ...base, card: { ...card, extendedCard: true, extendedCardFor: (_c, k) => k } }).card?.extendedCardFor).toBeInstanceOf(Function);
  });
});

describe('AgentCardService: per-caller variants stay bounded and correct', () => {
  it(`keeps at most ${EXTENDED_CARD_VARIANTS_MAX} built variants, and every caller still gets its own card`, async () => {
    // 7 extendedOnly skills: 128 possible variants, twice the cache.
    const only = Array.from({ length: 7 }, (_, i) => skill(`s${i}`, [`x:${i}`], { extendedOnly: true }));
    const scopes = Object.fromEntries(only.map((_, i) => [`x:${i}`, `scope ${i}`]));
    const opts = resolveOptions({
      issuer: 'https://issuer.example',
      audience: 'https://agent.example/a',
      tokenUrl: 'https://issuer.example/token',
      scopes,
      card: { name: 'A', description: 'B', url: 'https://agent.example/a', interfaces: [{ url: '/a2a', protocolBinding: 'JSONRPC' }], extendedCard: true },
    });
    const registry = { all: () => only } as unknown as SkillRegistry;
    const service = new AgentCardService(opts, registry);
    await service.onModuleInit();
    const caller = (granted: string[]) => ({ issuer: 'https://issuer.example', scopes: granted, claims: {}, expiresAt: 0, actors: [] }) as A2ACaller;
    for (let round = 0; round < 2; round++) {
      for (let mask = 0; mask < 128; mask++) {
        const granted = only.map((_, i) => `x:${i}`).filter((_, i) => mask & (1 << i));
        const card = await service.extendedCardFor(caller(granted));
        expect((card.skills ?? []).map((s) => s.id)).toStrictEqual(only.filter((_, i) => mask & (1 << i)).map((s) => s.skill.id));
        expect((service as unknown as { variants: Map<string, unknown> }).variants.size).toBeLessThanOrEqual(EXTENDED_CARD_VARIANTS_MAX);
      }
    }
    expect(service.document('v1')!.json).not.toHaveProperty('skills'); // the public card lists none of them
  });
});
