import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  AgentCardDiscoveryError,
  ClientCredentialsError,
  connectA2AAgent,
  discoverAgentAuth,
  verifyAgentCardSignature,
  type AgentCardTrust,
} from 'nestjs-a2a-auth';
import { cardModule, cardOptions, freePort, startCardApp, type CardApp } from './fixtures/card-app';
import { JwksServer } from './fixtures/jwks-server';
import { generateTestKey, type TestKey } from './fixtures/keys';
import { PLATFORMS, type Platform } from './fixtures/test-app';

const CARD = '/.well-known/agent-card.json';
const creds = { clientId: 'caller', clientSecret: 'caller-secret-never-sent-3f1c' };

/** Boots the card fixture app (a real Nest app with A2AAuthModule) on a free port, signing with `signing` if given. */
async function cardApp(platform: Platform, issuer: JwksServer, signing?: { key: TestKey; kid?: string; jku?: string }): Promise<CardApp> {
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const card = signing ? { signing: { privateKey: signing.key.privateKey, alg: signing.key.alg, kid: signing.kid ?? signing.key.kid, jku: signing.jku } } : {};
  return startCardApp(platform, port, cardModule(cardOptions(base, issuer.issuer, issuer.jwksUri, {}, card)));
}

/** A plain HTTP server on 127.0.0.1 that serves `body()` at the card path (a man in the middle, or a broken signer). */
class CardServer {
  server!: Server;
  url = '';
  body: () => unknown = () => ({});
  requests = 0;
  async start(): Promise<this> {
    this.server = createServer((req, res) => {
      this.requests++;
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify(this.body()));
    });
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this;
  }
  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((r) => this.server.close(() => r()));
  }
}

const b64json = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');

describe.each(PLATFORMS)('signed Agent Cards are verified before they are used (card served by a real Nest app on %s)', (platform) => {
  let es: TestKey; // the agent's ES256 card key
  let rs: TestKey; // the agent's RS256 card key
  let forger: TestKey; // someone else's key
  let issuer: JwksServer; // the resource server's token issuer (not used by these tests)
  let trusted: JwksServer; // the caller's trust root, served at a URL the caller chose
  let attacker: JwksServer; // a JWKS the forger names in jku
  let esApp: CardApp;
  let rsApp: CardApp;
  let unsignedApp: CardApp;
  let forgedApp: CardApp; // signed by the forger under the agent's kid, jku → attacker
  let unknownApp: CardApp; // signed by the forger under its own kid, jku → attacker
  let mitm: CardServer;
  let signedCard: Record<string, unknown>;

  beforeAll(async () => {
    es = generateTestKey('ES256', 'agent-card-es');
    rs = generateTestKey('RS256', 'agent-card-rs');
    forger = generateTestKey('ES256', 'forger-key');
    issuer = await new JwksServer().start();
    trusted = await new JwksServer().start();
    trusted.keys = [es.publicJwk, rs.publicJwk];
    attacker = await new JwksServer().start();
    attacker.keys = [forger.publicJwk, { ...forger.publicJwk, kid: es.kid }];
    [esApp, rsApp, unsignedApp, forgedApp, unknownApp] = await Promise.all([
      cardApp(platform, issuer, { key: es, jku: trusted.jwksUri }),
      cardApp(platform, issuer, { key: rs }),
      cardApp(platform, issuer),
      cardApp(platform, issuer, { key: forger, kid: es.kid, jku: attacker.jwksUri }),
      cardApp(platform, issuer, { key: forger, jku: attacker.jwksUri }),
    ]);
    signedCard = (await (await fetch(`${esApp.url}${CARD}`, { headers: { 'A2A-Version': '1.0' } })).json()) as Record<string, unknown>;
    mitm = await new CardServer().start();
  });
  afterAll(async () => {
    await Promise.all([esApp, rsApp, unsignedApp, forgedApp, unknownApp].map((a) => a?.close()));
    await mitm?.stop();
    for (const j of [issuer, trusted, attacker]) await j?.stop();
  });
  beforeEach(() => {
    trusted.resetCounts();
    attacker.resetCounts();
    trusted.mode = 'ok';
  });

  const jwksTrust = (): AgentCardTrust => ({ jwks: { keys: [es.publicJwk, rs.publicJwk] as never } });
  const failure = async (p: Promise<unknown>) => {
    const e = await p.then(
      () => undefined,
      (x: unknown) => x,
    );
    expect(e).toBeInstanceOf(AgentCardDiscoveryError);
    return { code: (e as AgentCardDiscoveryError).code, message: (e as Error).message };
  };

  it('a card signed with ES256 or RS256 verifies against each kind of trust root (JWKS object, chosen JWKS URL, pinned keys)', async () => {
    const roots: AgentCardTrust[] = [
      jwksTrust(),
      { jwksUrl: trusted.jwksUri },
      { publicKeys: { [es.kid]: es.publicKey, [rs.kid]: rs.publicKey.export({ type: 'spki', format: 'pem' }) as string } },
    ];
    for (const [app, key] of [
      [esApp, es],
      [rsApp, rs],
    ] as const) {
      for (const cardTrust of roots) {
        const a = await discoverAgentAuth(app.url, { cardTrust });
        expect(a.signature).toEqual({ alg: key.alg, kid: key.kid });
        expect(a.tokenUrl).toBe('https://auth.example.com/oauth2/token');
        expect(a.interfaces.map((i) => i.url)).toEqual([`${app.url}/a2a/jsonrpc`, `${app.url}/a2a/rest`]);
      }
    }
    expect(trusted.jwksFetches).toBe(2); // once per verification that needed it
    // The v0.3 view is signed on its own and verifies too.
    expect((await discoverAgentAuth(esApp.url, { cardTrust: jwksTrust(), a2aVersion: '0.3' })).cardVersion).toBe('0.3');
    // connectA2AAgent builds the SDK client from the verified card (no second card fetch).
    const c = await connectA2AAgent({ agentUrl: esApp.url, credentials: creds, skillId: 'approve-expense', cardTrust: jwksTrust() });
    expect(c.auth.signature).toEqual({ alg: 'ES256', kid: es.kid });
    expect(c.client.transport.protocolName).toBe('JSONRPC');
  });

  it('unsigned card → unsigned_card', async () => {
    expect(await failure(discoverAgentAuth(unsignedApp.url, { cardTrust: jwksTrust() }))).toEqual({
      code: 'unsigned_card',
      message: `agent card ${unsignedApp.url}/.well-known/agent-card.json: card is not signed`,
    });
    await expect(connectA2AAgent({ agentUrl: unsignedApp.url, credentials: creds, cardTrust: jwksTrust() })).rejects.toMatchObject({ code: 'unsigned_card' });
  });

  it("signed by a key the trust root does not hold (its jku names the signer's JWKS) → unknown_card_key; that jku is never fetched", async () => {
    for (const cardTrust of [jwksTrust(), { jwksUrl: trusted.jwksUri }]) {
      expect(await failure(discoverAgentAuth(unknownApp.url, { cardTrust }))).toEqual({
        code: 'unknown_card_key',
        message: `agent card ${unknownApp.url}/.well-known/agent-card.json: no card signature verifies: no trusted key for kid "forger-key" and alg "ES256"`,
      });
    }
    expect(attacker.totalFetches).toBe(0);
    // Even when the trust root is the jku URL the forger names, only because the caller chose it is it used.
    expect((await discoverAgentAuth(unknownApp.url, { cardTrust: { jwksUrl: attacker.jwksUri } })).signature).toEqual({ alg: 'ES256', kid: 'forger-key' });
  });

  it("forged under the agent's kid (signed by another key) → card_signature_mismatch; the forger's jku is never fetched", async () => {
    for (const cardTrust of [jwksTrust(), { jwksUrl: trusted.jwksUri }, { publicKeys: { [es.kid]: es.publicKey } }]) {
      expect(await failure(discoverAgentAuth(forgedApp.url, { cardTrust }))).toEqual({
        code: 'card_signature_mismatch',
        message: `agent card ${forgedApp.url}/.well-known/agent-card.json: no card signature verifies: signature verification failed`,
      });
    }
    expect(attacker.totalFetches).toBe(0);
  });

  it('changed after signing (token URL, interface, scope) → card_signature_mismatch, before the token URL or interfaces are looked at', async () => {
    type WireCard = {
      securitySchemes: { oauth2: { oauth2SecurityScheme: { flows: { clientCredentials: { tokenUrl: string } } } } };
      supportedInterfaces: Array<{ url: string }>;
      skills: Array<{ id: string; securityRequirements?: unknown }>;
    };
    const tamper: Array<(c: WireCard) => void> = [
      // An untrusted token URL would otherwise fail with untrusted_token_url: the signature check comes first.
      (c) => (c.securitySchemes.oauth2.oauth2SecurityScheme.flows.clientCredentials.tokenUrl = 'http://collector.example.net/token'),
      // An interface on the proxy's origin would pass the destination rule: the signature check still refuses it.
      (c) => (c.supportedInterfaces[0].url = `${mitm.url}/a2a/jsonrpc`),
      (c) => (c.skills.find((s) => s.id === 'approve-expense')!.securityRequirements = [{}]),
    ];
    for (const t of tamper) {
      const copy = structuredClone(signedCard);
      t(copy as unknown as WireCard);
      mitm.body = () => copy;
      expect(await failure(discoverAgentAuth(mitm.url, { cardTrust: jwksTrust() }))).toEqual({
        code: 'card_signature_mismatch',
        message: `agent card ${mitm.url}/.well-known/agent-card.json: no card signature verifies: signature verification failed`,
      });
    }
    // The untouched card, relayed, verifies (then fails the destination rule: its interfaces are on the app's origin).
    mitm.body = () => signedCard;
    await expect(discoverAgentAuth(mitm.url, { cardTrust: jwksTrust() })).rejects.toMatchObject({ code: 'untrusted_interface' });
  });

  it('badly signed: alg none or HS256 under a trusted kid, a non-JWS entry, a signatures member that is no array → invalid_card_signature', async () => {
    const [sig] = signedCard.signatures as Array<{ protected: string; signature: string }>;
    const variants: unknown[] = [
      [{ protected: b64json({ alg: 'none', kid: es.kid, typ: 'JOSE' }), signature: '' }],
      [{ protected: b64json({ alg: 'HS256', kid: es.kid, typ: 'JOSE' }), signature: sig.signature }],
      [{ protected: 'not base64 json!', signature: sig.signature }],
      [{ signature: sig.signature }],
      'signed',
    ];
    const why = [
      '"alg" (Algorithm) Header Parameter value not allowed',
      '"alg" (Algorithm) Header Parameter value not allowed',
      'JWS Protected Header is invalid',
      'a signatures entry is not a flattened JWS',
      'signatures is not an array',
    ];
    for (const [i, signatures] of variants.entries()) {
      mitm.body = () => ({ ...signedCard, signatures });
      expect(await failure(discoverAgentAuth(mitm.url, { cardTrust: jwksTrust() }))).toEqual({
        code: 'invalid_card_signature',
        message: `agent card ${mitm.url}/.well-known/agent-card.json: no card signature verifies: ${why[i]}`,
      });
    }
    // A bad entry next to a good one does not matter: one verifying signature is enough (A2A v1.0 §8.4.3).
    mitm.body = () => ({ ...signedCard, signatures: [variants[0] as never, sig].flat() });
    await expect(discoverAgentAuth(mitm.url, { cardTrust: jwksTrust() })).rejects.toMatchObject({ code: 'untrusted_interface' });
  });

  it('the chosen JWKS URL is down → card_keys_unavailable (bounded); a trust root without keys is refused up front', async () => {
    trusted.mode = 'error500';
    expect(await failure(discoverAgentAuth(esApp.url, { cardTrust: { jwksUrl: trusted.jwksUri } }))).toEqual({
      code: 'card_keys_unavailable',
      message: `agent card ${esApp.url}/.well-known/agent-card.json: no card signature verifies: the trusted JWKS ${trusted.jwksUri} could not be fetched: HTTP 500`,
    });
    trusted.mode = 'hang';
    const t0 = Date.now();
    await expect(discoverAgentAuth(esApp.url, { cardTrust: { jwksUrl: trusted.jwksUri, jwksTimeoutMs: 300 } })).rejects.toMatchObject({
      code: 'card_keys_unavailable',
    });
    expect(Date.now() - t0).toBeLessThan(3000);
    await expect(discoverAgentAuth(esApp.url, { cardTrust: {} })).rejects.toThrow(new ClientCredentialsError('cardTrust needs publicKeys, jwks or jwksUrl'));
    await expect(discoverAgentAuth(esApp.url, { cardTrust: { jwksUrl: 'http://keys.example.com/jwks.json' } })).rejects.toThrow(
      'cardTrust.jwksUrl must be an https URL (http only on loopback)',
    );
  });

  it('verifyAgentCardSignature checks a card already in hand (e.g. the extended card)', async () => {
    await expect(verifyAgentCardSignature(signedCard, jwksTrust())).resolves.toEqual({ alg: 'ES256', kid: es.kid });
    await expect(verifyAgentCardSignature({ ...signedCard, name: 'Other' }, jwksTrust())).rejects.toMatchObject({ code: 'card_signature_mismatch' });
    // The JWKS URL is fetched only when the keys in hand lack the signature's key.
    await expect(verifyAgentCardSignature(signedCard, { ...jwksTrust(), jwksUrl: trusted.jwksUri })).resolves.toEqual({ alg: 'ES256', kid: es.kid });
    expect(trusted.jwksFetches).toBe(0);
    await expect(verifyAgentCardSignature(signedCard, { jwks: { keys: [rs.publicJwk] as never }, jwksUrl: trusted.jwksUri })).resolves.toEqual({
      alg: 'ES256',
      kid: es.kid,
    });
    expect(trusted.jwksFetches).toBe(1);
    // A pinned key of the wrong type for the header's alg is no key for it.
    await expect(verifyAgentCardSignature(signedCard, { publicKeys: { [es.kid]: rs.publicKey } })).rejects.toMatchObject({
      code: 'unknown_card_key',
      message: `agent card: no card signature verifies: the trusted key "${es.kid}" is not a key for ES256`,
    });
  });
});
