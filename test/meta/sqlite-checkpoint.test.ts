import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { asIno } from '../../src/common/index.js';
import { formatVolume, openMetaService, type Caller } from '../../src/meta/index.js';
import { SqliteEngine } from '../../src/meta/engines/sqlite/index.js';

const base = mkdtempSync(join(tmpdir(), 'strata-meta-sqlite-ckpt-'));
after(() => rmSync(base, { recursive: true, force: true }));

const root: Caller = { uid: 0, gid: 0, pid: 1 };
const ROOT = asIno(1);
const CREATES = 1500;
// The engine's trigger (engine.ts): a checkpoint starts once the WAL file reaches ~4 MiB.
const TRIGGER_BYTES = 1000 * 4096;
const MAX_RUNS = 40;

function walBytes(dbPath: string): number {
  try {
    return statSync(`${dbPath}-wal`).size;
  } catch {
    return 0;
  }
}

describe('SQLite engine: WAL file size with the checkpoint thread', () => {
  it('shrinks the WAL file when the log starts over, so serial creates start few checkpoints', async () => {
    const dbPath = join(base, 'meta.db');
    const url = `sqlite:${dbPath}`;
    await formatVolume(url, { name: 'ckpt' }, { rootMode: 0o777 });
    const svc = await openMetaService({ engineUrl: url, background: false });
    try {
      const engine = svc.engine;
      assert.ok(engine instanceof SqliteEngine, `${url} did not open a SqliteEngine`);
      const checkpointer = engine.checkpointer;
      assert.ok(checkpointer, 'the checkpoint thread is on by default');
      let highWaterBytes = 0;
      // Smallest WAL file seen after the first checkpoint run: with the file truncated when the
      // log starts over it falls well below the trigger; kept at its high-water mark it never does.
      let lowAfterCheckpointBytes = Number.POSITIVE_INFINITY;
      for (let i = 0; i < CREATES; i++) {
        await svc.mknod(root, ROOT, `f${i}`, 0o100644, 0, 0o022);
        const bytes = walBytes(dbPath);
        highWaterBytes = Math.max(highWaterBytes, bytes);
        if (checkpointer.counts.runs > 0) lowAfterCheckpointBytes = Math.min(lowAfterCheckpointBytes, bytes);
      }
      const { runs, failures } = checkpointer.counts;
      assert.equal(failures, 0);
      assert.ok(
        highWaterBytes >= TRIGGER_BYTES,
        `the WAL never reached the trigger (${highWaterBytes} bytes)`,
      );
      assert.ok(runs >= 1, 'no checkpoint ran on the checkpoint thread');
      assert.ok(
        lowAfterCheckpointBytes < TRIGGER_BYTES / 4,
        `the WAL file stayed at ${lowAfterCheckpointBytes}+ bytes after ${runs} checkpoints (high water ${highWaterBytes})`,
      );
      // A log restart costs two runs (the passive copy, then the catch-up with writes held),
      // and 1,500 creates fill the 4 MiB log 5-8 times: 10-16 runs here. Checkpointing on every
      // commit once the file sits past the trigger ran ~250 times.
      assert.ok(
        runs <= MAX_RUNS,
        `${runs} checkpoint runs for ${CREATES} creates (at most ${MAX_RUNS} expected)`,
      );
      const names = await svc.readdir(root, ROOT, 0, CREATES + 10, false);
      assert.equal(names.length, CREATES + 2, 'every created file is listed');
    } finally {
      await svc.close();
    }
  });
});
