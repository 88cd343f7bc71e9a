import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Controller, Get, Injectable, type DynamicModule, type Type } from '@nestjs/common';
import { AgentCard } from '@a2a-js/sdk';
import { AgentSkill, checkAgentCard, RequireScopes, runCardCli, type A2AAuthModuleOptions } from 'nestjs-a2a-auth';
import { V03_ONLY_KEYS, V1_ONLY_KEYS } from 'nestjs-a2a-auth/core';
import { cardCliModule, main, PLACEHOLDER_TOKEN_URL, USAGE } from '../apps/expense-agent/src/card-cli';
import { CARD_CONTROLLERS, CARD_PROVIDERS, cardModule, cardOptions, expectedCard, expectedV03Card } from './fixtures/card-app';

const BASE = 'https://agents.example.com';
const ISSUER = 'https://issuer.example';

async function run(module: DynamicModule, ...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await runCardCli(module, argv, { out: (t) => (out += t), err: (t) => (err += t) });
  return { code, out, err };
}

function fixture(extra: Partial<A2AAuthModuleOptions> = {}, controllers: Type[] = [], providers: Type[] = []): DynamicModule {
  return cardModule(cardOptions(BASE, ISSUER, `${ISSUER}/jwks.json`, extra), [...CARD_CONTROLLERS, ...controllers], [...CARD_PROVIDERS, ...providers]);
}

@Controller('cli/open')
class NoRequirementController {
  @AgentSkill({ id: 'open-skill', name: 'Open', description: 'Any token will do' })
  @Get()
  open() {
    return {};
  }
}

@Injectable()
class UnknownScopeSkill {
  @AgentSkill({ id: 'nuke', name: 'Nuke', description: 'Deletes everything' })
  @RequireScopes('expense:nuke')
  nuke() {
    return 1;
  }
}

@Injectable()
class DuplicateSkill {
  @AgentSkill({ id: 'summarize-expenses', name: 'Clash', description: 'Same id as CardSkillHandlers.summarize' })
  @RequireScopes('expense:read')
  clash() {
    return 1;
  }
}

describe('card CLI on the sample agent (no port, placeholder issuer)', () => {
  const sample = () => cardCliModule({});

  it('--check passes', async () => {
    const r = await run(sample(), '--check');
    expect(r.err).toMatch(/^card check passed: \d+ public skill\(s\), \d+ in the extended card\n$/);
    expect(r.code).toBe(0);
    expect(r.out).toBe('');
  });

  it('prints the v1.0 card: SDK round-trip, placeholder tokenUrl, the sample scopes on every skill', async () => {
    const r = await run(sample());
    expect(r.code).toBe(0);
    const card = JSON.parse(r.out);
    expect(r.out).toBe(`${JSON.stringify(card, null, 2)}\n`);
    expect(AgentCard.toJSON(AgentCard.fromJSON(card))).toStrictEqual(card);
    expect(card.securitySchemes.oauth2.oauth2SecurityScheme.flows.clientCredentials.tokenUrl).toBe(PLACEHOLDER_TOKEN_URL);
    expect(card.skills.length).toBeGreaterThan(0);
    for (const s of card.skills) expect(s.securityRequirements.length).toBeGreaterThan(0);
    for (const k of V03_ONLY_KEYS) expect(Object.keys(card)).not.toContain(k);
    expect(await run(sample(), '--version', '1.0')).toStrictEqual(r);
  });

  it('prints the v0.3 view and the extended card', async () => {
    const v03 = JSON.parse((await run(sample(), '--version', '0.3')).out);
    expect(v03.protocolVersion).toBe('0.3.0');
    expect(v03.supportsAuthenticatedExtendedCard).toBe(true);
    for (const k of V1_ONLY_KEYS) expect(Object.keys(v03)).not.toContain(k);
    const ext = JSON.parse((await run(sample(), '--extended')).out);
    expect(ext.capabilities.extendedAgentCard).toBe(true);
    expect(AgentCard.toJSON(AgentCard.fromJSON(ext))).toStrictEqual(ext);
    const ext03 = JSON.parse((await run(sample(), '--extended', '--version=0.3')).out);
    expect(ext03.protocolVersion).toBe('0.3.0');
  });

  // docs/agent-card.md holds the sample's full cards; this keeps them exact. UPDATE_CARD_DOCS=1 rewrites them.
  it("matches the sample's cards in docs/agent-card.md exactly", async () => {
    const file = join(__dirname, '..', 'docs', 'agent-card.md');
    let doc = readFileSync(file, 'utf8');
    for (const [tag, args] of [
      ['v1', []],
      ['v03', ['--version', '0.3']],
    ] as const) {
      const { code, out } = await run(sample(), ...args);
      expect(code).toBe(0);
      const re = new RegExp(`<!-- card:${tag} -->\\n\`\`\`json\\n([\\s\\S]*?)\`\`\`\\n<!-- /card:${tag} -->`);
      if (process.env.UPDATE_CARD_DOCS === '1') {
        doc = doc.replace(
          new RegExp(`<!-- card:${tag} -->[\\s\\S]*?<!-- /card:${tag} -->`),
          () => `<!-- card:${tag} -->\n\`\`\`json\n${out}\`\`\`\n<!-- /card:${tag} -->`,
        );
        continue;
      }
      const m = re.exec(doc);
      expect(m).not.toBeNull();
      expect(JSON.parse(m![1])).toStrictEqual(JSON.parse(out)); // on failure: UPDATE_CARD_DOCS=1 npx jest test/card-cli.e2e-spec.ts
    }
    if (process.env.UPDATE_CARD_DOCS === '1') writeFileSync(file, doc);
  });

  it('rejects bad arguments with exit code 2', async () => {
    expect(await run(sample(), '--version', '2.0')).toStrictEqual({
      code: 2,
      out: '',
      err: '--version must be 1.0 or 0.3\nusage: card [--version 1.0|0.3] [--extended] [--check]\n',
    });
    expect((await run(sample(), '--frobnicate')).code).toBe(2);
  });
});

describe('card CLI main(): --out FILE', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'card-cli-'));
  });
  afterAll(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  async function runMain(argv: string[], env: Record<string, string | undefined> = {}) {
    let out = '';
    let err = '';
    const code = await main(argv, env, { out: (t) => (out += t), err: (t) => (err += t) });
    return { code, out, err };
  }

  it('writes exactly the card that stdout would get, prints nothing on stdout and says where it wrote', async () => {
    const printed = await runMain([]);
    expect(printed.code).toBe(0);
    const file = join(dir, 'card.json');
    expect(await runMain(['--out', file])).toStrictEqual({ code: 0, out: '', err: `card written to ${file}\n` });
    expect(readFileSync(file, 'utf8')).toBe(printed.out);
    JSON.parse(readFileSync(file, 'utf8'));
    const v03 = join(dir, 'v03.json');
    expect(await runMain(['--version', '0.3', `--out=${v03}`])).toStrictEqual({ code: 0, out: '', err: `card written to ${v03}\n` });
    expect(readFileSync(v03, 'utf8')).toBe((await runMain(['--version', '0.3'])).out);
  });

  it('resolves a relative FILE against INIT_CWD (where npm was started), as a shell redirect would', async () => {
    const r = await runMain(['--out', 'relative.json'], { INIT_CWD: dir });
    expect(r).toStrictEqual({ code: 0, out: '', err: `card written to ${join(dir, 'relative.json')}\n` });
    expect(JSON.parse(readFileSync(join(dir, 'relative.json'), 'utf8')).name).toBe('Expense Reimbursement Agent');
  });

  it('a failed run leaves an existing FILE as it was', async () => {
    const file = join(dir, 'kept.json');
    writeFileSync(file, 'previous card');
    const r = await runMain(['--out', file], { PORT: 'eighty' });
    expect(r).toStrictEqual({ code: 1, out: '', err: 'boot failed: PORT must be an integer between 0 and 65535, got "eighty"\n' });
    expect(readFileSync(file, 'utf8')).toBe('previous card');
  });

  it('exits 1 with the reason when FILE cannot be written', async () => {
    const file = join(dir, 'no-such-dir', 'card.json');
    expect(await runMain(['--out', file])).toStrictEqual({
      code: 1,
      out: '',
      err: `cannot write ${file}: ENOENT: no such file or directory, open '${file}'\n`,
    });
  });

  it('bad arguments exit 2 with a usage line that lists --out; --help prints it', async () => {
    expect(USAGE).toBe('usage: card [--version 1.0|0.3] [--extended] [--check] [--out FILE]');
    expect(await runMain(['--out'])).toStrictEqual({ code: 2, out: '', err: `--out needs a file name\n${USAGE}\n` });
    expect(await runMain(['--out', '--extended'])).toStrictEqual({ code: 2, out: '', err: `--out needs a file name\n${USAGE}\n` });
    expect(await runMain(['--check', '--out', join(dir, 'x.json')])).toStrictEqual({
      code: 2,
      out: '',
      err: `--out cannot be combined with --check (which prints no card)\n${USAGE}\n`,
    });
    expect(await runMain(['--frobnicate'])).toStrictEqual({ code: 2, out: '', err: `unknown argument "--frobnicate"\n${USAGE}\n` });
    expect(await runMain(['--help'])).toStrictEqual({ code: 0, out: `${USAGE}\n`, err: '' });
  });
});

describe('card CLI on fixture apps', () => {
  it('prints the exact fixture cards', async () => {
    expect(JSON.parse((await run(fixture())).out)).toStrictEqual(expectedCard(BASE));
    expect(JSON.parse((await run(fixture(), '--extended')).out)).toStrictEqual(expectedCard(BASE, true));
    expect(JSON.parse((await run(fixture(), '--version', '0.3', '--extended')).out)).toStrictEqual(expectedV03Card(BASE, true));
  });

  it('--check passes on the consistent fixture and notes the unused scope', async () => {
    const r = await run(fixture(), '--check');
    expect(r.err).toBe(
      'note: [A2AAuth] scopes in the catalog that no handler requires: expense:admin\ncard check passed: 5 public skill(s), 6 in the extended card\n',
    );
    expect(r.code).toBe(0);
  });

  it.each([
    [
      'a duplicate skill id (boot failure)',
      () => fixture({}, [], [DuplicateSkill]),
      [
        'problem: boot failed: nestjs-a2a-auth: invalid option `@AgentSkill`: duplicate skill id "summarize-expenses" on DuplicateSkill.clash and CardSkillHandlers.summarize',
      ],
    ],
    [
      'an unknown scope (boot failure)',
      () => fixture({}, [], [UnknownScopeSkill]),
      [
        'problem: boot failed: nestjs-a2a-auth: invalid option `scopes`: scope "expense:nuke" required by UnknownScopeSkill.nuke is missing from the `scopes` catalog',
      ],
    ],
    [
      "an unknown scope under unknownScopePolicy 'warn'",
      () => fixture({ unknownScopePolicy: 'warn' }, [], [UnknownScopeSkill]),
      [
        'problem: v1.0 card: skill "nuke" requires scope "expense:nuke", missing from securitySchemes.oauth2 scopes',
        'problem: v1.0 extended card: skill "nuke" requires scope "expense:nuke", missing from securitySchemes.oauth2 scopes',
        'problem: boot: scope "expense:nuke" required by UnknownScopeSkill.nuke is missing from the `scopes` catalog',
      ],
    ],
    [
      'a skill without requirements (neither scopes nor @Public)',
      () => fixture({}, [NoRequirementController]),
      [
        'problem: v1.0 card: skill "open-skill" requires no scope: add @RequireScopes(...) or mark it @Public()',
        'problem: v1.0 extended card: skill "open-skill" requires no scope: add @RequireScopes(...) or mark it @Public()',
      ],
    ],
    [
      'a missing tokenUrl',
      () => fixture({ tokenUrl: undefined }),
      [
        'problem: boot failed: nestjs-a2a-auth: invalid option `tokenUrl`: is required when `card` is configured (the card advertises the client-credentials token endpoint)',
      ],
    ],
    [
      'no card at all',
      () => cardModule({ issuer: ISSUER, audience: BASE, jwksUri: `${ISSUER}/jwks.json` }, [], []),
      ['problem: the app has no card: configure `card` in A2AAuthModule.forRoot'],
    ],
  ])('--check fails on %s', async (_name, make, problems) => {
    const r = await run(make(), '--check');
    expect(r.code).toBe(1);
    expect(r.out).toBe('');
    expect(r.err).toBe(`${problems.join('\n')}\ncard check failed: ${problems.length} problem(s)\n`);
  });

  it('without --check, a boot failure prints the reason and exits 1', async () => {
    const r = await run(fixture({}, [], [DuplicateSkill]));
    expect(r.code).toBe(1);
    expect(r.out).toBe('');
    expect(r.err).toMatch(/^boot failed: .*duplicate skill id "summarize-expenses"/);
  });
});

describe('checkAgentCard', () => {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  const good = (): any => JSON.parse(JSON.stringify(expectedCard(BASE)));

  it('passes the fixture card', () => {
    expect(checkAgentCard(good())).toStrictEqual([]);
  });

  it('reports an SDK round-trip mismatch with its path', () => {
    const c = good();
    c.skills[0].securityRequirements = [];
    expect(checkAgentCard(c)).toStrictEqual([
      'card: SDK round-trip (AgentCard.fromJSON → toJSON) changes skills[0].securityRequirements',
      'card: skill "list-expenses" has no securityRequirements',
    ]);
  });

  it('reports a missing tokenUrl, an undefined scheme, a v0.3 field and a duplicate id', () => {
    const c = good();
    c.securitySchemes.oauth2.oauth2SecurityScheme.flows.clientCredentials.tokenUrl = '';
    c.securityRequirements = [{ schemes: { apiKey: {} } }];
    c.url = BASE;
    c.skills.push({ ...c.skills[0] });
    expect(checkAgentCard(c, 'x')).toStrictEqual([
      'x: SDK round-trip (AgentCard.fromJSON → toJSON) changes securitySchemes.oauth2.oauth2SecurityScheme.flows.clientCredentials.tokenUrl',
      'x: v0.3 field "url" in a v1.0 card',
      'x: securitySchemes.oauth2 has no clientCredentials.tokenUrl',
      'x: securityRequirements names security scheme "apiKey", which securitySchemes does not define',
      'x: duplicate skill id "list-expenses"',
    ]);
  });
});
