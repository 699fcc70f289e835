// posix-probe.py on a `strata up` mount and on tmpfs: locks, open-but-unlinked files,
// readdir under mutation and timestamps must answer line for line alike.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { repoRoot } from './executor.js';
import { startStrata, strataUnavailable, type StrataMount } from './strata-mount.js';
import { mountTmpfs, type TempMount } from './tmpfs.js';

let mount: StrataMount | undefined;
let reference: TempMount | undefined;

before(async () => {
  if (strataUnavailable()) return;
  reference = mountTmpfs('probe');
  mount = await startStrata();
  // The probe's children act as uid 65534, which must reach the mount through its parent.
  chmodSync(dirname(mount.mountpoint), 0o755);
});

after(async () => {
  await mount?.stop();
  reference?.dispose();
});

function probe(root: string): string[] {
  const result = spawnSync('python3', [join(repoRoot(), 'test', 'reliability', 'posix-probe.py'), root], {
    encoding: 'utf8',
    // A lock the file system never grants would leave the probe waiting forever.
    timeout: 120_000,
    killSignal: 'SIGKILL',
  });
  assert.equal(result.status, 0, `probe on ${root} failed:\n${result.stdout}\n${result.stderr}`);
  return result.stdout.trim().split('\n');
}

test('the conformance probe answers on strata as on tmpfs', { skip: strataUnavailable() }, () => {
  assert.ok(mount && reference);
  const expected = probe(reference.path);
  assert.ok(expected.length > 80, 'the probe ran to its end on tmpfs');
  assert.deepEqual(probe(mount.mountpoint), expected);
});
