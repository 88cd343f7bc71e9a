#!/usr/bin/env node
// `npm run bench`: compiles bench/*.ts (with the library it imports) into dist/bench, then runs the orchestrator.
// Not part of `npm test`. Env knobs are listed in bench/orchestrator.ts and docs/performance.md.
'use strict';
const { spawnSync } = require('node:child_process');
const { join } = require('node:path');

const root = join(__dirname, '..');
if (process.env.BENCH_SKIP_BUILD !== '1') {
  const tsc = spawnSync(process.execPath, [require.resolve('typescript/bin/tsc'), '-p', join(__dirname, 'tsconfig.json')], { cwd: root, stdio: 'inherit' });
  if (tsc.status !== 0) process.exit(tsc.status ?? 1);
}
// `node bench/run.js profile` runs the CPU profile instead of the comparison.
require(join(root, 'dist', 'bench', 'bench', process.argv[2] === 'profile' ? 'profile.js' : 'orchestrator.js'));
