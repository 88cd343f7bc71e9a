import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { main as cardMain } from '../apps/expense-agent/src/card-cli';

// The sample as a newcomer runs it: real child processes (the built main.js, and the npm scripts), real signals.
const ROOT = join(__dirname, '..');
const DIST = join(ROOT, 'dist/apps/expense-agent/apps/expense-agent/src');
const NEST = join(ROOT, 'node_modules/.bin/nest');
/** Nothing from the developer's shell (A2A_ISSUER, PORT, npm_config_*…) reaches the children. */
const BASE_ENV = { PATH: process.env.PATH, HOME: process.env.HOME ?? tmpdir(), NODE_ENV: 'test', NO_COLOR: '1', npm_config_update_notifier: 'false' };

interface Proc {
  child: ChildProcess;
  out(): string;
  err(): string;
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  exited: boolean;
  /** The child leads its own process group (npm, and the node it runs). */
  group: boolean;
}
const procs: Proc[] = [];

function run(cmd: string, args: string[], env: Record<string, string | undefined>, group = false): Proc {
  const child = spawn(cmd, args, { cwd: ROOT, env: { ...BASE_ENV, ...env }, stdio: ['ignore', 'pipe', 'pipe'], detached: group });
  let out = '';
  let err = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (err += d));
  const p: Proc = {
    child,
    out: () => out,
    err: () => err,
    exited: false,
    group,
    exit: new Promise((resolve) => child.on('close', (code, signal) => ((p.exited = true), resolve({ code, signal })))),
  };
  procs.push(p);
  return p;
}

/** Resolves when `re` matches stdout; rejects (with the output) on exit or after `ms` milliseconds. */
async function waitFor(p: Proc, re: RegExp, ms: number): Promise<RegExpMatchArray> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    const m = re.exec(p.out());
    if (m) return m;
    if (p.exited) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`no ${re} within ${ms} ms (exited: ${p.exited})\nstdout:\n${p.out()}\nstderr:\n${p.err()}`);
}

/** The exit status, or a rejection after `ms` milliseconds. */
async function exitWithin(p: Proc, ms: number) {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`still running after ${ms} ms\n${p.out()}\n${p.err()}`)), ms)));
  try {
    return await Promise.race([p.exit, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** True when nothing listens on 127.0.0.1:`port` (we can bind it ourselves). */
async function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

/** The agent's and the dev authorization server's ports, read from the start-up banner. */
async function listeningPorts(p: Proc, ms: number): Promise<{ agent: number; devAuth: number }> {
  const agent = Number((await waitFor(p, /listening on http:\/\/127\.0\.0\.1:(\d+) /, ms))[1]);
  const devAuth = Number((await waitFor(p, /Issuer +http:\/\/127\.0\.0\.1:(\d+) /, 1000))[1]);
  return { agent, devAuth };
}

/** A connection in the middle of a request (headers unfinished): a plain server.close() would wait for it. */
async function halfOpenRequest(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect(port, '127.0.0.1', () => {
      s.write('GET /.well-known/agent-card.json HTTP/1.1\r\nHost: 127.0.0.1\r\n');
      resolve(s);
    });
    s.once('error', reject);
  });
}

afterEach(async () => {
  // Only the children this file started, by pid (or their own process group).
  for (const p of procs.splice(0)) {
    if (p.exited) continue;
    try {
      process.kill(p.group ? -p.child.pid! : p.child.pid!, 'SIGKILL');
    } catch {
      // already gone
    }
    await exitWithin(p, 5000).catch(() => undefined);
  }
});

beforeAll(async () => {
  const build = run(NEST, ['build', 'expense-agent'], {});
  const { code } = await exitWithin(build, 120_000);
  if (code !== 0) throw new Error(`nest build failed:\n${build.out()}\n${build.err()}`);
}, 130_000);

describe('the built agent (node main.js) on signals', () => {
  it.each([
    ['express', 'SIGTERM'],
    ['fastify', 'SIGINT'],
  ] as const)(
    'on %s, %s stops the agent and its dev authorization server and exits 0, despite an open connection',
    async (platform, signal) => {
      const p = run('node', [join(DIST, 'main.js')], { PORT: '0', PLATFORM: platform });
      const ports = await listeningPorts(p, 20_000);
      expect(await portIsFree(ports.agent)).toBe(false);
      expect(await portIsFree(ports.devAuth)).toBe(false);
      const socket = await halfOpenRequest(ports.agent);
      const closed = new Promise((r) => socket.once('close', r));
      const t0 = Date.now();
      p.child.kill(signal);
      expect(await exitWithin(p, 8000)).toEqual({ code: 0, signal: null });
      expect(Date.now() - t0).toBeLessThan(5000);
      await closed;
      expect(p.out()).toContain(`\n${signal}: shutting down\n`);
      expect(p.err()).toBe('');
      expect(await portIsFree(ports.agent)).toBe(true);
      expect(await portIsFree(ports.devAuth)).toBe(true);
    },
    40_000,
  );

  it('a second SIGINT (Ctrl-C under npm delivers two) still ends in one clean shutdown, exit 0', async () => {
    const p = run('node', [join(DIST, 'main.js')], { PORT: '0' });
    const ports = await listeningPorts(p, 20_000);
    // Sent at the same instant, the kernel would merge them into one; a few milliseconds apart, node sees both.
    p.child.kill('SIGINT');
    await new Promise((r) => setTimeout(r, 5));
    p.child.kill('SIGINT');
    expect(await exitWithin(p, 8000)).toEqual({ code: 0, signal: null });
    expect(p.out().match(/shutting down/g)).toEqual(['shutting down']);
    expect(p.err()).toBe('');
    expect(await portIsFree(ports.agent)).toBe(true);
    expect(await portIsFree(ports.devAuth)).toBe(true);
  }, 40_000);
});

describe('the built agent (node main.js) on a start-up failure: one line on stderr, exit 1, no stack trace', () => {
  const startFails = async (env: Record<string, string>) => {
    const p = run('node', [join(DIST, 'main.js')], { PORT: '0', ...env });
    expect(await exitWithin(p, 20_000)).toEqual({ code: 1, signal: null });
    expect(p.out()).not.toMatch(/ExceptionHandler|^\s+at /m);
    return p;
  };

  it('A2A_ISSUER without a scheme', async () => {
    const p = await startFails({ A2A_ISSUER: 'localhost:9000' });
    expect(p.err()).toBe(
      'Expense Reimbursement Agent failed to start: A2A_ISSUER must be an absolute URL starting with https:// or http:// ' +
        `(the issuer's exact iss value, e.g. https://auth.example.com/realms/agents; comma-separated for several), got "localhost:9000"\n`,
    );
    expect(p.out()).toBe('');
  }, 30_000);

  it('an unreachable A2A_ISSUER (the failure happens inside Nest, which would log it a second time)', async () => {
    const port = await new Promise<number>((resolve) => {
      const s = createServer().listen(0, '127.0.0.1', () => {
        const { port } = s.address() as { port: number };
        s.close(() => resolve(port));
      });
    });
    const dead = `http://127.0.0.1:${port}`;
    const p = await startFails({ A2A_ISSUER: dead });
    expect(p.err()).toBe(
      `Expense Reimbursement Agent failed to start: Cannot discover the token endpoint of A2A_ISSUER "${dead}": ` +
        `GET ${dead}/.well-known/openid-configuration: connection refused (ECONNREFUSED). Check A2A_ISSUER, or set A2A_TOKEN_URL to skip discovery\n`,
    );
    expect(p.out()).toContain('Starting Nest application...'); // Nest's own progress lines stay on stdout
  }, 30_000);

  it('NODE_ENV=production without PUBLIC_URL', async () => {
    const p = await startFails({ NODE_ENV: 'production', A2A_ISSUER: 'https://auth.example.com', A2A_TOKEN_URL: 'https://auth.example.com/token' });
    expect(p.err()).toMatch(
      /^Expense Reimbursement Agent failed to start: PUBLIC_URL is not set: with NODE_ENV=production the Agent Card must advertise the agent's public base URL, e\.g\. PUBLIC_URL=https:\/\/expenses\.example\.com \(it would otherwise say http:\/\/127\.0\.0\.1:\d+\)\n$/,
    );
    expect(p.out()).toBe('');
  }, 30_000);
});

describe('the npm scripts (each one builds first)', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'sample-npm-'));
  });
  afterAll(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it('npm start: SIGTERM to npm reaches node, which stops; no process and no port is left behind', async () => {
    const npm = run('npm', ['start'], { PORT: '0' }, true);
    const ports = await listeningPorts(npm, 90_000);
    process.kill(npm.child.pid!, 'SIGTERM'); // npm alone, as `kill -TERM <npm pid>` does
    expect(await exitWithin(npm, 15_000)).toEqual({ code: 0, signal: null });
    expect(npm.out()).toContain('\nSIGTERM: shutting down\n');
    expect(() => process.kill(-npm.child.pid!, 0)).toThrow(expect.objectContaining({ code: 'ESRCH' })); // the group is empty
    expect(await portIsFree(ports.agent)).toBe(true);
    expect(await portIsFree(ports.devAuth)).toBe(true);
  }, 120_000);

  async function expectedCard(): Promise<string> {
    let out = '';
    expect(await cardMain([], { NODE_ENV: 'test' }, { out: (t) => (out += t), err: () => undefined })).toBe(0);
    return out;
  }

  it('npm run -s card prints only the card on stdout', async () => {
    const npm = run('npm', ['run', '-s', 'card'], {}, true);
    expect(await exitWithin(npm, 90_000)).toEqual({ code: 0, signal: null });
    expect(npm.out()).toBe(await expectedCard());
    expect(JSON.parse(npm.out()).name).toBe('Expense Reimbursement Agent');
  }, 120_000);

  it('npm run card -- --out FILE writes the card to FILE (npm banner or not)', async () => {
    const file = join(dir, 'card.json');
    const npm = run('npm', ['run', 'card', '--', '--out', file], {}, true);
    expect(await exitWithin(npm, 90_000)).toEqual({ code: 0, signal: null });
    expect(npm.out()).toMatch(/^\n> .* card\n> nest build expense-agent && exec node /); // npm's banner: why a redirect breaks
    expect(npm.err()).toBe(`card written to ${file}\n`);
    expect(readFileSync(file, 'utf8')).toBe(await expectedCard());
  }, 120_000);
});
