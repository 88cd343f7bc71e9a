#!/usr/bin/env node
// npm run build:lib: compiles libs/a2a-auth/src to libs/a2a-auth/dist (CommonJS + .d.ts) and makes that folder the
// publishable package: libs/a2a-auth/package.json (the manifest, with paths relative to dist) and the README.
// The manifest is checked first: every dependency and peer range must accept the version the workspace pins, so the
// package declares what the tests ran against.
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const rootDir = dirname(dirname(fileURLToPath(import.meta.url)));
const libDir = join(rootDir, 'libs/a2a-auth');
const distDir = join(libDir, 'dist');

/** Stops the build with a message. */
function fail(message) {
  console.error(`build:lib: ${message}`);
  process.exit(1);
}

/** Parses `1.2.3` (a pinned version, no prerelease) into numbers. */
function parseVersion(v) {
  const m = /^(\d+)\.(\d+)\.(\d+)$/.exec(v);
  return m ? m.slice(1, 4).map(Number) : undefined;
}

/** True when the pinned `version` satisfies a caret range `^X[.Y[.Z]]` (the only range form the manifest uses). */
function satisfiesCaret(version, range) {
  const v = parseVersion(version);
  const m = /^\^(\d+)(?:\.(\d+))?(?:\.(\d+))?$/.exec(range);
  if (!v || !m) return false;
  const r = [Number(m[1]), Number(m[2] ?? 0), Number(m[3] ?? 0)];
  // The first non-zero part of the range is fixed; everything after may grow.
  const fixed = r[0] > 0 ? 1 : r[1] > 0 ? 2 : m[3] !== undefined ? 3 : m[2] !== undefined ? 2 : 1;
  for (let i = 0; i < fixed; i++) if (v[i] !== r[i]) return false;
  for (let i = 0; i < 3; i++) if (v[i] !== r[i]) return v[i] > r[i];
  return true;
}

const manifest = JSON.parse(readFileSync(join(libDir, 'package.json'), 'utf8'));
const root = JSON.parse(readFileSync(join(rootDir, 'package.json'), 'utf8'));
const pinned = { ...root.devDependencies, ...root.dependencies };

for (const field of ['dependencies', 'peerDependencies']) {
  for (const [name, range] of Object.entries(manifest[field] ?? {})) {
    const version = pinned[name];
    if (!version) fail(`${field}.${name} is not in the workspace package.json`);
    if (!satisfiesCaret(version, range)) fail(`${field}.${name} "${range}" does not accept the workspace's ${version}`);
  }
}
if (manifest.engines?.node !== root.engines?.node) fail(`engines.node "${manifest.engines?.node}" differs from the workspace's "${root.engines?.node}"`);

rmSync(distDir, { recursive: true, force: true });
const tsc = createRequire(join(rootDir, 'package.json')).resolve('typescript/bin/tsc');
const compiled = spawnSync(process.execPath, [tsc, '-p', join(libDir, 'tsconfig.lib.json')], { stdio: 'inherit' });
if (compiled.status !== 0) fail(`tsc exited with ${compiled.status ?? compiled.signal}`);

writeFileSync(join(distDir, 'package.json'), JSON.stringify(manifest, null, 2) + '\n');
copyFileSync(join(rootDir, 'README.md'), join(distDir, 'README.md'));
copyFileSync(join(rootDir, 'LICENSE'), join(distDir, 'LICENSE'));

/** Every file under `dir`, relative to dist. */
function walk(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(join(dir, e.name)) : [relative(distDir, join(dir, e.name))]));
}
const files = walk(distDir);
const stray = files.filter((f) => /\.(spec|e2e-spec)\.|\.map$|\.tsbuildinfo$/.test(f));
if (stray.length) fail(`unexpected files in dist: ${stray.join(', ')}`);
for (const [entry, target] of Object.entries(manifest.exports)) {
  const paths = typeof target === 'string' ? [target] : Object.values(target);
  for (const p of paths) if (!existsSync(join(distDir, p))) fail(`exports["${entry}"] names ${p}, which the build did not produce`);
}
// What the compiled code requires must be declared, and every declared dependency must be required.
const required = new Set();
for (const f of files.filter((f) => f.endsWith('.js'))) {
  for (const [, spec] of readFileSync(join(distDir, f), 'utf8').matchAll(/\brequire\("([^".][^"]*)"\)/g)) {
    if (!spec.startsWith('node:'))
      required.add(
        spec
          .split('/')
          .slice(0, spec.startsWith('@') ? 2 : 1)
          .join('/'),
      );
  }
}
const declared = { ...manifest.dependencies, ...manifest.peerDependencies };
const undeclared = [...required].filter((p) => !(p in declared));
if (undeclared.length) fail(`the build requires ${undeclared.join(', ')}, which package.json does not declare`);
const unused = Object.keys(manifest.dependencies ?? {}).filter((p) => !required.has(p));
if (unused.length) fail(`dependencies ${unused.join(', ')} are never required by the build`);
console.log(`build:lib: ${manifest.name}@${manifest.version} in ${relative(rootDir, distDir)} (${files.length} files)`);
