/**
 * In-process micro benchmark: what each step of token verification costs, in µs per call.
 * Run by the orchestrator in a child process; sends `{ microseconds }` over IPC (or prints it when run alone).
 */
import { createHash, createPublicKey, verify as cryptoVerify } from 'node:crypto';
import * as jwt from 'jsonwebtoken';
import { jwtVerify } from 'jose';
import { AuthAuditService, type A2ACaller } from '../libs/a2a-auth/src';
import { createAuthRuntime, createDPoPChecker, resolveOptions, tokenHash, extractBearerToken, type VerificationContext } from '../libs/a2a-auth/src/core';
import { clientAddress } from '../libs/a2a-auth/src/nest/http/request-info';
import { generateTestKey } from '../test/fixtures/keys';
import { JwksServer } from '../test/fixtures/jwks-server';
import { mintToken } from '../test/fixtures/tokens';
import { BENCH_DPOP_ORIGIN, DPOP_PROOF_MICRO, mintDPoPProofs } from './setups';

const AUD = 'http://127.0.0.1/bench';

function timeSync(fn: () => unknown, iterations: number): number {
  for (let i = 0; i < iterations; i++) fn(); // warm-up
  const batches: number[] = [];
  for (let b = 0; b < 5; b++) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < iterations; i++) fn();
    batches.push(Number(process.hrtime.bigint() - t0) / 1000 / iterations);
  }
  return batches.sort((a, c) => a - c)[2];
}

async function timeAsync(fn: () => Promise<unknown>, iterations: number): Promise<number> {
  for (let i = 0; i < iterations; i++) await fn(); // warm-up
  const batches: number[] = [];
  for (let b = 0; b < 5; b++) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < iterations; i++) await fn();
    batches.push(Number(process.hrtime.bigint() - t0) / 1000 / iterations);
  }
  return batches.sort((a, c) => a - c)[2];
}

/**
 * One DPoP proof check on its own (ES256, a fresh proof per call: 6 × 2,000 calls, the warm-up and 5 batches), and
 * the ES256 signature floor under it. µs per call. The orchestrator also runs this alone (`--dpop-only`) right after
 * each DPoP load sample, so the proof check and the HTTP figure it is compared with are measured under the same load.
 */
async function proofCheckMicro(issuer: string, key: ReturnType<typeof generateTestKey>) {
  const pk = generateTestKey('ES256');
  const { kty, crv, x, y } = pk.publicJwk as Record<string, string>;
  const jkt = createHash('sha256').update(JSON.stringify({ crv, kty, x, y })).digest('base64url');
  const dpopToken = await mintToken({ key, issuer, audience: AUD, ttl: 3600, claims: { scope: 'bench:read', cnf: { jkt } } });
  const uri = `${BENCH_DPOP_ORIGIN}/protected`;
  const alone = mintDPoPProofs(pk, dpopToken, 12_000, 'alone');
  const checker = createDPoPChecker({ algorithms: ['ES256'], iatWindow: 86_400, clockTolerance: 5, maxReplayEntries: 100_000 });
  const [ph, pp, ps] = alone[0].split('.');
  const proofInput = Buffer.from(`${ph}.${pp}`);
  const proofSig = Buffer.from(ps, 'base64url');
  const floor = timeSync(() => cryptoVerify('sha256', proofInput, { key: pk.publicKey, dsaEncoding: 'ieee-p1363' }, proofSig), 2000);
  let i = 0;
  const check = timeSync(() => checker.check(dpopToken, jkt, { proofs: [alone[i++]], method: 'GET', uri }), 2000);
  return { pk, jkt, dpopToken, uri, floor, check };
}

async function main(): Promise<void> {
  if (process.argv.includes('--dpop-only')) {
    const { check } = await proofCheckMicro('http://127.0.0.1/issuer', generateTestKey('RS256'));
    const out = { microseconds: { [DPOP_PROOF_MICRO]: Math.round(check * 100) / 100 } };
    if (process.send) process.send(out);
    else console.log(JSON.stringify(out, null, 2));
    return;
  }
  const jwks = await new JwksServer().start();
  const key = generateTestKey('RS256');
  jwks.keys = [key.publicJwk];
  const token = await mintToken({ key, issuer: jwks.issuer, audience: AUD, ttl: 3600, claims: { scope: 'bench:read' } });
  const pem = key.publicKey.export({ format: 'pem', type: 'spki' }) as string;
  const [h, p, s] = token.split('.');
  const signingInput = Buffer.from(`${h}.${p}`);
  const sig = Buffer.from(s, 'base64url');
  const jwtOpts: jwt.VerifyOptions = { algorithms: ['RS256'], issuer: jwks.issuer, audience: AUD };

  const mk = (enabled: boolean) => {
    const opts = resolveOptions({ issuer: jwks.issuer, audience: AUD, jwksUri: jwks.jwksUri, tokenCache: { enabled } });
    const { verifier } = createAuthRuntime(opts);
    return {
      authenticate: (req: { headers: Record<string, string>; rawHeaders: string[] }) =>
        verifier.verify(extractBearerToken({ authorization: req.headers.authorization, authorizationCount: 1 }, opts)),
    };
  };
  const cached = mk(true);
  const uncached = mk(false);
  const req = {
    headers: { host: '127.0.0.1:3000', authorization: `Bearer ${token}`, accept: '*/*', 'user-agent': 'autocannon' },
    rawHeaders: ['Host', '127.0.0.1:3000', 'Authorization', `Bearer ${token}`, 'Accept', '*/*', 'User-Agent', 'autocannon'],
    socket: { remoteAddress: '127.0.0.1' },
    method: 'GET',
    url: '/protected',
  };
  await cached.authenticate(req); // fill the cache
  await uncached.authenticate(req); // fetch the JWKS

  const us: Record<string, number> = {};
  us['RS256 crypto.verify with a KeyObject (the floor)'] = timeSync(() => cryptoVerify('sha256', signingInput, key.publicKey, sig), 2000);
  us['createPublicKey(PEM) (what a PEM string costs per request)'] = timeSync(() => createPublicKey(pem), 2000);
  us['jsonwebtoken.verify with a KeyObject (the AuthGuard("a2a-jwt") strategy path)'] = timeSync(() => jwt.verify(token, key.publicKey, jwtOpts), 2000);
  us['jsonwebtoken.verify with a PEM string (stock jwks-rsa path)'] = timeSync(() => jwt.verify(token, pem, jwtOpts), 2000);
  us['jose 6 jwtVerify with a KeyObject (async: RSA on the libuv thread pool)'] = await timeAsync(
    () => jwtVerify(token, key.publicKey, { issuer: jwks.issuer, audience: AUD }),
    2000,
  );
  us['authenticator, cache off (bearer + decode + key + crypto.verify + claims)'] = await timeAsync(async () => uncached.authenticate(req), 2000);
  us['authenticator, cache hit (bearer + SHA-256 + LRU get)'] = timeSync(() => cached.authenticate(req), 50_000);
  us['  of which SHA-256 of the token'] = timeSync(() => tokenHash(token), 50_000);
  us['  of which bearer extraction (incl. rawHeaders scan)'] = timeSync(
    () => extractBearerToken({ authorization: req.headers.authorization, authorizationCount: 1 }),
    50_000,
  );
  us['clientAddress + new Date().toISOString() (failure audit only)'] = timeSync(() => [clientAddress(req), new Date().toISOString()], 50_000);
  const who = cached.authenticate(req) as A2ACaller;
  const route = { requiredScopes: ['bench:read'] };
  const off = new AuthAuditService({ wantsSuccesses: false, emit: () => undefined }, 0);
  const on = new AuthAuditService({ wantsSuccesses: true, emit: () => undefined }, 0);
  us['audit success, successes off (returns at once)'] = timeSync(() => off.success(req, who, {}, route), 50_000);
  us['audit success event built, no-op sink'] = timeSync(() => on.success(req, who, {}, route), 50_000);
  us['audit success event + JSON.stringify (what the default logger sink adds before I/O)'] = timeSync(() => {
    let line = '';
    new AuthAuditService({ wantsSuccesses: true, emit: (e) => (line = JSON.stringify(e)) }, 0).success(req, who, {}, route);
    return line;
  }, 50_000);

  // DPoP: one proof check on its own, and a cache hit with its proof through the verifier.
  const { pk, dpopToken, uri, floor, check } = await proofCheckMicro(jwks.issuer, key);
  us['ES256 crypto.verify with a KeyObject (the floor of a proof check)'] = floor;
  us[DPOP_PROOF_MICRO] = check;
  const dpopOpts = resolveOptions({ issuer: jwks.issuer, audience: AUD, jwksUri: jwks.jwksUri, dpop: { mode: 'allowed', iatWindow: 86_400 } });
  const { verifier: dpopVerifier } = createAuthRuntime(dpopOpts);
  const viaVerifier = mintDPoPProofs(pk, dpopToken, 12_001, 'verifier');
  let j = 0;
  const ctx = (): VerificationContext => ({ scheme: 'DPoP', dpopRequest: () => ({ proofs: [viaVerifier[j++]], method: 'GET', uri }) });
  await dpopVerifier.verify(dpopToken, ctx()); // fill the cache
  us['authenticator, cache hit with a DPoP proof (the cache hit + one proof check)'] = timeSync(() => dpopVerifier.verify(dpopToken, ctx()), 2000);
  await jwks.stop();

  const out = { microseconds: Object.fromEntries(Object.entries(us).map(([k, v]) => [k, Math.round(v * 100) / 100])) };
  if (process.send) process.send(out);
  else console.log(JSON.stringify(out, null, 2));
}

main().then(
  () => process.exit(0),
  (e) => {
    console.error(e);
    process.exit(1);
  },
);
