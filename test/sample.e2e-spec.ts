import { createServer } from 'node:net';
import request from 'supertest';
import { bootstrap, type RunningAgent } from '../apps/expense-agent/src/main';
import { runDemo } from '../apps/expense-agent/src/demo';
import { DevAuthServerRefusedError, startDevAuthServer } from '../apps/expense-agent/src/dev-auth-server';
import { DEV_CLIENT_DEFAULTS } from '../apps/expense-agent/src/dev-clients';
import { discoverTokenUrl } from '../apps/expense-agent/src/config';
import { main as cardMain } from '../apps/expense-agent/src/card-cli';
import { JwksServer, type JwksMode } from './fixtures/jwks-server';
import { generateTestKey } from './fixtures/keys';
import { mintToken } from './fixtures/tokens';
import { CapturingLogger, PLATFORMS } from './fixtures/test-app';

/** Hermetic environment: nothing from the developer's shell (A2A_ISSUER, PORT…) leaks into the sample. */
const ENV = { NODE_ENV: 'test' };
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;
const SCOPES = {
  'expense:submit': 'Submit expense claims for reimbursement',
  'expense:approve': 'Approve submitted expense claims',
  'expense:read': 'List and read expense claims',
  'expense:approve-large': 'Approve expense claims above the approval limit (asked for mid-task)',
};
const jwtPart = (t: string, i: 0 | 1) => JSON.parse(Buffer.from(t.split('.')[i], 'base64url').toString('utf8'));

/** A port on 127.0.0.1 with nothing listening. */
async function closedPort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

describe.each(PLATFORMS)('sample Expense agent on %s with the embedded oidc-provider', (platform) => {
  let agent: RunningAgent;
  let challenge: string;
  // dpop: 'allowed' in the sample: every challenge names both schemes (RFC 6750 §3 and RFC 9449 §7.1), the error on the one used.
  let bearer: string;
  let dpopChallenge: string;

  beforeAll(async () => {
    agent = await bootstrap({ platform, port: 0, env: ENV, logger: false, banner: false });
    bearer = `Bearer realm="Expense Reimbursement Agent", resource_metadata="${agent.publicUrl}/.well-known/oauth-protected-resource"`;
    dpopChallenge = `DPoP realm="Expense Reimbursement Agent", resource_metadata="${agent.publicUrl}/.well-known/oauth-protected-resource", algs="ES256 PS256 RS256 EdDSA"`;
    challenge = `${bearer}, ${dpopChallenge}`;
  });
  afterAll(async () => {
    await agent?.close();
  });

  /** A plain RFC 6749 §4.4 token request: grant_type + scope, client_secret_basic, no `resource`. */
  async function token(client: { clientId: string; clientSecret: string; scopes: string[] }) {
    const res = await request(agent.devAuth!.issuer)
      .post('/token')
      .auth(client.clientId, client.clientSecret)
      .type('form')
      .send({ grant_type: 'client_credentials', scope: client.scopes.join(' ') });
    expect(res.status).toBe(200);
    expect(res.headers['cache-control']).toBe('no-store');
    expect(res.body).toEqual({ access_token: expect.any(String), expires_in: 300, scope: client.scopes.join(' '), token_type: 'Bearer' });
    return res.body.access_token as string;
  }
  const submitter = () => token(DEV_CLIENT_DEFAULTS.submitter);
  const approver = () => token(DEV_CLIENT_DEFAULTS.approver);
  const submit = async (tok: string) => {
    const res = await request(agent.url)
      .post('/expenses')
      .set('Authorization', `Bearer ${tok}`)
      .send({ amount: 42.5, currency: 'EUR', description: 'Taxi to the airport' });
    expect(res.status).toBe(201);
    return res.body as { id: string };
  };

  it('starts the dev authorization server on 127.0.0.1 and trusts it', () => {
    expect(agent.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(agent.publicUrl).toBe(agent.url);
    expect(agent.devAuth).toMatchObject({
      audience: agent.publicUrl,
      tokenTtl: 300,
      tokenUrl: `${agent.devAuth!.issuer}/token`,
      jwksUri: `${agent.devAuth!.issuer}/jwks`,
    });
    expect(agent.devAuth!.issuer).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
  });

  it('serves the card without a token: tokenUrl is the dev token endpoint; each skill carries its scopes', async () => {
    const res = await request(agent.url).get('/.well-known/agent-card.json');
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toMatch(/^application\/json/);
    expect(res.headers['www-authenticate']).toBeUndefined();
    expect(res.headers['x-powered-by']).toBeUndefined();
    const card = JSON.parse(res.text);
    expect(card.name).toBe('Expense Reimbursement Agent');
    expect(card.supportedInterfaces).toEqual([
      { url: `${agent.publicUrl}/a2a/jsonrpc`, protocolBinding: 'JSONRPC', protocolVersion: '1.0' },
      { url: agent.publicUrl, protocolBinding: 'HTTP+JSON', protocolVersion: '1.0' },
    ]);
    expect(card.capabilities.extendedAgentCard).toBe(true);
    expect(card.securitySchemes.oauth2.oauth2SecurityScheme.flows).toEqual({ clientCredentials: { tokenUrl: agent.devAuth!.tokenUrl, scopes: SCOPES } });
    expect(card.securityRequirements).toEqual([{ schemes: { oauth2: {} } }]);
    const req = (scope: string) => [{ schemes: { oauth2: { list: [scope] } } }];
    expect(Object.fromEntries(card.skills.map((s: { id: string; securityRequirements: unknown }) => [s.id, s.securityRequirements]))).toEqual({
      'submit-expense': req('expense:submit'),
      'approve-expense': req('expense:approve'),
      'list-expenses': req('expense:read'),
    });
  });

  it('issues RS256 JWT access tokens for the agent audience to a plain §4.4 request (no resource parameter)', async () => {
    const tok = await submitter();
    expect(jwtPart(tok, 0)).toEqual({ alg: 'RS256', typ: 'at+jwt', kid: expect.stringMatching(/^dev-/) });
    expect(jwtPart(tok, 1)).toEqual({
      iss: agent.devAuth!.issuer,
      aud: agent.publicUrl,
      sub: 'expense-submitter',
      client_id: 'expense-submitter',
      scope: 'expense:submit expense:read',
      iat: expect.any(Number),
      exp: expect.any(Number),
      jti: expect.any(String),
    });
  });

  it('demo outcome 1: the submitter submits an expense → 201, recorded as submitted by its client_id', async () => {
    const res = await request(agent.url)
      .post('/expenses')
      .set('Authorization', `Bearer ${await submitter()}`)
      .send({ amount: 42.5, currency: 'EUR', description: ' Taxi to the airport ' });
    expect(res.status).toBe(201);
    expect(res.headers['www-authenticate']).toBeUndefined();
    expect(res.body).toEqual({
      id: expect.stringMatching(UUID),
      amount: 42.5,
      currency: 'EUR',
      description: 'Taxi to the airport',
      status: 'submitted',
      submittedBy: 'expense-submitter',
      submittedAt: expect.stringMatching(ISO),
    });
  });

  it('demo outcome 2: the submitter tries to approve → 403 insufficient_scope naming expense:approve', async () => {
    const tok = await submitter();
    const { id } = await submit(tok);
    const res = await request(agent.url).post(`/expenses/${id}/approve`).set('Authorization', `Bearer ${tok}`);
    expect(res.status).toBe(403);
    expect(res.headers['www-authenticate']).toBe(
      `${bearer}, error="insufficient_scope", error_description="The access token lacks a required scope", scope="expense:approve", ${dpopChallenge}`,
    );
    expect(res.body).toEqual({ error: 'insufficient_scope', error_description: 'The access token lacks a required scope', scope: 'expense:approve' });
    const after = await request(agent.url).get(`/expenses/${id}`).set('Authorization', `Bearer ${tok}`);
    expect(after.body.status).toBe('submitted');
  });

  it('demo outcome 3: a call with no token → 401 with a Bearer and a DPoP challenge, no error', async () => {
    const res = await request(agent.url).get('/expenses');
    expect(res.status).toBe(401);
    expect(res.headers['www-authenticate']).toBe(challenge);
    expect(res.body).toEqual({
      error: 'invalid_request',
      error_description: 'Authentication required: send an OAuth 2.0 bearer token in the Authorization header',
    });
  });

  it('the approver approves → 200, recorded as approved by its client_id; approving again → 409', async () => {
    const { id } = await submit(await submitter());
    const tok = await approver();
    const res = await request(agent.url).post(`/expenses/${id}/approve`).set('Authorization', `Bearer ${tok}`);
    expect(res.status).toBe(200);
    expect(res.body).toEqual({
      id,
      amount: 42.5,
      currency: 'EUR',
      description: 'Taxi to the airport',
      status: 'approved',
      submittedBy: 'expense-submitter',
      submittedAt: expect.stringMatching(ISO),
      approvedBy: 'expense-approver',
      approvedAt: expect.stringMatching(ISO),
    });
    const again = await request(agent.url).post(`/expenses/${id}/approve`).set('Authorization', `Bearer ${tok}`);
    expect(again.status).toBe(409);
    expect(again.body).toEqual({ statusCode: 409, error: 'Conflict', message: 'expense is already approved' });
  });

  it('the approver cannot submit (403 naming expense:submit)', async () => {
    const res = await request(agent.url)
      .post('/expenses')
      .set('Authorization', `Bearer ${await approver()}`)
      .send({ amount: 1, currency: 'EUR', description: 'x' });
    expect(res.status).toBe(403);
    expect(res.headers['www-authenticate']).toBe(
      `${bearer}, error="insufficient_scope", error_description="The access token lacks a required scope", scope="expense:submit", ${dpopChallenge}`,
    );
    expect(res.body).toEqual({ error: 'insufficient_scope', error_description: 'The access token lacks a required scope', scope: 'expense:submit' });
  });

  it('lists and reads expenses with expense:read; an unknown id → 404', async () => {
    const tok = await submitter();
    const { id } = await submit(tok);
    const list = await request(agent.url).get('/expenses').set('Authorization', `Bearer ${tok}`);
    expect(list.status).toBe(200);
    expect(list.body.expenses).toContainEqual(expect.objectContaining({ id, status: 'submitted', submittedBy: 'expense-submitter' }));
    const one = await request(agent.url).get(`/expenses/${id}`).set('Authorization', `Bearer ${tok}`);
    expect(one.status).toBe(200);
    expect(one.body).toEqual(expect.objectContaining({ id, amount: 42.5 }));
    for (const path of ['/expenses/nope', `/expenses/${'9'.repeat(90)}`, '/expenses/%E2%82%AC']) {
      const res = await request(agent.url).get(path).set('Authorization', `Bearer ${tok}`);
      expect(res.status).toBe(404);
      expect(res.body).toEqual({ statusCode: 404, error: 'Not Found', message: 'expense not found' });
    }
    const approve = await request(agent.url)
      .post('/expenses/nope/approve')
      .set('Authorization', `Bearer ${await approver()}`);
    expect(approve.status).toBe(404);
    expect(approve.body).toEqual({ statusCode: 404, error: 'Not Found', message: 'expense not found' });
  });

  const amountMsg = 'amount must be a positive number of at most 1000000 with at most 2 decimals';
  const currencyMsg = 'currency must be an ISO 4217 code such as "EUR"';
  const descMsg = 'description must be a non-empty string of at most 500 characters';
  const badBodies: Array<[string, unknown, string[]]> = [
    ['empty object', {}, [amountMsg, currencyMsg, descMsg]],
    ['array', [1, 2], ['body must be a JSON object with amount, currency and description']],
    ['negative amount', { amount: -5, currency: 'EUR', description: 'x' }, [amountMsg]],
    ['amount as string', { amount: '5', currency: 'EUR', description: 'x' }, [amountMsg]],
    ['three decimals', { amount: 1.234, currency: 'EUR', description: 'x' }, [amountMsg]],
    ['huge amount', { amount: 1e308, currency: 'EUR', description: 'x' }, [amountMsg]],
    ['lower-case currency', { amount: 5, currency: 'eur', description: 'x' }, [currencyMsg]],
    ['blank description', { amount: 5, currency: 'EUR', description: '   ' }, [descMsg]],
    ['long description', { amount: 5, currency: 'EUR', description: 'x'.repeat(501) }, [descMsg]],
    ['unknown property', { amount: 5, currency: 'EUR', description: 'x', status: 'approved' }, ['property "status" is not allowed']],
  ];
  it.each(badBodies)('400 for a bad body: %s', async (_name, body, messages) => {
    const res = await request(agent.url)
      .post('/expenses')
      .set('Authorization', `Bearer ${await submitter()}`)
      .send(body as object);
    expect(res.status).toBe(400);
    expect(res.body).toEqual({ statusCode: 400, error: 'Bad Request', message: messages });
  });

  it('400 for a __proto__ key (rejected by our validation on express, by the JSON parser on fastify)', async () => {
    const res = await request(agent.url)
      .post('/expenses')
      .set('Authorization', `Bearer ${await submitter()}`)
      .set('Content-Type', 'application/json')
      .send('{"amount":5,"currency":"EUR","description":"x","__proto__":{"admin":true}}');
    expect(res.status).toBe(400);
    expect(res.body).toEqual(
      platform === 'express'
        ? { statusCode: 400, error: 'Bad Request', message: ['property "__proto__" is not allowed'] }
        : { statusCode: 400, message: "Body is not valid JSON but content-type is set to 'application/json'" },
    );
  });

  it('400 (never 500) for malformed JSON and for no body', async () => {
    const tok = await submitter();
    const malformed = await request(agent.url)
      .post('/expenses')
      .set('Authorization', `Bearer ${tok}`)
      .set('Content-Type', 'application/json')
      .send('{"amount": 1,');
    expect(malformed.status).toBe(400);
    expect(malformed.body).toEqual(expect.objectContaining({ statusCode: 400 }));
    const none = await request(agent.url).post('/expenses').set('Authorization', `Bearer ${tok}`);
    expect(none.status).toBe(400);
    expect(none.body).toEqual(expect.objectContaining({ statusCode: 400 }));
  });

  it("runs the demo's calling agent against it: 201, 403, 401 (and the approver's 200)", async () => {
    const lines: string[] = [];
    const r = await runDemo({ agentUrl: agent.url, env: ENV, log: (l) => lines.push(l), startIfMissing: false });
    expect(r.startedAgent).toBe(false);
    expect(r.tokenUrl).toBe(agent.devAuth!.tokenUrl);
    expect(r.outcomes.map((o) => [o.status, o.ok])).toEqual([
      [201, true],
      [403, true],
      [401, true],
      [200, true],
      [200, true],
    ]);
    expect(r.outcomes[4].step).toBe('expense-opaque lists expenses with an opaque token, checked by introspection (GET /expenses)');
    expect(r.outcomes[4].body).toEqual({ expenses: expect.arrayContaining([expect.objectContaining({ submittedBy: 'expense-submitter' })]) });
    expect(r.outcomes[1].wwwAuthenticate).toBe(
      `${bearer}, error="insufficient_scope", error_description="The access token lacks a required scope", scope="expense:approve", ${dpopChallenge}`,
    );
    expect(r.outcomes[2].wwwAuthenticate).toBe(challenge);
    expect(r.ok).toBe(true);
    expect(lines.join('\n')).toContain('All outcomes as expected.');
    expect(lines.join('\n')).not.toMatch(/eyJ|submitter-secret|approver-secret|dpop-secret|opaque-secret|introspection-secret/); // never prints tokens, proofs or secrets
  });

  it("the demo's DPoP steps on both A2A bindings: the DPoP client 200; its stolen token without a proof, as Bearer, or with another key's proof 401", async () => {
    const lines: string[] = [];
    const r = await runDemo({ agentUrl: agent.url, env: ENV, log: (l) => lines.push(l), startIfMissing: false });
    const dpopSteps = r.a2a.filter((x) => /DPoP/.test(x.step));
    const noProof = `${bearer}, ${dpopChallenge}, error="invalid_dpop_proof", error_description="The DPoP proof is missing"`;
    const asBearer = `${bearer}, error="invalid_token", error_description="The access token is DPoP-bound: send it with the DPoP scheme and a proof", ${dpopChallenge}`;
    const otherKey = `${bearer}, ${dpopChallenge}, error="invalid_token", error_description="The access token is not bound to the DPoP proof key"`;
    expect(dpopSteps.map((x) => [x.binding, x.step, x.status, x.wwwAuthenticate, x.ok])).toEqual(
      (['JSONRPC', 'HTTP+JSON'] as const).flatMap((b) => [
        [b, 'submit-expense as expense-dpop (DPoP-bound token + proof)', 200, undefined, true],
        [b, 'stolen DPoP-bound token, no proof', 401, noProof, true],
        [b, 'stolen DPoP-bound token sent as Bearer', 401, asBearer, true],
        [b, 'stolen DPoP-bound token, proof from another key', 401, otherKey, true],
      ]),
    );
    for (const b of ['JSONRPC', 'HTTP+JSON']) {
      const [ok, none, bearerUse, other] = dpopSteps.filter((x) => x.binding === b);
      expect(ok.detail).toEqual({
        expense: expect.objectContaining({
          amount: 7,
          currency: 'EUR',
          status: 'submitted',
          submittedBy: 'expense-dpop',
          description: `Train ticket (A2A demo, DPoP, ${b})`,
        }),
      });
      expect(none.detail).toEqual({ error: 'invalid_dpop_proof', error_description: 'The DPoP proof is missing' });
      expect(bearerUse.detail).toEqual({
        error: 'invalid_token',
        error_description: 'The access token is DPoP-bound: send it with the DPoP scheme and a proof',
      });
      expect(other.detail).toEqual({ error: 'invalid_token', error_description: 'The access token is not bound to the DPoP proof key' });
    }
    expect(r.ok).toBe(true);
    const printed = lines.join('\n');
    expect(printed).toContain('OK   [HTTP+JSON] stolen DPoP-bound token, proof from another key: 401 (expected 401)');
    expect(printed).not.toMatch(/eyJ|dpop-secret/);
  });
});

describe('sample Expense agent: start-up and configuration', () => {
  it('the dev authorization server refuses NODE_ENV=production, and so does the agent without A2A_ISSUER', async () => {
    await expect(startDevAuthServer({ audience: 'http://127.0.0.1:1', clients: [], nodeEnv: 'production' })).rejects.toThrow(DevAuthServerRefusedError);
    const port = await closedPort();
    const err = await bootstrap({ port, env: { NODE_ENV: 'production' }, logger: false, banner: false }).then(
      () => undefined,
      (e: Error) => e,
    );
    expect(err).toBeInstanceOf(DevAuthServerRefusedError);
    expect(err!.message).toBe(
      'The embedded development authorization server refuses to start with NODE_ENV=production. ' +
        'Point the agent at your real authorization server instead: set A2A_ISSUER and A2A_AUDIENCE ' +
        '(and A2A_JWKS_URI / A2A_TOKEN_URL unless discoverable from the issuer).',
    );
    // Nothing was left listening on the agent's port.
    await expect(fetch(`http://127.0.0.1:${port}/.well-known/agent-card.json`)).rejects.toThrow();
  });

  it('prints the dev clients and a ready-to-paste curl sequence, without overridden secrets', async () => {
    let printed = '';
    const agent = await bootstrap({ port: 0, env: { ...ENV, DEV_APPROVER_SECRET: 'from-the-vault' }, logger: false, banner: (t) => (printed = t) });
    try {
      expect(printed).toBe(agent.banner);
      expect(printed).toContain(`Expense Reimbursement Agent listening on ${agent.url} (express)`);
      expect(printed).toMatch(/expense-submitter\s+submitter-secret\s+expense:submit expense:read/);
      expect(printed).toMatch(/expense-approver\s+\(from \$DEV_APPROVER_SECRET\)\s+expense:approve expense:read/);
      expect(printed).toMatch(/\n {2}expense-dpop\s+dpop-secret\s+expense:submit expense:read {2}\(DPoP-bound tokens only, RFC 9449\)\n/);
      expect(printed).toMatch(/\n {2}expense-opaque\s+opaque-secret\s+expense:submit expense:read {2}\(opaque tokens, introspected, RFC 7662\)\n/);
      expect(printed).not.toContain('introspection-secret');
      expect(printed).toContain('\n  DPoP           allowed  (RFC 9449 sender-constrained tokens; A2A_DPOP=off|allowed|required)\n');
      expect(printed).not.toContain('from-the-vault');
      expect(printed).toContain(
        `curl -s -u 'expense-submitter:submitter-secret' -d grant_type=client_credentials --data-urlencode 'scope=expense:submit expense:read' ${agent.devAuth!.tokenUrl}`,
      );
      expect(printed).toContain(`curl -s -u "expense-approver:$DEV_APPROVER_SECRET"`);
      // The overridden secret is what the dev server accepts.
      const res = await request(agent.devAuth!.issuer)
        .post('/token')
        .auth('expense-approver', 'from-the-vault')
        .type('form')
        .send({ grant_type: 'client_credentials', scope: 'expense:approve' });
      expect(res.status).toBe(200);
      const old = await request(agent.devAuth!.issuer)
        .post('/token')
        .auth('expense-approver', 'approver-secret')
        .type('form')
        .send({ grant_type: 'client_credentials', scope: 'expense:approve' });
      expect(old.status).toBe(401);
      expect(old.body).toEqual({ error: 'invalid_client', error_description: 'client authentication failed' });
    } finally {
      await agent.close();
    }
  });

  it('A2A_DPOP other than off, allowed or required is refused before anything starts', async () => {
    await expect(bootstrap({ port: 0, env: { ...ENV, A2A_DPOP: 'yes' }, logger: false, banner: false })).rejects.toThrow(
      new Error('A2A_DPOP must be "off", "allowed" or "required", got "yes"'),
    );
  });

  it.each(PLATFORMS)('A2A_DPOP=off on %s: Bearer only; the DPoP client is refused and the demo reports it (ok false)', async (platform) => {
    let printed = '';
    const agent = await bootstrap({ platform, port: 0, env: { ...ENV, A2A_DPOP: 'off' }, logger: false, banner: (t) => (printed = t) });
    try {
      expect(printed).toContain('\n  DPoP           off  (RFC 9449');
      const bearerOnly = `Bearer realm="Expense Reimbursement Agent", resource_metadata="${agent.publicUrl}/.well-known/oauth-protected-resource"`;
      const anon = await request(agent.url).get('/expenses');
      expect(anon.status).toBe(401);
      expect(anon.headers['www-authenticate']).toBe(bearerOnly);
      const lines: string[] = [];
      const r = await runDemo({ agentUrl: agent.url, env: ENV, log: (l) => lines.push(l), startIfMissing: false });
      expect(r.outcomes.every((x) => x.ok)).toBe(true);
      const dpopSteps = r.a2a.filter((x) => /DPoP/.test(x.step));
      expect(dpopSteps.map((x) => [x.binding, x.status, x.ok])).toEqual(
        (['JSONRPC', 'HTTP+JSON'] as const).flatMap((b) => [
          [b, 401, false],
          [b, 401, false], // refused, but not with the DPoP challenge the demo expects
          [b, 401, true], // as Bearer: invalid_token either way
          [b, 401, false],
        ]),
      );
      expect(r.ok).toBe(false);
      expect(lines).toContain('Some outcomes differ from what was expected.');
    } finally {
      await agent.close();
    }
  });

  it('logs every decision but never a token or a secret', async () => {
    const logger = new CapturingLogger();
    const agent = await bootstrap({ port: 0, env: ENV, logger, banner: false });
    try {
      const r = await runDemo({ agentUrl: agent.url, env: ENV, log: false, startIfMissing: false });
      expect(r.ok).toBe(true);
    } finally {
      await agent.close();
    }
    const audit = logger.lines.filter((l) => l.includes('"type":"a2a.auth"'));
    expect(audit.length).toBeGreaterThanOrEqual(4);
    // The audit may say "presented as a Bearer token"; what must never appear is a credential after a scheme.
    expect(logger.lines.join('\n')).not.toMatch(
      /eyJ|submitter-secret|approver-secret|dpop-secret|opaque-secret|introspection-secret|(Bearer|DPoP) [\w.~+/-]{20,}/,
    );
  });

  describe('with A2A_ISSUER set (a real issuer)', () => {
    let jwks: JwksServer;
    const key = generateTestKey('RS256');
    beforeAll(async () => {
      jwks = await new JwksServer().start();
      jwks.keys = [key.publicJwk];
    });
    afterAll(async () => {
      await jwks?.stop();
    });

    it('starts no dev server, trusts that issuer and advertises A2A_TOKEN_URL', async () => {
      const env = {
        ...ENV,
        A2A_ISSUER: jwks.issuer,
        A2A_AUDIENCE: 'api://expense-agent',
        A2A_JWKS_URI: jwks.jwksUri,
        A2A_TOKEN_URL: 'https://as.example.com/oauth2/token',
        PUBLIC_URL: 'https://agents.example.com/expenses/',
      };
      const agent = await bootstrap({ port: 0, env, logger: false, banner: false });
      try {
        expect(agent.devAuth).toBeUndefined();
        expect(agent.publicUrl).toBe('https://agents.example.com/expenses');
        expect(agent.banner).toContain(`Issuer         ${jwks.issuer} (external authorization server)`);
        const card = (await request(agent.url).get('/.well-known/agent-card.json')).body;
        expect(card.securitySchemes.oauth2.oauth2SecurityScheme.flows.clientCredentials.tokenUrl).toBe('https://as.example.com/oauth2/token');
        expect(card.supportedInterfaces[0].url).toBe('https://agents.example.com/expenses/a2a/jsonrpc');
        const tok = await mintToken({
          key,
          issuer: jwks.issuer,
          audience: 'api://expense-agent',
          claims: { client_id: 'billing-agent', sub: 'billing-agent' },
        });
        const res = await request(agent.url)
          .post('/expenses')
          .set('Authorization', `Bearer ${tok}`)
          .send({ amount: 10, currency: 'USD', description: 'Lunch' });
        expect(res.status).toBe(201);
        expect(res.body.submittedBy).toBe('billing-agent');
        const wrongAud = await mintToken({ key, issuer: jwks.issuer, audience: 'https://agents.example.com/expenses' });
        expect((await request(agent.url).get('/expenses').set('Authorization', `Bearer ${wrongAud}`)).status).toBe(401);
      } finally {
        await agent.close();
      }
    });

    it('discovers the token endpoint from the issuer when A2A_TOKEN_URL is unset', async () => {
      const agent = await bootstrap({ port: 0, env: { ...ENV, A2A_ISSUER: jwks.issuer }, logger: false, banner: false });
      try {
        const card = (await request(agent.url).get('/.well-known/agent-card.json')).body;
        expect(card.securitySchemes.oauth2.oauth2SecurityScheme.flows.clientCredentials.tokenUrl).toBe(`${jwks.url}/token`);
      } finally {
        await agent.close();
      }
    });

    it('refuses to boot when A2A_TOKEN_URL is unset and the issuer is unreachable, naming A2A_ISSUER and the cause', async () => {
      const dead = `http://127.0.0.1:${await closedPort()}`;
      await expect(bootstrap({ port: 0, env: { ...ENV, A2A_ISSUER: dead }, logger: false, banner: false })).rejects.toThrow(
        new Error(
          `Cannot discover the token endpoint of A2A_ISSUER "${dead}": GET ${dead}/.well-known/openid-configuration: connection refused (ECONNREFUSED). ` +
            'Check A2A_ISSUER, or set A2A_TOKEN_URL to skip discovery',
        ),
      );
    });
  });

  describe('token endpoint discovery failures name A2A_ISSUER and the cause', () => {
    let as: JwksServer;
    beforeAll(async () => {
      as = await new JwksServer().start();
    });
    afterAll(async () => {
      await as?.stop();
    });
    const oidc = () => `${as.url}/.well-known/openid-configuration`;
    const rfc8414 = () => `${as.url}/.well-known/oauth-authorization-server`;
    const failure = (causes: string) =>
      new Error(`Cannot discover the token endpoint of A2A_ISSUER "${as.url}": ${causes}. Check A2A_ISSUER, or set A2A_TOKEN_URL to skip discovery`);

    it.each<[string, JwksMode, () => string]>([
      ['HTTP 500 then HTTP 404', 'error500', () => `GET ${oidc()}: HTTP 500; GET ${rfc8414()}: HTTP 404`],
      ['a body that is not JSON', 'notjson', () => `GET ${oidc()}: HTTP 200 but not JSON; GET ${rfc8414()}: HTTP 404`],
      ['JSON without token_endpoint', 'garbage', () => `GET ${oidc()}: no token_endpoint in the metadata; GET ${rfc8414()}: HTTP 404`],
      ['a connection reset before any answer', 'reset', () => `GET ${oidc()}: connection closed (UND_ERR_SOCKET)`],
    ])('%s', async (_name, mode, causes) => {
      as.discoveryMode = mode;
      await expect(discoverTokenUrl(as.url)).rejects.toThrow(failure(causes()));
    });

    it('no answer within the timeout (milliseconds), without trying the second location on the same host', async () => {
      as.discoveryMode = 'hang';
      as.resetCounts();
      const t0 = Date.now();
      await expect(discoverTokenUrl(as.url, 300)).rejects.toThrow(failure(`GET ${oidc()}: no answer within 300 ms`));
      expect(Date.now() - t0).toBeLessThan(3000);
      expect(as.discoveryFetches).toBe(1);
    });

    it('the path-aware RFC 8414 location is the second one tried', async () => {
      const issuer = `${as.url}/realms/agents`;
      await expect(discoverTokenUrl(issuer)).rejects.toThrow(
        new Error(
          `Cannot discover the token endpoint of A2A_ISSUER "${issuer}": GET ${issuer}/.well-known/openid-configuration: HTTP 404; ` +
            `GET ${as.url}/.well-known/oauth-authorization-server/realms/agents: HTTP 404. Check A2A_ISSUER, or set A2A_TOKEN_URL to skip discovery`,
        ),
      );
    });
  });

  describe('URL variables must be absolute http(s) URLs', () => {
    const expected = (variable: string, what: string, got: string) =>
      new Error(`${variable} must be an absolute URL starting with https:// or http:// (${what}), got ${JSON.stringify(got)}`);
    const issuerWhat = "the issuer's exact iss value, e.g. https://auth.example.com/realms/agents; comma-separated for several";

    it.each(['localhost:9000', '127.0.0.1:9000', 'auth.example.com', 'ftp://auth.example.com', 'http://'])('A2A_ISSUER=%s', async (issuer) => {
      const port = await closedPort();
      await expect(bootstrap({ port, env: { ...ENV, A2A_ISSUER: issuer }, logger: false, banner: false })).rejects.toThrow(
        expected('A2A_ISSUER', issuerWhat, issuer),
      );
      await expect(fetch(`http://127.0.0.1:${port}/`)).rejects.toThrow(); // nothing was started
    });

    it('each item of a comma-separated A2A_ISSUER is checked', async () => {
      await expect(bootstrap({ port: 0, env: { ...ENV, A2A_ISSUER: 'https://a.example.com, b.example.com' }, logger: false, banner: false })).rejects.toThrow(
        expected('A2A_ISSUER', issuerWhat, 'b.example.com'),
      );
    });

    it.each([
      ['PUBLIC_URL', 'expenses.example.com', "the agent's public base URL, e.g. https://expenses.example.com"],
      ['A2A_TOKEN_URL', 'auth.example.com/token', "the issuer's token endpoint, e.g. https://auth.example.com/oauth2/token"],
      ['A2A_JWKS_URI', '/jwks.json', "the issuer's JWKS URL, e.g. https://auth.example.com/.well-known/jwks.json"],
    ])('%s=%s', async (variable, value, what) => {
      const env = { ...ENV, A2A_ISSUER: 'https://auth.example.com', A2A_TOKEN_URL: 'https://auth.example.com/token', [variable]: value };
      await expect(bootstrap({ port: 0, env, logger: false, banner: false })).rejects.toThrow(expected(variable, what, value));
    });
  });

  describe('NODE_ENV=production', () => {
    const prod = { NODE_ENV: 'production', A2A_ISSUER: 'https://auth.example.com', A2A_TOKEN_URL: 'https://auth.example.com/oauth2/token' };

    it('refuses to start without PUBLIC_URL, naming it (the card would advertise 127.0.0.1)', async () => {
      const port = await closedPort();
      await expect(bootstrap({ port, env: prod, logger: false, banner: false })).rejects.toThrow(
        new Error(
          "PUBLIC_URL is not set: with NODE_ENV=production the Agent Card must advertise the agent's public base URL, " +
            `e.g. PUBLIC_URL=https://expenses.example.com (it would otherwise say http://127.0.0.1:${port})`,
        ),
      );
      await expect(fetch(`http://127.0.0.1:${port}/`)).rejects.toThrow();
    });

    it('so does the card CLI', async () => {
      const err: string[] = [];
      const code = await cardMain([], prod, { out: () => undefined, err: (t) => err.push(t) });
      expect(code).toBe(1);
      expect(err.join('')).toBe(
        "boot failed: PUBLIC_URL is not set: with NODE_ENV=production the Agent Card must advertise the agent's public base URL, " +
          'e.g. PUBLIC_URL=https://expenses.example.com (it would otherwise say http://127.0.0.1:3000)\n',
      );
    });

    it('starts with PUBLIC_URL, and the card advertises it', async () => {
      const agent = await bootstrap({ port: 0, env: { ...prod, PUBLIC_URL: 'https://expenses.example.com' }, logger: false, banner: false });
      try {
        const card = (await request(agent.url).get('/.well-known/agent-card.json')).body;
        expect(card.supportedInterfaces.map((i: { url: string }) => i.url)).toEqual([
          'https://expenses.example.com/a2a/jsonrpc',
          'https://expenses.example.com',
        ]);
      } finally {
        await agent.close();
      }
    });
  });

  it('a taken PORT is named, and the dev authorization server is stopped again', async () => {
    const busy = createServer();
    await new Promise<void>((r) => busy.listen(0, '127.0.0.1', r));
    const port = (busy.address() as { port: number }).port;
    const devPort = await closedPort();
    try {
      await expect(bootstrap({ port, env: { ...ENV, DEV_AUTH_PORT: String(devPort) }, logger: false, banner: false })).rejects.toThrow(
        new Error(`PORT ${port} on 127.0.0.1 is already in use (EADDRINUSE): stop the other process or set PORT to a free port`),
      );
      await expect(fetch(`http://127.0.0.1:${devPort}/jwks`)).rejects.toThrow();
    } finally {
      await new Promise((r) => busy.close(r));
    }
  });

  it('a taken DEV_AUTH_PORT is named', async () => {
    const busy = createServer();
    await new Promise<void>((r) => busy.listen(0, '127.0.0.1', r));
    const devPort = (busy.address() as { port: number }).port;
    try {
      await expect(bootstrap({ port: 0, env: { ...ENV, DEV_AUTH_PORT: String(devPort) }, logger: false, banner: false })).rejects.toThrow(
        new Error(`DEV_AUTH_PORT ${devPort} on 127.0.0.1 is already in use (EADDRINUSE): stop the other process, or unset DEV_AUTH_PORT to use a free port`),
      );
    } finally {
      await new Promise((r) => busy.close(r));
    }
  });

  it('the demo starts the agent in-process when none answers, and reports every outcome as expected', async () => {
    const lines: string[] = [];
    const r = await runDemo({ agentUrl: `http://127.0.0.1:${await closedPort()}`, env: ENV, log: (l) => lines.push(l) });
    expect(r.startedAgent).toBe(true);
    expect(r.outcomes.map((o) => o.status)).toEqual([201, 403, 401, 200, 200]);
    expect(r.ok).toBe(true);
    expect(lines[0]).toMatch(/^No agent answers at http:\/\/127\.0\.0\.1:\d+; starting the Expense agent in-process/);
    // The in-process agent is gone afterwards.
    await expect(fetch(`${r.agentUrl}/.well-known/agent-card.json`)).rejects.toThrow();
  });
});
