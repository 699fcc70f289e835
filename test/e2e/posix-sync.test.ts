import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { cleanup, isMounted, sh, startUp, tempDir, type StrataProcess } from './harness.js';

// Synchronous writes are durable when the call returns, before any close: kill -9 of the
// mount while the writer still holds its descriptors open must lose none of them.
const root = tempDir('posix-sync');
const dataDir = join(root, 'data');
const mnt = join(root, 'mnt');
let up: StrataProcess | undefined;

after(async () => {
  await cleanup([up], [mnt], [root]);
});

// Each file gets 64 KiB of its own letter through a different kind of synchronous write.
// An O_DIRECT descriptor is answered by the kernel without FSYNC (FOPEN_DIRECT_IO writes skip
// generic_write_sync), so there only the WRITE request's flags tell the mount to sync.
const writer = `
import os, mmap, sys, time
m = sys.argv[1]
buf = mmap.mmap(-1, 65536)
def fill(c): buf.seek(0); buf.write(c * 65536)
fd = os.open(m + '/direct-rwf', os.O_RDWR | os.O_CREAT | os.O_DIRECT, 0o644)
fill(b'a'); os.pwritev(fd, [buf], 0, os.RWF_DSYNC)
fd2 = os.open(m + '/buffered-rwf', os.O_RDWR | os.O_CREAT, 0o644)
fill(b'b'); os.pwritev(fd2, [buf], 0, os.RWF_SYNC)
fd3 = os.open(m + '/direct-odsync', os.O_RDWR | os.O_CREAT | os.O_DIRECT | os.O_DSYNC, 0o644)
fill(b'c'); os.pwrite(fd3, buf, 0)
fd4 = os.open(m + '/opened-osync', os.O_RDWR | os.O_CREAT | os.O_SYNC, 0o644)
fill(b'd'); os.pwrite(fd4, buf, 0)
print('written', flush=True)
time.sleep(600)
`;

test('RWF_DSYNC/RWF_SYNC and O_SYNC/O_DSYNC writes survive kill -9 of the mount before close', async () => {
  up = await startUp(dataDir, mnt);
  const child = spawn('python3', ['-c', writer, mnt], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`writer never finished: ${output}`)), 60_000);
      const onData = (chunk: Buffer): void => {
        output += chunk.toString();
        if (output.includes('written')) {
          clearTimeout(timer);
          resolve();
        }
      };
      child.stdout.on('data', onData);
      child.stderr.on('data', onData);
      child.on('exit', () => reject(new Error(`writer exited: ${output}`)));
    });
    up.child.kill('SIGKILL');
    await up.exited;
    up = undefined;
  } finally {
    child.kill('SIGKILL');
  }
  sh(`umount -l ${mnt}`);
  assert.ok(!isMounted(mnt));
  up = await startUp(dataDir, mnt);
  const files = { 'direct-rwf': 'a', 'buffered-rwf': 'b', 'direct-odsync': 'c', 'opened-osync': 'd' };
  for (const [name, letter] of Object.entries(files)) {
    const summary = sh(`stat -c %s ${mnt}/${name} && tr -d ${letter} < ${mnt}/${name} | wc -c`);
    assert.deepEqual(summary.trim().split('\n'), ['65536', '0'], `${name} after kill -9`);
  }
});
