import { createHash } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { calculateJwkThumbprint, createRemoteJWKSet, decodeJwt, decodeProtectedHeader, EmbeddedJWK, exportJWK, generateKeyPair, jwtVerify } from 'jose';
import { SendMessageRequest } from '@a2a-js/sdk';
import {
  a2aAuthenticationHandler,
  a2aAuthFetch,
  ClientCredentialsError,
  ClientCredentialsTokenProvider,
  connectA2AAgent,
  DPoPProofSigner,
  dpopProofFetch,
  TokenEndpointError,
} from 'nestjs-a2a-auth';
import { startCountingAuthServer, TEST_CLIENTS, type CountingAuthServer } from './fixtures/oidc-dev';

// The calling side of DPoP (RFC 9449). Token requests go to the sample's real oidc-provider dev server, which checks
// every proof itself before it issues a DPoP-bound token. Resource requests go to a small recording server of this
// file (the library's resource server does not accept DPoP-bound tokens yet), which can also answer with the RFC 9449
// §9 nonce challenge or a 401 invalid_token.

const AUD = 'http://127.0.0.1/expense-agent';
const DPOP_CLIENT = TEST_CLIENTS.find((c) => c.dpopBoundAccessTokens)!;
const SUBMITTER = TEST_CLIENTS.find((c) => c.clientId === 'expense-submitter')!;
const creds = (c = DPOP_CLIENT) => ({ clientId: c.clientId, clientSecret: c.clientSecret });
const sha256 = (s: string) => createHash('sha256').update(s).digest('base64url');

interface Seen {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: string;
}
type Reply = { status: number; headers?: Record<string, string>; body?: string };

/** A 127.0.0.1 server that records every request and answers from a queue (default 200 `{"ok":true}`). */
class RecordingServer {
  seen: Seen[] = [];
  replies: Reply[] = [];
  respond?: (s: Seen) => Reply | undefined;
  url = '';
  private server?: Server;
  async start(): Promise<this> {
    this.server = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString('utf8')));
      req.on('end', () => {
        const s = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, body };
        this.seen.push(s);
        const r = this.replies.shift() ?? this.respond?.(s) ?? { status: 200, headers: { 'content-type': 'application/json' }, body: '{"ok":true}' };
        res.writeHead(r.status, r.headers ?? {});
        res.end(r.body ?? '');
      });
    });
    await new Promise<void>((r) => this.server!.listen(0, '127.0.0.1', r));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this;
  }
  stop(): Promise<void> {
    return new Promise((r) => this.server!.close(() => r()));
  }
}

/** The proof of a request, verified with its own embedded key (as a resource server would, RFC 9449 §4.3). */
async function proofOf(headers: IncomingHttpHeaders | Headers) {
  const proof = headers instanceof Headers ? headers.get('dpop') : (headers.dpop as string | undefined);
  expect(typeof proof).toBe('string');
  const { payload, protectedHeader } = await jwtVerify(proof!, EmbeddedJWK, { typ: 'dpop+jwt' });
  return { payload, header: protectedHeader, jkt: await calculateJwkThumbprint(protectedHeader.jwk!) };
}

const NONCE_CHALLENGE: Reply = {
  status: 401,
  headers: { 'www-authenticate': 'DPoP error="use_dpop_nonce", error_description="Resource server requires nonce in DPoP proof"', 'dpop-nonce': 'rs-nonce-1' },
  body: '{"error":"use_dpop_nonce"}',
};

describe('DPoP at the token endpoint of a real oidc-provider (RFC 9449 §5)', () => {
  let as: CountingAuthServer;
  let nonceAs: CountingAuthServer;
  beforeAll(async () => {
    [as, nonceAs] = await Promise.all([startCountingAuthServer({ audience: AUD }), startCountingAuthServer({ audience: AUD, dpopRequireNonce: true })]);
  });
  afterAll(async () => {
    await as?.close();
    await nonceAs?.close();
  });

  it('sends a proof with htm POST, htu the token URL and no ath; gets token_type DPoP with cnf.jkt = the key thumbprint', async () => {
    const sent: Headers[] = [];
    const p = new ClientCredentialsTokenProvider({
      tokenUrl: as.dev.tokenUrl,
      ...creds(),
      scopes: ['expense:submit'],
      dpop: true,
      fetch: async (input, init) => {
        sent.push(new Headers(init?.headers));
        return fetch(input, init);
      },
    });
    const t = await p.getToken();
    expect(t.tokenType).toBe('DPoP');
    expect(t.scopes).toEqual(['expense:submit']);
    const { payload: proof, header, jkt } = await proofOf(sent[0]);
    expect(header).toEqual({ typ: 'dpop+jwt', alg: 'ES256', jwk: { kty: 'EC', crv: 'P-256', x: expect.any(String), y: expect.any(String) } });
    expect(Object.keys(proof).sort()).toEqual(['htm', 'htu', 'iat', 'jti']);
    expect([proof.htm, proof.htu]).toEqual(['POST', as.dev.tokenUrl]);
    expect(Math.abs((proof.iat as number) - Date.now() / 1000)).toBeLessThan(5);
    expect(jkt).toBe(await p.dpop!.thumbprint());
    const { payload } = await jwtVerify(t.accessToken, createRemoteJWKSet(new URL(as.dev.jwksUri)), { issuer: as.issuer, audience: AUD });
    expect(payload.cnf).toEqual({ jkt });
    expect(payload.client_id).toBe(DPOP_CLIENT.clientId);
  });

  it('one key pair per provider, one cached DPoP token for N calls; another provider has another key', async () => {
    const p = new ClientCredentialsTokenProvider({ tokenUrl: as.dev.tokenUrl, ...creds(), scopes: ['expense:read'], dpop: true });
    const [a, ...rest] = await Promise.all(Array.from({ length: 10 }, () => p.getAccessToken()));
    expect(new Set([a, ...rest]).size).toBe(1);
    expect(p.requestCount).toBe(1);
    const q = new ClientCredentialsTokenProvider({ tokenUrl: as.dev.tokenUrl, ...creds(), scopes: ['expense:read'], dpop: true });
    await q.getToken();
    expect(await q.dpop!.thumbprint()).not.toBe(await p.dpop!.thumbprint());
    expect((decodeJwt(a).cnf as { jkt: string }).jkt).toBe(await p.dpop!.thumbprint());
  });

  it('a given key pair is used as is (ES256 from jose, and EdDSA); its public JWK only travels', async () => {
    const pair = await generateKeyPair('ES256');
    const given = new ClientCredentialsTokenProvider({ tokenUrl: as.dev.tokenUrl, ...creds(), dpop: { keyPair: pair } });
    const t = await given.getToken();
    expect((decodeJwt(t.accessToken).cnf as { jkt: string }).jkt).toBe(await calculateJwkThumbprint(await exportJWK(pair.publicKey)));
    // A private key passed as the public one by mistake: only public members go into the proof.
    const wrong = new DPoPProofSigner({
      keyPair: { privateKey: pair.privateKey, publicKey: (await generateKeyPair('ES256', { extractable: true })).privateKey },
    });
    expect(Object.keys(await wrong.publicJwk()).sort()).toEqual(['crv', 'kty', 'x', 'y']);
    const ed = new ClientCredentialsTokenProvider({ tokenUrl: as.dev.tokenUrl, ...creds(), dpop: { alg: 'EdDSA' } });
    const e = await ed.getToken();
    expect(e.tokenType).toBe('DPoP');
    expect(decodeProtectedHeader(await ed.dpop!.proof({ htm: 'GET', url: 'http://127.0.0.1/x' })).alg).toBe('EdDSA');
  });

  it('the DPoP-only client without a proof is refused by the server; a bearer client may ask for a DPoP token too', async () => {
    const plain = new ClientCredentialsTokenProvider({ tokenUrl: as.dev.tokenUrl, ...creds() });
    const e = (await plain.getToken().catch((x: unknown) => x)) as TokenEndpointError;
    expect(e).toBeInstanceOf(TokenEndpointError);
    expect([e.status, e.error, e.errorDescription]).toEqual([400, 'invalid_grant', 'grant request is invalid']);
    const bound = new ClientCredentialsTokenProvider({ tokenUrl: as.dev.tokenUrl, ...creds(SUBMITTER), scopes: ['expense:submit'], dpop: true });
    expect((await bound.getToken()).tokenType).toBe('DPoP');
    expect(() => new ClientCredentialsTokenProvider({ tokenUrl: as.dev.tokenUrl, ...creds(), dpop: { alg: 'HS256' as never } })).toThrow(
      ClientCredentialsError,
    );
  });

  it('a server that wants a nonce: 400 use_dpop_nonce → one retry with it; the next token request carries it at once', async () => {
    const sent: Headers[] = [];
    const p = new ClientCredentialsTokenProvider({
      tokenUrl: nonceAs.dev.tokenUrl,
      ...creds(),
      dpop: true,
      fetch: async (input, init) => {
        sent.push(new Headers(init?.headers));
        return fetch(input, init);
      },
    });
    const t = await p.getToken({ scopes: ['expense:submit'] });
    expect(t.tokenType).toBe('DPoP');
    expect(p.requestCount).toBe(2);
    const [first, retry] = await Promise.all(sent.map(proofOf));
    expect(first.payload.nonce).toBeUndefined();
    expect(typeof retry.payload.nonce).toBe('string');
    expect(retry.payload.jti).not.toBe(first.payload.jti);
    expect(p.dpop!.nonceFor(nonceAs.dev.tokenUrl)).toBeDefined();
    await p.getToken({ scopes: ['expense:read'] });
    expect(p.requestCount).toBe(3);
    expect(typeof (await proofOf(sent[2])).payload.nonce).toBe('string');
  });
});

describe('DPoP on resource requests (RFC 9449 §7): a2aAuthFetch and the SDK handler against a recording server', () => {
  let as: CountingAuthServer;
  let rs: RecordingServer;
  beforeAll(async () => {
    as = await startCountingAuthServer({ audience: AUD });
    rs = await new RecordingServer().start();
  });
  afterAll(async () => {
    await rs?.stop();
    await as?.close();
  });
  beforeEach(() => {
    rs.seen = [];
    rs.replies = [];
    rs.respond = undefined;
  });
  const provider = () => new ClientCredentialsTokenProvider({ tokenUrl: as.dev.tokenUrl, ...creds(), scopes: ['expense:submit'], dpop: true });

  it('every request: Authorization DPoP <token> and a fresh proof (htm, htu without query and fragment, ath, new jti)', async () => {
    const p = provider();
    const f = a2aAuthFetch(p, { allowedOrigins: [rs.url] });
    const r1 = await f(`${rs.url}/a2a/jsonrpc?x=1#frag`);
    const r2 = await f(`${rs.url}/a2a/jsonrpc`, { method: 'POST', body: '{}', headers: { 'content-type': 'application/json' } });
    expect([r1.status, await r1.json(), r2.status]).toEqual([200, { ok: true }, 200]);
    const token = await p.getAccessToken();
    expect(rs.seen.map((s) => [s.method, s.url, s.headers.authorization])).toEqual([
      ['GET', '/a2a/jsonrpc?x=1', `DPoP ${token}`],
      ['POST', '/a2a/jsonrpc', `DPoP ${token}`],
    ]);
    const [a, b] = await Promise.all(rs.seen.map((s) => proofOf(s.headers)));
    expect(a.payload).toEqual({ htm: 'GET', htu: `${rs.url}/a2a/jsonrpc`, ath: sha256(token), jti: expect.any(String), iat: expect.any(Number) });
    expect(b.payload).toMatchObject({ htm: 'POST', htu: `${rs.url}/a2a/jsonrpc`, ath: sha256(token) });
    expect(a.payload.jti).not.toBe(b.payload.jti);
    expect(a.jkt).toBe((decodeJwt(token).cnf as { jkt: string }).jkt);
    expect(p.requestCount).toBe(1);
  });

  it('the resource nonce challenge (401 DPoP error="use_dpop_nonce" + DPoP-Nonce): one retry with the nonce and the same token, remembered for the origin', async () => {
    const p = provider();
    const f = a2aAuthFetch(p, { allowedOrigins: [rs.url] });
    rs.replies = [NONCE_CHALLENGE];
    const r = await f(`${rs.url}/a2a/jsonrpc`, { method: 'POST', body: '{}' });
    expect(r.status).toBe(200);
    expect(rs.seen.length).toBe(2);
    const [first, retry] = await Promise.all(rs.seen.map((s) => proofOf(s.headers)));
    expect(first.payload.nonce).toBeUndefined();
    expect(retry.payload).toMatchObject({ htm: 'POST', htu: `${rs.url}/a2a/jsonrpc`, nonce: 'rs-nonce-1' });
    expect(rs.seen[1].headers.authorization).toBe(rs.seen[0].headers.authorization);
    expect(p.requestCount).toBe(1); // no new token for a nonce
    // The next call sends the nonce at once: one request, no challenge.
    await f(`${rs.url}/a2a/other`);
    expect(rs.seen.length).toBe(3);
    expect((await proofOf(rs.seen[2].headers)).payload.nonce).toBe('rs-nonce-1');
    // Nonces are per origin: the token endpoint's proofs never carry the resource server's.
    expect(p.dpop!.nonceFor(as.dev.tokenUrl)).not.toBe('rs-nonce-1');
  });

  it('401 invalid_token: one new token and one retry whose proof hashes the new token; a second 401 is returned as is', async () => {
    const p = provider();
    const f = a2aAuthFetch(p, { allowedOrigins: [rs.url] });
    const invalid: Reply = { status: 401, headers: { 'www-authenticate': 'DPoP error="invalid_token"' }, body: '{"error":"invalid_token"}' };
    rs.replies = [invalid];
    expect((await f(`${rs.url}/t/me`)).status).toBe(200);
    expect(p.requestCount).toBe(2);
    const [a, b] = rs.seen.map((s) => (s.headers.authorization as string).slice('DPoP '.length));
    expect(a).not.toBe(b);
    expect((await proofOf(rs.seen[1].headers)).payload.ath).toBe(sha256(b));
    rs.seen = [];
    rs.respond = () => invalid;
    const r = await f(`${rs.url}/t/me`);
    expect([r.status, rs.seen.length, p.requestCount]).toEqual([401, 2, 3]);
  });

  it('the destination rule holds for DPoP too: another origin gets nothing, not even a token request', async () => {
    const p = provider();
    const f = a2aAuthFetch(p, { allowedOrigins: ['https://agents.example.com'] });
    await expect(f(`${rs.url}/a2a/jsonrpc`)).rejects.toMatchObject({ name: 'UntrustedDestinationError', reason: 'untrusted_origin' });
    expect([rs.seen.length, p.requestCount]).toEqual([0, 0]);
  });

  it('requests without a DPoP Authorization pass untouched; a caller-supplied DPoP header is kept', async () => {
    const signer = new DPoPProofSigner();
    const f = dpopProofFetch(signer);
    await f(`${rs.url}/.well-known/agent-card.json`);
    await f(`${rs.url}/x`, { headers: { authorization: 'Bearer abc' } });
    await f(`${rs.url}/x`, { headers: { authorization: 'DPoP abc', dpop: 'mine' } });
    expect(rs.seen.map((s) => s.headers.dpop)).toEqual([undefined, undefined, 'mine']);
  });

  it('the SDK handler alone: headers() has the DPoP Authorization (no URL to sign for); its retry headers carry a proof for the response URL', async () => {
    const p = provider();
    const h = a2aAuthenticationHandler(p);
    const headers = await h.headers();
    expect(headers).toEqual({ Authorization: `DPoP ${await p.getAccessToken()}` });
    rs.replies = [NONCE_CHALLENGE];
    const res = await fetch(`${rs.url}/a2a/jsonrpc`, { method: 'POST', headers, body: '{}' });
    const retry = (await h.shouldRetryWithHeaders({ method: 'POST', headers }, res))!;
    expect(retry.Authorization).toBe(headers.Authorization);
    const { payload } = await proofOf(new Headers(retry));
    expect(payload).toMatchObject({ htm: 'POST', htu: `${rs.url}/a2a/jsonrpc`, nonce: 'rs-nonce-1', ath: sha256(await p.getAccessToken()) });
    const forbidden = await fetch(`${rs.url}/x`, { headers });
    expect(await h.shouldRetryWithHeaders({ headers }, new Response(null, { status: 403, headers: forbidden.headers }))).toBeUndefined();
  });

  it('connectA2AAgent with dpop: the official SDK client sends DPoP-bound JSON-RPC calls', async () => {
    const card = {
      name: 'Recorder',
      description: 'records',
      version: '1.0.0',
      supportedInterfaces: [{ url: `${rs.url}/a2a/jsonrpc`, protocolBinding: 'JSONRPC', protocolVersion: '1.0' }],
      capabilities: { streaming: false, pushNotifications: false },
      securitySchemes: {
        oauth2: { oauth2SecurityScheme: { flows: { clientCredentials: { tokenUrl: as.dev.tokenUrl, scopes: { 'expense:submit': 'Submit' } } } } },
      },
      securityRequirements: [{ schemes: { oauth2: { list: ['expense:submit'] } } }],
      defaultInputModes: ['text/plain'],
      defaultOutputModes: ['text/plain'],
      skills: [
        {
          id: 'submit-expense',
          name: 'Submit',
          description: 'Submit',
          tags: ['x'],
          securityRequirements: [{ schemes: { oauth2: { list: ['expense:submit'] } } }],
        },
      ],
    };
    rs.respond = (s) => {
      if (s.url === '/.well-known/agent-card.json') return { status: 200, headers: { 'content-type': 'application/json' }, body: JSON.stringify(card) };
      const id = (JSON.parse(s.body) as { id: unknown }).id;
      const result = { message: { messageId: 'reply-1', role: 'ROLE_AGENT', parts: [{ text: 'ok' }] } };
      return { status: 200, headers: { 'content-type': 'application/json' }, body: JSON.stringify({ jsonrpc: '2.0', id, result }) };
    };
    const { client, provider: p } = await connectA2AAgent({ agentUrl: rs.url, credentials: { ...creds(), dpop: true }, skillId: 'submit-expense' });
    const reply = await client.sendMessage(
      SendMessageRequest.fromJSON({ message: { messageId: 'm-1', role: 'ROLE_USER', parts: [{ text: 'hi' }], metadata: { skillId: 'submit-expense' } } }),
    );
    expect(JSON.stringify(reply)).toContain('reply-1');
    const rpc = rs.seen.filter((s) => s.url === '/a2a/jsonrpc');
    expect(rpc.length).toBe(1);
    const token = await p.getAccessToken();
    expect(rpc[0].headers.authorization).toBe(`DPoP ${token}`);
    expect((await proofOf(rpc[0].headers)).payload).toMatchObject({ htm: 'POST', htu: `${rs.url}/a2a/jsonrpc`, ath: sha256(token) });
    expect(decodeJwt(token).scope).toBe('expense:submit');
    // The card itself is fetched without credentials.
    expect(rs.seen.find((s) => s.url === '/.well-known/agent-card.json')!.headers.authorization).toBeUndefined();
  });
});
