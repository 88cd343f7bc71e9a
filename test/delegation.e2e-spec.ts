import { randomUUID } from 'node:crypto';
import { Controller, Get, Post, UseGuards } from '@nestjs/common';
import { AuthGuard } from '@nestjs/passport';
import request from 'supertest';
import { Role, type Message } from '@a2a-js/sdk';
import { AgentEvent, type AgentExecutor, type ExecutionEventBus, type RequestContext } from '@a2a-js/sdk/server';
import {
  A2A_JWT_STRATEGY,
  A2ACaller,
  A2AEndpoint,
  A2AHttpTransport,
  A2ASkillAuthorizer,
  A2AUser,
  AgentCardService,
  AgentSkill,
  Delegation,
  RequireScopes,
  a2aCallerOf,
  createA2ARequestHandler,
  type AuditSink,
  type AuthAuditEvent,
} from 'nestjs-a2a-auth';
import { actorsOf, assertDelegation, delegationFor, resolveDelegation, resolveOptions, DEFAULT_DELEGATION, MAX_ACT_DEPTH } from 'nestjs-a2a-auth/core';
import { A2AJsonRpcController, A2ARestController } from '../apps/expense-agent/src/a2a/a2a.controllers';
import { TestIssuer } from './fixtures/auth-harness';
import { PLATFORMS, startTestApp, type TestApp } from './fixtures/test-app';

const AUD = 'http://127.0.0.1/deleg-agent';
const PREFIX = 'Bearer realm="a2a", resource_metadata="http://127.0.0.1/.well-known/oauth-protected-resource/deleg-agent"';
const REFUSED = 'The delegation chain of the access token (RFC 8693 act claim) is not accepted for this resource';
const REFUSED_HEADER = `${PREFIX}, error="insufficient_scope", error_description="${REFUSED}"`;
const REFUSED_BODY = { error: 'insufficient_scope', error_description: REFUSED };
const INVALID_HEADER = `${PREFIX}, error="invalid_token", error_description="The access token is invalid"`;

// user-1, through agent-b (acting now), which was called by agent-c.
const ACT1 = { sub: 'agent-b', client_id: 'agent-b' };
const ACT2 = { ...ACT1, act: { sub: 'agent-c', client_id: 'agent-c', iss: 'https://other.example' } };
const CHAIN1 = [{ sub: 'agent-b', client_id: 'agent-b' }];
const CHAIN2 = [...CHAIN1, { sub: 'agent-c', client_id: 'agent-c', iss: 'https://other.example' }];

function actorsView(c: A2ACaller) {
  return { actors: c.actors, frozen: Object.isFrozen(c.actors) && c.actors.every((a) => Object.isFrozen(a)) };
}

@Controller('d')
class DelegationRoutesController {
  @RequireScopes('expense:read')
  @Get('plain')
  plain(@A2ACaller() c: A2ACaller) {
    return actorsView(c);
  }

  @Delegation({ accept: true })
  @Get('open')
  open(@A2ACaller() c: A2ACaller) {
    return actorsView(c);
  }

  @Delegation({ accept: true, maxChainLength: 1, trustedActors: ['agent-b'] })
  @Get('trusted')
  trusted(@A2ACaller() c: A2ACaller) {
    return actorsView(c);
  }
}

@Delegation({ accept: true, trustedActors: ['agent-x'] })
@Controller('c')
class ClassDelegationController {
  @Get()
  classLevel(@A2ACaller() c: A2ACaller) {
    return actorsView(c);
  }

  // The method's fields override the class's: agent-b is trusted here, and only one hop.
  @Delegation({ trustedActors: ['agent-b'], maxChainLength: 1 })
  @Get('method')
  methodLevel(@A2ACaller() c: A2ACaller) {
    return actorsView(c);
  }
}

@Controller('p')
class PassportDelegationController {
  @UseGuards(AuthGuard(A2A_JWT_STRATEGY))
  @Get()
  me(@A2ACaller() c: A2ACaller) {
    return actorsView(c);
  }
}

const collect = (): AuditSink & { events: AuthAuditEvent[] } => {
  const events: AuthAuditEvent[] = [];
  return { wantsSuccesses: true, events, emit: (e) => events.push(e) };
};

describe('delegation chains (pure)', () => {
  it('actorsOf reads nested act claims nearest first, frozen; refuses malformed ones with malformed_token', () => {
    expect(actorsOf({})).toEqual([]);
    expect(actorsOf({ act: ACT2 })).toEqual(CHAIN2);
    expect(Object.isFrozen(actorsOf({ act: ACT2 }))).toBe(true);
    // Members that identify nobody are not kept.
    expect(actorsOf({ act: { sub: 's', scope: 'x', nbf: 1 } })).toEqual([{ sub: 's' }]);
    let deep: Record<string, unknown> = { sub: 'last' };
    for (let i = 1; i < MAX_ACT_DEPTH; i++) deep = { sub: `a${i}`, act: deep };
    expect(actorsOf({ act: deep })).toHaveLength(MAX_ACT_DEPTH);
    for (const [act, detail] of [
      ['agent-b', 'act is not a JSON object'],
      [null, 'act is not a JSON object'],
      [[ACT1], 'act is not a JSON object'],
      [{ sub: 7 }, 'act.sub is not a non-empty string'],
      [{ client_id: '' }, 'act.client_id is not a non-empty string'],
      [{ sub: 'a', iss: {} }, 'act.iss is not a non-empty string'],
      [{ iss: 'https://x' }, 'an actor names neither sub nor client_id'],
      [{ sub: 'a', act: 1 }, 'act is not a JSON object'],
      [{ sub: 'top', act: deep }, `act nests deeper than ${MAX_ACT_DEPTH}`],
    ] as const) {
      expect(() => actorsOf({ act })).toThrow(expect.objectContaining({ reason: 'malformed_token', status: 401, message: detail }));
    }
  });

  it('resolveDelegation validates and applies defaults; route fields override the module policy', () => {
    expect(resolveDelegation(undefined)).toBe(DEFAULT_DELEGATION);
    expect(DEFAULT_DELEGATION).toEqual({ accept: false, maxChainLength: 2 });
    expect(() => resolveDelegation({ accept: 'yes' as never })).toThrow('accept must be a boolean');
    for (const n of [0, 17, 1.5, NaN])
      expect(() => resolveDelegation({ maxChainLength: n })).toThrow(`maxChainLength must be an integer from 1 to 16, got ${n}`);
    expect(() => resolveDelegation({ trustedActors: [''] })).toThrow('trustedActors must be a list of non-empty strings');
    const mod = resolveDelegation({ accept: true, maxChainLength: 3 });
    const route = Object.freeze({ maxChainLength: 1 });
    expect(delegationFor(mod, route)).toEqual({ accept: true, maxChainLength: 1, trustedActors: undefined });
    expect(delegationFor(mod, route)).toBe(delegationFor(mod, route));
    expect(() => Delegation({ maxChainLength: 0 })).toThrow('@Delegation: maxChainLength must be an integer from 1 to 16, got 0');
    const base = { issuer: 'https://iss.example', audience: AUD };
    expect(resolveOptions(base).delegation).toBe(DEFAULT_DELEGATION);
    expect(() => resolveOptions({ ...base, delegation: { maxChainLength: 0 } })).toThrow(
      'nestjs-a2a-auth: invalid option `delegation`: maxChainLength must be an integer from 1 to 16, got 0',
    );
  });

  it('assertDelegation: direct tokens pass; refusals carry their precise reason; only the current actor must be trusted (RFC 8693 §4.1)', () => {
    expect(() => assertDelegation([], DEFAULT_DELEGATION)).not.toThrow();
    const reason = (actors: typeof CHAIN2, p: Parameters<typeof resolveDelegation>[0]) => {
      try {
        assertDelegation(actors, resolveDelegation(p));
        return 'ok';
      } catch (e) {
        return (e as { reason: string }).reason;
      }
    };
    expect(reason(CHAIN1, undefined)).toBe('delegation_not_allowed');
    expect(reason(CHAIN2, { accept: true })).toBe('ok');
    expect(reason(CHAIN2, { accept: true, maxChainLength: 1 })).toBe('delegation_too_deep');
    expect(reason(CHAIN2, { accept: true, trustedActors: ['agent-c'] })).toBe('untrusted_actor');
    expect(reason(CHAIN2, { accept: true, trustedActors: ['agent-b'] })).toBe('ok');
    expect(reason([{ sub: 'agent-b' }] as never, { accept: true, trustedActors: ['agent-b'] })).toBe('ok');
  });
});

describe.each(PLATFORMS)('delegation through the guard on %s', (platform) => {
  let idp: TestIssuer;
  let strict: TestApp;
  let lenient: TestApp;
  const strictAudit = collect();
  const lenientAudit = collect();

  beforeAll(async () => {
    idp = await TestIssuer.start({ audience: AUD });
    const controllers = [DelegationRoutesController, ClassDelegationController];
    strict = await idp.startApp({ platform, controllers, auth: { auditSink: strictAudit } });
    lenient = await idp.startApp({ platform, controllers, auth: { auditSink: lenientAudit, delegation: { accept: true, maxChainLength: 1 } } });
  });
  afterAll(async () => {
    await idp?.close();
  });

  const delegated = (act: unknown) => idp.mint({ claims: { sub: 'user-1', client_id: 'agent-b', act } });
  const get = (app: TestApp, path: string, tok: string) => request(app.url).get(path).set('Authorization', `Bearer ${tok}`);
  const lastFailure = (a: { events: AuthAuditEvent[] }) => a.events.filter((e) => e.outcome === 'failure').at(-1);

  it('by default a token with act is refused: 403 insufficient_scope, audited as delegation_not_allowed with the chain', async () => {
    const r = await get(strict, '/d/plain', await delegated(ACT2));
    expect(r.status).toBe(403);
    expect(r.headers['www-authenticate']).toBe(REFUSED_HEADER);
    expect(r.headers['cache-control']).toBe('no-store');
    expect(r.body).toEqual(REFUSED_BODY);
    expect(lastFailure(strictAudit)).toMatchObject({
      outcome: 'failure',
      reason: 'delegation_not_allowed',
      status: 403,
      verified: true,
      clientId: 'agent-b',
      subject: 'user-1',
      actors: [
        { clientId: 'agent-b', subject: 'agent-b' },
        { clientId: 'agent-c', subject: 'agent-c' },
      ],
      route: '/d/plain',
    });
    // A direct token is unaffected, and records no chain.
    const ok = await get(strict, '/d/plain', await idp.mint());
    expect(ok.status).toBe(200);
    expect(ok.body).toEqual({ actors: [], frozen: true });
    expect(strictAudit.events.at(-1)).toMatchObject({ outcome: 'success', reason: 'ok' });
    expect(strictAudit.events.at(-1)!.actors).toBeUndefined();
  });

  it('@Delegation({ accept: true }) lets a chain through: @A2ACaller().actors is the chain, nearest first, frozen', async () => {
    const r = await get(strict, '/d/open', await delegated(ACT2));
    expect(r.status).toBe(200);
    expect(r.body).toEqual({ actors: CHAIN2, frozen: true });
    expect(strictAudit.events.at(-1)).toMatchObject({
      outcome: 'success',
      actors: [
        { clientId: 'agent-b', subject: 'agent-b' },
        { clientId: 'agent-c', subject: 'agent-c' },
      ],
    });
  });

  it('maxChainLength and trustedActors: 403 delegation_too_deep and untrusted_actor, same answer on the wire', async () => {
    const deep = await get(strict, '/d/trusted', await delegated(ACT2));
    expect([deep.status, deep.headers['www-authenticate'], deep.body]).toEqual([403, REFUSED_HEADER, REFUSED_BODY]);
    expect(lastFailure(strictAudit)).toMatchObject({ reason: 'delegation_too_deep', status: 403, detail: 'delegation chain of 2 actors exceeds 1' });
    const untrusted = await get(strict, '/d/trusted', await delegated({ sub: 'agent-z', client_id: 'agent-z' }));
    expect([untrusted.status, untrusted.headers['www-authenticate'], untrusted.body]).toEqual([403, REFUSED_HEADER, REFUSED_BODY]);
    expect(lastFailure(strictAudit)).toMatchObject({ reason: 'untrusted_actor', status: 403, actors: [{ clientId: 'agent-z', subject: 'agent-z' }] });
    const ok = await get(strict, '/d/trusted', await delegated(ACT1));
    expect(ok.status).toBe(200);
    expect(ok.body).toEqual({ actors: CHAIN1, frozen: true });
  });

  it('class-level @Delegation applies to its methods; a method-level one overrides it field by field', async () => {
    const cls = await get(strict, '/c', await delegated(ACT1));
    expect([cls.status, cls.body]).toEqual([403, REFUSED_BODY]);
    expect(lastFailure(strictAudit)).toMatchObject({ reason: 'untrusted_actor' });
    const m = await get(strict, '/c/method', await delegated(ACT1));
    expect([m.status, m.body]).toEqual([200, { actors: CHAIN1, frozen: true }]);
    const mDeep = await get(strict, '/c/method', await delegated(ACT2));
    expect(mDeep.status).toBe(403);
    expect(lastFailure(strictAudit)).toMatchObject({ reason: 'delegation_too_deep' });
  });

  it('the module-wide delegation option applies to every route without @Delegation', async () => {
    const one = await get(lenient, '/d/plain', await delegated(ACT1));
    expect([one.status, one.body]).toEqual([200, { actors: CHAIN1, frozen: true }]);
    const two = await get(lenient, '/d/plain', await delegated(ACT2));
    expect([two.status, two.headers['www-authenticate'], two.body]).toEqual([403, REFUSED_HEADER, REFUSED_BODY]);
    expect(lastFailure(lenientAudit)).toMatchObject({ reason: 'delegation_too_deep', status: 403 });
    // A route's @Delegation overrides only the fields it names: /d/open inherits the module's maxChainLength 1.
    const open = await get(lenient, '/d/open', await delegated(ACT2));
    expect([open.status, open.body]).toEqual([403, REFUSED_BODY]);
    expect(lastFailure(lenientAudit)).toMatchObject({ reason: 'delegation_too_deep' });
  });

  it('a malformed act claim is an invalid token (401 malformed_token), even where delegation is accepted', async () => {
    for (const act of ['agent-b', { iss: 'https://x' }, { sub: 5 }]) {
      const r = await get(strict, '/d/open', await delegated(act));
      expect(r.status).toBe(401);
      expect(r.headers['www-authenticate']).toBe(INVALID_HEADER);
      expect(r.body).toEqual({ error: 'invalid_token', error_description: 'The access token is invalid' });
      expect(lastFailure(strictAudit)).toMatchObject({ reason: 'malformed_token', status: 401, verified: false });
      expect(lastFailure(strictAudit)!.actors).toBeUndefined();
    }
  });

  it("the 'a2a-jwt' Passport strategy applies the module-wide policy (passport's AuthGuard answers every refusal with 401)", async () => {
    const passport = await idp.startApp({ platform, controllers: [PassportDelegationController], globalGuard: false, auth: { auditSink: strictAudit } });
    const refused = await get(passport, '/p', await delegated(ACT1));
    expect(refused.status).toBe(401);
    expect(lastFailure(strictAudit)).toMatchObject({ reason: 'delegation_not_allowed', route: '/p' });
    const direct = await get(passport, '/p', await idp.mint());
    expect([direct.status, direct.body]).toEqual([200, { actors: [], frozen: true }]);
  });

  it('the verified-token cache does not bypass the policy: the same delegated token is refused again on a cache hit', async () => {
    const tok = await delegated(ACT2);
    expect((await get(strict, '/d/open', tok)).status).toBe(200);
    const again = await get(strict, '/d/plain', tok);
    expect([again.status, again.body]).toEqual([403, REFUSED_BODY]);
    expect(lastFailure(strictAudit)).toMatchObject({ reason: 'delegation_not_allowed' });
  });
});

/** Two skills: `direct` follows the module policy (refuse chains), `relay` accepts agent-b acting for someone. */
@Controller('skills')
class DelegationSkillsController {
  @AgentSkill({ id: 'direct', name: 'Direct', description: 'Only for direct callers' })
  @RequireScopes('echo:use')
  @Post('direct')
  direct() {
    return {};
  }

  @AgentSkill({ id: 'relay', name: 'Relay', description: 'Accepts agent-b acting for a user' })
  @Delegation({ accept: true, trustedActors: ['agent-b'] })
  @RequireScopes('echo:use')
  @Post('relay')
  relay() {
    return {};
  }
}

const actorsExecutor: AgentExecutor = {
  execute: async (ctx: RequestContext, bus: ExecutionEventBus) => {
    const u = ctx.context.user as A2AUser;
    const m: Message = {
      messageId: randomUUID(),
      contextId: ctx.contextId,
      taskId: '',
      role: Role.ROLE_AGENT,
      parts: [
        {
          content: { $case: 'data', value: { userActors: u.actors, callerActors: a2aCallerOf(ctx.context)?.actors } },
          metadata: undefined,
          filename: '',
          mediaType: 'application/json',
        },
      ],
      metadata: undefined,
      extensions: [],
      referenceTaskIds: [],
    };
    bus.publish(AgentEvent.message(m));
    bus.finished();
  },
  cancelTask: async () => undefined,
};

describe.each(PLATFORMS)('delegation through both A2A bindings on %s', (platform) => {
  let idp: TestIssuer;
  let t: TestApp;
  const audit = collect();

  beforeAll(async () => {
    idp = await TestIssuer.start({ audience: AUD });
    t = await idp.startApp({
      platform,
      controllers: [DelegationSkillsController, A2AJsonRpcController, A2ARestController],
      providers: [
        A2ASkillAuthorizer,
        {
          provide: A2AHttpTransport,
          useFactory: (cards: AgentCardService, authz: A2ASkillAuthorizer) => new A2AHttpTransport(() => createA2ARequestHandler(cards, actorsExecutor), authz),
          inject: [AgentCardService, A2ASkillAuthorizer],
        },
      ],
      auth: {
        auditSink: audit,
        scopes: { 'echo:use': 'Use echo' },
        tokenUrl: `${idp.jwks.url}/token`,
        card: {
          name: 'Deleg Agent',
          description: 'delegation',
          url: AUD,
          interfaces: [
            { url: '/a2a/jsonrpc', protocolBinding: 'JSONRPC' },
            { url: '/', protocolBinding: 'HTTP+JSON' },
          ],
        },
      },
    });
  });
  afterAll(async () => {
    await idp?.close();
  });

  const A2A_PREFIX = 'Bearer realm="Deleg Agent", resource_metadata="http://127.0.0.1/.well-known/oauth-protected-resource/deleg-agent"';
  const delegated = (act: unknown) => idp.mint({ claims: { sub: 'user-1', client_id: 'agent-b', scope: 'echo:use', act } });
  const send = (path: string, body: unknown, tok: string) =>
    request(t.url)
      .post(path)
      .set('Content-Type', 'application/json')
      .set('A2A-Version', '1.0')
      .set('Authorization', `Bearer ${tok}`)
      .send(JSON.stringify(body));
  const params = (skillId: string) => ({ message: { messageId: randomUUID(), role: 'ROLE_USER', parts: [{ text: 'hi' }], metadata: { skillId } } });
  const both = (skillId: string, tok: string) =>
    Promise.all([
      send('/a2a/jsonrpc', { jsonrpc: '2.0', id: 1, method: 'SendMessage', params: params(skillId) }, tok),
      send('/message:send', params(skillId), tok),
    ]);

  it('a skill with @Delegation runs for a trusted actor; the executor sees the chain on the SDK user and the caller', async () => {
    const [rpc, rest] = await both('relay', await delegated(ACT2));
    expect(rpc.status).toBe(200);
    expect(rpc.body.result.message.parts[0].data).toEqual({ userActors: CHAIN2, callerActors: CHAIN2 });
    expect(rest.status).toBe(200);
    expect(rest.body.message.parts[0].data).toEqual({ userActors: CHAIN2, callerActors: CHAIN2 });
    expect(audit.events.at(-1)).toMatchObject({ outcome: 'success', skillId: 'relay', actors: [{ clientId: 'agent-b' }, { clientId: 'agent-c' }] });
  });

  it('refusals on both bindings: 403 with the exact challenge and body, audited with the skill and the precise reason', async () => {
    const cases: Array<[string, unknown, string]> = [
      ['direct', ACT1, 'delegation_not_allowed'],
      ['relay', { sub: 'agent-z', client_id: 'agent-z' }, 'untrusted_actor'],
      ['relay', { ...ACT1, act: { sub: 'c', act: { sub: 'd' } } }, 'delegation_too_deep'],
    ];
    for (const [skillId, act, reason] of cases) {
      audit.events.length = 0;
      for (const r of await both(skillId, await delegated(act))) {
        expect(r.status).toBe(403);
        expect(r.headers['www-authenticate']).toBe(`${A2A_PREFIX}, error="insufficient_scope", error_description="${REFUSED}"`);
        expect(r.body).toEqual(REFUSED_BODY);
      }
      expect(audit.events.map((e) => [e.outcome, e.reason, e.status, e.skillId])).toEqual([
        ['failure', reason, 403, skillId],
        ['failure', reason, 403, skillId],
      ]);
    }
  });

  it('a call that runs no skill (GetTask) follows the module-wide policy: a delegated token is refused', async () => {
    const tok = await delegated(ACT1);
    audit.events.length = 0;
    const rpc = await send('/a2a/jsonrpc', { jsonrpc: '2.0', id: 2, method: 'GetTask', params: { id: 'nope' } }, tok);
    const rest = await request(t.url).get('/tasks/nope').set('A2A-Version', '1.0').set('Authorization', `Bearer ${tok}`);
    for (const r of [rpc, rest]) {
      expect(r.status).toBe(403);
      expect(r.headers['www-authenticate']).toBe(`${A2A_PREFIX}, error="insufficient_scope", error_description="${REFUSED}"`);
      expect(r.body).toEqual(REFUSED_BODY);
    }
    expect(audit.events.map((e) => e.reason)).toEqual(['delegation_not_allowed', 'delegation_not_allowed']);
  });

  it('@Delegation on an @A2AEndpoint() refuses to boot', async () => {
    @Delegation({ accept: true })
    @A2AEndpoint()
    @Controller('bad')
    class BadEndpoint {
      @Post()
      x() {
        return {};
      }
    }
    await expect(
      startTestApp({ platform, controllers: [BadEndpoint], auth: { issuer: idp.issuer, jwksUri: idp.jwks.jwksUri, audience: AUD } }),
    ).rejects.toThrow(
      'nestjs-a2a-auth: invalid option `@Delegation`: BadEndpoint.x: an @A2AEndpoint() takes its delegation policy from the skills and the module; remove @Delegation() from it',
    );
  });
});
