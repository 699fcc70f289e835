// The differential tester on the separate-process deployment with the PostgreSQL engine:
// `strata format` + `strata meta serve` on PostgreSQL + `strata mount` over RPC, as three
// users and root, compared with tmpfs. The RPC path carries every caller (uid, gid,
// supplementary groups) to the server, which the embedded `strata up` of strata.test.ts
// never encodes. Skipped without STRATA_PG_TEST_URL (eval "$(scripts/postgres/start.sh)").
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import {
  adminQuery,
  cleanup,
  createPgDatabase,
  formatVolume,
  isMounted,
  serveMeta,
  StrataProcess,
  tempDir,
} from '../e2e/harness.js';
import { runDifferential } from './differential.js';
import { TEST_USERS } from './executor.js';
import { STRATA_KNOWN, strataUnavailable } from './strata-mount.js';
import { longProfile, mountTmpfs, type TempMount } from './tmpfs.js';

const USER_OPS = longProfile() ? 40_000 : 800;
const SEED = Number(process.env.STRATA_REL_SEED ?? 0x9e57);
const PG_URL = process.env.STRATA_PG_TEST_URL;
const skip = PG_URL
  ? strataUnavailable()
  : 'STRATA_PG_TEST_URL is not set: eval "$(scripts/postgres/start.sh)"';

describe('differential tester against a PostgreSQL-served mount', { skip }, () => {
  const database = `strata_rel_pg_${process.pid}`;
  const procs: StrataProcess[] = [];
  let work: string | undefined;
  let mountpoint: string | undefined;
  let reference: TempMount | undefined;

  before(async () => {
    reference = mountTmpfs('ref');
    work = tempDir('rel-pg');
    mountpoint = join(work, 'mnt');
    mkdirSync(mountpoint);
    const engine = await createPgDatabase(database);
    const secret = join(work, 'secret');
    formatVolume(engine, join(work, 'objects'), 'rel', secret);
    const served = await serveMeta(engine);
    procs.push(served.proc);
    // Attributes are not cached by the kernel, so every stat of the tester reaches the server.
    const mount = new StrataProcess([
      'mount',
      `${served.address}/rel`,
      mountpoint,
      '--secret-file',
      secret,
      '--attr-timeout',
      '0',
    ]);
    procs.push(mount);
    const mnt = mountpoint;
    await mount.waitFor(() => isMounted(mnt) && mount.output.includes('mounted at'), `${mnt} mounted`);
  });

  after(async () => {
    // The mount first, then the server it talks to.
    await cleanup([...procs].reverse(), mountpoint ? [mountpoint] : [], work ? [work] : []);
    reference?.dispose();
    await adminQuery(`DROP DATABASE IF EXISTS ${pg.escapeIdentifier(database)} WITH (FORCE)`);
  });

  test('three users and root behave as on tmpfs', async () => {
    assert.ok(mountpoint && reference);
    const result = await runDifferential({
      targetRoot: mountpoint,
      referenceRoot: reference.path,
      users: TEST_USERS,
      seed: SEED,
      opCount: USER_OPS,
      ...STRATA_KNOWN,
      shrinkBudgetMs: 60_000,
    });
    assert.equal(result.failure, undefined, result.failure?.script);
    assert.equal(result.opsRun, USER_OPS);
  });
});
