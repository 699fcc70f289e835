// The differential tester against a real `strata up` mount (SQLite metadata,
// file object store), as root and as several users, compared with tmpfs.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { runDifferential } from './differential.js';
import { TEST_USERS } from './executor.js';
import { startStrata, strataUnavailable, type StrataMount } from './strata-mount.js';
import { longProfile, mountTmpfs, type TempMount } from './tmpfs.js';

// Known mismatches (reported to the VFS / metadata owners; these tests stay
// todo until they are fixed, then become regular tests and the replays
// committed regression seeds). Replay with
//   node DIST/test/reliability/cli.js replay --target MOUNTPOINT FILE
//
// 1. open(O_RDONLY|O_TRUNC) does not truncate (Linux truncates; POSIX leaves it undefined):
//      0 open 1 d rw+creat 0444
//      0 write 1 2771 2450 5072
//      0 open 1 d r+creat+trunc 0644        -> strata keeps 5221 bytes, tmpfs 0
// 2. the same as another user's file, reached in the multi-user run:
//      #! users 2001:2001:2100 2002:2002:2100 2003:2003
//      1 open 3 b rw+creat+append 0755
//      2 ftrunc 3 4868
//      0 open 3 b r+trunc 0600              -> strata keeps 4868 bytes, tmpfs 0

const ROOT_OPS = longProfile() ? 200_000 : 2_000;
const USER_OPS = longProfile() ? 100_000 : 1_000;
const SEED = Number(process.env.STRATA_REL_SEED ?? 0x57a7);

describe('differential tester against strata up', { skip: strataUnavailable() }, () => {
  let mount: StrataMount | undefined;
  let reference: TempMount | undefined;
  before(async () => {
    reference = mountTmpfs('ref');
    mount = await startStrata();
  });
  after(async () => {
    await mount?.stop();
    reference?.dispose();
  });

  test.todo('root operations behave as on tmpfs', async () => {
    assert.ok(mount && reference);
    const result = await runDifferential({
      targetRoot: mount.mountpoint,
      referenceRoot: reference.path,
      seed: SEED,
      opCount: ROOT_OPS,
      shrinkBudgetMs: 60_000,
    });
    assert.equal(result.failure, undefined, result.failure?.script);
    assert.equal(result.opsRun, ROOT_OPS);
  });

  test.todo('three users and root behave as on tmpfs (permissions, sticky and setgid bits)', async () => {
    assert.ok(mount && reference);
    const result = await runDifferential({
      targetRoot: mount.mountpoint,
      referenceRoot: reference.path,
      users: TEST_USERS,
      seed: SEED + 1_000_000,
      opCount: USER_OPS,
      shrinkBudgetMs: 60_000,
    });
    assert.equal(result.failure, undefined, result.failure?.script);
    assert.equal(result.opsRun, USER_OPS);
  });
});
