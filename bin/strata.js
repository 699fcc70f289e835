#!/usr/bin/env node
// The `strata` command: a tiny launcher into the compiled CLI (dist/src/cli/main.js).
// STRATA_DIST_DIR picks another build output (tests run from private build directories).
//
// CommonJS on purpose (bin/package.json): Node loads an ES module entry through the libuv
// thread pool, which starts the pool before the entry's first line runs, so the pool size set
// below would come too late and the pool would keep its default of 4 threads.
'use strict';
const { existsSync } = require('node:fs');
const { join } = require('node:path');
const { pathToFileURL } = require('node:url');

// Object-store puts, block reads and cache files go through libuv's thread pool, where 4
// threads (the default) let a few slow disk calls hold up the rest. It must be set before the
// pool starts (test/cli/launcher.test.ts), and a user's own setting wins.
process.env.UV_THREADPOOL_SIZE ??= '16';

const distDir = process.env.STRATA_DIST_DIR ?? join(__dirname, '..', 'dist');
const entry = join(distDir, 'src', 'cli', 'main.js');
if (!existsSync(entry)) {
  console.error(`strata: ${entry} is missing; run "npm run build" first`);
  process.exit(1);
}
import(pathToFileURL(entry).href)
  .then(({ main }) => main(process.argv.slice(2)))
  // Exit explicitly: a stopped mount must not linger on a forgotten timer or socket.
  .then((code) => process.exit(code))
  .catch((error) => {
    console.error(error);
    process.exit(1);
  });
