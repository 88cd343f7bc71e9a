import { spawn } from 'node:child_process';
import { join } from 'node:path';

const WATCHDOG = join(__dirname, 'setup', 'watchdog.js');

interface Outcome {
  code: number | null;
  signal: NodeJS.Signals | null;
  stderr: string;
  ms: number;
}

/** Runs `body` in a fresh node process after starting a watchdog with a short, test-only limit. */
function runChild(body: string, timeoutMs: number): Promise<Outcome> {
  const script = `const w = require(${JSON.stringify(WATCHDOG)}).startWatchdog({ timeoutMs: ${timeoutMs}, beatMs: 100 });\n${body}`;
  const t0 = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    // Bounds this test even if the watchdog under test never fires.
    const guard = setTimeout(() => child.kill('SIGKILL'), 20_000);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(guard);
      resolve({ code, signal, stderr, ms: Date.now() - t0 });
    });
  });
}

describe('test watchdog', () => {
  it.concurrent('kills a process whose main thread is blocked, with a message naming the last test', async () => {
    // Atomics.wait blocks the main thread the way a native deadlock does: no timer or callback runs.
    const r = await runChild(
      `w.note('suite › the stuck test');\nsetTimeout(() => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 15000), 200);`,
      2000,
    );
    expect(r.signal).toBe('SIGKILL');
    expect(r.code).toBeNull();
    expect(r.stderr).toContain('[test watchdog] The main thread has not run for');
    expect(r.stderr).toContain('(limit 2 s)');
    expect(r.stderr).toContain('[test watchdog] Last started: suite › the stuck test\n');
    expect(r.ms).toBeLessThan(10_000);
  });

  it.concurrent('stays quiet on a busy but healthy main thread and does not keep the process alive', async () => {
    // More async work than the limit, in steps much shorter than it: the heartbeat keeps coming. The limit is
    // roomier here because this child competes for the CPU with the others of this file.
    const r = await runChild(
      `let n = 0; const step = () => { const end = Date.now() + 300; while (Date.now() < end); if (++n < 12) setTimeout(step, 10); }; step();`,
      3000,
    );
    expect(r).toMatchObject({ code: 0, signal: null, stderr: '' });
    // Exits as soon as the work is done (about 4 s), not when some watchdog handle lets go.
    expect(r.ms).toBeLessThan(10_000);
  });

  it.concurrent('fires no more once stopped', async () => {
    const r = await runChild(
      `w.stop().then(() => { Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 3500); process.stderr.write('survived'); });`,
      1500,
    );
    expect(r).toMatchObject({ code: 0, signal: null, stderr: 'survived' });
  });
});
