import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  cleanup,
  freePort,
  isMounted,
  sh,
  strata,
  StrataProcess,
  tempDir,
  formatVolume,
  startMount,
} from './harness.js';

// `strata format` + `strata meta serve` + two `strata mount` processes on one volume:
// a file closed on one mount is read, whole and current, on the other (close-to-open).
const root = tempDir('two');
const mntA = join(root, 'a');
const mntB = join(root, 'b');
const procs: StrataProcess[] = [];
const backgroundPids: number[] = [];

after(async () => {
  // The detached mount exits when its mount goes away; kill it if it did not.
  for (const mnt of [mntB]) if (isMounted(mnt)) strata(['umount', mnt]);
  await new Promise((resolve) => setTimeout(resolve, 500));
  for (const pid of backgroundPids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  // Mounts first, then the server they talk to.
  await cleanup(procs.slice(1), [mntA, mntB], []);
  await cleanup(procs.slice(0, 1), [], [root]);
});

test('a file closed on one mount is read on the other', async () => {
  const engine = `sqlite:${join(root, 'meta.db')}`;
  const formatted = formatVolume(engine, join(root, 'objects'), 'shared');
  const secretFile = /client secret: (\S+)/.exec(formatted)?.[1];
  assert.ok(secretFile, `format prints the secret location: ${formatted}`);
  assert.equal(sh(`stat -c %a ${secretFile}`).trim(), '600');

  const port = await freePort();
  const server = new StrataProcess(['meta', 'serve', '--engine', engine, '--listen', `127.0.0.1:${port}`]);
  procs.push(server);
  await server.waitFor(() => server.output.includes('listening'), 'the metadata service to listen');

  await startMount(`127.0.0.1:${port}/shared`, mntA, ['--secret-file', secretFile], procs);

  // --background returns only once the mount is up, and leaves a detached mount process.
  mkdirSync(mntB);
  const background = strata(
    ['mount', `127.0.0.1:${port}/shared`, mntB, '--background', '--log-file', join(root, 'b.log')],
    {
      STRATA_SECRET: readFileSync(secretFile, 'utf8').trim(),
    },
  );
  const pid = Number(/pid (\d+)/.exec(background.stdout)?.[1]);
  if (pid > 0) backgroundPids.push(pid);
  assert.equal(background.status, 0, background.stderr);
  assert.ok(isMounted(mntB), 'the mount is ready when --background returns');

  const status = strata(['status', '--engine', engine]);
  assert.equal(status.status, 0, status.stderr);
  assert.match(status.stdout, /volume "shared"/);
  assert.match(status.stdout, /sessions\s+2/);
  assert.ok(
    !status.stdout.includes(readFileSync(secretFile, 'utf8').trim()),
    'status never prints the secret',
  );

  const payload = Buffer.alloc(3 * 1024 * 1024 + 123, 'abc');
  writeFileSync(join(mntA, 'from-a.bin'), payload);
  assert.ok(readFileSync(join(mntB, 'from-a.bin')).equals(payload), 'B reads what A closed');

  // Rewritten on A with a different size: B's next open sees the new content, not its cache.
  const second = Buffer.alloc(1_000_001, 'z');
  writeFileSync(join(mntA, 'from-a.bin'), second);
  assert.ok(readFileSync(join(mntB, 'from-a.bin')).equals(second), 'B sees the rewrite after A closed it');

  // And the other way round, through a directory B creates.
  sh(`mkdir ${mntB}/dir && echo hello-from-b > ${mntB}/dir/note`);
  assert.equal(readFileSync(join(mntA, 'dir', 'note'), 'utf8'), 'hello-from-b\n');

  // A lock taken on one mount conflicts on the other (locks live in the metadata service).
  sh(`flock -n ${mntA}/dir/note -c "! flock -n ${mntB}/dir/note -c true"`);
});

test('`strata up --listen` serves its volume to a `strata mount` on another mount point', async () => {
  const dataDir = join(root, 'up-data');
  const upMnt = join(root, 'up-mnt');
  const clientMnt = join(root, 'up-client');
  mkdirSync(upMnt);
  const port = await freePort();
  const up = new StrataProcess(['up', dataDir, upMnt, '--listen', `127.0.0.1:${port}`, '--name', 'embedded']);
  procs.push(up);
  await up.waitFor(() => isMounted(upMnt) && up.output.includes('metadata served on'), 'strata up to serve');
  let client: StrataProcess | undefined;
  try {
    client = await startMount(`127.0.0.1:${port}/embedded`, clientMnt, [
      '--secret-file',
      join(dataDir, 'meta.db.secret'),
    ]);
    writeFileSync(join(upMnt, 'served.txt'), 'from the embedded mount\n');
    assert.equal(readFileSync(join(clientMnt, 'served.txt'), 'utf8'), 'from the embedded mount\n');
    // A wrong volume name is refused with a message naming the right one.
    const wrong = strata([
      'mount',
      `127.0.0.1:${port}/other`,
      clientMnt,
      '--secret-file',
      join(dataDir, 'meta.db.secret'),
    ]);
    assert.equal(wrong.status, 1);
    assert.match(wrong.stderr, /serves volume "embedded", not "other"/);
  } finally {
    await cleanup([client], [clientMnt], []);
    await cleanup([up], [upMnt], []);
  }
});
