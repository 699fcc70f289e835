import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { Errno, ROOT_INO, isFsError, type Ino } from '../../src/common/index.js';
import { CURSOR_BLOCK } from '../../src/meta/engines/postgres/tx.js';
import { engineStatsOf } from '../../src/meta/server/engine-stats.js';
import { COUNTER_INODES } from '../../src/meta/namespace.js';
import { formatVolume, openMetaService, type Caller, type MetaService } from '../../src/meta/index.js';
import {
  createTestDatabase,
  errnoOf,
  PG_SKIP_REASON,
  postgresEngineOf,
  type TestDatabase,
} from './postgres-fixture.js';

/**
 * Cached reads (src/meta/engines/postgres/row-cache.ts): a server decides a change from rows it
 * cached and checks them in the change's one round trip. Two servers on one database: whatever
 * one of them cached, the other's changes must win, with the POSIX answer PostgreSQL's current
 * state implies.
 */

const root: Caller = { uid: 0, gid: 0, pid: 1 };
const user: Caller = { uid: 1000, gid: 1000, pid: 2 };
const S_IFREG = 0o100000;

describe('PostgreSQL cached reads', { skip: PG_SKIP_REASON }, () => {
  let db: TestDatabase;
  let a: MetaService;
  let b: MetaService;

  before(async () => {
    db = await createTestDatabase();
    await formatVolume(db.url, { name: 'cached' });
    a = await openMetaService({ engineUrl: db.url, background: false });
    b = await openMetaService({ engineUrl: db.url, background: false });
  });
  after(async () => {
    await a?.close();
    await b?.close();
    await db?.drop();
  });

  test('create, rename and chmod in a directory the server knows cost one round trip each', async () => {
    const engine = postgresEngineOf(a);
    const dir = await a.mkdir(root, ROOT_INO, 'one-trip', 0o755, 0);
    await a.mknod(root, dir.ino, 'warm-up', S_IFREG | 0o644, 0, 0); // readdir cursors fetched
    const trips = async (work: () => Promise<unknown>): Promise<number> => {
      const before = engine.roundTrips;
      await work();
      return engine.roundTrips - before;
    };
    let file: Ino | undefined;
    assert.equal(
      await trips(async () => (file = (await a.mknod(root, dir.ino, 'f', S_IFREG | 0o644, 0, 0o022)).ino)),
      1,
    );
    assert.equal(await trips(() => a.rename(root, dir.ino, 'f', dir.ino, 'g', 0)), 1);
    assert.equal(await trips(() => a.setattr(root, file!, { mode: 0o600 })), 1);
    // unlink also asks for open counts and chunks (neither is cached): one round trip each more.
    assert.equal(await trips(() => a.unlink(root, dir.ino, 'g')), 3);
    // What those single round trips did is what the other server reads.
    assert.equal(await b.lookup(root, dir.ino, 'f').catch(() => undefined), undefined);
    assert.equal(await b.lookup(root, dir.ino, 'g').catch(() => undefined), undefined);
    assert.deepEqual(
      (await b.readdir(root, dir.ino, 0, 100, false))
        .map((e) => e.name)
        .filter((n) => n !== '.' && n !== '..'),
      ['warm-up'],
    );
  });

  test('creates past several blocks of readdir cursors still cost one round trip each', async () => {
    // The next block is fetched ahead, outside the transactions: a create that had to fetch
    // cursors itself would hold a connection and commit on its own, a second round trip.
    // A server of its own whose inode-number ranges outlast the run: reserving one is a round
    // trip too, which is not what this test counts.
    const count = 2 * CURSOR_BLOCK + 10;
    const c = await openMetaService({ engineUrl: db.url, background: false, inoBatch: 2 * count });
    try {
      const engine = postgresEngineOf(c);
      const dir = await c.mkdir(root, ROOT_INO, 'many-cursors', 0o755, 0);
      const before = engine.roundTrips;
      for (let n = 0; n < count; n++) await c.mknod(root, dir.ino, `f${n}`, S_IFREG | 0o644, 0, 0);
      const extra = engine.roundTrips - before - count;
      // The first create may find the stock empty; none after it.
      assert.ok(extra <= 1, `${extra} creates fetched cursors themselves`);
      // One server's cursors are unique and increase with its creates: readdir lists in order.
      const names = (await c.readdir(root, dir.ino, 0, count + 10, false))
        .map((e) => e.name)
        .filter((n) => n !== '.' && n !== '..');
      assert.deepEqual(
        names,
        Array.from({ length: count }, (_, n) => `f${n}`),
      );
    } finally {
      await c.close();
    }
  });

  test('concurrent creates in different directories commit set-based, and the engine counts it', async () => {
    const engine = postgresEngineOf(a);
    const dirs = [];
    for (let n = 0; n < 8; n++) dirs.push(await a.mkdir(root, ROOT_INO, `set-${n}`, 0o755, 0));
    for (const dir of dirs) await a.mknod(root, dir.ino, 'warm-up', S_IFREG | 0o644, 0, 0); // cached
    const before = engineStatsOf(engine)!;
    await Promise.all(dirs.map((dir) => a.mknod(root, dir.ino, 'f', S_IFREG | 0o644, 0, 0)));
    const after = engineStatsOf(engine)!;
    assert.ok(after.setGroups > before.setGroups, 'a group of independent creates took the set-based path');
    assert.equal(after.setFallbacks, before.setFallbacks);
    for (const dir of dirs) assert.ok((await b.lookup(root, dir.ino, 'f')).ino > 0);
  });

  test("two servers' groups of creates add to a shard of their connection, not one per create", async () => {
    // Random shards per create made a group of dozens touch most of the 64 counter rows, so
    // every other group in flight waited for its commit on one of them or deadlocked with it.
    // Each server in directories of its own, whose rows it has cached (one server's change of
    // a row the other cached sends the other's next change to PostgreSQL first, outside groups),
    // one create at a time in each (a second one would wait for the directory's row).
    const dirsOf = async (server: MetaService, prefix: string) => {
      const dirs = [];
      for (let n = 0; n < 16; n++) {
        const dir = await server.mkdir(root, ROOT_INO, `${prefix}-${n}`, 0o755, 0);
        await server.mknod(root, dir.ino, 'warm-up', S_IFREG | 0o644, 0, 0);
        dirs.push(dir);
      }
      return dirs;
    };
    const dirsA = await dirsOf(a, 'shard-a');
    const dirsB = await dirsOf(b, 'shard-b');
    const client = new pg.Client({ connectionString: db.url });
    await client.connect();
    try {
      const shards = async (): Promise<Map<number, string>> => {
        const { rows } = await client.query<{ shard: number; value: string }>(
          `SELECT shard, value::text FROM counter_shard WHERE name = $1`,
          [COUNTER_INODES],
        );
        return new Map(rows.map((row) => [row.shard, row.value]));
      };
      const before = await shards();
      const creates = (server: MetaService, dirs: typeof dirsA, n: number) =>
        dirs.map((dir) => server.mknod(root, dir.ino, `f${n}`, S_IFREG | 0o644, 0, 0));
      for (let n = 0; n < 4; n++) await Promise.all([...creates(a, dirsA, n), ...creates(b, dirsB, n)]);
      const after = await shards();
      const changed = [...after].filter(([shard, value]) => before.get(shard) !== value);
      // 128 creates; each server has at most two group connections, each with its own shard.
      assert.ok(changed.length >= 1 && changed.length <= 4, `${changed.length} shards changed`);
      const added = changed.reduce(
        (sum, [shard, value]) => sum + BigInt(value) - BigInt(before.get(shard) ?? 0),
        0n,
      );
      assert.equal(added, 128n, 'every create counted once');
    } finally {
      await client.end();
    }
  });

  test('concurrent creates in one directory commit in groups, each deciding from the one before it', async () => {
    // Each create changes the directory's row: the next one waits for it to reach its commit
    // and decides from what it wrote, instead of reading PostgreSQL under the row lock alone.
    const engine = postgresEngineOf(a);
    const dir = await a.mkdir(root, ROOT_INO, 'shared-creates', 0o755, 0);
    await a.mknod(root, dir.ino, 'warm-up', S_IFREG | 0o644, 0, 0);
    const committer = engine.committer!;
    const before = { grouped: committer.groupedTransactions, stale: engine.cache!.staleReads };
    const lanes = 16;
    const perLane = 25;
    await Promise.all(
      Array.from({ length: lanes }, async (_, lane) => {
        for (let n = 0; n < perLane; n++)
          await a.mknod(root, dir.ino, `f${lane}.${n}`, S_IFREG | 0o644, 0, 0);
      }),
    );
    const creates = lanes * perLane;
    const grouped = committer.groupedTransactions - before.grouped;
    const stale = engine.cache!.staleReads - before.stale;
    assert.ok(grouped >= creates * 0.9, `${grouped} of ${creates} creates committed in groups`);
    assert.ok(stale <= creates * 0.05, `${stale} of ${creates} creates found their cached directory stale`);
    // What the other server reads from PostgreSQL: every entry, and the directory as the last create left it.
    const names = (await b.readdir(root, dir.ino, 0, creates + 10, false)).map((e) => e.name);
    assert.equal(names.filter((name) => name.startsWith('f')).length, creates);
    const fresh = await b.getattr(dir.ino);
    const last = await a.getattr(dir.ino);
    assert.deepEqual([fresh.mtime, fresh.ctime, fresh.nlink], [last.mtime, last.ctime, last.nlink]);
  });

  test('a create whose predecessor in the directory fails runs again and succeeds', async () => {
    const dir = await a.mkdir(root, ROOT_INO, 'chain-break', 0o755, 0);
    await a.mknod(root, dir.ino, 'warm-up', S_IFREG | 0o644, 0, 0);
    // b takes a name a has never seen: a assumes it absent, and its insert fails at commit.
    await b.mknod(root, dir.ino, 'taken', S_IFREG | 0o644, 0, 0);
    const staleBefore = postgresEngineOf(a).cache!.staleReads;
    const results = await Promise.allSettled([
      a.mknod(root, dir.ino, 'taken', S_IFREG | 0o644, 0, 0),
      a.mknod(root, dir.ino, 'next1', S_IFREG | 0o644, 0, 0),
      a.mknod(root, dir.ino, 'next2', S_IFREG | 0o644, 0, 0),
    ]);
    assert.equal(results[0].status, 'rejected');
    assert.equal(
      isFsError((results[0] as PromiseRejectedResult).reason) &&
        (results[0] as PromiseRejectedResult).reason.errno,
      Errno.EEXIST,
    );
    assert.deepEqual(
      results.slice(1).map((r) => r.status),
      ['fulfilled', 'fulfilled'],
    );
    // The two that decided from the failed create's directory row found it stale and ran again.
    assert.ok(postgresEngineOf(a).cache!.staleReads > staleBefore);
    const names = (await b.readdir(root, dir.ino, 0, 100, false)).map((e) => e.name).sort();
    assert.deepEqual(names, ['.', '..', 'next1', 'next2', 'taken', 'warm-up']);
    assert.equal((await b.lookup(root, dir.ino, 'taken')).ino, (await a.lookup(root, dir.ino, 'taken')).ino);
  });

  test('a rename of a name this server never saw reads it batched, then commits in one round trip', async () => {
    const engine = postgresEngineOf(a);
    const dir = await a.mkdir(root, ROOT_INO, 'unseen', 0o755, 0);
    const theirs = await b.mknod(root, dir.ino, 'f', S_IFREG | 0o644, 0, 0);
    const refills = engine.counts.refills;
    const trips = engine.roundTrips;
    const lookupBatches = engine.batchedReads!.lookups.batches;
    // The first attempt assumes the unknown name absent and fails in memory (ENOENT); the name
    // is then read with the batched lookups, and the second attempt decides from it.
    await a.rename(root, dir.ino, 'f', dir.ino, 'g', 0);
    assert.equal(engine.counts.refills - refills, 1);
    assert.equal(engine.batchedReads!.lookups.batches - lookupBatches, 1);
    assert.equal(engine.roundTrips - trips, 1, 'the second attempt read nothing under a lock');
    assert.equal((await b.lookup(root, dir.ino, 'g')).ino, theirs.ino);
    assert.equal(await errnoOf(b.lookup(root, dir.ino, 'f')), Errno.ENOENT);
    // A name that is absent indeed: ENOENT, and no second attempt from the cache.
    assert.equal(await errnoOf(a.rename(root, dir.ino, 'none', dir.ino, 'h', 0)), Errno.ENOENT);
    assert.equal(engine.counts.refills - refills, 1);
  });

  test("another server's changes win over what this one cached", async () => {
    const engine = postgresEngineOf(a);
    const dir = await a.mkdir(root, ROOT_INO, 'contested', 0o777, 0);
    const file = await a.mknod(root, dir.ino, 'f', S_IFREG | 0o644, 0, 0);
    await a.mknod(root, dir.ino, 'keep', S_IFREG | 0o644, 0, 0);
    const staleBefore = engine.cache!.staleReads;

    // b removes an entry a has cached: a's rename of it must fail as if a had read it.
    await b.unlink(root, dir.ino, 'f');
    assert.equal(await errnoOf(a.rename(root, dir.ino, 'f', dir.ino, 'f2', 0)), Errno.ENOENT);
    // b creates a name a never saw: a's create of it must not overwrite it.
    const theirs = await b.mknod(root, dir.ino, 'x', S_IFREG | 0o644, 0, 0);
    assert.equal(await errnoOf(a.mknod(root, dir.ino, 'x', S_IFREG | 0o644, 0, 0)), Errno.EEXIST);
    assert.equal((await a.lookup(root, dir.ino, 'x')).ino, theirs.ino);
    // b takes write permission away on a directory a has cached as writable by everyone.
    await b.setattr(root, dir.ino, { mode: 0o755 });
    assert.equal(await errnoOf(a.mknod(user, dir.ino, 'denied', S_IFREG | 0o644, 0, 0)), Errno.EACCES);
    // b changes an inode a has cached: a's change starts from b's version.
    await b.setattr(root, (await b.lookup(root, dir.ino, 'keep')).ino, { uid: 7 });
    const keep = await a.lookup(root, dir.ino, 'keep');
    await a.setattr(root, keep.ino, { mode: 0o640 });
    const after = await b.getattr(keep.ino);
    assert.equal(after.uid, 7, "b's owner change survived a's chmod");
    assert.equal(after.mode & 0o7777, 0o640);

    assert.ok(engine.cache!.staleReads > staleBefore, 'the checks of cached rows did fail and were retried');
    assert.equal(await errnoOf(a.getattr(file.ino)), Errno.ENOENT);
  });
});
