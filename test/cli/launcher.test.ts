import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot, tempDir } from '../e2e/harness.js';

// A stand-in for the compiled CLI: it makes the thread pool start (20 reads at once) and
// exits with the number of threads the process has then.
const THREAD_COUNTING_MAIN = `
import { readdirSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
export async function main() {
  await Promise.all(Array.from({ length: 20 }, () => readFile('/proc/self/stat')));
  return readdirSync('/proc/self/task').length;
}
`;

function threadsUnderLauncher(extraEnv: Record<string, string>): number {
  const dist = tempDir('launcher');
  try {
    mkdirSync(join(dist, 'src', 'cli'), { recursive: true });
    writeFileSync(join(dist, 'package.json'), '{ "type": "module" }\n');
    writeFileSync(join(dist, 'src', 'cli', 'main.js'), THREAD_COUNTING_MAIN);
    const env: NodeJS.ProcessEnv = { ...process.env, STRATA_DIST_DIR: dist, ...extraEnv };
    if (!('UV_THREADPOOL_SIZE' in extraEnv)) delete env.UV_THREADPOOL_SIZE;
    const result = spawnSync(process.execPath, [join(repoRoot(), 'bin', 'strata.js')], {
      env,
      encoding: 'utf8',
      timeout: 30_000,
    });
    assert.equal(result.stderr, '');
    return result.status ?? -1;
  } finally {
    rmSync(dist, { recursive: true, force: true });
  }
}

test('the launcher sizes the thread pool before it starts: 16 threads, or the user’s own setting', () => {
  // Besides the pool: the main thread and V8's platform threads (4 or so).
  const withDefault = threadsUnderLauncher({});
  assert.ok(withDefault >= 17, `expected the 16-thread pool, the process has ${withDefault} threads`);
  const withFour = threadsUnderLauncher({ UV_THREADPOOL_SIZE: '4' });
  assert.equal(
    withDefault - withFour,
    12,
    `16 pool threads against 4: ${withDefault} vs ${withFour} threads`,
  );
});
