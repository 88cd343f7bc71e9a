/**
 * `npm run bench`: the side-by-side benchmark. Every ratio is against a bare Nest app (no guard at all) and against the
 * floor (a global guard that only sets `request.user`).
 *
 * - Parent process: a local JWKS server, the token, autocannon (50 connections) and the report.
 * - One child process per (platform, setup) runs the Nest app (bench/server.ts); all stay up and the
 *   setups alternate within each run, so drift on a shared machine hits every setup alike.
 * - Each figure is the median over BENCH_RUNS runs of BENCH_DURATION seconds, after BENCH_WARMUP seconds.
 * - Then an in-process micro benchmark (bench/micro.ts) and the cache memory check (bench/memory.ts),
 *   each in its own child.
 * - Writes bench/results/latest.json and bench/results/latest.md.
 *
 * Env: BENCH_DURATION (s, default 10), BENCH_RUNS (default 3), BENCH_WARMUP (s, default 2),
 * BENCH_CONNECTIONS (default 50), BENCH_PLATFORMS (default "express,fastify"), BENCH_SETUPS (comma list),
 * BENCH_MEM_TOKENS (default 100000), BENCH_CHURN_TOKENS (default 20000), BENCH_DPOP_PROOFS (default 200000: distinct
 * DPoP proofs for `ours-dpop`, one per request; a run that needs more cycles and shows the replays as non-2xx),
 * BENCH_SKIP_MICRO / BENCH_SKIP_MEMORY (set to 1 to skip).
 */
import { fork, type ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { createHash, sign } from 'node:crypto';
import { cpus, loadavg, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import { generateTestKey, type TestKey } from '../test/fixtures/keys';
import { JwksServer } from '../test/fixtures/jwks-server';
import { mintToken } from '../test/fixtures/tokens';
import { RedisServer } from '../test/fixtures/redis-server';
import { BENCH_SCOPE, DPOP_PROOF_MICRO, SETUPS, mintDPoPProofs, type BenchPlatform, type ServerConfig, type SetupId } from './setups';

// autocannon ships no types.
const autocannon = require('autocannon') as (o: Record<string, unknown>) => Promise<AutocannonResult>;
interface AutocannonResult {
  requests: { average: number; total: number };
  latency: { p50: number; p99: number; average: number };
  non2xx: number;
  errors: number;
  timeouts: number;
  '2xx': number;
}

const ROOT = resolve(__dirname, '..', '..', '..');
const num = (name: string, dflt: number) => {
  const v = Number(process.env[name]);
  return Number.isFinite(v) && v > 0 ? v : dflt;
};
const DURATION = num('BENCH_DURATION', 10);
const RUNS = Math.floor(num('BENCH_RUNS', 3));
const WARMUP = num('BENCH_WARMUP', 2);
const CONNECTIONS = Math.floor(num('BENCH_CONNECTIONS', 50));
const PLATFORMS = (process.env.BENCH_PLATFORMS ?? 'express,fastify').split(',').filter(Boolean) as BenchPlatform[];
const ONLY = process.env.BENCH_SETUPS?.split(',').filter(Boolean) as SetupId[] | undefined;
const AUDIENCE = 'http://127.0.0.1/bench';
const CHURN_TOKENS = Math.floor(num('BENCH_CHURN_TOKENS', 20_000));
const DPOP_PROOFS = Math.floor(num('BENCH_DPOP_PROOFS', 200_000));

interface Sample {
  rps: number;
  p50: number;
  p99: number;
  non2xx: number;
  errors: number;
  /** 1-minute load average when the sample ended (the machine is shared). */
  load1: number;
  /** Server CPU time (user + system) per request, µs: the server's own cost, less sensitive to a busy load generator. */
  cpuPerReq: number;
}
interface Row {
  platform: BenchPlatform;
  setup: SetupId;
  label: string;
  rps: number;
  p50: number;
  p99: number;
  cpuPerReq: number;
  /** req/s relative to the bare app (no guard) on the same platform. */
  ratio: number | null;
  /** req/s relative to the do-nothing guard on the same platform. */
  ratioToFloor: number | null;
  /** Server CPU per request above the bare app, µs. */
  cpuAboveBare: number | null;
  samples: Sample[];
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

function startServer(cfg: ServerConfig): Promise<{ child: ChildProcess; url: string }> {
  return new Promise((res, rej) => {
    const child = fork(join(__dirname, 'server.js'), [], {
      env: { ...process.env, BENCH_SERVER: JSON.stringify(cfg) },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    const timer = setTimeout(() => rej(new Error(`server ${cfg.platform}/${cfg.setup} did not start in 30 s`)), 30_000);
    child.once('message', (m: { port: number }) => {
      clearTimeout(timer);
      res({ child, url: `http://127.0.0.1:${m.port}` });
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      rej(new Error(`server ${cfg.platform}/${cfg.setup} exited with ${code}`));
    });
  });
}

function runChild<T>(file: string, execArgv: string[] = [], args: string[] = []): Promise<T> {
  return new Promise((res, rej) => {
    const child = fork(join(__dirname, file), args, { execArgv, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    let result: T | undefined;
    child.on('message', (m) => (result = m as T));
    child.once('exit', (code) => (code === 0 && result !== undefined ? res(result) : rej(new Error(`${file} exited with ${code}`))));
  });
}

async function expectStatus(url: string, token: string | undefined, want: number, what: string, headers: Record<string, string> = {}): Promise<void> {
  const r = await fetch(url, { headers: token ? { authorization: `Bearer ${token}` } : headers });
  await r.arrayBuffer();
  if (r.status !== want) throw new Error(`sanity check failed: ${what} gave ${r.status}, expected ${want}`);
}

function serverCpu(child: ChildProcess): Promise<number> {
  return new Promise((res) => {
    const on = (m: { cpuMicros?: number }) => {
      if (typeof m?.cpuMicros !== 'number') return;
      child.off('message', on);
      res(m.cpuMicros);
    };
    child.on('message', on);
    child.send({ cpu: true });
  });
}

/** What autocannon sends: one bearer token, distinct tokens, or a DPoP token with a fresh proof per request. */
type Credentials = string | string[] | { dpopToken: string; proofs: string[]; next: number } | { bearer: string; pads: string[]; next: number } | undefined;

async function load(url: string, token: Credentials, seconds: number, child: ChildProcess): Promise<Sample> {
  const cpu0 = await serverCpu(child);
  let next = 0;
  const dpop = typeof token === 'object' && !Array.isArray(token) && 'dpopToken' in token ? token : undefined;
  const padded = typeof token === 'object' && !Array.isArray(token) && 'pads' in token ? token : undefined;
  const r = await autocannon({
    url,
    connections: CONNECTIONS,
    duration: seconds,
    headers: typeof token === 'string' ? { authorization: `Bearer ${token}` } : {},
    // A different token on every request, cycling through the list.
    ...(Array.isArray(token)
      ? {
          requests: [
            {
              setupRequest: (req: { headers?: Record<string, string> }) => ({
                ...req,
                headers: { ...(req.headers ?? {}), authorization: `Bearer ${token[next++ % token.length]}` },
              }),
            },
          ],
        }
      : {}),
    // The DPoP-bound token with the next unused proof (each proof once per server: its replay cache remembers them).
    ...(dpop
      ? {
          requests: [
            {
              setupRequest: (req: { headers?: Record<string, string> }) => ({
                ...req,
                headers: { ...(req.headers ?? {}), authorization: `DPoP ${dpop.dpopToken}`, dpop: dpop.proofs[dpop.next++ % dpop.proofs.length] },
              }),
            },
          ],
        }
      : {}),
    // The control of the DPoP setup: the same per-request work and size, a bearer token, a header nobody reads.
    ...(padded
      ? {
          requests: [
            {
              setupRequest: (req: { headers?: Record<string, string> }) => ({
                ...req,
                headers: { ...(req.headers ?? {}), authorization: `Bearer ${padded.bearer}`, 'x-bench-pad': padded.pads[padded.next++ % padded.pads.length] },
              }),
            },
          ],
        }
      : {}),
  });
  const cpu1 = await serverCpu(child);
  return {
    rps: r.requests.average,
    p50: r.latency.p50,
    p99: r.latency.p99,
    non2xx: r.non2xx,
    errors: r.errors + r.timeouts,
    load1: Math.round(loadavg()[0] * 100) / 100,
    cpuPerReq: Math.round(((cpu1 - cpu0) / Math.max(1, r.requests.total)) * 10) / 10,
  };
}

function fmt(n: number, digits = 0): string {
  return n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

function markdown(
  rows: Row[],
  meta: Record<string, unknown> & { loadBefore: string },
  micro?: MicroResult,
  mem?: MemoryResult,
  pairedProofUs: Record<string, number> = {},
): string {
  const lines: string[] = [];
  lines.push(
    `Runs: ${meta.runs} × ${meta.durationSeconds} s (+${meta.warmupSeconds} s warm-up), ${meta.connections} connections, median of runs. ` +
      `Machine: ${meta.cpus} × ${meta.cpuModel}, ${meta.memoryGiB} GiB, Node ${meta.node}; 1-min load average ${meta.loadBefore.split(' ')[0]} before, ` +
      `${meta.loadDuring} on average during the samples.`,
  );
  lines.push('');
  lines.push('| platform | setup | req/s | p50 ms | p99 ms | ratio to bare | ratio to floor | server CPU µs/req | CPU above bare |');
  lines.push('|---|---|---:|---:|---:|---:|---:|---:|---:|');
  const r2 = (x: number | null) => (x === null ? '–' : x.toFixed(2));
  for (const r of rows) {
    const flag = r.samples.some((s) => s.non2xx || s.errors) ? ' ⚠ non-2xx/errors' : '';
    lines.push(
      `| ${r.platform} | ${r.label} | ${fmt(r.rps)} | ${fmt(r.p50, 1)} | ${fmt(r.p99, 1)} | ${r2(r.ratio)}${flag} | ${r2(r.ratioToFloor)} | ${fmt(r.cpuPerReq, 1)} | ${r.cpuAboveBare === null ? '–' : `${r.cpuAboveBare >= 0 ? '+' : ''}${fmt(r.cpuAboveBare, 1)}`} |`,
    );
  }
  for (const platform of ['express', 'fastify'] as const) {
    const cache = rows.find((r) => r.platform === platform && r.setup === 'ours-cache');
    const dpop = rows.find((r) => r.platform === platform && r.setup === 'ours-dpop');
    // Prefer the proof check measured right after each DPoP sample (median over the runs); else the micro run's.
    const proofUs = pairedProofUs[platform] ?? micro?.microseconds[DPOP_PROOF_MICRO];
    if (!cache || !dpop || proofUs === undefined) continue;
    const budget = cache.cpuPerReq + proofUs;
    lines.push('');
    lines.push(
      `DPoP on ${platform}: ${fmt(dpop.cpuPerReq, 1)} µs of server CPU per request, against ${fmt(cache.cpuPerReq, 1)} µs (bearer, cache hits) + ` +
        `${fmt(proofUs, 1)} µs (one proof check${pairedProofUs[platform] !== undefined ? ', measured after each DPoP sample' : ''}) = ${fmt(budget, 1)} µs: ${(dpop.cpuPerReq / budget).toFixed(2)} × (target ≤ 1.10).`,
    );
    const inServer = rows.find((r) => r.platform === platform && r.setup === 'ours-cache-proof');
    if (inServer) {
      lines.push('');
      lines.push(
        `Against a bearer token through the cache plus one proof check in the same server (${fmt(inServer.cpuPerReq, 1)} µs, ` +
          `\`ours-cache-proof\`): ${(dpop.cpuPerReq / inServer.cpuPerReq).toFixed(2)} × (target ≤ 1.10).`,
      );
    }
    const padded = rows.find((r) => r.platform === platform && r.setup === 'ours-cache-padded');
    if (padded) {
      const b2 = padded.cpuPerReq + proofUs;
      lines.push('');
      lines.push(
        `Against the control of the same request size (${fmt(padded.cpuPerReq, 1)} µs, bearer, cache hits, padded): ` +
          `${fmt(b2, 1)} µs with the proof check: ${(dpop.cpuPerReq / b2).toFixed(2)} ×.`,
      );
    }
  }
  if (micro) {
    lines.push('');
    lines.push('Per-operation cost, in-process (µs per call, median of 5 batches):');
    lines.push('');
    lines.push('| operation | µs |');
    lines.push('|---|---:|');
    for (const [k, v] of Object.entries(micro.microseconds)) lines.push(`| ${k} | ${v.toFixed(2)} |`);
  }
  if (mem) {
    lines.push('');
    lines.push(
      `Memory: ${fmt(mem.tokens)} distinct valid tokens through the authenticator (cache maxEntries ${fmt(mem.maxEntries)}): ` +
        `largest cache size ${fmt(mem.maxSizeSeen)}, RSS ${mem.rssMiB.start} → ${mem.rssMiB.end} MiB (peak ${mem.rssMiB.peak}), ` +
        `about ${fmt(mem.bytesPerEntry)} bytes of heap per entry, ${fmt(mem.seconds, 1)} s.`,
    );
  }
  return lines.join('\n') + '\n';
}

/** Result of bench/micro.ts. */
export interface MicroResult {
  microseconds: Record<string, number>;
}
/** Result of bench/memory.ts. */
export interface MemoryResult {
  tokens: number;
  maxEntries: number;
  maxSizeSeen: number;
  finalSize: number;
  bytesPerEntry: number;
  rssMiB: { start: number; peak: number; end: number };
  heapUsedMiB: { start: number; end: number };
  seconds: number;
}

async function main(): Promise<void> {
  const meta = {
    date: new Date().toISOString(),
    node: process.version,
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model ?? 'unknown',
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    loadBefore: loadavg()
      .map((l) => l.toFixed(2))
      .join(' '),
    runs: RUNS,
    durationSeconds: DURATION,
    warmupSeconds: WARMUP,
    connections: CONNECTIONS,
  };
  console.log(`bench: ${RUNS} run(s) × ${DURATION} s, ${CONNECTIONS} connections, platforms ${PLATFORMS.join(', ')}; load average ${meta.loadBefore}`);

  const jwks = await new JwksServer().start();
  const key = generateTestKey('RS256');
  jwks.keys = [key.publicJwk];
  const token = await mintToken({ key, issuer: jwks.issuer, audience: AUDIENCE, ttl: 24 * 3600, claims: { scope: BENCH_SCOPE } });
  // Distinct tokens for the churn setup, signed directly (about 1 ms each) rather than through jose.
  const distinct: string[] = [];
  if (!ONLY || ONLY.includes('ours-churn')) {
    const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
    const h = b64({ alg: 'RS256', kid: key.kid, typ: 'at+jwt' });
    const now = Math.floor(Date.now() / 1000);
    for (let i = 0; i < CHURN_TOKENS; i++) {
      const input = `${h}.${b64({ iss: jwks.issuer, aud: AUDIENCE, sub: 'bench', client_id: 'bench', scope: BENCH_SCOPE, iat: now, exp: now + 24 * 3600, jti: `churn-${i}` })}`;
      distinct.push(`${input}.${sign('sha256', Buffer.from(input), key.privateKey).toString('base64url')}`);
    }
  }

  // DPoP: a token bound to an ES256 proof key, and one fresh proof per request.
  let dpopCreds: { dpopToken: string; jkt: string; proofs: string[]; key: TestKey } | undefined;
  if (!ONLY || ONLY.includes('ours-dpop') || ONLY.includes('ours-cache-padded') || ONLY.includes('ours-cache-proof')) {
    const pk = generateTestKey('ES256');
    const { kty, crv, x, y } = pk.publicJwk as Record<string, string>;
    const jkt = createHash('sha256').update(JSON.stringify({ crv, kty, x, y })).digest('base64url');
    const dpopToken = await mintToken({ key, issuer: jwks.issuer, audience: AUDIENCE, ttl: 24 * 3600, claims: { scope: BENCH_SCOPE, cnf: { jkt } } });
    const t0 = Date.now();
    dpopCreds = { dpopToken, jkt, proofs: mintDPoPProofs(pk, dpopToken, DPOP_PROOFS), key: pk };
    console.log(`minted ${fmt(DPOP_PROOFS)} DPoP proofs in ${fmt((Date.now() - t0) / 1000, 1)} s`);
  }

  const targets: Array<{ platform: BenchPlatform; setup: (typeof SETUPS)[number]; url: string; child: ChildProcess }> = [];
  const children: ChildProcess[] = [];
  const redis = !ONLY || ONLY.includes('ours-limit-redis') ? await RedisServer.start() : undefined;
  try {
    for (const platform of PLATFORMS) {
      for (const setup of SETUPS) {
        if (!setup.platforms.includes(platform) || (ONLY && !ONLY.includes(setup.id))) continue;
        // "public" is served by our app's @Public route (the global guard's fast exit); churn by the cached app.
        const serverSetup = setup.id === 'public' || setup.id === 'ours-churn' || setup.id === 'ours-cache-padded' ? 'ours-cache' : setup.id;
        const { child, url } = await startServer({
          platform,
          setup: serverSetup,
          issuer: jwks.issuer,
          audience: AUDIENCE,
          jwksUri: jwks.jwksUri,
          dpopProofs: DPOP_PROOFS,
          ...(setup.id === 'ours-cache-proof' && dpopCreds ? { dpopToken: dpopCreds.dpopToken, dpopJkt: dpopCreds.jkt } : {}),
          redisUrl: redis?.url,
        });
        children.push(child);
        if (setup.token === 'dpop' && dpopCreds) {
          const [check] = mintDPoPProofs(dpopCreds.key, dpopCreds.dpopToken, 1, `sanity-${platform}`);
          await expectStatus(url + setup.route, dpopCreds.dpopToken, 401, `${platform}/${setup.id} with the DPoP token as Bearer`);
          await expectStatus(url + setup.route, undefined, 200, `${platform}/${setup.id} with a proof`, {
            authorization: `DPoP ${dpopCreds.dpopToken}`,
            dpop: check,
          });
        } else if (setup.id === 'bare' || setup.id === 'floor') {
          await expectStatus(url + setup.route, token, 200, `${platform}/${setup.id}`);
        } else if (setup.token) {
          await expectStatus(url + setup.route, undefined, 401, `${platform}/${setup.id} without a token`);
          await expectStatus(url + setup.route, setup.token === 'distinct' ? distinct[0] : token, 200, `${platform}/${setup.id} with the token`);
        } else {
          await expectStatus(url + setup.route, undefined, 200, `${platform}/${setup.id}`);
        }
        targets.push({ platform, setup, url: url + setup.route, child });
      }
    }

    const samples = new Map<string, Sample[]>();
    const pairedProofUs = new Map<string, number[]>();
    // One proof cursor per server: each server's replay cache must see every proof once.
    const cursors = new Map<ChildProcess, { dpopToken: string; proofs: string[]; next: number }>();
    const padCursors = new Map<ChildProcess, { bearer: string; pads: string[]; next: number }>();
    for (let run = 1; run <= RUNS; run++) {
      for (const t of targets) {
        let tok: Credentials = t.setup.token === 'distinct' ? distinct : t.setup.token ? token : undefined;
        if (t.setup.token === 'dpop' && dpopCreds) {
          if (!cursors.has(t.child)) cursors.set(t.child, { dpopToken: dpopCreds.dpopToken, proofs: dpopCreds.proofs, next: 0 });
          tok = cursors.get(t.child);
        }
        if (t.setup.token === 'padded' && dpopCreds) {
          if (!padCursors.has(t.child)) padCursors.set(t.child, { bearer: token, pads: dpopCreds.proofs, next: 0 });
          tok = padCursors.get(t.child);
        }
        await load(t.url, tok, WARMUP, t.child);
        const s = await load(t.url, tok, DURATION, t.child);
        const k = `${t.platform}/${t.setup.id}`;
        samples.set(k, [...(samples.get(k) ?? []), s]);
        if (t.setup.token === 'dpop' && process.env.BENCH_SKIP_MICRO !== '1') {
          // The proof check alone, measured right after this sample while the server idles: the DPoP ratio then
          // compares figures taken under the same load, not an HTTP run with a micro run minutes later.
          const m = await runChild<MicroResult>('micro.js', [], ['--dpop-only']);
          pairedProofUs.set(t.platform, [...(pairedProofUs.get(t.platform) ?? []), m.microseconds[DPOP_PROOF_MICRO]]);
        }
        console.log(
          `run ${run}/${RUNS} ${k.padEnd(24)} ${fmt(s.rps).padStart(7)} req/s  p50 ${s.p50} ms  p99 ${s.p99} ms  server ${s.cpuPerReq} µs/req${s.non2xx || s.errors ? `  non2xx ${s.non2xx} errors ${s.errors}` : ''}`,
        );
      }
    }

    const rows: Row[] = [];
    for (const t of targets) {
      const ss = samples.get(`${t.platform}/${t.setup.id}`)!;
      rows.push({
        platform: t.platform,
        setup: t.setup.id,
        label: t.setup.label,
        rps: median(ss.map((s) => s.rps)),
        p50: median(ss.map((s) => s.p50)),
        p99: median(ss.map((s) => s.p99)),
        cpuPerReq: median(ss.map((s) => s.cpuPerReq)),
        ratio: null,
        ratioToFloor: null,
        cpuAboveBare: null,
        samples: ss,
      });
    }
    for (const r of rows) {
      const bare = rows.find((x) => x.platform === r.platform && x.setup === 'bare');
      const floor = rows.find((x) => x.platform === r.platform && x.setup === 'floor');
      r.ratio = bare ? r.rps / bare.rps : null;
      r.ratioToFloor = floor ? r.rps / floor.rps : null;
      r.cpuAboveBare = bare ? Math.round((r.cpuPerReq - bare.cpuPerReq) * 10) / 10 : null;
    }
    const all = [...samples.values()].flat();
    (meta as Record<string, unknown>).loadDuring = (all.reduce((n, x) => n + x.load1, 0) / Math.max(1, all.length)).toFixed(2);
    for (const c of children) c.kill('SIGTERM');
    children.length = 0;
    await jwks.stop();

    let micro: MicroResult | undefined;
    let mem: MemoryResult | undefined;
    if (process.env.BENCH_SKIP_MICRO !== '1') {
      console.log('micro benchmark…');
      micro = await runChild<MicroResult>('micro.js');
    }
    if (process.env.BENCH_SKIP_MEMORY !== '1') {
      console.log('memory check…');
      mem = await runChild<MemoryResult>('memory.js', ['--expose-gc']);
    }

    const proofUs = Object.fromEntries([...pairedProofUs].map(([p, v]) => [p, median(v)]));
    const md = markdown(rows, meta, micro, mem, proofUs);
    const dir = join(ROOT, 'bench', 'results');
    mkdirSync(dir, { recursive: true });
    writeFileSync(
      join(dir, 'latest.json'),
      JSON.stringify(
        {
          meta: {
            ...meta,
            loadAfter: loadavg()
              .map((l) => l.toFixed(2))
              .join(' '),
          },
          rows,
          pairedProofUs: Object.fromEntries(pairedProofUs),
          micro,
          memory: mem,
        },
        null,
        2,
      ) + '\n',
    );
    writeFileSync(join(dir, 'latest.md'), md);
    console.log('\n' + md);
    console.log(`written: ${join(dir, 'latest.json')} and latest.md`);
  } finally {
    for (const c of children) c.kill('SIGTERM');
    await jwks.stop().catch(() => undefined);
    await redis?.stop();
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
