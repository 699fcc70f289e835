import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { type Ino } from '../../src/common/index.js';
import { FuseSession, type FileSystem } from '../../src/fuse/index.js';
import { fuseMountDevice } from '../../src/fuse/readahead.js';
import { MemFs } from './memfs.js';
import {
  isMounted,
  makeMountDir,
  mountInChild,
  mountInProcess,
  rootContext,
  run,
  sh,
  unmountAndRemove,
} from './mount-helper.js';

const ctx = rootContext;

describe('mounting, unmounting and surviving the server', () => {
  test('umount from outside ends the session cleanly', async () => {
    const mounted = await mountInProcess(new MemFs());
    try {
      assert.equal(mounted.session.initInfo?.maxWriteBytes, 1024 * 1024);
      await sh(`echo hi > ${mounted.mountpoint}/f && cat ${mounted.mountpoint}/f`);
      assert.equal((await run('umount', [mounted.mountpoint])).code, 0);
      await mounted.session.closed;
      assert.equal(isMounted(mounted.mountpoint), false);
      assert.equal(mounted.session.isClosed, true);
    } finally {
      await mounted.cleanup();
    }
  });

  test("the mount's kernel readahead is the largest READ (1 MiB), or what the options say", async () => {
    const readaheadKiB = (mountpoint: string): number => {
      const device = fuseMountDevice(mountpoint, 'stratafs');
      assert.ok(device, `no mountinfo line for ${mountpoint}`);
      return Number(readFileSync(`/sys/class/bdi/${device}/read_ahead_kb`, 'utf8'));
    };
    for (const [options, expected] of [
      [{}, 1024],
      [{ readaheadBytes: 0 }, 128],
      [{ readaheadBytes: 4 << 20 }, 4096],
    ] as const) {
      const mounted = await mountInProcess(new MemFs(), options);
      try {
        assert.equal(readaheadKiB(mounted.mountpoint), expected);
      } finally {
        await mounted.cleanup();
      }
    }
  });

  test('mountinfo lines: the escaped path, the fuse subtype, the newest mount', () => {
    const info = [
      '36 25 0:31 / /mnt/a\\040b rw,nosuid - fuse.stratafs strata rw,user_id=0',
      '37 25 0:32 / /mnt/a\\040b rw - fuse.other x rw',
      '38 36 0:33 / /mnt/a\\040b rw,nosuid - fuse.stratafs strata rw,user_id=0',
      '39 25 8:1 / /mnt/c rw - ext4 /dev/sda1 rw',
    ].join('\n');
    assert.equal(fuseMountDevice('/mnt/a b', 'stratafs', info), '0:33');
    assert.equal(fuseMountDevice('/mnt/a b', 'other', info), '0:32');
    assert.equal(fuseMountDevice('/mnt/c', 'stratafs', info), undefined);
  });

  test('SIGTERM makes the server unmount and exit', async () => {
    const mounted = await mountInChild();
    try {
      await sh(`echo hi > ${mounted.mountpoint}/f`);
      const exited = new Promise<number | null>((resolve) => mounted.child.once('close', resolve));
      mounted.child.kill('SIGTERM');
      assert.equal(await exited, 0);
      assert.equal(isMounted(mounted.mountpoint), false);
    } finally {
      await mounted.cleanup();
    }
  });

  test('after kill -9 callers get ENOTCONN, not a hang, and umount -l lets a new mount in', async () => {
    const mountpoint = makeMountDir();
    try {
      const first = await mountInChild([], mountpoint);
      await sh(`echo hi > ${mountpoint}/f`);
      const exited = new Promise((resolve) => first.child.once('close', resolve));
      first.child.kill('SIGKILL');
      await exited;
      const stat = await run('stat', [`${mountpoint}/f`], { timeoutMs: 20_000 });
      assert.notEqual(stat.code, 0);
      assert.match(stat.stderr, /Transport endpoint is not connected/);
      assert.equal((await run('umount', ['-l', mountpoint])).code, 0);
      const second = await mountInChild([], mountpoint);
      try {
        await sh(`echo again > ${mountpoint}/g`);
        assert.equal((await sh(`cat ${mountpoint}/g`)).trim(), 'again');
      } finally {
        await second.cleanup();
      }
    } finally {
      await unmountAndRemove(mountpoint);
    }
  });

  test('a session hands its mounted fd to a successor without the kernel noticing', async () => {
    const fs = new MemFs();
    const mounted = await mountInProcess(fs);
    let successor: FuseSession | undefined;
    try {
      await sh(`echo before > ${mounted.mountpoint}/f`);
      const handoff = await mounted.session.detach();
      assert.equal(mounted.session.isClosed, true);
      successor = FuseSession.fromFd(handoff.fd, fs, { handoff, mountpoint: mounted.mountpoint });
      assert.equal((await sh(`cat ${mounted.mountpoint}/f`)).trim(), 'before');
      await sh(`echo after >> ${mounted.mountpoint}/f`);
      assert.equal((await sh(`cat ${mounted.mountpoint}/f`)).trim(), 'before\nafter');
      await successor.unmount();
      assert.equal(isMounted(mounted.mountpoint), false);
    } finally {
      successor?.close();
      await mounted.cleanup();
    }
  });

  test('with the writeback cache the kernel batches writes and the data still arrives intact', async () => {
    const fs = new MemFs();
    const mounted = await mountInProcess(fs, { writebackCache: true });
    const scratch = makeMountDir();
    try {
      assert.equal(mounted.session.initInfo?.writebackCache, true);
      const f = `${mounted.mountpoint}/wb`;
      await sh(
        `head -c 3000000 /dev/urandom > ${scratch}/src && cp ${scratch}/src ${f} && echo tail >> ${f}`,
      );
      await sh(
        `cat ${scratch}/src > ${scratch}/want && echo tail >> ${scratch}/want && cmp ${scratch}/want ${f}`,
      );
      await sh(`sync ${f}`);
      const { attr } = await fs.lookupEntry(ctx, 1 as Ino, 'wb');
      assert.equal(attr.sizeBytes, 3_000_005, 'flushed to the file system');
      await sh(`truncate -s 10 ${f}`);
      assert.equal((await sh(`stat -c %s ${f}`)).trim(), '10');
    } finally {
      await mounted.cleanup();
      await unmountAndRemove(scratch);
    }
  });

  test('a slow READ does not hold up a GETATTR', async () => {
    const fs = new MemFs({ attrTimeoutMs: 0, entryTimeoutMs: 0, directIo: true });
    let releaseRead: () => void = () => undefined;
    let readStarted: () => void = () => undefined;
    const started = new Promise<void>((resolve) => (readStarted = resolve));
    const gate = new Promise<void>((resolve) => (releaseRead = resolve));
    const slowReads: FileSystem = Object.create(fs) as MemFs;
    slowReads.read = async (c, ino, fh, offset, size) => {
      readStarted();
      await gate;
      return fs.read(c, ino, fh, offset, size);
    };
    const mounted = await mountInProcess(slowReads);
    try {
      await fs.create(ctx, 1 as Ino, 'slow', 0o644, 0);
      await sh(`echo data > ${mounted.mountpoint}/slow`);
      const reader = run('cat', [`${mounted.mountpoint}/slow`]);
      await started;
      // The READ is parked; metadata requests must still be answered.
      assert.match(await sh(`stat -c %s ${mounted.mountpoint}/slow && ls ${mounted.mountpoint}`), /5\nslow/);
      releaseRead();
      assert.equal((await reader).stdout, 'data\n');
    } finally {
      releaseRead();
      await mounted.cleanup();
    }
  });

  test('notifications make the kernel drop cached names and attributes', async () => {
    const fs = new MemFs({ entryTimeoutMs: 600_000, attrTimeoutMs: 600_000 });
    const mounted = await mountInProcess(fs);
    const mnt = mounted.mountpoint;
    try {
      await sh(`echo 12345 > ${mnt}/a && echo x > ${mnt}/b && stat ${mnt}/a ${mnt}/b > /dev/null`);
      const a = await fs.lookupEntry(ctx, 1 as Ino, 'a');
      const b = await fs.lookupEntry(ctx, 1 as Ino, 'b');
      // Change things behind the kernel's back: it keeps answering from its cache.
      await fs.setattr(ctx, a.attr.ino, { sizeBytes: 2 });
      await fs.unlink(ctx, 1 as Ino, 'b');
      assert.equal((await sh(`stat -c %s ${mnt}/a`)).trim(), '6');
      assert.equal((await run('stat', [`${mnt}/b`])).code, 0, 'b still cached');
      await mounted.session.notifyInvalInode(a.attr.ino, -1, 0);
      assert.equal((await sh(`stat -c %s ${mnt}/a`)).trim(), '2');
      await mounted.session.notifyDelete(1 as Ino, b.attr.ino, 'b');
      assert.notEqual((await run('stat', [`${mnt}/b`])).code, 0);
      await fs.create(ctx, 1 as Ino, 'c', 0o644, 0);
      assert.equal((await run('stat', [`${mnt}/c`])).code, 0, 'ENOENT answers are not cached: c is found');
      await fs.unlink(ctx, 1 as Ino, 'c');
      assert.equal((await run('stat', [`${mnt}/c`])).code, 0, 'c still cached');
      await mounted.session.notifyInvalEntry(1 as Ino, 'c');
      assert.notEqual((await run('stat', [`${mnt}/c`])).code, 0);
      await mounted.session.notifyInvalEntry(1 as Ino, 'never-cached');
    } finally {
      await mounted.cleanup();
    }
  });

  test('without flush (MemFs without locks) the kernel sends FLUSH once, then keeps locks and closes locally', async () => {
    let flushes = 0;
    const logger = {
      debug: (line: string) => {
        if (line.startsWith('fuse: FLUSH ')) flushes++;
      },
      warn: (line: string) => console.warn(line),
      error: (line: string) => console.error(line),
    };
    const mounted = await mountInProcess(new MemFs({ locks: false }), { debug: true, logger });
    try {
      const mnt = mounted.mountpoint;
      const out = await sh(`for i in 1 2 3 4 5; do echo $i > ${mnt}/f$i; done; cat ${mnt}/f1 ${mnt}/f5`);
      assert.equal(out, '1\n5\n');
      assert.equal(flushes, 1, 'the first FLUSH is answered ENOSYS and the kernel stops sending it');
      // Locks now live in the kernel: a second flock on the same file still conflicts.
      const inner = await run('flock', ['-n', `${mnt}/f1`, 'flock', '-n', `${mnt}/f1`, 'true']);
      assert.equal(inner.code, 1, inner.stderr);
      assert.equal((await run('flock', ['-n', `${mnt}/f1`, 'true'])).code, 0);
    } finally {
      await mounted.cleanup();
    }
  });

  test('the file system hears forget for an unlinked file once the kernel lets go of it', async () => {
    const fs = new MemFs();
    const mounted = await mountInProcess(fs);
    try {
      await sh(`echo x > ${mounted.mountpoint}/gone`);
      const { attr } = await fs.lookupEntry(ctx, 1 as Ino, 'gone');
      await sh(`rm ${mounted.mountpoint}/gone`);
      for (let i = 0; i < 100 && !fs.forgottenInos.includes(attr.ino); i++) {
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      assert.ok(fs.forgottenInos.includes(attr.ino));
      assert.equal(fs.inodes.has(attr.ino), false, 'freed: no names, no opens, forgotten');
      await assert.rejects(
        fs.getattr(ctx, attr.ino),
        (error: unknown) => error instanceof Error && /no longer exists/.test(error.message),
      );
    } finally {
      await mounted.cleanup();
    }
  });
});
