import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import BetterSqlite3 from 'better-sqlite3';
import { asIno, fsError, isFsError } from '../../src/common/index.js';
import type { CallOutcomeWriter } from '../../src/meta/call-outcomes.js';
import type { WriteTx } from '../../src/meta/engine.js';
import { SqliteEngine } from '../../src/meta/engines/sqlite/index.js';
import { SCHEMA_VERSION } from '../../src/meta/engines/sqlite/schema.js';

const base = mkdtempSync(join(tmpdir(), 'strata-meta-sqlite-'));
let n = 0;
after(() => rmSync(base, { recursive: true, force: true }));

function open(options: ConstructorParameters<typeof SqliteEngine>[1] = {}) {
  const path = join(base, `e${++n}.db`);
  return { engine: new SqliteEngine(path, options), path };
}

describe('SQLite engine: group commit', () => {
  it('operations that arrive together share one transaction, and a failing one does not undo the others', async () => {
    const { engine, path } = open();
    try {
      const results = await Promise.allSettled(
        Array.from({ length: 200 }, (_, i) =>
          engine.write(async (tx) => {
            await tx.putSetting(`k${i}`, String(i));
            if (i % 3 === 0) throw fsError.EEXIST(`op ${i} fails on purpose`);
            return tx.nowUs;
          }),
        ),
      );
      const instants = new Set<number>();
      results.forEach((r, i) => {
        if (i % 3 === 0) {
          assert.equal(r.status, 'rejected');
          assert.ok(isFsError((r as PromiseRejectedResult).reason));
        } else {
          assert.equal(r.status, 'fulfilled');
          instants.add((r as PromiseFulfilledResult<number>).value);
        }
      });
      assert.ok(instants.size < 133, `200 concurrent ops used ${instants.size} transactions: no grouping`);
      const db = new BetterSqlite3(path, { readonly: true });
      try {
        const keys = db.prepare('SELECT key FROM setting').pluck().all() as string[];
        assert.equal(keys.length, 133);
        assert.ok(!keys.includes('k0') && !keys.includes('k3') && keys.includes('k1'));
      } finally {
        db.close();
      }
    } finally {
      await engine.close();
    }
  });

  it('a write is acknowledged only once it is committed (another connection already sees it)', async () => {
    const { engine, path } = open({ groupCommitMaxOps: 8 });
    const db = new BetterSqlite3(path, { readonly: true });
    try {
      const get = db.prepare('SELECT value FROM setting WHERE key = ?').pluck();
      await Promise.all(
        Array.from({ length: 100 }, async (_, i) => {
          await engine.write((tx) => tx.putSetting(`k${i}`, 'v'));
          assert.equal(get.get(`k${i}`), 'v', `k${i} acknowledged before commit`);
        }),
      );
    } finally {
      db.close();
      await engine.close();
    }
  });

  it('reads never see writes that are not committed yet', async () => {
    const { engine } = open();
    try {
      let release!: () => void;
      const gate = new Promise<void>((resolve) => (release = resolve));
      const pending = engine.write(async (tx) => {
        await tx.putSetting('uncommitted', 'x');
        await gate;
      });
      await new Promise((resolve) => setTimeout(resolve, 20));
      assert.equal(await engine.read((tx) => tx.getSetting('uncommitted')), undefined);
      release();
      await pending;
      assert.equal(await engine.read((tx) => tx.getSetting('uncommitted')), 'x');
    } finally {
      await engine.close();
    }
  });

  it('runs WAL with synchronous=NORMAL by default and FULL when every commit must be durable', async () => {
    for (const [durable, expected] of [
      [undefined, 1],
      [false, 1],
      [true, 2],
    ] as const) {
      const { engine, path } = open({ durable });
      await engine.close();
      const db = new BetterSqlite3(path);
      assert.equal(db.pragma('journal_mode', { simple: true }), 'wal');
      db.close();
      const again = new SqliteEngine(path, { durable });
      // synchronous is per connection: read it through the engine's own connection
      const sync = (again as unknown as { wdb: BetterSqlite3.Database }).wdb.pragma('synchronous', {
        simple: true,
      });
      assert.equal(sync, expected);
      await again.close();
    }
  });

  it('with history off no old images are kept', async () => {
    const { engine } = open({ history: false });
    try {
      const row = inodeRow(5);
      await engine.write((tx) => tx.putInode(row));
      await engine.write((tx) => tx.putInode({ ...row, uid: 1 }));
      await engine.write((tx) => tx.deleteInode(row.ino));
      assert.equal((await engine.stats()).historyRows, 0);
    } finally {
      await engine.close();
    }
  });

  it('within one batch, a rolled-back change leaves no trace in the rows and counters later changes read', async () => {
    // Counters are summed in memory and inode rows cached per batch (batch-rows.ts): a change that
    // fails after touching them must not leak into the changes after it, nor into the commit.
    const { engine, path } = open();
    try {
      const row = { ...inodeRow(7), uid: 1 };
      await engine.write(async (tx) => {
        await tx.putInode(row);
        await tx.addCounter('c', 10);
      });
      const seen: [number, number | undefined, number, string | undefined][] = [];
      const writes = Array.from({ length: 30 }, (_, i) =>
        engine.write(async (tx) => {
          const before = await tx.getCounter('c');
          const after = await tx.addCounter('c', 1);
          const inode = await tx.getInode(row.ino);
          const xattr = await tx.getXattr(row.ino, 'user.last');
          if (i % 2 === 1) {
            await tx.putInode({ ...row, uid: 100 + i });
            await tx.putXattr(row.ino, 'user.last', Buffer.from(`failed ${i}`));
            await tx.deleteInode(asIno(7000 + i));
            throw fsError.EINVAL(`change ${i} fails on purpose`);
          }
          await tx.putInode({ ...row, uid: 100 + i, nlink: (inode?.nlink ?? 0) + 1 });
          if (i % 4 === 2) await tx.deleteXattr(row.ino, 'user.last');
          else await tx.putXattr(row.ino, 'user.last', Buffer.from(`change ${i}`));
          seen.push([before, inode?.uid, after, xattr && String(xattr)]);
        }),
      );
      const results = await Promise.allSettled(writes);
      assert.equal(results.filter((r) => r.status === 'rejected').length, 15);
      // Each successful change saw the one before it and none of the failed ones.
      assert.deepEqual(
        seen,
        Array.from({ length: 15 }, (_, k) => [
          10 + k,
          k === 0 ? 1 : 100 + 2 * (k - 1),
          11 + k,
          k === 0 || (2 * (k - 1)) % 4 === 2 ? undefined : `change ${2 * (k - 1)}`,
        ]),
      );
      assert.ok(engine.counts.commits < 1 + 30, 'the 30 changes were not grouped');
      const db = new BetterSqlite3(path, { readonly: true });
      try {
        assert.equal(db.prepare("SELECT value FROM counter WHERE name = 'c'").pluck().get(), 25);
        const stored = db.prepare('SELECT uid, nlink FROM inode WHERE ino = 7').get();
        assert.deepEqual(stored, { uid: 128, nlink: 16 });
      } finally {
        db.close();
      }
      assert.equal(await engine.read((tx) => tx.getCounter('c')), 25);
    } finally {
      await engine.close();
    }
  });

  it('writes the inode rows of a batch back once, one history image each, undoing only what a failed change did', async () => {
    // Inode rows are written at COMMIT (batch-rows.ts): until then SQLite holds the committed
    // image, copied to history by the first change of the batch that touches the inode. A change
    // that fails takes back its own copy and rows, and nothing of the changes around it.
    const { engine, path } = open();
    try {
      const row = { ...inodeRow(9), uid: 1 };
      await engine.write((tx) => tx.putInode(row));
      const fail = (what: string) => {
        throw fsError.EINVAL(`${what} fails on purpose`);
      };
      const writes = [
        engine.write(async (tx) => {
          await tx.putInode({ ...row, uid: 50 });
          fail('the first change of inode 9');
        }),
        engine.write((tx) => tx.putInode({ ...row, uid: 2 })),
        engine.write(async (tx) => {
          await tx.putInode({ ...row, uid: 3 });
          fail('the second change of inode 9');
        }),
        engine.write((tx) => tx.putInode(inodeRow(11), true)),
        engine.write(async (tx) => {
          await tx.deleteInode(asIno(11));
          fail('deleting inode 11');
        }),
        engine.write((tx) => tx.putInode(inodeRow(12), true)),
        engine.write(async (tx) => {
          assert.equal((await tx.getInode(asIno(12)))?.ino, 12);
          await tx.deleteInode(asIno(12));
          assert.equal(await tx.getInode(asIno(12)), undefined);
        }),
        engine.write(async (tx) => {
          assert.equal((await tx.getInode(row.ino))?.uid, 2);
          await tx.putInode({ ...row, uid: 5 });
        }),
      ];
      const results = await Promise.allSettled(writes);
      assert.deepEqual(
        results.map((r) => r.status),
        ['rejected', 'fulfilled', 'rejected', 'fulfilled', 'rejected', 'fulfilled', 'fulfilled', 'fulfilled'],
      );
      assert.equal((await engine.read((tx) => tx.getInode(row.ino)))?.uid, 5);
      assert.equal((await engine.read((tx) => tx.getInode(asIno(11))))?.ino, 11);
      assert.equal(await engine.read((tx) => tx.getInode(asIno(12))), undefined);
      const db = new BetterSqlite3(path, { readonly: true });
      try {
        const history = db.prepare('SELECT ino, uid FROM inode_hist ORDER BY ino, to_us').all();
        // One image of inode 9 (the committed uid 1) however many changes touched it in the
        // batch; 11 and 12 had no committed image before it.
        assert.deepEqual(history, [{ ino: 9, uid: 1 }]);
      } finally {
        db.close();
      }
    } finally {
      await engine.close();
    }
  });

  it('keeps the directory entries a batch put in memory until its COMMIT, seen by its own reads, undone with a failed change', async () => {
    // batch-dentries.ts: puts wait for the write-back, deletes are immediate; a change opens its
    // savepoint only at its first SQL write (engine.ts), so a failing change that wrote SQLite
    // rolls back alone and one that wrote only memory leaves nothing either.
    const { engine, path } = open({ groupCommitMaxOps: 1_000, groupCommitMaxDelayMs: 10_000 });
    try {
      const dir = asIno(50);
      await engine.write(async (tx) => {
        await tx.putDentry(dir, 'old', asIno(60), 0o100000, true);
        await tx.putDentry(dir, 'gone', asIno(61), 0o100000, true);
      });
      const fail = (what: string) => {
        throw fsError.EINVAL(`${what} fails on purpose`);
      };
      const seen: unknown[] = [];
      const writes = [
        engine.write((tx) => tx.putDentry(dir, 'a', asIno(70), 0o100000, true)),
        engine.write(async (tx) => {
          await tx.putDentry(dir, 'b', asIno(71), 0o100000, true);
          await tx.putDentry(dir, 'old', asIno(72), 0o100000);
          await tx.deleteDentry(dir, 'a');
          fail('a change that only wrote entries');
        }),
        engine.write(async (tx) => {
          await tx.putXattr(asIno(70), 'user.x', Buffer.from('lost'));
          await tx.deleteDentry(dir, 'gone');
          fail('a change that wrote SQLite');
        }),
        engine.write(async (tx) => {
          seen.push(
            (await tx.lookup(dir, 'a'))?.ino,
            await tx.lookup(dir, 'b'),
            (await tx.lookup(dir, 'gone'))?.ino,
          );
          await tx.putDentry(dir, 'old', asIno(73), 0o100000);
          await tx.deleteDentry(dir, 'gone');
          await tx.putDentry(asIno(51), 'only', asIno(74), 0o100000, true);
          seen.push(await tx.hasEntries(asIno(51)), await tx.hasEntries(asIno(52)));
          seen.push((await tx.listDir(dir, 0, 10)).map((d) => `${d.name}=${d.ino}`));
          seen.push((await tx.listDir(dir, 0, 1)).map((d) => d.name));
        }),
      ];
      const results = await Promise.allSettled(writes);
      assert.deepEqual(
        results.map((r) => r.status),
        ['fulfilled', 'rejected', 'rejected', 'fulfilled'],
      );
      assert.equal(engine.counts.commits, 2, 'the four changes were not one batch');
      assert.deepEqual(seen, [70, undefined, 61, true, false, ['a=70', 'old=73'], ['a']]);
      const names = await engine.read(async (tx) =>
        (await tx.listDir(dir, 0, 10)).map((d) => `${d.name}=${d.ino}`),
      );
      assert.deepEqual(names, ['a=70', 'old=73']);
      assert.equal(await engine.read((tx) => tx.getXattr(asIno(70), 'user.x')), undefined);
      const db = new BetterSqlite3(path, { readonly: true });
      try {
        // One history image for each committed entry the batch replaced or deleted, none for 'a'.
        const history = db.prepare('SELECT name, ino FROM dentry_hist ORDER BY name').all();
        assert.deepEqual(history, [
          { name: 'gone', ino: 61 },
          { name: 'old', ino: 60 },
        ]);
      } finally {
        db.close();
      }
    } finally {
      await engine.close();
    }
  });
});

describe('SQLite engine: reads right after commits', () => {
  it('see every committed write and never a batch half done, on whichever connection they run', async () => {
    const { engine } = open();
    try {
      for (let round = 0; round < 50; round++) {
        await engine.write((tx) => tx.putSetting('k', `v${round}`));
        // A read after a commit: it runs on the writer's connection between batches. Writes
        // that arrive while it waits between its statements must wait for it.
        let writeDone = false;
        const read = engine.read(async (tx) => {
          const first = await tx.getSetting('k');
          await new Promise((resolve) => setImmediate(resolve));
          const second = await tx.getSetting('k');
          return { first, second, writeDoneMeanwhile: writeDone };
        });
        const write = engine
          .write((tx) => tx.putSetting('k', `w${round}`))
          .then(() => {
            writeDone = true;
          });
        // A second read while the first holds the writer: served by the reader connection.
        const other = engine.read((tx) => tx.getSetting('k'));
        const [result, , otherValue] = await Promise.all([read, write, other]);
        assert.equal(result.first, `v${round}`);
        assert.equal(result.second, `v${round}`, 'a read saw a write that had not committed');
        assert.equal(result.writeDoneMeanwhile, false);
        assert.ok(otherValue === `v${round}` || otherValue === `w${round}`, String(otherValue));
        assert.equal(await engine.read((tx) => tx.getSetting('k')), `w${round}`);
      }
      // A read phase after the writes: past READS_PER_COMMIT (writer-reads.ts) reads go back to the reader.
      for (let i = 0; i < 40; i++) assert.equal(await engine.read((tx) => tx.getSetting('k')), 'w49');
    } finally {
      await engine.close();
    }
  });

  it('a long read right after a commit never holds writes back', async () => {
    const { engine } = open();
    try {
      await engine.write((tx) => tx.putSetting('k', 'a'));
      let readEnded = false;
      const long = engine.read(
        async (tx) => {
          const before = await tx.getSetting('k');
          await new Promise((resolve) => setTimeout(resolve, 50)); // as a dump waits on its stream
          readEnded = true;
          return before;
        },
        { long: true },
      );
      await engine.write((tx) => tx.putSetting('k', 'b'));
      assert.equal(readEnded, false, 'the write waited for the long read');
      assert.equal(await long, 'a');
    } finally {
      await engine.close();
    }
  });

  it('a failed read on the writer connection lets queued writes go on', async () => {
    const { engine } = open();
    try {
      await engine.write((tx) => tx.putSetting('k', 'a'));
      const failing = engine.read(async (tx) => {
        await tx.getSetting('k');
        await new Promise((resolve) => setImmediate(resolve));
        throw fsError.EIO('read fails on purpose');
      });
      const write = engine.write((tx) => tx.putSetting('k', 'b'));
      await assert.rejects(failing, /on purpose/);
      await write;
      assert.equal(await engine.read((tx) => tx.getSetting('k')), 'b');
    } finally {
      await engine.close();
    }
  });
});

describe('SQLite engine: stored call outcomes', () => {
  it('are found by client id and sequence number, also after a restart, and pruned by age', async () => {
    const path = join(base, `e${++n}.db`);
    let engine = new SqliteEngine(path, {});
    try {
      for (const [clientId, seq] of [
        ['client-a', 1],
        ['client-b', 1],
        ['client-a', 2],
      ] as const) {
        await engine.write(async (tx) =>
          outcomes(tx).putCallOutcome(clientId, seq, Buffer.from(`${clientId}/${seq}`)),
        );
      }
      // A change that fails takes its new client number with it; the next one gets a working one.
      await assert.rejects(
        engine.write(async (tx) => {
          await outcomes(tx).putCallOutcome('client-c', 7, Buffer.from('lost'));
          throw fsError.EINVAL('fails on purpose');
        }),
      );
      await engine.write(async (tx) => outcomes(tx).putCallOutcome('client-c', 8, Buffer.from('client-c/8')));
      await engine.close();
      engine = new SqliteEngine(path, {});
      assert.equal(String(await engine.getCallOutcome('client-a', 2)), 'client-a/2');
      assert.equal(String(await engine.getCallOutcome('client-b', 1)), 'client-b/1');
      assert.equal(String(await engine.getCallOutcome('client-c', 8)), 'client-c/8');
      assert.equal(await engine.getCallOutcome('client-c', 7), undefined);
      assert.equal(await engine.getCallOutcome('client-b', 2), undefined);
      assert.equal(await engine.pruneCallOutcomes(Number.MAX_SAFE_INTEGER, 1_000), 4);
      assert.equal(await engine.getCallOutcome('client-a', 2), undefined);
      // Every client went with its last outcome; a returning one is numbered afresh.
      await engine.write(async (tx) => outcomes(tx).putCallOutcome('client-a', 3, Buffer.from('client-a/3')));
      assert.equal(String(await engine.getCallOutcome('client-a', 3)), 'client-a/3');
    } finally {
      await engine.close();
    }
  });

  it('stored under schema 1 (text client ids) are moved over when the volume is opened', async () => {
    const path = join(base, `e${++n}.db`);
    const old = new BetterSqlite3(path);
    old.exec(`CREATE TABLE call_outcome (
      client_id TEXT NOT NULL, seq INTEGER NOT NULL, reply BLOB NOT NULL, at_us INTEGER NOT NULL);
      CREATE UNIQUE INDEX call_outcome_key ON call_outcome(client_id, seq);`);
    const put = old.prepare('INSERT INTO call_outcome VALUES (?, ?, ?, ?)');
    put.run('client-x', 41, Buffer.from('x41'), 1);
    put.run('client-y', 5, Buffer.from('y5'), 2);
    put.run('client-x', 42, Buffer.from('x42'), 3);
    old.pragma('user_version = 1');
    old.close();
    const engine = new SqliteEngine(path, {});
    try {
      assert.equal(String(await engine.getCallOutcome('client-x', 42)), 'x42');
      assert.equal(String(await engine.getCallOutcome('client-y', 5)), 'y5');
      assert.equal(String(await engine.getCallOutcome('client-x', 41)), 'x41');
      await engine.write(async (tx) => outcomes(tx).putCallOutcome('client-y', 6, Buffer.from('y6')));
      assert.equal(String(await engine.getCallOutcome('client-y', 6)), 'y6');
      // Age order survives the move: the two oldest go first.
      assert.equal(await engine.pruneCallOutcomes(Number.MAX_SAFE_INTEGER, 2), 2);
      assert.equal(await engine.getCallOutcome('client-y', 5), undefined);
      assert.equal(String(await engine.getCallOutcome('client-x', 42)), 'x42');
    } finally {
      await engine.close();
    }
    const db = new BetterSqlite3(path, { readonly: true });
    try {
      assert.equal(db.pragma('user_version', { simple: true }), SCHEMA_VERSION);
      const tables = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").pluck().all();
      assert.ok(!tables.includes('call_outcome') && !tables.includes('call_result'));
    } finally {
      db.close();
    }
  });

  it('stored under schema 2 (one row per change) are moved over when the volume is opened', async () => {
    const path = join(base, `e${++n}.db`);
    const old = new BetterSqlite3(path);
    old.exec(`CREATE TABLE call_client (num INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE);
      CREATE TABLE call_result (client INTEGER NOT NULL, seq INTEGER NOT NULL, reply BLOB NOT NULL, at_us INTEGER NOT NULL);
      CREATE UNIQUE INDEX call_result_key ON call_result(client, seq);
      INSERT INTO call_client (num, id) VALUES (1, 'client-x'), (2, 'client-y');`);
    const put = old.prepare('INSERT INTO call_result VALUES (?, ?, ?, ?)');
    put.run(1, 41, Buffer.from('x41'), 1);
    put.run(2, 5, Buffer.from('y5'), 2);
    put.run(1, 42, Buffer.from('x42'), 3);
    old.pragma('user_version = 2');
    old.close();
    const engine = new SqliteEngine(path, {});
    try {
      assert.equal(String(await engine.getCallOutcome('client-x', 41)), 'x41');
      assert.equal(String(await engine.getCallOutcome('client-x', 42)), 'x42');
      assert.equal(String(await engine.getCallOutcome('client-y', 5)), 'y5');
      assert.equal(await engine.getCallOutcome('client-y', 41), undefined);
      assert.equal(await engine.pruneCallOutcomes(Number.MAX_SAFE_INTEGER, 1), 1);
      assert.equal(await engine.getCallOutcome('client-x', 41), undefined);
      assert.equal(String(await engine.getCallOutcome('client-x', 42)), 'x42');
    } finally {
      await engine.close();
    }
  });

  it('of one batch are all found after its commit, without those of the changes that failed', async () => {
    // Outcomes are stored one row per client per commit (call-batch.ts): each must still exist
    // exactly when its change committed, whatever failed around it, and a prune that runs in the
    // same batch must not take the numbers of clients whose outcomes wait for the COMMIT.
    const { engine } = open({ groupCommitMaxOps: 1_000, groupCommitMaxDelayMs: 10_000 });
    try {
      const clients = ['client-a', 'client-b', 'client-c'];
      const writes: Promise<unknown>[] = [];
      for (let seq = 1; seq <= 40; seq++) {
        const clientId = clients[seq % 3];
        writes.push(
          engine.write(async (tx) => {
            await outcomes(tx).putCallOutcome(clientId, seq, Buffer.from(`${clientId}/${seq}`));
            if (seq % 5 === 0) throw fsError.EINVAL(`change ${seq} fails on purpose`);
          }),
        );
        if (seq === 20) writes.push(engine.pruneCallOutcomes(0, 1_000));
      }
      await Promise.allSettled(writes);
      for (let seq = 1; seq <= 40; seq++) {
        const clientId = clients[seq % 3];
        const stored = await engine.getCallOutcome(clientId, seq);
        assert.equal(
          stored && String(stored),
          seq % 5 === 0 ? undefined : `${clientId}/${seq}`,
          `seq ${seq}`,
        );
        assert.equal(await engine.getCallOutcome(clients[(seq + 1) % 3], seq), undefined);
      }
    } finally {
      await engine.close();
    }
  });
});

/** The SQLite write transaction stores call outcomes (CallOutcomeWriter). */
const outcomes = (tx: WriteTx): CallOutcomeWriter => tx as WriteTx & CallOutcomeWriter;

function inodeRow(ino: number) {
  return {
    ino: asIno(ino),
    mode: 0o100644,
    uid: 0,
    gid: 0,
    nlink: 1,
    sizeBytes: 0,
    rdev: 0,
    atimeSec: 0,
    atimeNsec: 0,
    mtimeSec: 0,
    mtimeNsec: 0,
    ctimeSec: 0,
    ctimeNsec: 0,
    generation: 1,
    parent: asIno(0),
    target: null,
    allocatedBytes: 0,
  };
}

describe('SQLite engine: sync() durable barrier', () => {
  it('concurrent syncs share WAL flushes, and a sync with nothing new committed flushes nothing', async () => {
    const { engine } = open();
    try {
      await Promise.all(
        Array.from({ length: 50 }, (_, i) => engine.write((tx) => tx.putSetting(`k${i}`, 'v'))),
      );
      await Promise.all(Array.from({ length: 40 }, () => engine.sync()));
      // The first caller starts a flush covering every commit; the others wait for it, and at
      // most one more runs for commits that raced with it (none here).
      assert.equal(engine.counts.syncs, 1, `40 concurrent syncs made ${engine.counts.syncs} flushes`);
      await engine.sync();
      assert.equal(engine.counts.syncs, 1, 'a sync with no commit since the last flush flushed again');
      await engine.write((tx) => tx.putSetting('later', 'v'));
      await engine.sync();
      assert.equal(engine.counts.syncs, 2, 'a commit after the last flush must be flushed by the next sync');
    } finally {
      await engine.close();
    }
  });

  it('syncs issued while writes keep committing all resolve, each after a flush that covers its writes', async () => {
    const { engine } = open({ groupCommitMaxOps: 4 });
    try {
      const flushesSeen: number[] = [];
      await Promise.all(
        Array.from({ length: 100 }, async (_, i) => {
          await engine.write((tx) => tx.putSetting(`k${i}`, 'v'));
          const before = engine.counts.syncs;
          await engine.sync();
          flushesSeen.push(engine.counts.syncs - before);
        }),
      );
      assert.ok(
        flushesSeen.every((n) => n >= 1),
        'a sync after an unflushed commit returned without a flush',
      );
      assert.ok(engine.counts.syncs < 100, `100 syncs made ${engine.counts.syncs} flushes: no grouping`);
    } finally {
      await engine.close();
    }
  });

  it('with every commit durable (synchronous=FULL) sync has nothing to flush', async () => {
    const { engine } = open({ durable: true });
    try {
      await engine.write((tx) => tx.putSetting('k', 'v'));
      await engine.sync();
      assert.equal(engine.counts.syncs, 0);
    } finally {
      await engine.close();
    }
  });
});

describe('SQLite engine: checkpoints on their own thread', () => {
  it('keep the WAL near its 4 MiB trigger while 40 MiB are written, and lose nothing', async () => {
    const { engine, path } = open();
    const value = 'x'.repeat(4000);
    try {
      for (let round = 0; round < 100; round++) {
        await Promise.all(
          Array.from({ length: 100 }, (_, i) => engine.write((tx) => tx.putSetting(`k${round}-${i}`, value))),
        );
        // Let the checkpoint thread answer between rounds, as idle moments would.
        if (round % 10 === 9) await new Promise((resolve) => setTimeout(resolve, 20));
      }
      const checkpointer = engine.checkpointer!;
      assert.equal(checkpointer.counts.failures, 0);
      assert.ok(checkpointer.counts.runs >= 1, 'no checkpoint ran on the checkpoint thread');
      // Without the thread the WAL would reach SQLite's own bound (64 MiB) before a checkpoint.
      const walBytes = statSync(`${path}-wal`).size;
      assert.ok(
        walBytes < 32 * 2 ** 20,
        `WAL grew to ${walBytes} bytes (${checkpointer.counts.runs} checkpoints)`,
      );
    } finally {
      await engine.close();
    }
    const again = new SqliteEngine(path, {});
    try {
      assert.equal(await again.read((tx) => tx.getSetting('k99-99')), value);
      assert.equal(await again.read((tx) => tx.getSetting('k0-0')), value);
    } finally {
      await again.close();
    }
  });
});
