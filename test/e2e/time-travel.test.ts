import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import {
  mkdirSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  renameSync,
  rmSync,
  statSync,
  symlinkSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import {
  cleanup,
  formatVolume,
  isMounted,
  sh,
  strata,
  StrataProcess,
  tempDir,
  serveMeta,
  startMount,
} from './harness.js';

// `strata mount --as-of`: a past state of a live volume, mounted read-only beside the current
// one. Everything reads as it was (contents, names, attributes, xattrs, symlinks, removed
// files), nothing can be changed through it, and the live mount is not disturbed.
const root = tempDir('asof');
const live = join(root, 'live');
const past = join(root, 'past');
const procs: StrataProcess[] = [];
let serverAddress = '';
let secret = '';

after(async () => {
  // Mounts first, then the server they talk to.
  await cleanup(procs.slice(1), [live, past], []);
  await cleanup(procs.slice(0, 1), [], [root]);
});

function sha256(path: string): string {
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}

async function mountAt(address: string, mountpoint: string, secretFile: string, extra: string[] = []) {
  return startMount(`${address}/travel`, mountpoint, ['--secret-file', secretFile, ...extra], procs);
}

test('a mount as of a past instant shows that state, read-only, while the volume changes', async () => {
  const engine = `sqlite:${join(root, 'meta.db')}`;
  const formatted = formatVolume(engine, join(root, 'objects'), 'travel');
  const secretFile = /client secret: (\S+)/.exec(formatted)?.[1];
  assert.ok(secretFile, formatted);
  const { address, proc: server } = await serveMeta(engine);
  procs.unshift(server);
  serverAddress = address;
  secret = secretFile;
  await mountAt(address, live, secretFile);

  // The state to come back to.
  const big = Buffer.alloc(5 * 1024 * 1024 + 7);
  for (let i = 0; i < big.length; i += 4096) big.writeUInt32LE(i, i);
  mkdirSync(join(live, 'dir'));
  writeFileSync(join(live, 'dir', 'big.bin'), big);
  writeFileSync(join(live, 'notes.txt'), 'version one\n');
  writeFileSync(join(live, 'doomed.txt'), 'removed later\n');
  symlinkSync('notes.txt', join(live, 'link'));
  sh(`setfattr -n user.tag -v before ${join(live, 'notes.txt')}`);
  sh(`chmod 640 ${join(live, 'notes.txt')}`);
  const bigHash = sha256(join(live, 'dir', 'big.bin'));
  await new Promise((resolve) => setTimeout(resolve, 50));
  const instant = new Date();
  await new Promise((resolve) => setTimeout(resolve, 50));

  // Then the volume moves on.
  writeFileSync(join(live, 'notes.txt'), 'version two, longer\n');
  sh(`setfattr -n user.tag -v after ${join(live, 'notes.txt')}`);
  sh(`chmod 600 ${join(live, 'notes.txt')}`);
  unlinkSync(join(live, 'doomed.txt'));
  renameSync(join(live, 'dir'), join(live, 'renamed'));
  writeFileSync(join(live, 'renamed', 'big.bin'), 'overwritten');
  writeFileSync(join(live, 'new.txt'), 'born after the instant');

  const pastMount = await mountAt(address, past, secretFile, ['--as-of', instant.toISOString()]);
  assert.match(pastMount.output, /as of .* read-only/);
  assert.match(readFileSync('/proc/mounts', 'utf8'), new RegExp(`${past} fuse\\.stratafs ro,`));

  assert.deepEqual(readdirSync(past).sort(), ['dir', 'doomed.txt', 'link', 'notes.txt']);
  assert.equal(readFileSync(join(past, 'notes.txt'), 'utf8'), 'version one\n');
  assert.equal(statSync(join(past, 'notes.txt')).mode & 0o777, 0o640);
  assert.equal(sh(`getfattr --only-values -n user.tag ${join(past, 'notes.txt')}`), 'before');
  assert.equal(readFileSync(join(past, 'doomed.txt'), 'utf8'), 'removed later\n');
  assert.equal(readlinkSync(join(past, 'link')), 'notes.txt');
  assert.equal(sha256(join(past, 'dir', 'big.bin')), bigHash);
  assert.equal(statSync(join(past, 'dir', 'big.bin')).size, big.length);

  // Nothing changes through it; programs get EROFS as from any read-only mount.
  for (const change of [
    `echo x > ${join(past, 'notes.txt')}`,
    `touch ${join(past, 'fresh')}`,
    `rm ${join(past, 'doomed.txt')}`,
    `mv ${join(past, 'notes.txt')} ${join(past, 'moved')}`,
    `setfattr -n user.tag -v again ${join(past, 'notes.txt')}`,
    `mkdir ${join(past, 'sub')}`,
  ]) {
    assert.throws(() => sh(change), /Read-only file system/, change);
  }
  // Reading with locks works (SQLite and others lock read-only files).
  sh(`flock -s ${join(past, 'notes.txt')} cat ${join(past, 'notes.txt')}`);

  // The live mount is as it was left, and keeps working.
  assert.equal(readFileSync(join(live, 'notes.txt'), 'utf8'), 'version two, longer\n');
  assert.equal(readFileSync(join(live, 'renamed', 'big.bin'), 'utf8'), 'overwritten');
  writeFileSync(join(live, 'after-past-mount.txt'), 'still writable');
  assert.equal(readFileSync(join(live, 'after-past-mount.txt'), 'utf8'), 'still writable');
  assert.ok(!readdirSync(past).includes('after-past-mount.txt'), 'the past does not change');
  rmSync(join(live, 'new.txt'));

  assert.equal(strata(['umount', past]).status, 0);
  assert.equal(await pastMount.exited, 0);
});

test('--as-of refuses instants it cannot show, saying what to give', async () => {
  const future = strata(['mount', '127.0.0.1:1/travel', past, '--as-of', '2999-01-01T00:00:00Z']);
  assert.equal(future.status, 2);
  assert.match(future.stderr, /in the future/);
  const garbled = strata(['mount', '127.0.0.1:1/travel', past, '--as-of', 'yesterday-ish']);
  assert.equal(garbled.status, 2);
  assert.match(garbled.stderr, /ISO 8601 .* ago/);
  // Before the volume's history window (it starts at format): the mount fails with the reason.
  const tooOld = new StrataProcess([
    'mount',
    `${serverAddress}/travel`,
    past,
    '--secret-file',
    secret,
    '--as-of',
    '@1000000000',
  ]);
  procs.push(tooOld);
  assert.notEqual(await tooOld.exited, 0);
  assert.match(tooOld.output, /outside the history window/);
  assert.ok(!isMounted(past), 'nothing stays mounted');

  // --background hands the parsed instant to the detached mount.
  await new Promise((resolve) => setTimeout(resolve, 1100));
  const background = strata([
    'mount',
    `${serverAddress}/travel`,
    past,
    '--secret-file',
    secret,
    '--as-of',
    '1s ago',
    '--background',
    '--log-file',
    join(root, 'past.log'),
  ]);
  assert.equal(background.status, 0, background.stderr);
  try {
    assert.match(readFileSync('/proc/mounts', 'utf8'), new RegExp(`${past} fuse\\.stratafs ro,`));
    assert.equal(readFileSync(join(past, 'after-past-mount.txt'), 'utf8'), 'still writable');
    assert.match(readFileSync(join(root, 'past.log'), 'utf8'), /as of \S+Z, read-only/);
  } finally {
    strata(['umount', past]);
  }
});

test('strata restore brings back a file in place and a removed tree by reference, as they were', async () => {
  const tree = join(live, 'proj');
  mkdirSync(join(tree, 'sub'), { recursive: true });
  const data = Buffer.alloc(3 * 1024 * 1024 + 5);
  for (let i = 0; i < data.length; i += 512) data.writeUInt32LE(i * 7, i);
  writeFileSync(join(tree, 'data.bin'), data);
  writeFileSync(join(tree, 'sub', 'a.txt'), 'linked twice\n');
  sh(
    `cd ${tree} && ln sub/a.txt b.txt && ln -s sub/a.txt sym && mkfifo pipe && chmod 750 sub && chmod 4755 data.bin`,
  );
  sh(`setfattr -n user.kind -v tree ${join(tree, 'sub', 'a.txt')} && chown 1234:5678 ${join(tree, 'b.txt')}`);
  sh(`touch -d 2001-02-03T04:05:06Z ${join(tree, 'data.bin')}`);
  writeFileSync(join(live, 'single.txt'), 'the good version\n');
  const listing = (dir: string): string =>
    sh(
      `cd ${dir} && find . -printf '%p %y %m %U %G %s %n %T@ %l\\n' | sort && find . -type f -exec sha256sum {} + | sort`,
    );
  const before = listing(tree);
  await new Promise((resolve) => setTimeout(resolve, 50));
  const instant = new Date().toISOString();
  await new Promise((resolve) => setTimeout(resolve, 50));

  writeFileSync(join(live, 'single.txt'), 'a bad edit\n');
  rmSync(tree, { recursive: true });
  const restoreArgs = (...rest: string[]): string[] => [
    'restore',
    `${serverAddress}/travel`,
    ...rest,
    '--as-of',
    instant,
    '--secret-file',
    secret,
  ];

  const file = strata(restoreArgs('/single.txt'));
  assert.equal(file.status, 0, file.stderr);
  assert.match(file.stdout, /1 file\(s\)/);
  assert.equal(readFileSync(join(live, 'single.txt'), 'utf8'), 'the good version\n');

  const dir = strata(restoreArgs('/proj'));
  assert.equal(dir.status, 0, dir.stderr);
  assert.match(
    dir.stdout,
    /2 file\(s\) .*2 director\(ies\), 1 symlink\(s\), 1 special file\(s\), 1 hard link\(s\)/,
  );
  assert.equal(listing(tree), before, 'names, types, modes, owners, sizes, link counts, mtimes and contents');
  assert.equal(sh(`getfattr --only-values -n user.kind ${join(tree, 'b.txt')}`), 'tree');
  assert.equal(statSync(join(tree, 'b.txt')).ino, statSync(join(tree, 'sub', 'a.txt')).ino);

  // A directory is never merged into what is there now; --to puts it beside.
  const again = strata(restoreArgs('/proj'));
  assert.equal(again.status, 1);
  assert.match(again.stderr, /exists now.*--to/);
  const objects = (): string => sh(`find ${join(root, 'objects')} -type f | sort`);
  const objectsBefore = objects();
  const copy = strata(restoreArgs('/proj', '--to', '/proj-copy'));
  assert.equal(copy.status, 0, copy.stderr);
  assert.equal(listing(join(live, 'proj-copy')), before);
  assert.equal(objects(), objectsBefore, 'by reference: not one object written');
  const missing = strata(restoreArgs('/never-there'));
  assert.equal(missing.status, 1);
  assert.match(missing.stderr, /did not exist at/);
  const tooOld = strata([
    ...restoreArgs('/proj').slice(0, -4),
    '--as-of',
    '@1000000000',
    '--secret-file',
    secret,
  ]);
  assert.equal(tooOld.status, 1);
  assert.match(tooOld.stderr, /edge of the volume's history window/);
});
