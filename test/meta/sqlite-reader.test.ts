import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, describe, it } from 'node:test';
import BetterSqlite3 from 'better-sqlite3';
import { asIno } from '../../src/common/index.js';
import { formatVolume, openMetaService, type Caller } from '../../src/meta/index.js';
import { SqliteEngine } from '../../src/meta/engines/sqlite/index.js';
import { SqliteReader } from '../../src/meta/engines/sqlite/reader.js';
import { openThreadedMetaService } from '../../src/meta/server/index.js';
import { withLocalReads } from '../../src/meta/server/local-reads.js';

const base = mkdtempSync(join(tmpdir(), 'strata-meta-sqlite-reader-'));
after(() => rmSync(base, { recursive: true, force: true }));

const root: Caller = { uid: 0, gid: 0, pid: 1 };
const ROOT = asIno(1);
// The engine's trigger (engine.ts): a checkpoint starts at ~4 MiB of log.
const TRIGGER_BYTES = 1000 * 4096;
const walBytes = (dbPath: string): number => statSync(`${dbPath}-wal`, { throwIfNoEntry: false })?.size ?? 0;
let volumes = 0;

async function newVolume(): Promise<string> {
  const dbPath = join(base, `v${++volumes}.db`);
  await formatVolume(`sqlite:${dbPath}`, { name: 'reader' }, { rootMode: 0o777 });
  return dbPath;
}

/** A table of our own beside the volume's, written by a second connection. */
function writer(dbPath: string): BetterSqlite3.Database {
  const db = new BetterSqlite3(dbPath);
  db.pragma('busy_timeout = 0');
  db.exec('CREATE TABLE IF NOT EXISTS probe (n INTEGER)');
  return db;
}

const countProbes = (reader: SqliteReader): Promise<number> =>
  reader.read(async () => reader.db.prepare('SELECT count(*) FROM probe').pluck().get() as number);

async function until(
  what: string,
  deadlineMs: number,
  check: () => Promise<boolean> | boolean,
): Promise<void> {
  const stopAt = Date.now() + deadlineMs;
  while (!(await check())) {
    assert.ok(Date.now() < stopAt, `${what}: not within ${deadlineMs} ms`);
    await sleep(5);
  }
}

describe('SQLite reader: read snapshots', () => {
  it('reads one after another share one snapshot instead of a BEGIN and COMMIT each', async () => {
    const dbPath = await newVolume();
    const db = writer(dbPath);
    const reader = new SqliteReader(dbPath, { idleMs: 60_000, maxAgeMs: 60_000 });
    try {
      for (let i = 0; i < 50; i++) assert.equal(await countProbes(reader), 0);
      assert.equal(reader.snapshots, 1, 'serial reads began a snapshot each');
      assert.ok(reader.db.inTransaction, 'the snapshot ended when the reads ran dry');
    } finally {
      await reader.close();
      db.close();
    }
  });

  it('an invalidated snapshot ends at once when no read runs, and the next read sees the change', async () => {
    const dbPath = await newVolume();
    const db = writer(dbPath);
    const reader = new SqliteReader(dbPath, { idleMs: 60_000, maxAgeMs: 60_000 });
    try {
      assert.equal(await countProbes(reader), 0);
      db.prepare('INSERT INTO probe VALUES (1)').run();
      assert.equal(await countProbes(reader), 0, 'a read inside the snapshot saw a later commit');
      reader.invalidate();
      assert.equal(reader.db.inTransaction, false, 'the idle snapshot stayed open after invalidate()');
      assert.equal(await countProbes(reader), 1);
      assert.equal(reader.snapshots, 2);
    } finally {
      await reader.close();
      db.close();
    }
  });

  it('after a moment without reads the snapshot ends: a change nobody announced is seen, the log can be truncated', async () => {
    const dbPath = await newVolume();
    const db = writer(dbPath);
    const reader = new SqliteReader(dbPath, { idleMs: 1, maxAgeMs: 60_000 });
    try {
      assert.equal(await countProbes(reader), 0);
      db.prepare('INSERT INTO probe VALUES (1)').run();
      await until(
        'the unannounced insert becomes visible',
        5_000,
        async () => (await countProbes(reader)) === 1,
      );
      await until('a TRUNCATE checkpoint completes beside the idle reader', 5_000, () => {
        const [result] = db.pragma('wal_checkpoint(TRUNCATE)') as { busy: number }[];
        return result.busy === 0;
      });
      assert.equal(reader.db.inTransaction, false);
    } finally {
      await reader.close();
      db.close();
    }
  });

  it('a reader never idle still moves to a new snapshot once the old one is too old', async () => {
    const dbPath = await newVolume();
    const db = writer(dbPath);
    const reader = new SqliteReader(dbPath, { idleMs: 60_000, maxAgeMs: 20 });
    try {
      assert.equal(await countProbes(reader), 0);
      db.prepare('INSERT INTO probe VALUES (1)').run();
      const stopAt = Date.now() + 5_000;
      // Reads back to back, a few per turn: the snapshot is never idle.
      while ((await countProbes(reader)) === 0) {
        assert.ok(Date.now() < stopAt, 'the insert never became visible to a busy reader');
        await new Promise((resolve) => setImmediate(resolve));
      }
      assert.ok(reader.snapshots >= 2);
    } finally {
      await reader.close();
      db.close();
    }
  });

  it('an engine closing truncates the log although another reader of its thread had a snapshot open', async () => {
    const dbPath = await newVolume();
    const other = new SqliteReader(dbPath, { idleMs: 60_000, maxAgeMs: 60_000 });
    try {
      const svc = await openMetaService({ engineUrl: `sqlite:${dbPath}`, background: false });
      for (let i = 0; i < 20; i++) await svc.mknod(root, ROOT, `f${i}`, 0o100644, 0, 0o022);
      await other.read(async () => other.db.prepare('SELECT count(*) FROM dentry').pluck().get());
      assert.ok(other.db.inTransaction, 'the other reader kept no snapshot');
      // The TRUNCATE checkpoint at close blocks this thread: the other reader could never end
      // its snapshot meanwhile (it waited out the 5 s busy timeout and left the log as it was).
      await svc.close();
      assert.equal(walBytes(dbPath), 0, 'the log was not truncated at close');
    } finally {
      await other.close();
    }
  });

  it('serial creates, each read back at once, still let the log start over', async () => {
    const dbPath = await newVolume();
    const svc = await openMetaService({ engineUrl: `sqlite:${dbPath}`, background: false });
    try {
      assert.ok(svc.engine instanceof SqliteEngine);
      const checkpointer = svc.engine.checkpointer;
      assert.ok(checkpointer, 'the checkpoint thread is on by default');
      let lowAfterCheckpointBytes = Number.POSITIVE_INFINITY;
      // Each lookup opens a read snapshot right after the create's commit; if it were still
      // open when the next write begins, the log could never start over and would only grow.
      for (let i = 0; i < 1500; i++) {
        await svc.mknod(root, ROOT, `f${i}`, 0o100644, 0, 0o022);
        await svc.lookup(root, ROOT, `f${i}`);
        if (checkpointer.counts.runs > 0) {
          lowAfterCheckpointBytes = Math.min(lowAfterCheckpointBytes, walBytes(dbPath));
        }
      }
      assert.equal(checkpointer.counts.failures, 0);
      assert.ok(checkpointer.counts.runs >= 1, 'no checkpoint ran');
      assert.ok(
        lowAfterCheckpointBytes < TRIGGER_BYTES / 4,
        `the log never started over: WAL file ${lowAfterCheckpointBytes}+ bytes after ${checkpointer.counts.runs} checkpoints`,
      );
    } finally {
      await svc.close();
    }
  });

  it('over the server (local reads on the serving thread, writes on the engine thread) the same holds', async () => {
    const dbPath = await newVolume();
    const engineUrl = `sqlite:${dbPath}`;
    const threaded = await openThreadedMetaService({ engineUrl });
    const local = await withLocalReads(threaded, engineUrl, threaded.settings);
    try {
      assert.ok(local, 'SQLite has a reader');
      let highWaterBytes = 0;
      let lowAfterHighBytes = Number.POSITIVE_INFINITY;
      for (let i = 0; i < 1500; i++) {
        await local.api.mknod(root, ROOT, `f${i}`, 0o100644, 0, 0o022);
        await local.api.lookup(root, ROOT, `f${i}`);
        const bytes = walBytes(dbPath);
        highWaterBytes = Math.max(highWaterBytes, bytes);
        if (highWaterBytes >= TRIGGER_BYTES) lowAfterHighBytes = Math.min(lowAfterHighBytes, bytes);
      }
      assert.ok(
        highWaterBytes >= TRIGGER_BYTES,
        `the WAL never reached the trigger (${highWaterBytes} bytes)`,
      );
      assert.ok(
        lowAfterHighBytes < TRIGGER_BYTES / 4,
        `the log never started over: WAL file ${lowAfterHighBytes}+ bytes (high water ${highWaterBytes})`,
      );
    } finally {
      await local?.close();
      await threaded.close();
    }
  });
});
