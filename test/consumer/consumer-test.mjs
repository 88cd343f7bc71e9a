#!/usr/bin/env node
// npm run test:consumer: proves that nestjs-a2a-auth works as an installed package, the way a user gets it.
//
// 1. builds the library (npm run build:lib) and packs it (npm pack);
// 2. makes a fresh app in a temporary folder outside the repository from README.md: the install command of
//    "## Install" (the tarball instead of the registry name) and the files of "## Use it in your own app";
// 3. installs it from the npm registry (through the npm cache), compiles it with the app's own tsc (strict);
// 4. checks the installed package: one @nestjs/common shared by the app and the library, and the client and core
//    entry points loading no Nest module;
// 5. boots the app on 127.0.0.1 against a JWKS server here, with RS256 tokens signed by a key generated now, and
//    checks the answers (401, 403, 200, the public route, the Agent Card).
// Every step has a deadline and so does the whole run; the temporary folder is removed at the end
// (KEEP_CONSUMER_DIR=1 keeps it). The last lines are a PASS/FAIL summary; the exit status is 0 only on PASS.
/* global AbortSignal */
import { spawn } from 'node:child_process';
import { createSign, generateKeyPair, randomUUID } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, writeFileSync, mkdirSync, existsSync } from 'node:fs';
import { createServer } from 'node:http';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const repoDir = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const distDir = join(repoDir, 'libs/a2a-auth/dist');
// The whole run's deadline; CONSUMER_TEST_DEADLINE_S overrides it (seconds).
const TOTAL_DEADLINE_MS = Number(process.env.CONSUMER_TEST_DEADLINE_S ?? 15 * 60) * 1000;
const started = Date.now();

let passed = 0;
let failed = 0;
let workDir;
let app;
let jwksServer;
/** Children still running (killed, with their process groups, at clean-up). */
const children = new Set();

/** Records one check and prints it. */
function check(name, ok, detail = '') {
  if (ok) passed++;
  else failed++;
  console.log(`${ok ? 'ok    ' : 'NOT OK'} ${name}${!ok && detail ? `\n         ${detail}` : ''}`);
  return ok;
}

/** Checks that `actual` equals `expected` (deep, via JSON). */
function checkEqual(name, actual, expected) {
  const a = JSON.stringify(actual);
  const e = JSON.stringify(expected);
  return check(name, a === e, `expected ${e}\n         got      ${a}`);
}

/** A fatal problem: the run cannot go on. */
class Abort extends Error {}

/**
 * Runs a command to completion in its own process group, killing the group after `timeoutMs`.
 * @returns its exit code and combined output.
 */
function run(cmd, args, { cwd, timeoutMs, env } = {}) {
  return new Promise((resolveRun) => {
    const t0 = Date.now();
    const child = spawn(cmd, args, { cwd, env: { ...process.env, ...env }, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    children.add(child);
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    const timer = setTimeout(() => {
      out += `\n[killed after ${timeoutMs / 1000} s]`;
      killGroup(child);
    }, timeoutMs);
    child.on('error', (e) => (out += `\n${e.message}`));
    child.on('close', (code, signal) => {
      children.delete(child);
      clearTimeout(timer);
      resolveRun({ code: code ?? signal, out, seconds: ((Date.now() - t0) / 1000).toFixed(1) });
    });
  });
}

/** Ends a child we started, with its process group (npm and tsc start their own children). */
function killGroup(child, signal = 'SIGKILL') {
  if (child.exitCode !== null || child.signalCode !== null) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    child.kill(signal);
  }
}

/** Runs a step that must succeed; aborts the whole run otherwise. */
async function step(name, cmd, args, opts) {
  const r = await run(cmd, args, opts);
  const ok = check(`${name} (${r.seconds} s)`, r.code === 0, `exit ${r.code}; last output:\n${tail(r.out)}`);
  if (!ok) throw new Abort(name);
  return r.out;
}

/** The last lines of a command's output, indented. */
function tail(text, lines = 30) {
  return text.trimEnd().split('\n').slice(-lines).join('\n');
}

/** The body of a level-2 section of README.md, up to the next level-2 heading. */
function readmeSection(readme, title) {
  const start = readme.indexOf(`\n## ${title}\n`);
  if (start < 0) throw new Abort(`README.md has no "## ${title}" section`);
  const end = readme.indexOf('\n## ', start + 1);
  return readme.slice(start, end < 0 ? undefined : end);
}

/** The fenced code blocks of a README section: `{ lang, code }`. */
function codeBlocks(section) {
  return [...section.matchAll(/^```(\w*)\n([\s\S]*?)^```$/gm)].map((m) => ({ lang: m[1], code: m[2] }));
}

/** Splits `name@range` (scoped or not) into its parts. */
function parseSpec(spec) {
  const at = spec.lastIndexOf('@');
  return at > 0 ? [spec.slice(0, at), spec.slice(at + 1)] : [spec, '*'];
}

/** RS256 JWT (RFC 7519) signed with `privateKey`. */
function signJwt(privateKey, header, claims) {
  const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const input = `${b64(header)}.${b64(claims)}`;
  const sig = createSign('RSA-SHA256').update(input).sign(privateKey).toString('base64url');
  return `${input}.${sig}`;
}

/** An RSA key pair, generated asynchronously (see TOOLCHAIN.md: the synchronous path can deadlock on Node 20). */
const rsaKeyPair = () =>
  new Promise((ok, ko) => generateKeyPair('rsa', { modulusLength: 2048 }, (e, publicKey, privateKey) => (e ? ko(e) : ok({ publicKey, privateKey }))));

/** Listens on a free port of 127.0.0.1. */
function listen(server) {
  return new Promise((ok, ko) => {
    server.once('error', ko);
    server.listen(0, '127.0.0.1', () => ok(server.address().port));
  });
}

/** A free port of 127.0.0.1 (taken and released). */
async function freePort() {
  const s = createServer();
  const port = await listen(s);
  await new Promise((ok) => s.close(ok));
  return port;
}

/** GET with a deadline; returns status, headers and text. */
async function get(url, token) {
  const res = await fetch(url, { headers: token ? { authorization: `Bearer ${token}` } : {}, signal: AbortSignal.timeout(10_000) });
  return { status: res.status, headers: res.headers, text: await res.text() };
}

/** Parses JSON or returns the text itself (so a failed check shows what came back). */
function json(text) {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/** Every `<pkg>/package.json` of a package named `name` anywhere under `nodeModules`. */
function installedCopies(nodeModules, name) {
  const found = [];
  const visit = (dir) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      if (!e.isDirectory() || e.name === '.bin') continue;
      const pkgDir = join(dir, e.name);
      if (e.name.startsWith('@')) {
        for (const s of readdirSync(pkgDir, { withFileTypes: true })) if (s.isDirectory()) inspect(join(pkgDir, s.name), `${e.name}/${s.name}`);
      } else inspect(pkgDir, e.name);
    }
  };
  const inspect = (pkgDir, pkgName) => {
    if (pkgName === name && existsSync(join(pkgDir, 'package.json'))) found.push(pkgDir);
    if (existsSync(join(pkgDir, 'node_modules'))) visit(join(pkgDir, 'node_modules'));
  };
  visit(nodeModules);
  return found;
}

// A fresh `node` in the app folder: loads one entry point and lists the modules it brought in, both from
// require.cache and from every resolution CommonJS made (require(esm) of an ESM-only package goes through it too).
const LOADED_MODULES_PROBE = `
const Module = require('node:module');
const resolved = [];
const resolveFilename = Module._resolveFilename;
Module._resolveFilename = function (...args) { const f = resolveFilename.apply(this, args); resolved.push(f); return f; };
const entry = require(process.argv[1]);
const seen = [...new Set([...Object.keys(require.cache), ...resolved])];
const pkgs = [...new Set(seen.map((f) => (/[\\\\/]node_modules[\\\\/]((?:@[^\\\\/]+[\\\\/])?[^\\\\/]+)/.exec(f) || [])[1]).filter(Boolean))];
console.log(JSON.stringify({ exports: Object.keys(entry).length, packages: pkgs.map((p) => p.replace(/\\\\/g, '/')) }));
`;

async function main() {
  const readme = readFileSync(join(repoDir, 'README.md'), 'utf8');

  // 1. Build and pack.
  await step('npm run build:lib', 'npm', ['run', 'build:lib'], { cwd: repoDir, timeoutMs: 5 * 60_000 });
  workDir = mkdtempSync(join(realpathSync(tmpdir()), 'nestjs-a2a-auth-consumer-'));
  if (!relative(repoDir, workDir).startsWith('..')) throw new Abort(`the temporary folder ${workDir} is inside the repository`);
  const packOut = await step('npm pack', 'npm', ['pack', '--json', '--pack-destination', workDir], { cwd: distDir, timeoutMs: 2 * 60_000 });
  const packed = JSON.parse(packOut.slice(packOut.indexOf('[')))[0];
  const tarball = join(workDir, packed.filename);
  const files = packed.files.map((f) => f.path);
  check(`tarball ${packed.filename}: ${files.length} files, ${(packed.size / 1024).toFixed(0)} KiB`, existsSync(tarball));
  for (const f of ['package.json', 'README.md', 'index.js', 'index.d.ts', 'client/index.js', 'client/index.d.ts', 'core/index.js', 'core/index.d.ts']) {
    check(`tarball contains ${f}`, files.includes(f));
  }
  const stray = files.filter((f) => /\.(spec|e2e-spec)\.|\.map$|\.tsbuildinfo$|\.ts$(?<!\.d\.ts)|(^|\/)(test|src)\//.test(f));
  checkEqual('tarball has no tests, sources, maps or build info', stray, []);

  // 2. The app, from README.md.
  const appDir = join(workDir, 'app');
  mkdirSync(appDir);
  const install = codeBlocks(readmeSection(readme, 'Install')).flatMap((b) => b.code.split('\n'));
  const depsLine = install.find((l) => /^npm install nestjs-a2a-auth /.test(l));
  const devLine = install.find((l) => /^npm install -D /.test(l));
  if (!depsLine || !devLine) throw new Abort('README.md "## Install" lacks the "npm install nestjs-a2a-auth …" or "npm install -D …" line');
  const specs = (line, skip) => Object.fromEntries(line.trim().split(/\s+/).slice(skip).map(parseSpec));
  const dependencies = { ...specs(depsLine, 2), 'nestjs-a2a-auth': `file:${tarball}` };
  const devDependencies = specs(devLine, 3);
  writeFileSync(join(appDir, 'package.json'), JSON.stringify({ name: 'consumer-app', private: true, dependencies, devDependencies }, null, 2));
  let written = 0;
  for (const block of codeBlocks(readmeSection(readme, 'Use it in your own app'))) {
    const m = /^\/\/ (\S+)/.exec(block.code);
    if (!m) continue;
    const file = join(appDir, m[1]);
    if (relative(appDir, file).startsWith('..')) throw new Abort(`README.md names a file outside the app: ${m[1]}`);
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, m[1].endsWith('.json') ? block.code.split('\n').slice(1).join('\n') : block.code);
    written++;
  }
  check(
    `app written from README.md (${written} files)`,
    ['src/app.module.ts', 'src/main.ts', 'tsconfig.json'].every((f) => existsSync(join(appDir, f))),
  );

  // 3. Install and compile.
  await step('npm install (tarball + peers from the registry)', 'npm', ['install', '--prefer-offline', '--no-audit', '--no-fund'], {
    cwd: appDir,
    timeoutMs: 8 * 60_000,
  });
  const tsVersion = JSON.parse(readFileSync(join(appDir, 'node_modules/typescript/package.json'), 'utf8')).version;
  check(`TypeScript ${tsVersion} is 6.x`, tsVersion.startsWith('6.'));
  await step('tsc -p tsconfig.json (strict)', process.execPath, [join(appDir, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.json'], {
    cwd: appDir,
    timeoutMs: 3 * 60_000,
  });

  // 4. The installed package.
  const fromApp = realpathSync(createRequire(join(appDir, 'package.json')).resolve('@nestjs/common'));
  const libEntry = join(appDir, 'node_modules/nestjs-a2a-auth/index.js');
  const fromLib = realpathSync(createRequire(libEntry).resolve('@nestjs/common'));
  checkEqual('the app and the library resolve the same @nestjs/common', relative(appDir, fromLib), relative(appDir, fromApp));
  checkEqual(
    'one copy of @nestjs/common installed',
    installedCopies(join(appDir, 'node_modules'), '@nestjs/common').map((d) => relative(appDir, d)),
    ['node_modules/@nestjs/common'],
  );
  const probe = async (entry) => {
    const r = await run(process.execPath, ['-e', LOADED_MODULES_PROBE, entry], { cwd: appDir, timeoutMs: 60_000 });
    if (r.code !== 0) return { exports: 0, packages: [`probe failed: ${tail(r.out, 10)}`] };
    return JSON.parse(r.out.trim().split('\n').pop());
  };
  const root = await probe('nestjs-a2a-auth');
  check(
    `require('nestjs-a2a-auth') loads Nest (the probe sees it: ${root.packages.filter((p) => p.startsWith('@nestjs/')).join(', ')})`,
    root.exports > 0 && root.packages.includes('@nestjs/common'),
  );
  const client = await probe('nestjs-a2a-auth/client');
  check(`require('nestjs-a2a-auth/client') loads ${client.exports} exports`, client.exports > 0);
  checkEqual(
    "require('nestjs-a2a-auth/client') loads no @nestjs/* module",
    client.packages.filter((p) => p.startsWith('@nestjs/')),
    [],
  );
  const core = await probe('nestjs-a2a-auth/core');
  check(`require('nestjs-a2a-auth/core') loads ${core.exports} exports`, core.exports > 0);
  checkEqual(
    "require('nestjs-a2a-auth/core') loads no @nestjs/*, passport or express module",
    core.packages.filter((p) => /^(@nestjs\/|passport|express)/.test(p)),
    [],
  );
  const esm = await run(
    process.execPath,
    [
      '--input-type=module',
      '-e',
      "import { A2AAuthModule, RequireScopes } from 'nestjs-a2a-auth'; console.log(typeof A2AAuthModule.forRoot, typeof RequireScopes);",
    ],
    { cwd: appDir, timeoutMs: 60_000 },
  );
  checkEqual('an ES module can import the named exports', esm.out.trim().split('\n').pop(), 'function function');

  // 5. Boot it and call it.
  const kid = `consumer-${randomUUID().slice(0, 8)}`;
  const [{ publicKey, privateKey }, other] = await Promise.all([rsaKeyPair(), rsaKeyPair()]);
  const jwks = JSON.stringify({ keys: [{ ...publicKey.export({ format: 'jwk' }), kid, alg: 'RS256', use: 'sig' }] });
  jwksServer = createServer((req, res) => {
    if (req.url === '/jwks') res.writeHead(200, { 'content-type': 'application/json' }).end(jwks);
    else res.writeHead(404).end();
  });
  const issuer = `http://127.0.0.1:${await listen(jwksServer)}`;
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const audience = 'reports-agent';
  const tokenUrl = `${issuer}/token`;
  const token = (scope, key = privateKey) => {
    const now = Math.floor(Date.now() / 1000);
    return signJwt(
      key,
      { alg: 'RS256', typ: 'at+jwt', kid },
      { iss: issuer, aud: audience, sub: 'consumer-client', client_id: 'consumer-client', scope, iat: now, exp: now + 300, jti: randomUUID() },
    );
  };

  const appEnv = { A2A_ISSUER: issuer, A2A_AUDIENCE: audience, A2A_JWKS_URI: `${issuer}/jwks`, A2A_TOKEN_URL: tokenUrl, PUBLIC_URL: base, PORT: String(port) };
  app = spawn(process.execPath, ['dist/main.js'], { cwd: appDir, env: { ...process.env, ...appEnv }, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  let appOut = '';
  const up = new Promise((ok) => {
    const onData = (d) => {
      appOut += d;
      if (appOut.includes('Reports Agent listening on')) ok(true);
    };
    app.stdout.on('data', onData);
    app.stderr.on('data', onData);
    app.on('exit', () => ok(false));
    setTimeout(() => ok(false), 60_000);
  });
  if (!check('the app boots on 127.0.0.1', await up, `output:\n${tail(appOut)}`)) throw new Abort('boot');

  const url = `${base}/reports/monthly`;
  const challenge = `Bearer realm="Reports Agent", resource_metadata="${base}/.well-known/oauth-protected-resource"`;

  const r401 = await get(url);
  checkEqual('no token: 401', r401.status, 401);
  checkEqual('no token: WWW-Authenticate', r401.headers.get('www-authenticate'), challenge);
  checkEqual('no token: body', json(r401.text), {
    error: 'invalid_request',
    error_description: 'Authentication required: send an OAuth 2.0 bearer token in the Authorization header',
  });

  const forged = await get(url, token('reports:read', other.privateKey));
  checkEqual('token signed by another key: 401', forged.status, 401);
  checkEqual(
    'token signed by another key: WWW-Authenticate',
    /^(.*), error="invalid_token", error_description="[^"]+"$/.exec(forged.headers.get('www-authenticate') ?? '')?.[1],
    challenge,
  );

  const r403 = await get(url, token('profile reports:write'));
  checkEqual('token without reports:read: 403', r403.status, 403);
  checkEqual(
    'token without reports:read: WWW-Authenticate',
    r403.headers.get('www-authenticate'),
    `${challenge}, error="insufficient_scope", error_description="The access token lacks a required scope", scope="reports:read"`,
  );
  checkEqual('token without reports:read: body', json(r403.text), {
    error: 'insufficient_scope',
    error_description: 'The access token lacks a required scope',
    scope: 'reports:read',
  });

  const r200 = await get(url, token('reports:read'));
  checkEqual('token with reports:read: 200', r200.status, 200);
  checkEqual('token with reports:read: the handler sees the verified caller (@A2ACaller)', json(r200.text), {
    report: 'monthly',
    requestedBy: 'consumer-client',
    scopes: ['reports:read'],
  });

  const health = await get(`${base}/reports/health`);
  checkEqual('@Public() route without a token: 200', [health.status, json(health.text)], [200, { ok: true }]);

  const card = await get(`${base}/.well-known/agent-card.json`);
  checkEqual('Agent Card: 200', card.status, 200);
  check(`Agent Card: Content-Type ${card.headers.get('content-type')}`, /^application\/json(;|$)/.test(card.headers.get('content-type') ?? ''));
  const c = json(card.text);
  const skill = c?.skills?.find((s) => s.id === 'monthly-report');
  checkEqual('Agent Card: the monthly-report skill', skill && { id: skill.id, name: skill.name, tags: skill.tags }, {
    id: 'monthly-report',
    name: 'Monthly report',
    tags: ['reports'],
  });
  check('Agent Card: the skill requires reports:read', JSON.stringify(skill?.securityRequirements ?? []).includes('"reports:read"'), JSON.stringify(skill));
  checkEqual('Agent Card: the token URL', c?.securitySchemes?.oauth2?.oauth2SecurityScheme?.flows?.clientCredentials?.tokenUrl, tokenUrl);
}

/** Stops the app and the JWKS server, removes the temporary folder. */
async function cleanUp() {
  for (const child of children) killGroup(child);
  if (app) {
    const exited = new Promise((ok) => (app.exitCode !== null || app.signalCode !== null ? ok() : app.once('exit', ok)));
    killGroup(app, 'SIGTERM');
    const timer = setTimeout(() => killGroup(app, 'SIGKILL'), 5_000);
    await exited;
    clearTimeout(timer);
  }
  if (jwksServer) {
    jwksServer.closeAllConnections?.();
    await new Promise((ok) => jwksServer.close(ok));
  }
  if (workDir) {
    if (process.env.KEEP_CONSUMER_DIR === '1') console.log(`kept ${workDir}`);
    else rmSync(workDir, { recursive: true, force: true });
  }
}

let finishing = false;
/** Prints the summary and exits (once). */
async function finish(reason) {
  if (finishing) return;
  finishing = true;
  await cleanUp().catch((e) => console.log(`clean-up failed: ${e.message}`));
  const seconds = ((Date.now() - started) / 1000).toFixed(1);
  const ok = failed === 0 && passed > 0 && !reason;
  console.log(`${ok ? 'PASS' : 'FAIL'} consumer test: nestjs-a2a-auth installed from its tarball, in ${seconds} s${reason ? ` (${reason})` : ''}`);
  console.log(`consumer: ${passed} passed, ${failed} failed`);
  process.exit(ok ? 0 : 1);
}

const deadline = setTimeout(() => void finish(`deadline of ${TOTAL_DEADLINE_MS / 1000} s reached`), TOTAL_DEADLINE_MS);
deadline.unref();
for (const sig of ['SIGINT', 'SIGTERM']) process.once(sig, () => void finish(`stopped by ${sig}`));
main().then(
  () => finish(),
  (e) => finish(e instanceof Abort ? `stopped at: ${e.message}` : `error: ${e.stack ?? e}`),
);
