/**
 * Memory check: BENCH_MEM_TOKENS (default 100,000) distinct valid tokens through the real authenticator
 * (passport-jwt verification, then the verified-token cache). The cache must stay at its configured
 * size (BENCH_MEM_MAX_ENTRIES, default 10,000). Prints RSS along the way and the heap cost per entry.
 * Run with `--expose-gc` (the orchestrator does). Tokens are ES256 so that minting 100k stays fast.
 */
import { createPrivateKey, randomUUID, sign } from 'node:crypto';
import { createAuthRuntime, extractBearerToken, resolveOptions } from '../libs/a2a-auth/src/core';
import { generateTestKey } from '../test/fixtures/keys';
import { JwksServer } from '../test/fixtures/jwks-server';
import type { MemoryResult } from './orchestrator';

const AUD = 'http://127.0.0.1/bench';
const N = Math.floor(Number(process.env.BENCH_MEM_TOKENS) || 100_000);
const MAX = Math.floor(Number(process.env.BENCH_MEM_MAX_ENTRIES) || 10_000);
const MiB = (b: number) => Math.round((b / 2 ** 20) * 10) / 10;
const gc = (globalThis as { gc?: () => void }).gc ?? (() => undefined);

async function main(): Promise<void> {
  const jwks = await new JwksServer().start();
  const key = generateTestKey('ES256');
  jwks.keys = [key.publicJwk];
  const opts = resolveOptions({ issuer: jwks.issuer, audience: AUD, jwksUri: jwks.jwksUri, algorithms: ['ES256'], tokenCache: { maxEntries: MAX } });
  const { cache, verifier } = createAuthRuntime(opts);
  const auth = {
    authenticate: (req: { headers: { authorization: string } }) => verifier.verify(extractBearerToken({ authorization: req.headers.authorization })),
  };
  const priv = createPrivateKey(key.privateKey.export({ format: 'pem', type: 'pkcs8' }));
  const header = Buffer.from(JSON.stringify({ alg: 'ES256', kid: key.kid, typ: 'at+jwt' })).toString('base64url');
  const now = Math.floor(Date.now() / 1000);
  const mint = (i: number) => {
    const payload = Buffer.from(
      JSON.stringify({
        iss: jwks.issuer,
        aud: AUD,
        sub: `client-${i}`,
        client_id: `client-${i}`,
        scope: 'expense:submit expense:read',
        iat: now,
        exp: now + 3600,
        jti: randomUUID(),
      }),
    ).toString('base64url');
    const sig = sign('sha256', Buffer.from(`${header}.${payload}`), { key: priv, dsaEncoding: 'ieee-p1363' }).toString('base64url');
    return `${header}.${payload}.${sig}`;
  };

  gc();
  const start = process.memoryUsage();
  let peak = start.rss;
  let maxSize = 0;
  const t0 = Date.now();
  for (let i = 0; i < N; i++) {
    await auth.authenticate({ headers: { authorization: `Bearer ${mint(i)}` } });
    if (cache.size > maxSize) maxSize = cache.size;
    if (i % 10_000 === 9_999) {
      const rss = process.memoryUsage().rss;
      peak = Math.max(peak, rss);
      console.log(`  memory: ${i + 1} tokens, cache size ${cache.size}, RSS ${MiB(rss)} MiB`);
    }
  }
  const seconds = (Date.now() - t0) / 1000;
  gc();
  const full = process.memoryUsage();
  const finalSize = cache.size;
  cache.clear();
  gc();
  const empty = process.memoryUsage();
  await jwks.stop();
  const out: MemoryResult = {
    tokens: N,
    maxEntries: MAX,
    maxSizeSeen: maxSize,
    finalSize,
    bytesPerEntry: Math.round((full.heapUsed - empty.heapUsed) / Math.max(1, finalSize)),
    rssMiB: { start: MiB(start.rss), peak: MiB(Math.max(peak, full.rss)), end: MiB(full.rss) },
    heapUsedMiB: { start: MiB(start.heapUsed), end: MiB(full.heapUsed) },
    seconds,
  };
  if (maxSize > MAX) throw new Error(`cache grew to ${maxSize} > ${MAX}`);
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
