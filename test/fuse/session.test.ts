import assert from 'node:assert/strict';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, truncateSync } from 'node:fs';
import { constants } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, test } from 'node:test';
import { fsError, type Ino } from '../../src/common/index.js';
import {
  fuse_batch_forget_in,
  fuse_getxattr_in,
  fuse_in_header,
  fuse_init_in,
  fuse_init_out,
  fuse_read_in,
  InitFlag,
  Opcode,
} from '../../src/fuse/abi.js';
import { readU64, writeU64 } from '../../src/fuse/codec.js';
import { opTable } from '../../src/fuse/ops.js';
import { FuseSession, type FileSystem, type FuseLogger, type RequestContext } from '../../src/fuse/index.js';
import { MemFs } from './memfs.js';
import { rootContext } from './mount-helper.js';

// The protocol engine without a kernel: requests are fed to `processRequest` and the
// replies land in a temporary file standing in for /dev/fuse, where they are parsed back.

interface Reply {
  error: number;
  unique: number;
  body: Buffer;
}

function request(opcode: number, unique: number, nodeid: number, body: Buffer = Buffer.alloc(0)): Buffer {
  const buf = Buffer.alloc(fuse_in_header.size + body.length);
  buf.writeUInt32LE(buf.length, fuse_in_header.len);
  buf.writeUInt32LE(opcode, fuse_in_header.opcode);
  writeU64(buf, fuse_in_header.unique, unique);
  writeU64(buf, fuse_in_header.nodeid, nodeid);
  buf.writeUInt32LE(1000, fuse_in_header.uid);
  buf.writeUInt32LE(1000, fuse_in_header.gid);
  buf.writeUInt32LE(4242, fuse_in_header.pid);
  body.copy(buf, fuse_in_header.size);
  return buf;
}

const cstring = (name: string) => Buffer.from(name + '\0', 'utf8');
const settle = () => new Promise((resolve) => setImmediate(resolve));

function initBody(kernelFlags: number): Buffer {
  const body = Buffer.alloc(fuse_init_in.size);
  body.writeUInt32LE(7, fuse_init_in.major);
  body.writeUInt32LE(45, fuse_init_in.minor);
  body.writeUInt32LE(128 * 1024, fuse_init_in.max_readahead);
  body.writeUInt32LE(kernelFlags >>> 0, fuse_init_in.flags);
  return body;
}

const allOffered = Object.values(InitFlag).reduce((all, flag) => all | flag, 0);

describe('the FUSE session protocol engine', () => {
  let dir: string;
  let device: string;
  let fd: number;
  let logged: string[];
  let logger: FuseLogger;

  beforeEach(() => {
    dir = mkdtempSync('/tmp/strata-fuse-session-');
    device = join(dir, 'device');
    fd = openSync(device, 'w+');
    logged = [];
    logger = { debug: () => undefined, warn: (m) => logged.push(m), error: (m) => logged.push(m) };
  });

  afterEach(() => {
    try {
      closeSync(fd);
    } catch {
      // the session closed it
    }
    rmSync(dir, { recursive: true, force: true });
  });

  function replies(): Reply[] {
    const data = readFileSync(device);
    const out: Reply[] = [];
    for (let at = 0; at < data.length;) {
      const length = data.readUInt32LE(at);
      out.push({
        error: data.readInt32LE(at + 4),
        unique: readU64(data, at + 8),
        body: data.subarray(at + 16, at + length),
      });
      at += length;
    }
    return out;
  }

  async function started(fs: FileSystem, kernelFlags = allOffered): Promise<FuseSession> {
    const session = new FuseSession(fd, fs, { logger });
    session.processRequest(
      request(Opcode.INIT, 2, 0, initBody(kernelFlags)),
      fuse_in_header.size + fuse_init_in.size,
    );
    await session.ready;
    return session;
  }

  function send(session: FuseSession, buf: Buffer): void {
    session.processRequest(buf, buf.length);
  }

  test('INIT agrees on 7.38, 1 MiB writes in 256 pages, and only flags the kernel offered', async () => {
    const offered =
      InitFlag.BIG_WRITES | InitFlag.MAX_PAGES | InitFlag.ASYNC_READ | InitFlag.WRITEBACK_CACHE | (1 << 27);
    const session = await started(new MemFs(), offered);
    const [init] = replies();
    assert.equal(init.error, 0);
    assert.equal(init.unique, 2);
    assert.equal(init.body.length, fuse_init_out.size);
    assert.equal(init.body.readUInt32LE(fuse_init_out.major), 7);
    assert.equal(init.body.readUInt32LE(fuse_init_out.minor), 38);
    assert.equal(init.body.readUInt32LE(fuse_init_out.max_write), 1024 * 1024);
    assert.equal(init.body.readUInt16LE(fuse_init_out.max_pages), 256);
    const flags = init.body.readUInt32LE(fuse_init_out.flags);
    assert.equal(
      flags,
      InitFlag.BIG_WRITES | InitFlag.MAX_PAGES | InitFlag.ASYNC_READ,
      'writeback is off by default',
    );
    assert.equal(session.initInfo?.maxWriteBytes, 1024 * 1024);
    session.close();
  });

  test('all the features we want are taken when offered, locks only with lock methods', async () => {
    const session = await started(new MemFs());
    const flags = replies()[0].body.readUInt32LE(fuse_init_out.flags);
    for (const wanted of [
      'ASYNC_READ',
      'PARALLEL_DIROPS',
      'BIG_WRITES',
      'MAX_PAGES',
      'ATOMIC_O_TRUNC',
      'EXPORT_SUPPORT',
      'HANDLE_KILLPRIV_V2',
      'CACHE_SYMLINKS',
      'DO_READDIRPLUS',
      'READDIRPLUS_AUTO',
      'POSIX_LOCKS',
      'FLOCK_LOCKS',
      'POSIX_ACL',
    ] as const) {
      assert.ok(flags & InitFlag[wanted], `${wanted} negotiated`);
    }
    assert.equal(flags & InitFlag.WRITEBACK_CACHE, 0);
    session.close();
    const bare: FileSystem = {
      lookup: () => Promise.reject(fsError.ENOENT('x')),
      getattr: () => Promise.reject(fsError.ENOENT('x')),
    };
    fd = openSync(device, 'w');
    const second = await started(bare);
    const bareFlags = replies()[0].body.readUInt32LE(fuse_init_out.flags);
    assert.equal(bareFlags & (InitFlag.POSIX_LOCKS | InitFlag.FLOCK_LOCKS | InitFlag.POSIX_ACL), 0);
    second.close();
  });

  test('the opcode table covers every operation the issue lists', () => {
    const required = [
      'INIT',
      'LOOKUP',
      'FORGET',
      'BATCH_FORGET',
      'GETATTR',
      'SETATTR',
      'READLINK',
      'SYMLINK',
      'MKNOD',
      'MKDIR',
      'UNLINK',
      'RMDIR',
      'RENAME',
      'RENAME2',
      'LINK',
      'OPEN',
      'CREATE',
      'TMPFILE',
      'READ',
      'WRITE',
      'FLUSH',
      'RELEASE',
      'FSYNC',
      'STATFS',
      'SETXATTR',
      'GETXATTR',
      'LISTXATTR',
      'REMOVEXATTR',
      'OPENDIR',
      'READDIR',
      'READDIRPLUS',
      'RELEASEDIR',
      'FSYNCDIR',
      'GETLK',
      'SETLK',
      'SETLKW',
      'ACCESS',
      'INTERRUPT',
      'DESTROY',
      'FALLOCATE',
      'LSEEK',
      'COPY_FILE_RANGE',
      'IOCTL',
      'POLL',
    ] as const;
    for (const name of required) assert.equal(opTable[Opcode[name]]?.name, name, name);
  });

  test('an unknown opcode gets ENOSYS and the session keeps serving', async () => {
    const session = await started(new MemFs());
    send(session, request(9999, 4, 1));
    send(session, request(Opcode.GETATTR, 6, 1, Buffer.alloc(16)));
    await settle();
    const [, unknown, getattr] = replies();
    assert.deepEqual([unknown.unique, unknown.error], [4, -constants.errno.ENOSYS]);
    assert.deepEqual([getattr.unique, getattr.error], [6, 0]);
    assert.equal(readU64(getattr.body, 16), 1, 'the root attributes');
    session.close();
  });

  test('a handler that throws a non-FsError answers EIO with a log line, and later requests still work', async () => {
    const fs = new MemFs();
    let calls = 0;
    const flaky: FileSystem = {
      lookup: (ctx, parent, name) => fs.lookup(ctx, parent, name),
      getattr: async (ctx, ino) => {
        if (calls++ === 0) throw new TypeError('boom');
        return fs.getattr(ctx, ino);
      },
    };
    const session = await started(flaky);
    send(session, request(Opcode.GETATTR, 4, 1, Buffer.alloc(16)));
    send(session, request(Opcode.GETATTR, 6, 1, Buffer.alloc(16)));
    await settle();
    const [, failed, ok] = replies();
    assert.equal(failed.error, -constants.errno.EIO);
    assert.equal(ok.error, 0);
    assert.ok(
      logged.some((line) => line.includes('GETATTR') && line.includes('boom')),
      logged.join('\n'),
    );
    session.close();
  });

  test('missing methods answer ENOSYS, or their documented default', async () => {
    const bare: FileSystem = {
      lookup: () => Promise.reject(fsError.ENOENT('none')),
      getattr: () => Promise.reject(fsError.ENOENT('none')),
    };
    const session = await started(bare);
    send(session, request(Opcode.SYMLINK, 4, 1, Buffer.concat([cstring('a'), cstring('b')])));
    send(session, request(Opcode.FLUSH, 6, 1, Buffer.alloc(24)));
    send(session, request(Opcode.RELEASE, 8, 1, Buffer.alloc(24)));
    send(session, request(Opcode.OPENDIR, 10, 1, Buffer.alloc(8)));
    send(session, request(Opcode.STATFS, 12, 1));
    send(session, request(Opcode.IOCTL, 14, 1, Buffer.alloc(32)));
    send(session, request(Opcode.ACCESS, 16, 1, Buffer.alloc(8)));
    await settle();
    const byUnique = new Map(replies().map((reply) => [reply.unique, reply]));
    assert.equal(byUnique.get(4)?.error, -constants.errno.ENOSYS);
    // FLUSH and ACCESS: ENOSYS makes the kernel stop sending them and report success itself.
    assert.equal(byUnique.get(6)?.error, -constants.errno.ENOSYS);
    assert.equal(byUnique.get(8)?.error, 0);
    assert.equal(byUnique.get(10)?.error, 0);
    assert.equal(byUnique.get(12)?.body.readUInt32LE(44), 255, 'statfs default name length');
    assert.equal(byUnique.get(14)?.error, -constants.errno.ENOTTY);
    assert.equal(byUnique.get(16)?.error, -constants.errno.ENOSYS);
    session.close();
  });

  test('INTERRUPT aborts the request signal; the waiting handler answers EINTR exactly once', async () => {
    const fs = new MemFs();
    let waiting: RequestContext | undefined;
    const slow: FileSystem = {
      lookup: (ctx, parent, name) => fs.lookup(ctx, parent, name),
      getattr: (ctx) => {
        waiting = ctx;
        return new Promise((_resolve, reject) =>
          ctx.signal.addEventListener('abort', () => reject(fsError.EINTR('gave up'))),
        );
      },
    };
    const session = await started(slow);
    send(session, request(Opcode.GETATTR, 4, 1, Buffer.alloc(16)));
    await settle();
    assert.equal(replies().length, 1, 'still waiting');
    assert.equal(waiting?.uid, 1000);
    assert.equal(waiting?.pid, 4242);
    assert.equal(waiting?.unique, 4n);
    const interrupt = Buffer.alloc(8);
    writeU64(interrupt, 0, 4);
    send(session, request(Opcode.INTERRUPT, 7, 0, interrupt));
    await settle();
    const all = replies();
    assert.equal(all.length, 2, 'INTERRUPT itself gets no reply');
    assert.deepEqual([all[1].unique, all[1].error], [4, -constants.errno.EINTR]);
    session.close();
  });

  test('lookup counting: the file system hears forget only when the kernel dropped every reference', async () => {
    const fs = new MemFs();
    const session = await started(fs);
    const ctx = rootContext;
    const created = await fs.mkdir(ctx, 1 as Ino, 'd', 0o755);
    const ino = created.attr.ino;
    send(session, request(Opcode.LOOKUP, 4, 1, cstring('d')));
    send(session, request(Opcode.LOOKUP, 6, 1, cstring('d')));
    await settle();
    // READDIRPLUS counts its entries too, but never "." and "..".
    send(session, request(Opcode.OPENDIR, 8, ino, Buffer.alloc(8)));
    await settle();
    const fh = readU64(replies()[3].body, 0);
    const read = Buffer.alloc(fuse_read_in.size);
    writeU64(read, fuse_read_in.fh, fh);
    read.writeUInt32LE(4096, fuse_read_in.size_);
    send(session, request(Opcode.READDIRPLUS, 10, 1, read));
    await settle();
    assert.equal(session.lookupCount(ino), 3);
    assert.equal(session.lookupCount(1), 0, 'the root is never counted');
    const forget = Buffer.alloc(8);
    writeU64(forget, 0, 2);
    send(session, request(Opcode.FORGET, 12, ino, forget));
    assert.deepEqual(fs.forgottenInos, []);
    const batch = Buffer.alloc(fuse_batch_forget_in.size + 16);
    batch.writeUInt32LE(1, 0);
    writeU64(batch, 8, ino);
    writeU64(batch, 16, 1);
    send(session, request(Opcode.BATCH_FORGET, 14, 0, batch));
    await settle();
    assert.deepEqual(fs.forgottenInos, [ino]);
    assert.equal(replies().length, 5, 'FORGET and BATCH_FORGET get no reply');
    session.close();
  });

  test('a READ larger than max_pages allows is refused with EINVAL, one at the limit is served', async () => {
    for (const [kernelFlags, limitBytes] of [
      [allOffered, 256 * 4096],
      [allOffered & ~InitFlag.MAX_PAGES, 32 * 4096],
    ]) {
      truncateSync(device, 0);
      const fs = new MemFs();
      const session = await started(fs, kernelFlags);
      const ctx = rootContext;
      const file = await fs.create(ctx, 1 as Ino, 'f', 0o644, 2); // O_RDWR
      await fs.setattr(ctx, file.attr.ino, { sizeBytes: 2 ** 31 });
      const read = (unique: number, size: number) => {
        const body = Buffer.alloc(fuse_read_in.size);
        writeU64(body, fuse_read_in.fh, file.fh);
        body.writeUInt32LE(size >>> 0, fuse_read_in.size_);
        send(session, request(Opcode.READ, unique, file.attr.ino, body));
      };
      read(4, limitBytes);
      read(6, limitBytes + 1);
      read(8, 0xffffffff);
      await settle();
      const [, atLimit, over, huge] = replies();
      assert.equal(atLimit.error, 0);
      assert.equal(atLimit.body.length, limitBytes);
      assert.equal(over.error, -constants.errno.EINVAL);
      assert.equal(huge.error, -constants.errno.EINVAL);
      assert.equal(session.maxReadBytes, limitBytes);
      session.close();
      fd = openSync(device, 'r+');
    }
  });

  test('GETXATTR answers the size probe and ERANGE itself', async () => {
    const fs = new MemFs();
    const session = await started(fs);
    const ctx = rootContext;
    await fs.setxattr(ctx, 1 as Ino, 'user.k', Buffer.from('0123456789'), 0);
    const ask = (unique: number, size: number) => {
      const body = Buffer.alloc(fuse_getxattr_in.size);
      body.writeUInt32LE(size, 0);
      send(session, request(Opcode.GETXATTR, unique, 1, Buffer.concat([body, cstring('user.k')])));
    };
    ask(4, 0);
    ask(6, 4);
    ask(8, 64);
    await settle();
    const [, probe, small, full] = replies();
    assert.equal(probe.body.readUInt32LE(0), 10);
    assert.equal(small.error, -constants.errno.ERANGE);
    assert.equal(full.body.toString(), '0123456789');
    session.close();
  });
});
