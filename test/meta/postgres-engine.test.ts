import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { asIno, asSliceId, fsError, type Ino } from '../../src/common/index.js';
import type { Clock, InodeRow } from '../../src/meta/engine.js';
import { PostgresEngine, parsePostgresUrl, type MetaChange } from '../../src/meta/engines/postgres/index.js';
import { redact } from '../../src/meta/engines/postgres/migrate.js';
import { MIGRATIONS } from '../../src/meta/engines/postgres/schema.js';
import { createTestDatabase, PG_SKIP_REASON, type TestDatabase } from './postgres-fixture.js';

const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;

function inode(ino: number, mode: number, extra: Partial<InodeRow> = {}): InodeRow {
  return {
    ino: asIno(ino),
    mode,
    uid: 0,
    gid: 0,
    nlink: 1,
    sizeBytes: 0,
    rdev: 0,
    atimeSec: 1,
    atimeNsec: 0,
    mtimeSec: 1,
    mtimeNsec: 0,
    ctimeSec: 1,
    ctimeNsec: 0,
    generation: 0,
    parent: asIno(0),
    target: null,
    allocatedBytes: 0,
    ...extra,
  };
}

/** A clock the test moves by hand, so as-of instants are exact. */
class ManualClock implements Clock {
  constructor(public us = 1_000_000) {}
  nowUs(): number {
    return this.us;
  }
}

describe('PostgreSQL engine URLs', () => {
  test('our query parameters are taken off; libpq ones (host= for a socket dir) stay', () => {
    assert.deepEqual(
      parsePostgresUrl(
        'postgres://u@/db?host=/run/pg&pool_size=3&notify=off&cached_reads=off&group_commit=off&typed_batches=off&batched_reads=off',
      ),
      {
        connectionString: 'postgres://u@/db?host=%2Frun%2Fpg',
        settings: {
          poolSize: 3,
          notify: false,
          cachedReads: false,
          groupCommit: false,
          commitGroups: 2,
          commitStallMs: 4,
          typedBatches: false,
          batchedReads: false,
        },
      },
    );
    assert.deepEqual(parsePostgresUrl('postgresql://h:5/db').settings, {
      poolSize: 16,
      notify: true,
      cachedReads: true,
      groupCommit: true,
      commitGroups: 2,
      commitStallMs: 4,
      typedBatches: true,
      batchedReads: true,
    });
    assert.equal(parsePostgresUrl('postgres://h/db?commit_groups=1').settings.commitGroups, 1);
    assert.equal(parsePostgresUrl('postgres://h/db?commit_stall_ms=0').settings.commitStallMs, 0);
    assert.throws(
      () => parsePostgresUrl('postgres://h/db?commit_stall_ms='),
      /commit_stall_ms= .* from 0 to 1000/,
    );
    assert.throws(
      () => parsePostgresUrl('postgres://h/db?commit_groups=0'),
      /commit_groups=0 .* from 1 to 1000/,
    );
    assert.throws(
      () => parsePostgresUrl('postgres://h/db?group_commit=1'),
      /group_commit=1 .* "on" or "off"/,
    );
    assert.throws(
      () => parsePostgresUrl('postgres://h/db?cached_reads=no'),
      /cached_reads=no .* "on" or "off"/,
    );
    assert.throws(() => parsePostgresUrl('postgres://h/db?pool_size=0'), /pool_size=0 .* from 1 to 1000/);
  });

  test('passwords never reach messages', () => {
    assert.equal(
      redact('postgres://u:secret@h:1/db?password=x&a=1'),
      'postgres://u:***@h:1/db?password=***&a=1',
    );
  });
});

describe('PostgreSQL engine', { skip: PG_SKIP_REASON }, () => {
  let db: TestDatabase;
  const engines: PostgresEngine[] = [];
  const open = async (clock?: Clock) => {
    const engine = await PostgresEngine.open(db.url + '?pool_size=4', { clock });
    engines.push(engine);
    return engine;
  };

  before(async () => {
    db = await createTestDatabase();
  });
  after(async () => {
    await Promise.all(engines.map((e) => e.close()));
    await db?.drop();
  });

  test('rows written in one transaction are read back; history answers as-of reads', async () => {
    const clock = new ManualClock(2_000_000);
    const engine = await open(clock);
    const root = asIno(1);
    await engine.write(async (tx) => {
      await tx.putInode(inode(1, S_IFDIR | 0o755, { nlink: 2, parent: root }));
      await tx.putInode(inode(10, S_IFREG | 0o644, { sizeBytes: 5 }));
      const entry = await tx.putDentry(root, 'a', asIno(10), S_IFREG);
      assert.ok(entry.cursor >= 1);
      assert.equal((await tx.getInode(asIno(10)))?.sizeBytes, 5, 'a transaction sees its own writes');
    });
    const createdUs = clock.us;
    clock.us = 3_000_000;
    await engine.write(async (tx) => {
      await tx.putInode(inode(10, S_IFREG | 0o644, { sizeBytes: 9 }));
      await tx.putInode(inode(10, S_IFREG | 0o600, { sizeBytes: 11 })); // twice: one history copy
      await tx.putXattr(asIno(10), 'user.k', Buffer.from('v1'));
      await tx.putChunk(asIno(10), 0, [
        {
          id: asSliceId(7),
          sliceSizeBytes: 11,
          chunkOffsetBytes: 0,
          sliceOffsetBytes: 0,
          lengthBytes: 11,
          blockSizeBytes: 4096,
        },
      ]);
    });
    clock.us = 4_000_000;
    await engine.write(async (tx) => {
      await tx.deleteDentry(root, 'a');
      await tx.deleteInode(asIno(10));
    });

    await engine.read(async (tx) => {
      assert.equal(await tx.getInode(asIno(10)), undefined);
      assert.equal(await tx.lookup(root, 'a'), undefined);
      assert.equal((await tx.getInode(asIno(10), createdUs))?.sizeBytes, 5);
      assert.equal((await tx.getInode(asIno(10), 3_500_000))?.sizeBytes, 11);
      assert.equal((await tx.getInode(asIno(10), 3_500_000))?.mode, S_IFREG | 0o600);
      assert.equal(await tx.getInode(asIno(10), createdUs - 1), undefined, 'not yet created');
      assert.equal((await tx.lookup(root, 'a', 3_999_999))?.ino, 10);
      assert.deepEqual(await tx.listXattrs(asIno(10), 3_500_000), ['user.k']);
      assert.deepEqual(await tx.listXattrs(asIno(10), createdUs), []);
      assert.equal((await tx.getChunk(asIno(10), 0, 3_500_000))[0]?.id, 7);
      assert.deepEqual(await tx.listChunkIndexes(asIno(10), 0, 10, 3_500_000), [0]);
      assert.deepEqual(await tx.listChunkIndexes(asIno(10), 0, 10), []);
      assert.deepEqual(
        (await tx.listDir(root, 0, 10, 3_500_000)).map((e) => e.name),
        ['a'],
      );
      assert.deepEqual(await tx.listDir(root, 0, 10), []);
    });
    const stats = await engine.stats();
    // inode 10 as of 2 s; as of 3 s: inode 10, its xattr and chunk; entry "a" from 2 s to 4 s
    assert.equal(stats.historyRows, 5);
    assert.equal(await engine.pruneHistory(3_000_001, 100), 1, 'only the image that ended by then');
    assert.equal(await engine.pruneHistory(4_000_001, 2), 2, 'at most maxRows per call');
    assert.equal(await engine.pruneHistory(4_000_001, 100), 2);
    assert.equal((await engine.stats()).historyRows, 0);
  });

  test('a transaction that throws leaves nothing behind and its error comes back unchanged', async () => {
    const engine = await open();
    const failure = fsError.EEXIST('test failure');
    await assert.rejects(
      engine.write(async (tx) => {
        await tx.putInode(inode(20, S_IFREG | 0o644));
        throw failure;
      }),
      (error) => error === failure,
    );
    assert.equal(await engine.read((tx) => tx.getInode(asIno(20))), undefined);
  });

  test('two servers creating the same name at once: exactly one wins, the other sees it', async () => {
    const [a, b] = [await open(), await open()];
    const dir = asIno(30);
    await a.write((tx) => tx.putInode(inode(30, S_IFDIR | 0o755, { nlink: 2, parent: asIno(1) })));
    const attempt = (engine: PostgresEngine, ino: number) =>
      engine.write(async (tx) => {
        // Deliberately no lock on the parent first: the unique key must still catch the race.
        const existing = await tx.lookup(dir, 'same');
        await new Promise((resolve) => setTimeout(resolve, 20));
        if (existing) throw fsError.EEXIST(`"same" exists (ino ${existing.ino})`);
        await tx.putInode(inode(ino, S_IFREG | 0o644));
        await tx.putDentry(dir, 'same', asIno(ino), S_IFREG);
        return ino;
      });
    const results = await Promise.allSettled([attempt(a, 31), attempt(b, 32)]);
    const won = results.filter((r) => r.status === 'fulfilled');
    const lost = results.filter((r) => r.status === 'rejected');
    assert.equal(won.length, 1);
    assert.equal(lost.length, 1);
    assert.match(String((lost[0] as PromiseRejectedResult).reason), /exists/);
    const entry = await a.read((tx) => tx.lookup(dir, 'same'));
    assert.equal(entry?.ino, (won[0] as PromiseFulfilledResult<number>).value);
  });

  test('counters hand out unique ids across three servers', async () => {
    const servers = [await open(), await open(), await open()];
    const perServer = 60;
    const ids = await Promise.all(
      servers.flatMap((engine) =>
        Array.from({ length: perServer }, () => engine.write((tx) => tx.addCounter('next_ino', 1))),
      ),
    );
    assert.equal(new Set(ids).size, ids.length);
    assert.equal(Math.max(...ids), servers.length * perServer);
  });

  test('statistics counters are spread over shards and still add up exactly', async () => {
    const servers = [await open(), await open()];
    await Promise.all(
      Array.from({ length: 50 }, (_, n) =>
        servers[n % 2].write(async (tx) => {
          await tx.addCounter('inodes_used', 1);
          await tx.addCounter('used_bytes', 4096);
        }),
      ),
    );
    await servers[0].write((tx) => tx.addCounter('inodes_used', -10));
    await servers[1].read(async (tx) => {
      assert.equal(await tx.getCounter('inodes_used'), 40);
      assert.equal(await tx.getCounter('used_bytes'), 50 * 4096);
    });
  });

  test('concurrent increments of one directory row serialize without losing updates', async () => {
    const servers = [await open(), await open()];
    const dir = asIno(40);
    await servers[0].write((tx) => tx.putInode(inode(40, S_IFDIR | 0o755, { nlink: 2 })));
    await Promise.all(
      Array.from({ length: 40 }, (_, n) =>
        servers[n % 2].write(async (tx) => {
          const row = await tx.getInode(dir);
          assert.ok(row);
          await tx.putInode({ ...row, nlink: row.nlink + 1 });
        }),
      ),
    );
    assert.equal((await servers[1].read((tx) => tx.getInode(dir)))?.nlink, 42);
  });

  test('other servers hear about a committed change through the change feed', async () => {
    const [writer, listener] = [await open(), await open()];
    const feed = await listener.subscribeChanges();
    const seen = new Promise<MetaChange>((resolve) => {
      const onChange = (change: MetaChange) => {
        if (change.originId !== writer.originId) return;
        feed.off('change', onChange);
        resolve(change);
      };
      feed.on('change', onChange);
    });
    const dir = asIno(50);
    await writer.write(async (tx) => {
      await tx.putInode(inode(50, S_IFDIR | 0o755, { nlink: 2 }));
      await tx.putInode(inode(51, S_IFREG | 0o644));
      await tx.putDentry(dir, 'new', asIno(51), S_IFREG);
    });
    const change = await seen;
    assert.deepEqual(new Set(change.inos), new Set<Ino>([dir, asIno(51)]));
    assert.deepEqual(change.entries, [{ parent: dir, name: 'new' }]);
  });

  test('a second server finds the schema in place and the dry run says there is nothing to do', async () => {
    const { planMigrations } = await import('../../src/meta/engines/postgres/index.js');
    const newest = Math.max(...MIGRATIONS.map((m) => m.version));
    assert.match(await planMigrations(db.url), new RegExp(`schema version ${newest}\nup to date`));
  });
});
