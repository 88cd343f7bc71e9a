import { randomUUID } from 'node:crypto';
import { Controller, Get, Req, UseGuards } from '@nestjs/common';
import { AuthGuard } from '@nestjs/passport';
import { A2A_JWT_STRATEGY, A2ASkillAuthorizer, AgentSkill, DPoP, type AuditSink, type AuthAuditEvent, type DPoPMode } from 'nestjs-a2a-auth';
import { A2AJsonRpcController, A2ARestController } from '../apps/expense-agent/src/a2a/a2a.controllers';
import { TestIssuer } from './fixtures/auth-harness';
import { replyingTransport } from './fixtures/a2a-reply';
import { PLATFORMS, type TestApp } from './fixtures/test-app';
import { mintProof, proofKey, send, type Answer, type ProofKey } from './dpop-helpers';

// One DPoP decision at every entry point: the global guard, AuthGuard('a2a-jwt') (the Passport strategy, globalGuard
// off) and both A2A bindings (JSON-RPC and HTTP+JSON, as a message to a skill) give the same reason code for the same
// token and proof, and the guard and both bindings the same status, WWW-Authenticate and body; with the module-wide
// mode 'allowed' and 'required', on express and fastify. Each proof is made for the request it goes with (htm, htu).

const AUD = 'http://127.0.0.1/dpop-eq';
const RM = 'http://127.0.0.1/.well-known/oauth-protected-resource/dpop-eq';
const BEARER = `Bearer realm="eq", resource_metadata="${RM}"`;
const DPOP = `DPoP realm="eq", resource_metadata="${RM}", algs="ES256 PS256 RS256 EdDSA"`;

const TRANSPORT = replyingTransport('done');

@Controller('t')
class SkillsController {
  @AgentSkill({ id: 'who', name: 'Who am I', description: 'Needs any valid token' })
  @Get('me')
  me(@Req() req: { user: { clientId?: string } }) {
    return { clientId: req.user.clientId };
  }

  @DPoP('required')
  @Get('strict')
  strict(@Req() req: { user: { clientId?: string } }) {
    return { clientId: req.user.clientId };
  }
}

@Controller('t')
class PassportOnlyController {
  @UseGuards(AuthGuard(A2A_JWT_STRATEGY))
  @Get('me')
  me(@Req() req: { user: { clientId?: string } }) {
    return { clientId: req.user.clientId };
  }

  @DPoP('required')
  @UseGuards(AuthGuard(A2A_JWT_STRATEGY))
  @Get('strict')
  strict(@Req() req: { user: { clientId?: string } }) {
    return { clientId: req.user.clientId };
  }
}

type EntryPoint = 'guard' | 'strategy' | 'jsonrpc' | 'rest';
const ENTRY_POINTS: readonly EntryPoint[] = ['guard', 'strategy', 'jsonrpc', 'rest'];

/** The method and path of one entry point (`/t/strict` only exists as a REST route). */
function target(e: EntryPoint, path: string): { method: string; path: string } {
  if (e === 'guard' || e === 'strategy') return { method: 'GET', path };
  return e === 'jsonrpc' ? { method: 'POST', path: '/a2a/jsonrpc' } : { method: 'POST', path: '/message:send' };
}

function body(e: EntryPoint): unknown {
  const params = { message: { messageId: randomUUID(), role: 'ROLE_USER', parts: [{ text: 'hello' }], metadata: { skillId: 'who' } } };
  if (e === 'jsonrpc') return { jsonrpc: '2.0', id: 1, method: 'SendMessage', params };
  return e === 'rest' ? params : undefined;
}

const proofError = (error: string, d: string, mode: DPoPMode) => ({
  status: 401,
  wwwAuthenticate:
    mode === 'required' ? `${DPOP}, error="${error}", error_description="${d}"` : `${BEARER}, ${DPOP}, error="${error}", error_description="${d}"`,
  body: { error, error_description: d },
});

/** The request a case sends: the Authorization value and the DPoP header lines, for a given method and URL. */
type Make = (w: { pk: ProofKey; other: ProofKey; idp: TestIssuer }, htm: string, htu: string) => Promise<{ authorization: string; proofs: string[] }>;

interface Case {
  name: string;
  path?: string;
  make: Make;
  /** Reason per module-wide mode. */
  reason: Record<DPoPMode & ('allowed' | 'required'), string>;
  wire?: (mode: DPoPMode) => Omit<Answer, 'dpopNonce' | 'retryAfter'>;
}

const bound = (w: { idp: TestIssuer }, k: ProofKey) => w.idp.mint({ claims: { cnf: { jkt: k.jkt } } });
const CASES: Case[] = [
  {
    name: 'valid proof',
    make: async (w, htm, htu) => {
      const t = await bound(w, w.pk);
      return { authorization: `DPoP ${t}`, proofs: [mintProof(w.pk, { htm, htu, token: t })] };
    },
    reason: { allowed: 'ok', required: 'ok' },
  },
  {
    name: 'missing proof',
    make: async (w) => ({ authorization: `DPoP ${await bound(w, w.pk)}`, proofs: [] }),
    reason: { allowed: 'dpop_proof_missing', required: 'dpop_proof_missing' },
    wire: (m) => proofError('invalid_dpop_proof', 'The DPoP proof is missing', m),
  },
  {
    name: 'bad signature',
    make: async (w, htm, htu) => {
      const t = await bound(w, w.pk);
      return { authorization: `DPoP ${t}`, proofs: [mintProof(w.pk, { htm, htu, token: t, signWith: w.other.key.privateKey })] };
    },
    reason: { allowed: 'dpop_invalid_signature', required: 'dpop_invalid_signature' },
    wire: (m) => proofError('invalid_dpop_proof', 'The DPoP proof is invalid', m),
  },
  {
    name: 'proof for another URI',
    make: async (w, htm, htu) => {
      const t = await bound(w, w.pk);
      return { authorization: `DPoP ${t}`, proofs: [mintProof(w.pk, { htm, htu: `${htu}/elsewhere`, token: t })] };
    },
    reason: { allowed: 'dpop_htu_mismatch', required: 'dpop_htu_mismatch' },
    wire: (m) => proofError('invalid_dpop_proof', 'The DPoP proof does not match this request', m),
  },
  {
    name: 'proof for another method',
    make: async (w, htm, htu) => {
      const t = await bound(w, w.pk);
      return { authorization: `DPoP ${t}`, proofs: [mintProof(w.pk, { htm: htm === 'GET' ? 'PUT' : 'GET', htu, token: t })] };
    },
    reason: { allowed: 'dpop_htm_mismatch', required: 'dpop_htm_mismatch' },
    wire: (m) => proofError('invalid_dpop_proof', 'The DPoP proof does not match this request', m),
  },
  {
    name: 'token bound to another key',
    make: async (w, htm, htu) => {
      const t = await bound(w, w.other);
      return { authorization: `DPoP ${t}`, proofs: [mintProof(w.pk, { htm, htu, token: t })] };
    },
    reason: { allowed: 'dpop_jkt_mismatch', required: 'dpop_jkt_mismatch' },
    wire: (m) => proofError('invalid_token', 'The access token is not bound to the DPoP proof key', m),
  },
  {
    name: 'unbound token with the DPoP scheme',
    make: async (w, htm, htu) => {
      const t = await w.idp.mint();
      return { authorization: `DPoP ${t}`, proofs: [mintProof(w.pk, { htm, htu, token: t })] };
    },
    reason: { allowed: 'dpop_unbound_token', required: 'dpop_unbound_token' },
    wire: (m) => proofError('invalid_token', 'The access token is not DPoP-bound', m),
  },
  {
    name: 'DPoP-bound token as Bearer',
    make: async (w) => ({ authorization: `Bearer ${await bound(w, w.pk)}`, proofs: [] }),
    reason: { allowed: 'dpop_bound_token_as_bearer', required: 'dpop_required' },
    wire: (m) =>
      m === 'required'
        ? {
            status: 401,
            wwwAuthenticate: DPOP,
            body: { error: 'invalid_request', error_description: 'Authentication required: use the DPoP scheme with a DPoP proof' },
          }
        : {
            status: 401,
            wwwAuthenticate: `${BEARER}, error="invalid_token", error_description="The access token is DPoP-bound: send it with the DPoP scheme and a proof", ${DPOP}`,
            body: { error: 'invalid_token', error_description: 'The access token is DPoP-bound: send it with the DPoP scheme and a proof' },
          },
  },
  {
    name: 'plain Bearer token',
    make: async (w) => ({ authorization: `Bearer ${await w.idp.mint()}`, proofs: [] }),
    reason: { allowed: 'ok', required: 'dpop_required' },
    wire: () => ({
      status: 401,
      wwwAuthenticate: DPOP,
      body: { error: 'invalid_request', error_description: 'Authentication required: use the DPoP scheme with a DPoP proof' },
    }),
  },
];

describe.each(PLATFORMS)('one DPoP decision at every entry point on %s', (platform) => {
  let idp: TestIssuer;
  let pk: ProofKey;
  let other: ProofKey;
  const events: AuthAuditEvent[] = [];
  const sink: AuditSink = { wantsSuccesses: true, emit: (e) => events.push(e) };

  beforeAll(async () => {
    idp = await TestIssuer.start({ audience: AUD });
    pk = await proofKey('ES256');
    other = await proofKey('ES256');
  });
  afterAll(async () => {
    await idp?.close();
  });

  describe.each(['allowed', 'required'] as const)("dpop: '%s'", (mode) => {
    let a2a: TestApp;
    let strategy: TestApp;
    beforeAll(async () => {
      const auth = {
        dpop: mode,
        realm: 'eq',
        auditSink: sink,
        tokenUrl: `${idp.jwks.url}/token`,
        card: {
          name: 'eq',
          description: 'DPoP equivalence',
          url: AUD,
          interfaces: [
            { url: '/a2a/jsonrpc', protocolBinding: 'JSONRPC' as const },
            { url: '/', protocolBinding: 'HTTP+JSON' as const },
          ],
        },
      };
      a2a = await idp.startApp({
        platform,
        auth,
        controllers: [SkillsController, A2AJsonRpcController, A2ARestController],
        providers: [A2ASkillAuthorizer, TRANSPORT],
      });
      // Booted last, so it owns 'a2a-jwt' in Passport's per-process registry while this block runs.
      strategy = await idp.startApp({ platform, auth, controllers: [PassportOnlyController], globalGuard: false });
    });

    it.each(CASES.map((c) => [c.name, c] as const))('%s', async (_n, c) => {
      const reason = c.reason[mode];
      const seen: Record<string, string> = {};
      const wire: Record<string, Answer> = {};
      for (const e of ENTRY_POINTS) {
        const app = e === 'strategy' ? strategy : a2a;
        const t = target(e, c.path ?? '/t/me');
        const r = await c.make({ pk, other, idp }, t.method, `${app.url}${t.path}`);
        events.length = 0;
        const headers: Array<[string, string]> = [['Authorization', r.authorization], ...r.proofs.map((p) => ['DPoP', p] as [string, string])];
        wire[e] = await send(app.url, t.method, t.path, headers, body(e));
        seen[e] = events.length === 1 ? events[0].reason : `${events.length} events`;
      }
      for (const e of ENTRY_POINTS) expect({ entryPoint: e, reason: seen[e] }).toEqual({ entryPoint: e, reason });
      if (reason === 'ok') {
        for (const e of ENTRY_POINTS) expect({ entryPoint: e, status: wire[e].status }).toEqual({ entryPoint: e, status: 200 });
        return;
      }
      const want = c.wire!(mode);
      for (const e of ['guard', 'jsonrpc', 'rest'] as const) {
        const a = wire[e];
        expect({ entryPoint: e, status: a.status, wwwAuthenticate: a.wwwAuthenticate, body: a.body }).toEqual({ entryPoint: e, ...want });
      }
      expect({ status: wire.strategy.status, body: wire.strategy.body }).toEqual({ status: 401, body: { message: 'Unauthorized', statusCode: 401 } });
    });

    it("applies a route's @DPoP('required') at the guard and at AuthGuard('a2a-jwt') alike", async () => {
      for (const app of [a2a, strategy]) {
        events.length = 0;
        const r = await send(app.url, 'GET', '/t/strict', [['Authorization', `Bearer ${await idp.mint()}`]]);
        expect({ status: r.status, reasons: events.map((e) => e.reason) }).toEqual({ status: 401, reasons: ['dpop_required'] });
        const t = await bound({ idp }, pk);
        const ok = await send(app.url, 'GET', '/t/strict', [
          ['Authorization', `DPoP ${t}`],
          ['DPoP', mintProof(pk, { htm: 'GET', htu: `${app.url}/t/strict`, token: t })],
        ]);
        expect(ok.status).toBe(200);
      }
    });
  });
});
