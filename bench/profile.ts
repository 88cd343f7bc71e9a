/**
 * `npm run bench:profile`: a CPU profile of one bench server under load, summarised.
 *
 * Starts bench/server.ts for one (platform, setup) with `--cpu-prof`, drives it with autocannon (50 connections) for
 * BENCH_DURATION seconds (default 10) after a 2 s warm-up, stops it, and prints the frames with the most self time
 * (all frames, and the library's own), as a share of the profile's samples. The raw `.cpuprofile` stays in
 * bench/results/ for Chrome DevTools.
 *
 * Env: BENCH_PLATFORMS (first entry used; default express), BENCH_SETUPS (first entry used; default ours-cache),
 * BENCH_DURATION (s). `ours-dpop` gets a DPoP-bound token and a fresh pre-minted proof per request, as in the bench.
 */
import { fork } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { generateTestKey } from '../test/fixtures/keys';
import { JwksServer } from '../test/fixtures/jwks-server';
import { mintToken } from '../test/fixtures/tokens';
import { createHash } from 'node:crypto';
import { BENCH_SCOPE, mintDPoPProofs, type BenchPlatform, type SetupId } from './setups';

const autocannon = require('autocannon') as (o: Record<string, unknown>) => Promise<{ requests: { average: number; total: number } }>;

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
}

const ROOT = resolve(__dirname, '..', '..', '..');
const platform = ((process.env.BENCH_PLATFORMS ?? 'express').split(',')[0] || 'express') as BenchPlatform;
const setup = ((process.env.BENCH_SETUPS ?? 'ours-cache').split(',')[0] || 'ours-cache') as SetupId;
const duration = Number(process.env.BENCH_DURATION) > 0 ? Number(process.env.BENCH_DURATION) : 10;
const AUDIENCE = 'http://127.0.0.1/bench';

function frameName(n: ProfileNode): string {
  const f = n.callFrame;
  const file = f.url.replace(/^file:\/\//, '').replace(ROOT + '/', '');
  return `${f.functionName || '(anonymous)'} ${file ? `${file}:${f.lineNumber + 1}` : ''}`.trim();
}

async function main(): Promise<void> {
  const dir = join(ROOT, 'bench', 'results', `profile-${platform}-${setup}`);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const jwks = await new JwksServer().start();
  const key = generateTestKey('RS256');
  jwks.keys = [key.publicJwk];
  const dpop = setup === 'ours-dpop';
  const pk = generateTestKey('ES256');
  const { kty, crv, x, y } = pk.publicJwk as Record<string, string>;
  const jkt = createHash('sha256').update(JSON.stringify({ crv, kty, x, y })).digest('base64url');
  const claims = dpop ? { scope: BENCH_SCOPE, cnf: { jkt } } : { scope: BENCH_SCOPE };
  const token = await mintToken({ key, issuer: jwks.issuer, audience: AUDIENCE, ttl: 3600, claims });
  const proofs = dpop ? mintDPoPProofs(pk, token, Math.ceil((duration + 2) * 15_000)) : [];
  const child = fork(join(__dirname, 'server.js'), [], {
    execArgv: ['--cpu-prof', `--cpu-prof-dir=${dir}`],
    env: {
      ...process.env,
      BENCH_SERVER: JSON.stringify({ platform, setup, issuer: jwks.issuer, audience: AUDIENCE, jwksUri: jwks.jwksUri, dpopProofs: proofs.length || undefined }),
    },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const port = await new Promise<number>((res, rej) => {
    child.once('message', (m: { port: number }) => res(m.port));
    child.once('exit', (c) => rej(new Error(`server exited with ${c}`)));
  });
  const url = `http://127.0.0.1:${port}/protected`;
  const headers = { authorization: `${dpop ? 'DPoP' : 'Bearer'} ${token}` };
  let next = 0;
  // Each proof once: the server's replay cache remembers them.
  const requests = dpop
    ? [
        {
          setupRequest: (req: { headers?: Record<string, string> }) => ({
            ...req,
            headers: { ...(req.headers ?? {}), ...headers, dpop: proofs[next++ % proofs.length] },
          }),
        },
      ]
    : undefined;
  await autocannon({ url, connections: 50, duration: 2, headers, ...(requests ? { requests } : {}) });
  const r = await autocannon({ url, connections: 50, duration, headers, ...(requests ? { requests } : {}) });
  const non2xx = (r as unknown as { non2xx: number }).non2xx;
  if (non2xx) console.log(`warning: ${non2xx} non-2xx answers`);
  await new Promise<void>((res) => {
    child.once('exit', () => res());
    child.kill('SIGTERM');
  });
  await jwks.stop();

  const file = readdirSync(dir).find((f) => f.endsWith('.cpuprofile'));
  if (!file) throw new Error('no .cpuprofile written');
  const prof = JSON.parse(readFileSync(join(dir, file), 'utf8')) as CpuProfile;
  const self = new Map<number, number>();
  for (const s of prof.samples) self.set(s, (self.get(s) ?? 0) + 1);
  const byName = new Map<string, number>();
  for (const n of prof.nodes) {
    const k = frameName(n);
    byName.set(k, (byName.get(k) ?? 0) + (self.get(n.id) ?? 0));
  }
  const total = prof.samples.length;
  const idle = byName.get('(idle)') ?? 0;
  const busy = total - idle;
  const top = [...byName.entries()].filter(([k]) => k !== '(idle)').sort((a, b) => b[1] - a[1]);
  const pct = (n: number) => `${((n / busy) * 100).toFixed(1)} %`;
  console.log(`profile of ${platform}/${setup}: ${Math.round(r.requests.average)} req/s over ${duration} s; ${busy} busy samples (idle ${idle})`);
  console.log('\ntop frames by self time (share of busy samples):');
  for (const [k, v] of top.slice(0, 15)) console.log(`  ${pct(v).padStart(7)}  ${k}`);
  const ours = top.filter(([k]) => k.includes('libs/a2a-auth/'));
  const oursTotal = ours.reduce((n, [, v]) => n + v, 0);
  console.log(`\nthe library's own frames: ${pct(oursTotal)} of busy samples`);
  for (const [k, v] of ours.slice(0, 10)) console.log(`  ${pct(v).padStart(7)}  ${k}`);
  console.log(`\nraw profile: ${join(dir, file)}`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
