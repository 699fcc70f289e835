import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { nativeAddonPath } from '../../src/common/index.js';

// In a child process of its own, so this runner's heap does not blur the figures: one 4 MiB
// buffer freed first makes glibc raise its mmap threshold (as a mount's first freed block does),
// then 100 buffers come from the heap and every other one is freed. The holes stay resident
// until trimMemory hands them back.
const probe = `
const addon = require(process.argv[1]);
const rss = () => Math.round(process.memoryUsage.rss() / 1048576);
let first = Buffer.alloc(4 << 20, 1); first = null; global.gc(); global.gc();
let buffers = [];
for (let i = 0; i < 100; i++) buffers.push(Buffer.alloc(4 << 20, 1));
const kept = buffers.filter((_, i) => i % 2 === 0);
buffers = null;
global.gc(); global.gc();
const before = rss();
const released = addon.trimMemory();
console.log(JSON.stringify({ before, after: rss(), released, kept: kept.length }));
`;

test('trimMemory gives the holes freed block buffers leave in the heap back to the system', () => {
  const addon = nativeAddonPath('fdpoll');
  const out = execFileSync(process.execPath, ['--expose-gc', '-e', probe, addon], { encoding: 'utf8' });
  const { before, after, released } = JSON.parse(out) as { before: number; after: number; released: boolean };
  assert.equal(released, true, out);
  // 50 freed buffers of 4 MiB: at least 150 of their 200 MiB must leave the resident set.
  assert.ok(before - after >= 150, `RSS ${before} -> ${after} MiB`);
});
