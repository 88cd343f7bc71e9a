import { Controller, Get, Injectable, type DynamicModule, type INestApplication, type Type } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { ExpressAdapter } from '@nestjs/platform-express';
import { FastifyAdapter } from '@nestjs/platform-fastify';
import request from 'supertest';
import { AgentCardService, AgentSkill, RequireScopes } from 'nestjs-a2a-auth';
import { CapturingLogger, PLATFORMS, type Platform } from './fixtures/test-app';
import { CARD_CONTROLLERS, CARD_PROVIDERS, cardModule, cardOptions } from './fixtures/card-app';

const BASE = 'http://127.0.0.1:1';
const ISSUER = 'https://issuer.example';
const JWKS = 'https://issuer.example/jwks.json';

@Controller('boot/unknown')
class UnknownScopeController {
  @AgentSkill({ id: 'nuke', name: 'Nuke', description: 'Deletes everything' })
  @RequireScopes('expense:nuke')
  @Get()
  nuke() {
    return {};
  }
}

/** An unknown scope on a route that is not a skill still fails the boot (the guard would enforce it). */
@RequireScopes('expense:ghost')
@Controller('boot/ghost')
class UnknownClassScopeController {
  @Get()
  list() {
    return {};
  }
}

@Injectable()
class UnknownScopeProvider {
  @AgentSkill({ id: 'provider-skill', name: 'Provider skill', description: 'Reached by A2A messages' })
  @RequireScopes('expense:read', 'expense:teleport')
  run() {
    return 1;
  }
}

@Controller('boot/dup')
class DuplicateSkillController {
  @AgentSkill({ id: 'list-expenses', name: 'Another list', description: 'Clashes with CardExpensesController.list' })
  @RequireScopes('expense:read')
  @Get()
  again() {
    return {};
  }
}

@Injectable()
class DuplicateSkillProvider {
  @AgentSkill({ id: 'twin', name: 'Twin A', description: 'a' })
  @RequireScopes('expense:read')
  a() {
    return 1;
  }

  @AgentSkill({ id: 'twin', name: 'Twin B', description: 'b' })
  @RequireScopes('expense:read')
  b() {
    return 2;
  }
}

async function create(platform: Platform, module: DynamicModule, logger: CapturingLogger | false = false): Promise<INestApplication> {
  const adapter = platform === 'express' ? new ExpressAdapter() : new FastifyAdapter();
  return NestFactory.create(module, adapter as never, { logger, abortOnError: false });
}

function mod(controllers: Type[], providers: Type[] = [], extra = {}): DynamicModule {
  return cardModule(cardOptions(BASE, ISSUER, JWKS, extra), [...CARD_CONTROLLERS, ...controllers], [...CARD_PROVIDERS, ...providers]);
}

describe.each(PLATFORMS)('card boot checks on %s', (platform) => {
  const failures: Array<[string, DynamicModule, string]> = [
    [
      'an unknown scope on a skill handler',
      mod([UnknownScopeController]),
      'nestjs-a2a-auth: invalid option `scopes`: scope "expense:nuke" required by UnknownScopeController.nuke is missing from the `scopes` catalog',
    ],
    [
      'an unknown class-level scope on a non-skill route',
      mod([UnknownClassScopeController]),
      'nestjs-a2a-auth: invalid option `scopes`: scope "expense:ghost" required by UnknownClassScopeController.list is missing from the `scopes` catalog',
    ],
    [
      'an unknown scope on a provider skill',
      mod([], [UnknownScopeProvider]),
      'nestjs-a2a-auth: invalid option `scopes`: scope "expense:teleport" required by UnknownScopeProvider.run is missing from the `scopes` catalog',
    ],
    [
      'a skill id used by two handlers',
      mod([DuplicateSkillController]),
      'nestjs-a2a-auth: invalid option `@AgentSkill`: duplicate skill id "list-expenses" on DuplicateSkillController.again and CardExpensesController.list',
    ],
    [
      'a skill id used twice in one provider',
      mod([], [DuplicateSkillProvider]),
      'nestjs-a2a-auth: invalid option `@AgentSkill`: duplicate skill id "twin" on DuplicateSkillProvider.b and DuplicateSkillProvider.a',
    ],
  ];

  it.each(failures)('fails the boot for %s', async (_name, module, message) => {
    const app = await create(platform, module);
    let error: unknown;
    try {
      await app.init();
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(Error);
    expect((error as Error).name).toBe('A2AAuthConfigError');
    expect((error as Error).message).toBe(message);
    await app.close().catch(() => undefined);
  });

  it("unknownScopePolicy 'warn' boots, logs the scope and the handler, and still enforces it", async () => {
    const logger = new CapturingLogger();
    const app = await create(platform, mod([UnknownScopeController], [], { unknownScopePolicy: 'warn' }), logger);
    await app.listen(0, '127.0.0.1');
    try {
      expect(logger.lines).toContainEqual(
        expect.stringContaining('scope "expense:nuke" required by UnknownScopeController.nuke is missing from the `scopes` catalog'),
      );
      expect(logger.lines.find((l) => l.includes('expense:nuke'))).toMatch(/^warn /);
      const card = app.get(AgentCardService).card();
      expect(card.skills?.find((s) => s.id === 'nuke')?.securityRequirements?.[0]).toStrictEqual({ schemes: { oauth2: { list: ['expense:nuke'] } } });
      const url = `http://127.0.0.1:${(app.getHttpServer().address() as { port: number }).port}`;
      expect((await request(url).get('/boot/unknown')).status).toBe(401);
    } finally {
      await app.close();
    }
  });
});

describe('@AgentSkill validation at decoration time', () => {
  it.each([
    [{ id: '', name: 'n', description: 'd' }, '@AgentSkill: id must be a non-empty string without whitespace, got ""'],
    [{ id: 'a b', name: 'n', description: 'd' }, '@AgentSkill: id must be a non-empty string without whitespace, got "a b"'],
    [{ id: 'x', name: '', description: 'd' }, '@AgentSkill(x): name must be a non-empty string'],
    [{ id: 'x', name: 'n', description: 3 }, '@AgentSkill(x): description must be a string'],
    [{ id: 'x', name: 'n', description: 'd', tags: 'expense' }, '@AgentSkill(x): tags must be an array of strings'],
  ])('rejects %j', (opts, message) => {
    expect(() => AgentSkill(opts as never)).toThrow(message);
  });
});
