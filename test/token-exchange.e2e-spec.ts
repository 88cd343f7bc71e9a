import { randomUUID } from 'node:crypto';
import { Controller, Module, Post, type INestApplication } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { ExpressAdapter } from '@nestjs/platform-express';
import { FastifyAdapter } from '@nestjs/platform-fastify';
import { decodeJwt } from 'jose';
import { Role, SendMessageRequest, type Message } from '@a2a-js/sdk';
import { AgentEvent, type AgentExecutor, type ExecutionEventBus, type RequestContext } from '@a2a-js/sdk/server';
import {
  A2AAuthModule,
  A2AHttpTransport,
  A2ASkillAuthorizer,
  A2AUser,
  AgentCardService,
  AgentSkill,
  ClientCredentialsError,
  ClientCredentialsTokenProvider,
  Delegation,
  RequireScopes,
  TokenEndpointError,
  TokenEndpointUnavailableError,
  TokenExchangeProvider,
  connectA2AAgent,
  createA2ARequestHandler,
  type AuthAuditEvent,
} from 'nestjs-a2a-auth';
import { A2AJsonRpcController, A2ARestController } from '../apps/expense-agent/src/a2a/a2a.controllers';
import { freePort } from './fixtures/card-app';
import { startCountingAuthServer, TEST_CLIENTS, type CountingAuthServer } from './fixtures/oidc-dev';
import { PLATFORMS } from './fixtures/test-app';

const AUD = 'http://127.0.0.1/exchange-agent';
const [SUBMITTER, APPROVER, ODD] = TEST_CLIENTS;
const creds = (c: (typeof TEST_CLIENTS)[number]) => ({ clientId: c.clientId, clientSecret: c.clientSecret });

describe('TokenExchangeProvider against the dev authorization server (oidc-provider, RFC 8693 grant)', () => {
  let as: CountingAuthServer;
  let subjectToken: string;

  beforeAll(async () => {
    as = await startCountingAuthServer({ audience: AUD, ttl: 300 });
    subjectToken = await new ClientCredentialsTokenProvider({
      tokenUrl: as.tokenUrl,
      ...creds(SUBMITTER),
      scopes: ['expense:submit', 'expense:read'],
    }).getAccessToken();
  });
  afterAll(async () => {
    await as?.close();
  });
  beforeEach(() => {
    as.mode = 'ok';
  });

  const exchanger = (o: Partial<ConstructorParameters<typeof TokenExchangeProvider>[0]> = {}) =>
    new TokenExchangeProvider({ tokenUrl: as.tokenUrl, ...creds(APPROVER), timeoutMs: 1000, ...o });

  it('issues a JWT access token that keeps the subject and names the exchanging client in act (RFC 8693 §4.1)', async () => {
    const t = await exchanger().getToken({ subjectToken, scopes: ['expense:read'] });
    const subject = decodeJwt(subjectToken);
    const claims = decodeJwt(t.accessToken);
    expect(claims).toMatchObject({
      iss: as.issuer,
      aud: AUD,
      sub: subject.sub,
      client_id: APPROVER.clientId,
      scope: 'expense:read',
      act: { sub: APPROVER.clientId, client_id: APPROVER.clientId },
    });
    expect(t.scopes).toEqual(['expense:read']);
    expect(t.tokenType).toBe('Bearer');
    expect(t.expiresAt).toBeLessThanOrEqual((subject.exp as number) * 1000);
  });

  it('chains: exchanging an exchanged token nests the earlier act inside the new one', async () => {
    const first = await exchanger().getAccessToken({ subjectToken, scopes: ['expense:read'] });
    const second = await exchanger(creds(ODD)).getAccessToken({ subjectToken: first, scopes: ['expense:read'] });
    expect(decodeJwt(second).act).toEqual({
      sub: ODD.clientId,
      client_id: ODD.clientId,
      act: { sub: APPROVER.clientId, client_id: APPROVER.clientId },
    });
  });

  it('sends the agent’s own client-credentials token as actor_token when given an actor provider', async () => {
    const actor = new ClientCredentialsTokenProvider({ tokenUrl: as.tokenUrl, ...creds(APPROVER), scopes: ['expense:read'] });
    const t = await exchanger({ actorTokenProvider: actor }).getAccessToken({ subjectToken, scopes: ['expense:read'] });
    expect(decodeJwt(t).act).toEqual({ sub: decodeJwt(await actor.getAccessToken()).sub, client_id: APPROVER.clientId });
    expect(actor.requestCount).toBe(1);
  });

  it('caches per (subject token hash, target, scopes) and shares one request between concurrent callers', async () => {
    const ex = exchanger();
    const before = as.tokenRequests;
    const all = await Promise.all(Array.from({ length: 5 }, () => ex.getAccessToken({ subjectToken, scopes: ['expense:read'] })));
    expect(new Set(all).size).toBe(1);
    expect(await ex.getAccessToken({ subjectToken, scopes: ['expense:read'] })).toBe(all[0]);
    expect(as.tokenRequests - before).toBe(1);
    // Another subject token is another entry.
    const other = await new ClientCredentialsTokenProvider({ tokenUrl: as.tokenUrl, ...creds(ODD), scopes: ['expense:read'] }).getAccessToken();
    await ex.getAccessToken({ subjectToken: other, scopes: ['expense:read'] });
    expect(as.tokenRequests - before).toBe(3); // the other client's own token, and its exchange
    expect(ex.requestCount).toBe(2);
    // Nothing on the provider shows a token or the secret.
    expect(JSON.stringify(ex)).toBe(JSON.stringify({ tokenUrl: as.tokenUrl, clientId: APPROVER.clientId }));
    expect(Object.values(ex).join(' ')).not.toContain(subjectToken.slice(-20));
  });

  it('never caches past the subject token’s exp', async () => {
    const short = await startCountingAuthServer({ audience: AUD, ttl: 2 });
    try {
      const subj = await new ClientCredentialsTokenProvider({ tokenUrl: short.tokenUrl, ...creds(SUBMITTER), scopes: ['expense:read'] }).getAccessToken();
      const ex = new TokenExchangeProvider({ tokenUrl: short.tokenUrl, ...creds(APPROVER), defaultExpiresInSeconds: 3600 });
      const t = await ex.getToken({ subjectToken: subj, scopes: ['expense:read'] });
      expect(t.expiresAt).toBeLessThanOrEqual((decodeJwt(subj).exp as number) * 1000);
      await new Promise((r) => setTimeout(r, 2100));
      await expect(ex.getToken({ subjectToken: subj, scopes: ['expense:read'] })).rejects.toEqual(new ClientCredentialsError('subjectToken has expired'));
    } finally {
      await short.close();
    }
  });

  it('refusals are typed errors that never carry the subject token or the secret', async () => {
    const ex = exchanger();
    const forged = subjectToken.slice(0, -4) + (subjectToken.endsWith('AAAA') ? 'BBBB' : 'AAAA');
    const bad = await ex.getToken({ subjectToken: forged }).catch((e: unknown) => e);
    expect(bad).toBeInstanceOf(TokenEndpointError);
    expect(bad).toMatchObject({ error: 'invalid_grant', status: 400, clientId: APPROVER.clientId });
    const scope = await ex.getToken({ subjectToken, scopes: ['expense:approve'] }).catch((e: unknown) => e);
    expect(scope).toMatchObject({ error: 'invalid_scope', status: 400 });
    for (const e of [bad, scope]) {
      const text = `${(e as Error).message} ${JSON.stringify(e)}`;
      expect(text).not.toContain(subjectToken.split('.')[2]);
      expect(text).not.toContain(APPROVER.clientSecret);
    }
    for (const s of ['', 'a b', 'x'.repeat(8193)]) await expect(ex.getToken({ subjectToken: s })).rejects.toBeInstanceOf(ClientCredentialsError);
    as.mode = 'error500';
    await expect(ex.getToken({ subjectToken, scopes: ['expense:submit'] })).rejects.toMatchObject({ kind: 'server_error', status: 500 });
    as.mode = 'hang';
    const hung = await ex.getToken({ subjectToken, scopes: ['expense:submit'] }).catch((e: unknown) => e);
    expect(hung).toBeInstanceOf(TokenEndpointUnavailableError);
    expect(hung).toMatchObject({ kind: 'timeout' });
  });
});

@Controller('skills')
class OnBehalfSkills {
  @AgentSkill({ id: 'relay', name: 'Relay', description: 'Runs on behalf of a user' })
  @Delegation({ accept: true, trustedActors: ['expense-approver'] })
  @RequireScopes('expense:read')
  @Post('relay')
  relay() {
    return {};
  }

  @AgentSkill({ id: 'direct', name: 'Direct', description: 'Direct callers only' })
  @RequireScopes('expense:read')
  @Post('direct')
  direct() {
    return {};
  }
}

const whoExecutor: AgentExecutor = {
  execute: async (ctx: RequestContext, bus: ExecutionEventBus) => {
    const u = ctx.context.user as A2AUser;
    const m: Message = {
      messageId: randomUUID(),
      contextId: ctx.contextId,
      taskId: '',
      role: Role.ROLE_AGENT,
      parts: [
        {
          content: { $case: 'data', value: { subject: u.caller?.subject, actors: u.actors } },
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

describe.each(PLATFORMS)('connectA2AAgent({ onBehalfOf }) on %s', (platform) => {
  let as: CountingAuthServer;
  let app: INestApplication;
  let url: string;
  const events: AuthAuditEvent[] = [];

  beforeAll(async () => {
    as = await startCountingAuthServer({ audience: AUD, ttl: 300 });
    const port = await freePort();
    url = `http://127.0.0.1:${port}`;
    @Module({
      imports: [
        A2AAuthModule.forRoot({
          issuer: as.issuer,
          audience: AUD,
          jwksUri: as.dev.jwksUri,
          tokenUrl: as.tokenUrl,
          scopes: { 'expense:read': 'Read expenses' },
          auditSink: { wantsSuccesses: true, emit: (e) => events.push(e) },
          card: {
            name: 'Downstream',
            description: 'acts for users',
            url,
            interfaces: [
              { url: '/a2a/jsonrpc', protocolBinding: 'JSONRPC' },
              { url: '/', protocolBinding: 'HTTP+JSON' },
            ],
          },
        }),
      ],
      controllers: [OnBehalfSkills, A2AJsonRpcController, A2ARestController],
      providers: [
        A2ASkillAuthorizer,
        {
          provide: A2AHttpTransport,
          useFactory: (cards: AgentCardService, authz: A2ASkillAuthorizer) => new A2AHttpTransport(() => createA2ARequestHandler(cards, whoExecutor), authz),
          inject: [AgentCardService, A2ASkillAuthorizer],
        },
      ],
    })
    class DownstreamModule {}
    app = await NestFactory.create(DownstreamModule, (platform === 'express' ? new ExpressAdapter() : new FastifyAdapter()) as never, { logger: false });
    await app.listen(port, '127.0.0.1');
  });
  afterAll(async () => {
    await app?.close();
    await as?.close();
  });

  const msg = (skillId: string) =>
    SendMessageRequest.fromJSON({ message: { messageId: randomUUID(), role: 'ROLE_USER', parts: [{ text: 'hi' }], metadata: { skillId } } });

  it.each(['JSONRPC', 'HTTP+JSON'])('over %s: the downstream skill runs for the subject, with the calling agent as the actor', async (binding) => {
    const subjectToken = await new ClientCredentialsTokenProvider({
      tokenUrl: as.tokenUrl,
      ...creds(SUBMITTER),
      scopes: ['expense:submit', 'expense:read'],
    }).getAccessToken();
    const c = await connectA2AAgent({
      agentUrl: url,
      credentials: creds(APPROVER),
      skillId: 'relay',
      onBehalfOf: subjectToken,
      preferredTransports: [binding],
    });
    expect(c.client.transport.protocolName).toBe(binding);
    const r = (await c.client.sendMessage(msg('relay'))) as Message;
    expect(r.parts[0].content).toEqual({
      $case: 'data',
      value: { subject: decodeJwt(subjectToken).sub, actors: [{ sub: APPROVER.clientId, client_id: APPROVER.clientId }] },
    });
    expect(c.exchange!.requestCount).toBe(1);
    expect(c.provider.requestCount).toBe(0); // no actor token asked for
    expect(decodeJwt(await c.exchange!.getAccessToken({ subjectToken, scopes: ['expense:read'] })).scope).toBe('expense:read');
  });

  it('with sendActorToken the agent’s own token goes as actor_token; a skill without @Delegation refuses the exchanged token (403)', async () => {
    const subjectToken = await new ClientCredentialsTokenProvider({
      tokenUrl: as.tokenUrl,
      ...creds(SUBMITTER),
      scopes: ['expense:submit', 'expense:read'],
    }).getAccessToken();
    const c = await connectA2AAgent({ agentUrl: url, credentials: creds(APPROVER), skillId: 'direct', onBehalfOf: subjectToken, sendActorToken: true });
    events.length = 0;
    const err = await c.client.sendMessage(msg('direct')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Error);
    expect(String((err as Error).message)).toContain('403');
    expect(c.provider.requestCount).toBe(1);
    expect(events.map((e) => [e.outcome, e.reason, e.skillId, e.actors])).toEqual([
      ['failure', 'delegation_not_allowed', 'direct', [{ clientId: APPROVER.clientId, subject: APPROVER.clientId }]],
    ]);
  });

  it('an empty onBehalfOf is refused before anything is sent', async () => {
    await expect(connectA2AAgent({ agentUrl: url, credentials: creds(APPROVER), onBehalfOf: '' })).rejects.toEqual(
      new ClientCredentialsError('onBehalfOf must be the bearer token of the request being served'),
    );
  });
});
