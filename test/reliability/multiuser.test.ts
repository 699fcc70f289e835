// The differential tester as several users: permission, ownership, setgid and
// sticky-bit rules checked against the kernel's own behaviour on tmpfs.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { runDifferential } from './differential.js';
import { TEST_USERS } from './executor.js';
import { longProfile, mountTmpfs, type TempMount } from './tmpfs.js';

const SANITY_OPS = longProfile() ? 100_000 : 3_000;
const SEED = Number(process.env.STRATA_REL_SEED ?? 0x0a11);

describe('differential tester, multi-user', () => {
  let target: TempMount;
  let reference: TempMount;
  before(() => {
    target = mountTmpfs('target');
    reference = mountTmpfs('ref');
  });
  after(() => {
    target?.dispose();
    reference?.dispose();
  });

  test('finds no difference between two tmpfs mounts with three users and root', async () => {
    const result = await runDifferential({
      targetRoot: target.path,
      referenceRoot: reference.path,
      users: TEST_USERS,
      seed: SEED,
      opCount: SANITY_OPS,
    });
    assert.equal(result.failure, undefined, result.failure?.script);
    assert.equal(result.opsRun, SANITY_OPS);
  });

  test('finds a file system that ignores permissions, shrunk to an unprivileged operation', async () => {
    const result = await runDifferential({
      targetRoot: target.path,
      referenceRoot: reference.path,
      users: TEST_USERS,
      plant: 'perm-bypass',
      seed: SEED,
      opCount: 20_000,
      shrinkBudgetMs: 30_000,
    });
    const failure = result.failure;
    assert.ok(failure, `ignored permissions went unnoticed for ${result.opsRun} operations`);
    assert.ok(failure.shrunk.length <= 12, failure.script);
    const last = failure.shrunk[failure.shrunk.length - 1];
    assert.notEqual(
      last.split(' ')[0],
      '0',
      `the failing operation must be a non-root one:\n${failure.script}`,
    );
    assert.match(failure.script, /#! users 2001:2001:2100 2002:2002:2100 2003:2003/);
  });
});
