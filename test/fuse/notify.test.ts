import assert from 'node:assert/strict';
import {
  closeSync,
  constants,
  existsSync,
  mkdtempSync,
  openSync,
  readFileSync,
  readlinkSync,
  readSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { type Ino } from '../../src/common/index.js';
import { type RequestContext } from '../../src/fuse/index.js';
import {
  closeDevice,
  invalInodeMessage,
  libuvPoolThreads,
  Notifier,
  NotifyGate,
  notifyThreadsFor,
} from '../../src/fuse/notify.js';
import { MemFs } from './memfs.js';
import { mountInProcess, rootContext, run, sh } from './mount-helper.js';

const ctx = rootContext;
const PAGE = 4096;

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Aborts the FUSE connection of `mountpoint` (fusectl), so requests and notifications stuck on it return. */
async function abortConnection(mountpoint: string): Promise<void> {
  const line = readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .find((entry) => entry.split(' ')[4] === mountpoint);
  const minor = line?.split(' ')[2]?.split(':')[1];
  if (minor === undefined) return;
  const dir = '/sys/fs/fuse/connections';
  if (!existsSync(join(dir, minor))) await run('mount', ['-t', 'fusectl', 'none', dir]);
  writeFileSync(join(dir, minor, 'abort'), '1');
}

test('the notification gate keeps at most its bound in flight and starts the rest in order', async () => {
  const gate = new NotifyGate(2);
  const started: number[] = [];
  const finish: (() => void)[] = [];
  const writes = [0, 1, 2, 3, 4].map((i) =>
    gate.run(async () => {
      started.push(i);
      await new Promise<void>((resolve) => finish.push(resolve));
      return i;
    }),
  );
  await delay(10);
  assert.deepEqual(started, [0, 1]);
  finish[1]!();
  await delay(10);
  assert.deepEqual(started, [0, 1, 2]);
  assert.equal(gate.writesInFlight, 2);
  for (let i = 0; i < 5; i++) {
    finish[i]?.();
    await delay(10);
  }
  finish.forEach((resolve) => resolve());
  assert.deepEqual(await Promise.all(writes), [0, 1, 2, 3, 4]);
  assert.equal(gate.writesInFlight, 0);
});

test('a failed write frees its place in the gate', async () => {
  const gate = new NotifyGate(1);
  await assert.rejects(
    gate.run(() => Promise.reject(new Error('ENODEV'))),
    /ENODEV/,
  );
  assert.equal(await gate.run(() => Promise.resolve(7)), 7);
  assert.equal(gate.writesInFlight, 0);
});

test('notifications take at most half the libuv pool', () => {
  assert.equal(libuvPoolThreads({}), 4);
  assert.equal(libuvPoolThreads({ UV_THREADPOOL_SIZE: '16' }), 16);
  assert.equal(libuvPoolThreads({ UV_THREADPOOL_SIZE: 'x' }), 4);
  assert.deepEqual([1, 2, 4, 5, 16].map(notifyThreadsFor), [1, 1, 2, 2, 8]);
});

test('a notification still waiting for the gate when the session ends is never written', async () => {
  // The descriptor here is a plain file: what the closed /dev/fuse descriptor's number may name
  // once it is reused.
  const dir = mkdtempSync('/tmp/strata-notify-');
  const fd = openSync(join(dir, 'reused'), 'w');
  try {
    let running = true;
    const notifier = new Notifier(fd, () => running);
    let free!: () => void;
    const busy = new Promise<void>((resolve) => (free = resolve));
    const holders = Array.from({ length: notifier.gate.maxInFlight }, () => notifier.gate.run(() => busy));
    const waiting = notifier.send(invalInodeMessage(5 as Ino, 0, 0), 'inval_inode 5');
    running = false; // the session ends (and closes its descriptor) while the write waits
    free();
    await Promise.all(holders);
    await assert.rejects(waiting, /session has ended/);
    assert.equal(statSync(join(dir, 'reused')).size, 0);
  } finally {
    closeSync(fd);
    rmSync(dir, { recursive: true, force: true });
  }
});

/**
 * The hang this guards against: NOTIFY_STORE (and INVAL_INODE) lock each page they touch, the
 * kernel keeps a page locked from the READ it sends for it until we answer, and the write of the
 * notification holds a libuv pool thread meanwhile. A READ whose answer needs the pool (a disk
 * cache segment, a `file:` object) then waits for a thread that only its own answer would free.
 */
test('notifications stuck behind a READ leave the pool to that READ, which is answered', async () => {
  const poolThreads = libuvPoolThreads();
  let onRead: ((ino: Ino) => Promise<void>) | undefined;
  const fs = new (class extends MemFs {
    override async read(
      rctx: RequestContext,
      ino: Ino,
      fh: number,
      offset: number,
      size: number,
    ): Promise<Buffer> {
      const hook = onRead;
      onRead = undefined;
      if (hook !== undefined) await hook(ino);
      return super.read(rctx, ino, fh, offset, size);
    }
  })();
  const mounted = await mountInProcess(fs);
  const mnt = mounted.mountpoint;
  let stuck = false;
  try {
    await sh(`head -c ${16 * PAGE} /dev/urandom > ${mnt}/f`);
    const { attr } = await fs.lookupEntry(ctx, 1 as Ino, 'f');
    const content = await fs.read(ctx, attr.ino, 0, 0, 16 * PAGE);
    await mounted.session.notifyInvalInode(attr.ino); // none of its pages stay cached
    const stores: Promise<unknown>[] = [];
    let poolServed = false;
    onRead = async (ino) => {
      // As many stores of the page this READ holds as the pool has threads...
      for (let i = 0; i < poolThreads; i++)
        stores.push(mounted.session.notifyStore(ino, 0, content.subarray(0, PAGE)).catch((error) => error));
      await delay(300);
      // ...then the answer needs the pool, as a disk-cache read does.
      await stat('/');
      poolServed = true;
    };
    const script =
      'import os, sys\nfd = os.open(sys.argv[1], os.O_RDONLY)\nos.posix_fadvise(fd, 0, 0, os.POSIX_FADV_RANDOM)\n' +
      'sys.stdout.write(os.pread(fd, 4096, 0).hex())';
    const reader = run('python3', ['-c', script, join(mnt, 'f')], { timeoutMs: 60_000 });
    const deadline = Date.now() + 10_000;
    while (!poolServed && Date.now() < deadline) await delay(20);
    if (!poolServed) {
      stuck = true;
      await abortConnection(mnt);
      await reader;
      assert.fail('the READ found no free pool thread: notifications held all of them');
    }
    const read = await reader;
    assert.equal(read.code, 0, read.stderr);
    assert.equal(read.stdout, content.subarray(0, PAGE).toString('hex'));
    for (const outcome of await Promise.all(stores)) assert.equal(outcome, undefined);
  } finally {
    if (stuck) await abortConnection(mnt).catch(() => undefined);
    await mounted.cleanup();
  }
});

test('the device closed while a notification write is in flight keeps its number on /dev/null until the write is done', async () => {
  const dir = mkdtempSync('/tmp/strata-notify-close-');
  const fifo = join(dir, 'fifo');
  let reader: number | undefined;
  try {
    await run('mkfifo', [fifo]);
    reader = openSync(fifo, constants.O_RDONLY | constants.O_NONBLOCK);
    // A blocking write end: a write larger than the pipe holds waits in a pool thread, as a
    // NOTIFY_STORE waits for a page lock.
    const device = openSync(fifo, constants.O_WRONLY);
    let running = true;
    const notifier = new Notifier(device, () => running);
    const pending = notifier.send(Buffer.alloc(1024 * 1024, 7), 'test write');
    await delay(50);
    assert.equal(notifier.gate.writesInFlight, 1);
    running = false;
    closeDevice(device, notifier);
    assert.equal(
      readlinkSync(`/proc/self/fd/${device}`),
      '/dev/null',
      'the number stays taken, on /dev/null',
    );
    const chunk = Buffer.alloc(64 * 1024);
    let drained = 0;
    while (drained < 1024 * 1024) {
      try {
        drained += readSync(reader, chunk);
      } catch {
        await delay(1);
      }
    }
    await pending;
    await delay(10);
    assert.throws(() => readlinkSync(`/proc/self/fd/${device}`), 'closed once the write was done');
  } finally {
    if (reader !== undefined) closeSync(reader);
    rmSync(dir, { recursive: true, force: true });
  }
});
