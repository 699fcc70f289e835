#!/usr/bin/env node
// Keeps the dependency arrows of DESIGN.md pointing down: each folder of src/ may import
// only the folders listed for it below. Also reports imports that reach past another
// folder's door (its index.ts) into its private files.
// Usage: node scripts/check-layers.mjs   (exit 1 on a violation)
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';

const root = resolve(new URL('..', import.meta.url).pathname);
const src = join(root, 'src');

/** folder -> folders it may import (besides itself). */
const allowed = {
  common: [],
  object: ['common'],
  data: ['common', 'object'],
  rpc: ['common'],
  meta: ['common', 'rpc'],
  fuse: ['common'],
  config: ['common'],
  metrics: ['common'],
  vfs: ['common', 'fuse', 'meta', 'data', 'object'],
  proxy: ['common', 'object', 'rpc'],
  ops: ['common', 'meta', 'data', 'object'],
  volume: ['common', 'config', 'object', 'data', 'rpc', 'meta', 'fuse', 'vfs', 'proxy', 'ops', 'metrics'],
  cli: [
    'common',
    'config',
    'object',
    'data',
    'rpc',
    'meta',
    'fuse',
    'vfs',
    'proxy',
    'ops',
    'volume',
    'metrics',
  ],
};

function walk(dir) {
  const out = [];
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out.push(...walk(path));
    else if (name.endsWith('.ts')) out.push(path);
  }
  return out;
}

const importPattern =
  /(?:^|\n)\s*(?:import|export)\s[^'"]*?from\s+['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/g;
const problems = [];
const deepImports = [];
for (const file of walk(src)) {
  const from = relative(src, file).split(sep)[0];
  const text = readFileSync(file, 'utf8');
  for (const match of text.matchAll(importPattern)) {
    const spec = match[1] ?? match[2];
    if (!spec.startsWith('.')) continue;
    const target = resolve(dirname(file), spec);
    const rel = relative(src, target);
    if (rel.startsWith('..')) {
      problems.push(`${relative(root, file)} imports ${spec}, outside src/`);
      continue;
    }
    const to = rel.split(sep)[0];
    if (to === from) continue;
    if (!(from in allowed)) {
      problems.push(
        `${relative(root, file)}: folder src/${from} has no rule in scripts/check-layers.mjs; add one`,
      );
      continue;
    }
    if (!allowed[from].includes(to)) {
      problems.push(
        `${relative(root, file)} imports src/${to} (${spec}): src/${from} may import only ${allowed[from].join(', ') || 'nothing'}`,
      );
    } else if (!/(^|\/)index(\.js)?$/.test(rel)) {
      deepImports.push(`${relative(root, file)} reaches into ${rel}`);
    }
  }
}
if (deepImports.length > 0 && process.argv.includes('--doors')) {
  console.log(
    `imports past another folder's index.ts (${deepImports.length}):\n  ${deepImports.join('\n  ')}`,
  );
}
if (problems.length > 0) {
  console.error(`layering violations (${problems.length}):\n  ${problems.join('\n  ')}`);
  process.exit(1);
}
console.log('layers ok');
