import assert from 'node:assert/strict';
import { closeSync, existsSync, mkdtempSync, openSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fuse_in_header, fuse_init_in, InitFlag, Opcode } from '../../src/fuse/abi.js';
import { writeU64 } from '../../src/fuse/codec.js';
import { FuseSession, type FuseLogger } from '../../src/fuse/index.js';
import { kernelUringEnabled, setKernelUring } from '../../src/fuse/ring.js';
import { MemFs } from './memfs.js';
import { makeMountDir, mountInChild, mountInProcess, run, sh, unmountAndRemove } from './mount-helper.js';
import { describePosixPrograms } from './posix-suite.js';

// FUSE over io_uring: the session's second transport. Mounting with `ioUring` turns the
// fuse module's enable_uring on (machine-wide); this file puts back what it found.
// Kernels without FUSE over io_uring (no enable_uring parameter) skip the mounting tests.
const kernelHasUring = existsSync('/sys/module/fuse/parameters/enable_uring');
const skipWithoutUring = kernelHasUring
  ? false
  : 'this kernel has no FUSE over io_uring (CONFIG_FUSE_IO_URING, Linux 6.14+)';

let uringWasEnabled = false;
before(() => {
  uringWasEnabled = kernelUringEnabled();
});
after(() => {
  if (kernelHasUring && kernelUringEnabled() !== uringWasEnabled) setKernelUring(uringWasEnabled);
});

const logged: string[] = [];
const logger: FuseLogger = {
  debug: () => undefined,
  warn: (message) => logged.push(message),
  error: (message) => logged.push(message),
};

describePosixPrograms(
  'the same real programs against a MemFs served over FUSE-over-io_uring',
  { ioUring: true, logger },
  {
    skip: skipWithoutUring,
    mounted(session) {
      assert.ok(session.usesIoUring, `the kernel did not give us a ring: ${logged.join('; ')}`);
      assert.ok(
        logged.some((line) => /serving over io_uring/.test(line)),
        logged.join('; '),
      );
    },
    last: {
      name: 'the requests of those programs came through the ring, not /dev/fuse',
      check(session) {
        // The 10,000-entry directory alone takes tens of thousands of requests.
        assert.ok(session.ioUringRequests > 20_000, `only ${session.ioUringRequests} ring requests`);
        assert.deepEqual(
          logged.filter((line) => /BUG|failed/.test(line)),
          [],
        );
      },
    },
  },
);

describe('FUSE over io_uring: ending and falling back', () => {
  test(
    'after kill -9 of a server on a ring, callers get ENOTCONN, not a hang, and the directory mounts again',
    { skip: skipWithoutUring },
    async () => {
      const mountpoint = makeMountDir();
      try {
        const first = await mountInChild(['--io-uring'], mountpoint);
        await sh(`echo hi > ${mountpoint}/f`);
        const exited = new Promise((resolve) => first.child.once('close', resolve));
        first.child.kill('SIGKILL');
        await exited;
        const stat = await run('stat', [`${mountpoint}/f`], { timeoutMs: 20_000 });
        assert.notEqual(stat.code, 0);
        // Requests the ring held when the server died end with ECONNABORTED, later ones ENOTCONN.
        assert.match(stat.stderr, /Transport endpoint is not connected|Software caused connection abort/);
        const later = await run('stat', [`${mountpoint}/f`], { timeoutMs: 20_000 });
        assert.match(later.stderr, /Transport endpoint is not connected/);
        assert.equal((await run('umount', ['-l', mountpoint])).code, 0);
        const second = await mountInChild(['--io-uring'], mountpoint);
        try {
          await sh(`echo again > ${mountpoint}/g`);
          assert.equal((await sh(`cat ${mountpoint}/g`)).trim(), 'again');
        } finally {
          await second.cleanup();
        }
      } finally {
        await unmountAndRemove(mountpoint);
      }
    },
  );

  test(
    'a session on a ring refuses to detach: the kernel holds its entries',
    { skip: skipWithoutUring },
    async () => {
      const mounted = await mountInProcess(new MemFs(), { ioUring: true, logger });
      try {
        assert.ok(mounted.session.usesIoUring);
        await assert.rejects(mounted.session.detach(), /io_uring entries, which cannot be handed over/);
        await sh(`echo still > ${mounted.mountpoint}/x && cat ${mounted.mountpoint}/x`);
      } finally {
        await mounted.cleanup();
      }
    },
  );

  test('when the kernel does not offer io_uring at INIT the session says so once and serves over /dev/fuse', async () => {
    const dir = mkdtempSync('/tmp/strata-fuse-uring-');
    const fd = openSync(join(dir, 'device'), 'w+');
    const lines: string[] = [];
    const quiet: FuseLogger = {
      debug: () => undefined,
      warn: (m) => lines.push(m),
      error: (m) => lines.push(m),
    };
    try {
      const session = new FuseSession(fd, new MemFs(), { ioUring: true, logger: quiet });
      const body = Buffer.alloc(fuse_init_in.size);
      body.writeUInt32LE(7, fuse_init_in.major);
      body.writeUInt32LE(45, fuse_init_in.minor);
      body.writeUInt32LE(
        (InitFlag.MAX_PAGES | InitFlag.BIG_WRITES | InitFlag.INIT_EXT) >>> 0,
        fuse_init_in.flags,
      );
      body.writeUInt32LE(0, fuse_init_in.flags2); // no FUSE_OVER_IO_URING
      const frame = Buffer.alloc(fuse_in_header.size + body.length);
      frame.writeUInt32LE(frame.length, fuse_in_header.len);
      frame.writeUInt32LE(Opcode.INIT, fuse_in_header.opcode);
      writeU64(frame, fuse_in_header.unique, 2);
      body.copy(frame, fuse_in_header.size);
      session.processRequest(frame, frame.length);
      await session.ready;
      assert.equal(session.usesIoUring, false);
      assert.equal(lines.length, 1, lines.join('; '));
      assert.match(lines[0], /did not offer FUSE over io_uring.*serving over \/dev\/fuse/);
      assert.equal(session.initFlags & InitFlag.INIT_EXT, 0, 'INIT_EXT is not claimed without a reason');
      session.close();
    } finally {
      try {
        closeSync(fd);
      } catch {
        // the session closed it
      }
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
