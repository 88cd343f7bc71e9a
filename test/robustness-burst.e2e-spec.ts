import { Agent } from 'node:http';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { useIssuerApp } from './fixtures/auth-harness';
import { PLATFORMS } from './fixtures/test-app';
import { randomKid, sendRaw, zooApp } from './fixtures/zoo';

// A bounded burst of 10,000 bad requests on loopback: no 5xx, no crash, memory back near the baseline.
setFlagsFromString('--expose-gc');
const gc: () => void = runInNewContext('gc');
const heapAfterGc = async () => {
  for (let i = 0; i < 3; i++) {
    gc();
    await new Promise((r) => setImmediate(r));
  }
  return process.memoryUsage().heapUsed;
};
const TOTAL = 10_000;
const WORKERS = 50;

describe.each(PLATFORMS)('burst of bad tokens on %s', (platform) => {
  let decisions = 0;
  const pool: string[] = [];
  // Count only: a sink that stored events would itself grow.
  const env = useIssuerApp(() => zooApp(platform, { jwksCooldown: 300, auditSink: { wantsSuccesses: false, emit: () => void decisions++ } }));

  beforeAll(async () => {
    const now = Math.floor(Date.now() / 1000);
    const rnd = (n: number) => Buffer.from(Array.from({ length: n }, () => Math.floor(Math.random() * 256))).toString('base64url');
    for (let i = 0; i < 100; i++) {
      const expired = await env.idp.mint({ claims: { exp: now - 3600 - i, iat: now - 7200 } });
      const valid = await env.idp.mint();
      const [h, p, sig] = valid.split('.');
      const sigBytes = Buffer.from(sig, 'base64url');
      sigBytes[i % sigBytes.length] ^= 0x40;
      pool.push(
        `Bearer ${expired}`,
        `Bearer ${h}.${p}.${sigBytes.toString('base64url')}`, // bad signature
        `Bearer ${h.slice(0, -2)}.${p}.${sig}`, // broken header
        `Bearer ${rnd(40)}.${rnd(200)}.${rnd(256)}`, // random segments
        `Bearer ${Buffer.from(JSON.stringify({ alg: 'RS256', kid: randomKid() })).toString('base64url')}.${p}.${sig}`, // unknown kid
        `Bearer ${rnd(6500)}`, // 8.6 KB
        `Basic ${rnd(20)}`,
        `Bearer ${valid} ${rnd(8)}`,
        `${rnd(30)}`,
        `Bearer ${h}.${p}`,
      );
    }
  });

  async function burst(n: number): Promise<Map<number, number>> {
    const agent = new Agent({ keepAlive: true, maxSockets: WORKERS });
    const statuses = new Map<number, number>();
    let next = 0;
    try {
      await Promise.all(
        Array.from({ length: WORKERS }, async () => {
          while (next < n) {
            const i = next++;
            const res = await sendRaw(env.app.url, { path: '/t/me', headers: [['Authorization', pool[i % pool.length]]] }, agent);
            statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
          }
        }),
      );
    } finally {
      agent.destroy();
    }
    return statuses;
  }

  it(`${TOTAL} requests from ${WORKERS} keep-alive workers: only 400/401, the app still serves, memory returns near the baseline`, async () => {
    await burst(1000); // warm-up: JIT, pools, the challenge cache
    const baseline = await heapAfterGc();
    decisions = 0;
    const t0 = Date.now();
    const statuses = await burst(TOTAL);
    const ms = Date.now() - t0;
    const counts = Object.fromEntries(statuses);
    expect(Object.keys(counts).sort()).toEqual(['400', '401']);
    expect(counts[400] + counts[401]).toBe(TOTAL);
    expect(decisions).toBe(TOTAL);
    expect(env.idp.jwks.jwksFetches).toBe(1); // unknown kids within the cooldown: no refetch
    const after = await heapAfterGc();
    const growthMb = (after - baseline) / 1024 / 1024;
    process.stdout.write(
      `[${platform}] ${TOTAL} bad requests in ${ms} ms (${Math.round((TOTAL / ms) * 1000)}/s); heap ${(baseline / 1048576).toFixed(1)} → ${(after / 1048576).toFixed(1)} MiB\n`,
    );
    expect(growthMb).toBeLessThan(16);
    // Still alive and correct.
    const ok = await sendRaw(env.app.url, {
      path: '/t/me',
      headers: [['Authorization', `Bearer ${await env.idp.mint()}`]],
    });
    expect(ok.status).toBe(200);
  }, 90_000);
});
