import { randomUUID } from 'node:crypto';
import { Controller, Get, type Type } from '@nestjs/common';
import request from 'supertest';
import { A2ASkillAuthorizer, AgentSkill, Public, RequireScopes, type A2AAuthModuleOptions } from 'nestjs-a2a-auth';
import { combineRoutePolicy } from 'nestjs-a2a-auth/core';
import { A2AJsonRpcController, A2ARestController } from '../apps/expense-agent/src/a2a/a2a.controllers';
import { generateTestKey, type TestKey } from './fixtures/keys';
import { JwksServer } from './fixtures/jwks-server';
import { mintToken } from './fixtures/tokens';
import { replyingTransport } from './fixtures/a2a-reply';
import { PLATFORMS, startTestApp, type TestApp } from './fixtures/test-app';
import { TEST_SCOPES } from './fixtures/test-controllers';

// The route policy truth table: @Public, @RequireScopes and @AgentSkill on the controller and on the handler, in
// every combination. One table, one answer per row, and the guard, the card and both A2A bindings agree on it.
// The rule: the more specific level wins; @Public and @RequireScopes on the same level refuse to boot.

const AUD = 'http://127.0.0.1/policy-agent';
const C = 'expense:read'; // a controller-level scope
const M = 'expense:submit'; // a handler-level scope

type Level = 'none' | 'public' | 'scopes';
interface Row {
  cls: Level;
  method: Level;
  /** `public`, or the scopes a token needs (an empty list: any valid token). */
  expect: 'public' | string[];
}

const TABLE: Row[] = [
  { cls: 'none', method: 'none', expect: [] },
  { cls: 'none', method: 'public', expect: 'public' },
  { cls: 'none', method: 'scopes', expect: [M] },
  { cls: 'public', method: 'none', expect: 'public' },
  { cls: 'public', method: 'public', expect: 'public' },
  { cls: 'public', method: 'scopes', expect: [M] },
  { cls: 'scopes', method: 'none', expect: [C] },
  { cls: 'scopes', method: 'public', expect: 'public' },
  { cls: 'scopes', method: 'scopes', expect: [C, M] },
];

const skillIdOf = (r: Row) => `row-${r.cls}-${r.method}`;

/** Builds a controller for one row, applying the decorators programmatically. */
function controllerFor(r: Row): Type {
  class RowController {
    handle() {
      return { ok: true };
    }
  }
  Object.defineProperty(RowController, 'name', { value: `Row_${r.cls}_${r.method}` });
  const proto = RowController.prototype as unknown as Record<string, unknown>;
  const descriptor = Object.getOwnPropertyDescriptor(proto, 'handle')!;
  const methodDecorators: MethodDecorator[] = [
    Get('x'),
    AgentSkill({ id: skillIdOf(r), name: skillIdOf(r), description: `controller ${r.cls}, handler ${r.method}` }),
  ];
  if (r.method === 'public') methodDecorators.push(Public());
  if (r.method === 'scopes') methodDecorators.push(RequireScopes(M));
  for (const d of methodDecorators) d(proto, 'handle', descriptor);
  const classDecorators: ClassDecorator[] = [Controller(skillIdOf(r))];
  if (r.cls === 'public') classDecorators.push(Public());
  if (r.cls === 'scopes') classDecorators.push(RequireScopes(C));
  for (const d of classDecorators) d(RowController);
  return RowController;
}

describe('combineRoutePolicy (the rule, without an app)', () => {
  it.each(TABLE.map((r) => [`${r.cls} / ${r.method}`, r] as const))('controller %s', (_n, r) => {
    const level = (l: Level, scope: string) => (l === 'public' ? { isPublic: true } : l === 'scopes' ? { scopes: [scope] } : {});
    const p = combineRoutePolicy(level(r.cls, C), level(r.method, M), undefined, 'X.y');
    expect({ isPublic: p.isPublic, scopes: p.scopes }).toEqual(r.expect === 'public' ? { isPublic: true, scopes: [] } : { isPublic: false, scopes: r.expect });
  });

  it('refuses @Public() and @RequireScopes() on the same level', () => {
    expect(() => combineRoutePolicy({ isPublic: true, scopes: [C] }, {}, undefined, 'A.b')).toThrow(
      'A.b: @Public() and @RequireScopes(expense:read) on the same controller contradict each other',
    );
    expect(() => combineRoutePolicy({}, { isPublic: true, scopes: [M] }, undefined, 'A.b')).toThrow(
      'A.b: @Public() and @RequireScopes(expense:submit) on the same handler contradict each other',
    );
  });
});

describe.each(PLATFORMS)('the route policy truth table on %s: guard, card and both A2A bindings agree', (platform) => {
  let jwks: JwksServer;
  let key: TestKey;
  let t: TestApp;
  const token = (scopes: string[]) => mintToken({ key, issuer: jwks.issuer, audience: AUD, claims: { scope: scopes.join(' ') } });

  beforeAll(async () => {
    jwks = await new JwksServer().start();
    key = generateTestKey('RS256');
    jwks.keys = [key.publicJwk];
    const auth: A2AAuthModuleOptions = {
      issuer: jwks.issuer,
      audience: AUD,
      jwksUri: jwks.jwksUri,
      scopes: TEST_SCOPES,
      tokenUrl: `${jwks.url}/token`,
      audit: { successes: false },
      card: {
        name: 'Policy Agent',
        description: 'truth table',
        url: AUD,
        interfaces: [
          { url: '/a2a/jsonrpc', protocolBinding: 'JSONRPC' },
          { url: '/', protocolBinding: 'HTTP+JSON' },
        ],
      },
    };
    t = await startTestApp({
      platform,
      auth,
      controllers: [...TABLE.map(controllerFor), A2AJsonRpcController, A2ARestController],
      providers: [A2ASkillAuthorizer, replyingTransport('ran')],
      logger: false,
    });
  });
  afterAll(async () => {
    await t?.close();
    await jwks?.stop();
  });

  const message = (skillId: string) => ({ message: { messageId: randomUUID(), role: 'ROLE_USER', parts: [{ text: 'go' }], metadata: { skillId } } });

  /** The status each entry point gives for one credential. */
  async function statuses(r: Row, bearer?: string): Promise<Record<string, number>> {
    const auth = (req: request.Test) => (bearer ? req.set('Authorization', `Bearer ${bearer}`) : req);
    const guard = await auth(request(t.url).get(`/${skillIdOf(r)}/x`));
    const rpc = await auth(request(t.url).post('/a2a/jsonrpc').set('A2A-Version', '1.0')).send({
      jsonrpc: '2.0',
      id: 1,
      method: 'SendMessage',
      params: message(skillIdOf(r)),
    });
    const rest = await auth(request(t.url).post('/message:send').set('A2A-Version', '1.0')).send(message(skillIdOf(r)));
    for (const [name, res] of [
      ['jsonrpc', rpc],
      ['rest', rest],
    ] as const) {
      if (res.status === 200) expect({ name, ran: JSON.stringify(res.body).includes('"ran"') }).toEqual({ name, ran: true });
    }
    return { guard: guard.status, jsonrpc: rpc.status, rest: rest.status };
  }

  it.each(TABLE.map((r) => [r.cls, r.method, r.expect === 'public' ? 'public' : r.expect.join(' ') || 'any valid token', r] as const))(
    'controller %s, handler %s: %s',
    async (_c, _m, _e, r) => {
      const all = (s: number) => ({ guard: s, jsonrpc: s, rest: s });
      const isPublic = r.expect === 'public';
      const needs = isPublic ? [] : (r.expect as string[]);
      expect(await statuses(r)).toEqual(all(isPublic ? 200 : 401));
      expect(await statuses(r, await token([]))).toEqual(all(needs.length ? 403 : 200));
      if (needs.length === 2) expect(await statuses(r, await token([needs[0]]))).toEqual(all(403));
      expect(await statuses(r, await token(needs))).toEqual(all(200));

      const card = (await request(t.url).get('/.well-known/agent-card.json')).body as { skills: Array<{ id: string; securityRequirements: unknown }> };
      const skill = card.skills.find((s) => s.id === skillIdOf(r));
      expect(skill?.securityRequirements).toEqual(isPublic ? [{}] : [{ schemes: { oauth2: needs.length ? { list: needs } : {} } }]);
    },
  );
});

describe('a same-level contradiction refuses to boot', () => {
  it.each([
    ['controller', true],
    ['handler', false],
  ] as const)('@Public() and @RequireScopes() on the same %s', async (level, onClass) => {
    const jwks = await new JwksServer().start();
    class Contradiction {
      handle() {
        return {};
      }
    }
    const proto = Contradiction.prototype as unknown as Record<string, unknown>;
    const d = Object.getOwnPropertyDescriptor(proto, 'handle')!;
    Get()(proto, 'handle', d);
    if (!onClass) {
      Public()(proto, 'handle', d);
      RequireScopes(M)(proto, 'handle', d);
    }
    Controller('c')(Contradiction);
    if (onClass) {
      Public()(Contradiction);
      RequireScopes(C)(Contradiction);
    }
    try {
      await expect(
        startTestApp({
          platform: 'express',
          auth: { issuer: jwks.issuer, audience: AUD, jwksUri: jwks.jwksUri, scopes: TEST_SCOPES },
          controllers: [Contradiction],
          logger: false,
        }),
      ).rejects.toThrow(
        `nestjs-a2a-auth: invalid option \`@Public/@RequireScopes\`: Contradiction.handle: @Public() and @RequireScopes(${onClass ? C : M}) on the same ${level} contradict each other`,
      );
    } finally {
      await jwks.stop();
    }
  });
});
