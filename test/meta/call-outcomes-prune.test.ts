import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import Database from 'better-sqlite3';
import {
  CALL_OUTCOME_RETENTION_MS,
  hasCallOutcomes,
  pruneExpiredCallOutcomes,
} from '../../src/meta/call-outcomes.js';
import { openEngine } from '../../src/meta/engine-registry.js';
import '../../src/meta/engines/sqlite/register.js';
import { formatVolume } from '../../src/meta/index.js';

// A server busier than one prune batch per tick (10,000 rows per 30 s) must still lose its
// expired call outcomes: the prune goes on while batches come back full.
test('expired call outcomes are pruned whole even when they are many batches deep', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'strata-outcomes-prune-'));
  try {
    const dbPath = join(dir, 'meta.db');
    await formatVolume(`sqlite:${dbPath}`, { name: 'prune' });
    const nowMs = Date.now();
    const expiredUs = (nowMs - CALL_OUTCOME_RETENTION_MS - 60_000) * 1000;
    const db = new Database(dbPath);
    try {
      db.prepare("INSERT INTO call_client (num, id) VALUES (1, 'test/busy')").run();
      const put = db.prepare(
        'INSERT INTO call_batch (client, first_seq, last_seq, replies, at_us) VALUES (1, ?, ?, ?, ?)',
      );
      const reply = Buffer.alloc(8);
      db.transaction(() => {
        for (let seq = 1; seq <= 25_000; seq++) put.run(seq, seq, reply, expiredUs + seq);
        for (let seq = 25_001; seq <= 25_005; seq++) put.run(seq, seq, reply, nowMs * 1000);
      })();
    } finally {
      db.close();
    }
    const engine = await openEngine(`sqlite:${dbPath}`);
    try {
      assert.ok(hasCallOutcomes(engine));
      assert.equal(await pruneExpiredCallOutcomes(engine, nowMs), 25_000);
    } finally {
      await engine.close();
    }
    const left = new Database(dbPath, { readonly: true });
    try {
      assert.equal(
        left.prepare('SELECT count(*) FROM call_batch').pluck().get(),
        5,
        'the 5 recent outcomes stay',
      );
    } finally {
      left.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
