import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync } from 'node:fs';
import { join } from 'node:path';
import { mountTmpfs, type TempMount } from '../reliability/tmpfs.js';
import { cleanup, formatVolume, repoRoot, serveMeta, tempDir, StrataProcess, startMount } from './harness.js';

// Both conformance probes (test/reliability/posix-probe.py and posix-probe3.py) on the
// separate-process deployment: `strata meta serve` (SQLite) and `strata mount` over RPC,
// compared line by line with tmpfs. Every argument crosses the RPC codec here, which
// `strata up` never uses: a value the codec refuses must still get the errno Linux gives.
const root = tempDir('posix-rpc');
const mnt = join(root, 'mnt');
let server: StrataProcess | undefined;
let client: StrataProcess | undefined;
let reference: TempMount | undefined;

before(async () => {
  // The round-2 probe's children act as uid 65534 and must reach the mount through its parents.
  chmodSync(root, 0o755);
  const engine = `sqlite:${join(root, 'meta.db')}`;
  formatVolume(engine, join(root, 'objects'), 'vol');
  const served = await serveMeta(engine);
  server = served.proc;
  client = await startMount(`${served.address}/vol`, mnt, ['--secret-file', join(root, 'meta.db.secret')]);
  reference = mountTmpfs('probe-rpc');
});

after(async () => {
  await cleanup([client], [mnt], []);
  await cleanup([server], [], [root]);
  reference?.dispose();
});

function probe(script: string, dir: string): string[] {
  const result = spawnSync('python3', [join(repoRoot(), 'test', 'reliability', script), dir], {
    encoding: 'utf8',
    // A lock the file system never grants would leave the probe waiting forever.
    timeout: 120_000,
    killSignal: 'SIGKILL',
  });
  assert.equal(result.status, 0, `${script} on ${dir} failed:\n${result.stdout}\n${result.stderr}`);
  return result.stdout.trim().split('\n');
}

for (const script of ['posix-probe.py', 'posix-probe3.py']) {
  test(`${script} answers over RPC as on tmpfs`, () => {
    assert.ok(reference);
    const expected = probe(script, reference.path);
    assert.ok(expected.length > 80, `${script} ran to its end on tmpfs`);
    assert.deepEqual(probe(script, mnt), expected);
  });
}
