// posix-probe3.py on a `strata up` mount and on tmpfs: rename and link edge forms, xattr flags
// and limits, fallocate modes, copy_file_range, O_APPEND per write, mmap past EOF and path
// limits must answer line for line alike.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { repoRoot } from './executor.js';
import { startStrata, strataUnavailable, type StrataMount } from './strata-mount.js';
import { mountTmpfs, type TempMount } from './tmpfs.js';

let mount: StrataMount | undefined;
let reference: TempMount | undefined;

before(async () => {
  if (strataUnavailable()) return;
  reference = mountTmpfs('probe3');
  mount = await startStrata();
});

after(async () => {
  await mount?.stop();
  reference?.dispose();
});

function probe(root: string): string[] {
  const result = spawnSync('python3', [join(repoRoot(), 'test', 'reliability', 'posix-probe3.py'), root], {
    encoding: 'utf8',
    // A lock the file system never grants would leave the probe waiting forever.
    timeout: 120_000,
    killSignal: 'SIGKILL',
  });
  assert.equal(result.status, 0, `probe on ${root} failed:\n${result.stdout}\n${result.stderr}`);
  return result.stdout.trim().split('\n');
}

test('the round-3 conformance probe answers on strata as on tmpfs', { skip: strataUnavailable() }, () => {
  assert.ok(mount && reference);
  const expected = probe(reference.path);
  assert.ok(expected.length > 150, 'the probe ran to its end on tmpfs');
  assert.deepEqual(probe(mount.mountpoint), expected);
});
