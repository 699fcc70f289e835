// The differential tester through the real kernel FUSE protocol: the FUSE
// layer serving the in-memory test file system, compared with tmpfs. A
// mismatch here is in src/fuse (or in MemFs), not in the metadata or data path.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mountInChild, type ChildMount } from '../fuse/mount-helper.js';
import { DifferentialPair, runDifferential, type Mismatch } from './differential.js';
import { TEST_USERS } from './executor.js';
import { parseScript } from './script.js';
import { longProfile, mountTmpfs, type TempMount } from './tmpfs.js';

const OPS = longProfile() ? 100_000 : 3_000;
const SEED = Number(process.env.STRATA_REL_SEED ?? 0xfe5e);

// Known mismatch (reported to the FUSE owner): punching a hole leaves MemFs's
// mtime untouched, where tmpfs (and ext4) update it. Until fixed, hole punching
// is left out of the random runs below and this replay is kept as a todo.
const PUNCH_MTIME_REPLAY = `
0 open 3 a rw+creat+append 01700
0 utimes a 704864748 12266888 456819770 74930942
0 falloc 3 punch 55556 2819
0 fstat 3
`;

// Known mismatch (reported): fallocate by a user other than the owner of a
// setuid file does not clear S_ISUID through FUSE + MemFs, as tmpfs does:
//   #! users 2001:2001:2100 2002:2002:2100 2003:2003
//   3 open 2 b w+creat 04755
//   1 falloc 2 0 7979 138                  -> MemFs keeps 04755, tmpfs 0755
// The multi-user run stays todo until fixed.

describe('differential tester against a FUSE mount of MemFs', () => {
  let mount: ChildMount | undefined;
  let reference: TempMount | undefined;
  before(async () => {
    reference = mountTmpfs('ref');
    mount = await mountInChild([]);
  });
  after(async () => {
    await mount?.cleanup();
    reference?.dispose();
  });

  for (const users of [[], TEST_USERS]) {
    const run = users.length > 0 ? test.todo : test;
    run(
      `${users.length > 0 ? 'three users and root' : 'root'}: MemFs over FUSE behaves as tmpfs`,
      async () => {
        assert.ok(mount && reference);
        const result = await runDifferential({
          targetRoot: mount.mountpoint,
          referenceRoot: reference.path,
          users,
          seed: SEED + users.length,
          opCount: OPS,
          punchHole: false,
          largeOffsets: true,
        });
        assert.equal(result.failure, undefined, result.failure?.script);
      },
    );
  }

  test.todo('punching a hole updates mtime as on tmpfs', async () => {
    assert.ok(mount && reference);
    const pair = new DifferentialPair({ targetRoot: mount.mountpoint, referenceRoot: reference.path });
    try {
      const mismatch: Mismatch | null = await pair.run(parseScript(PUNCH_MTIME_REPLAY).ops, 1);
      assert.equal(mismatch, null);
    } finally {
      await pair.close();
    }
  });
});
