// Fails when folders of the library import each other in a cycle (e.g. nest/guard -> nest/card -> nest/guard).
// Helpers that several folders use belong in the lowest folder that needs them; this check keeps it that way.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';

const root = resolve(process.argv[2] ?? 'libs/a2a-auth/src');
const files = [];
(function walk(d) {
  for (const n of readdirSync(d)) {
    const p = join(d, n);
    if (statSync(p).isDirectory()) walk(p);
    // Barrels (index.ts) only re-export: they are the public entry points, not part of the dependency structure.
    else if (p.endsWith('.ts') && !p.endsWith('.d.ts') && n !== 'index.ts') files.push(p);
  }
})(root);

const folderOf = (f) => relative(root, dirname(f)) || '.';
const edges = new Map();
const why = new Map();
for (const f of files) {
  const src = readFileSync(f, 'utf8');
  for (const m of src.matchAll(/(?:from|import)\s*\(?\s*'(\.{1,2}\/[^']+)'/g)) {
    const target = resolve(dirname(f), m[1]);
    const from = folderOf(f);
    const to = relative(root, target.endsWith('.ts') ? dirname(target) : dirname(target + '.ts')) || '.';
    if (from === to || to.startsWith('..')) continue;
    if (!edges.has(from)) edges.set(from, new Set());
    edges.get(from).add(to);
    if (!why.has(`${from}>${to}`)) why.set(`${from}>${to}`, `${relative(root, f)} imports ${m[1]}`);
  }
}

// Depth-first search for a back edge; prints each cycle once.
const state = new Map();
const stack = [];
const cycles = [];
function visit(n) {
  state.set(n, 1);
  stack.push(n);
  for (const m of edges.get(n) ?? []) {
    if (state.get(m) === 1) cycles.push([...stack.slice(stack.indexOf(m)), m]);
    else if (!state.has(m)) visit(m);
  }
  stack.pop();
  state.set(n, 2);
}
for (const n of edges.keys()) if (!state.has(n)) visit(n);

if (cycles.length) {
  for (const c of cycles) {
    console.error(`import cycle between folders: ${c.join(' -> ')}`);
    for (let i = 0; i + 1 < c.length; i++) console.error(`  ${why.get(`${c[i]}>${c[i + 1]}`)}`);
  }
  process.exit(1);
}
console.log(`no import cycles between the ${new Set([...files.map(folderOf)]).size} folders of ${relative(process.cwd(), root)}`);
