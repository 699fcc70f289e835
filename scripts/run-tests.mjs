#!/usr/bin/env node
// Runs every compiled test file (dist/test/**/*.test.js) with Node's built-in test runner.
// Usage: node scripts/run-tests.mjs [path-filter ...]
//   STRATA_TEST_PROFILE=long     runs the long profile (tests read it to scale their work)
//   STRATA_DIST_DIR=DIR          compiled output to run (default dist/)
//   STRATA_TEST_CONCURRENCY=N    test files run in parallel (default 1: mounts and servers share 2 cores)
import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { spawnSync } from 'node:child_process';

const root = new URL('..', import.meta.url).pathname;
// STRATA_DIST_DIR lets several builds live side by side (e.g. /tmp/dist-fuse); default dist/.
const distDir = process.env.STRATA_DIST_DIR ?? join(root, 'dist');
const testRoot = join(distDir, 'test');

function collect(dir) {
  const files = [];
  for (const name of readdirSync(dir).sort()) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) files.push(...collect(path));
    else if (name.endsWith('.test.js')) files.push(path);
  }
  return files;
}

const filters = process.argv.slice(2);
const files = collect(testRoot).filter(
  (file) => filters.length === 0 || filters.some((f) => relative(root, file).includes(f)),
);
if (files.length === 0) {
  console.error(`no test files matched under ${testRoot}; run "npm run build:ts" first`);
  process.exit(1);
}
const concurrency = process.env.STRATA_TEST_CONCURRENCY ?? '1';
const result = spawnSync(
  process.execPath,
  ['--test', `--test-concurrency=${concurrency}`, '--test-reporter=spec', ...files],
  { stdio: 'inherit', cwd: root },
);
process.exit(result.status ?? 1);
