import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { cleanup, isMounted, sh, startUp, tempDir, type StrataProcess } from './harness.js';

// kill -9 of the mount process while writes are in flight: after `umount -l` and a
// restart, every file that was fsync'd before the kill is intact, and the namespace is sane.
const root = tempDir('crash');
const dataDir = join(root, 'data');
const mnt = join(root, 'mnt');
let up: StrataProcess | undefined;

after(async () => {
  await cleanup([up], [mnt], [root]);
});

test('files fsync-ed before a kill -9 of the mount survive intact after remount', async () => {
  up = await startUp(dataDir, mnt);
  const synced = new Map<string, string>();
  sh(`mkdir ${mnt}/durable ${mnt}/inflight`);
  for (let i = 0; i < 40; i++) {
    const name = `durable/f${i}`;
    // dd conv=fsync: the data and metadata are committed before dd returns.
    sh(`head -c ${(i + 1) * 37_000} /dev/urandom | dd of=${mnt}/${name} bs=64k conv=fsync status=none`);
    synced.set(name, sh(`sha256sum ${mnt}/${name}`).split(' ')[0]);
  }
  // Writers still going when the mount dies: their files may be short or missing, never corrupt the rest.
  const writer = spawn(
    'bash',
    ['-c', `for i in $(seq 1 100000); do head -c 300000 /dev/urandom > ${mnt}/inflight/g$i || exit 0; done`],
    { stdio: 'ignore' },
  );
  try {
    await new Promise((resolve) => setTimeout(resolve, 1500));
    up.child.kill('SIGKILL');
    await up.exited;
    up = undefined;
  } finally {
    writer.kill('SIGKILL');
  }
  sh(`umount -l ${mnt}`);
  assert.ok(!isMounted(mnt));

  up = await startUp(dataDir, mnt);
  for (const [name, sum] of synced) {
    assert.equal(sh(`sha256sum ${mnt}/${name}`).split(' ')[0], sum, `${name} after the crash`);
  }
  // The namespace is consistent: every listed name stats, sizes are sane, and files read to the end.
  let entries = 0;
  for (const dir of ['durable', 'inflight']) {
    for (const name of readdirSync(join(mnt, dir))) {
      const st = statSync(join(mnt, dir, name));
      assert.ok(st.isFile() && st.size >= 0 && st.size <= 300_000 * 10, `${dir}/${name}`);
      entries++;
    }
  }
  assert.ok(entries >= synced.size);
  sh(`cat ${mnt}/inflight/* > /dev/null 2>&1 || true; cat ${mnt}/durable/* > /dev/null`);
  // And the volume still takes writes.
  sh(`echo after > ${mnt}/after-crash && grep -q after ${mnt}/after-crash`);
});
