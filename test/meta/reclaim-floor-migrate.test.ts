import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import BetterSqlite3 from 'better-sqlite3';
import pg from 'pg';
import { asSliceId } from '../../src/common/index.js';
import { PassThrough, Readable } from 'node:stream';
import {
  dumpMeta,
  formatVolume,
  loadMeta,
  openEngine,
  openMetaService,
  raiseReclaimFloor,
  type MetaService,
} from '../../src/meta/index.js';
import { SCHEMA_VERSION } from '../../src/meta/engines/sqlite/schema.js';
import { PG_SKIP_REASON, createTestSchema } from './postgres-fixture.js';

/**
 * Volumes made before slice floors (SQLite schema 4, PostgreSQL migration 6) open with the
 * session table migrated in place: their sessions carry no floor (and block reclaiming until
 * they report one), and new heartbeats store floors.
 */

const OLD_SESSION = {
  id: 'old-session',
  info: JSON.stringify({ hostname: 'old-host', mountpoint: '/mnt/old', pid: 7, version: '0.8' }),
  startedUs: 1_700_000_000_000_000,
};

async function checkMigrated(svc: MetaService): Promise<void> {
  const sessions = await svc.engine.read((tx) => tx.listSessions());
  assert.equal(sessions.length, 1);
  assert.equal(sessions[0].sessionId, OLD_SESSION.id);
  assert.equal(sessions[0].info.hostname, 'old-host');
  assert.equal(sessions[0].sliceFloor, undefined, 'a session of the old schema reports no floor');
  const blocked = await raiseReclaimFloor(svc.engine);
  assert.equal(blocked.blockedBy?.sessionId, OLD_SESSION.id);
  await svc.heartbeat(OLD_SESSION.id, asSliceId(3));
  assert.equal((await svc.engine.read((tx) => tx.getSession(OLD_SESSION.id)))?.sliceFloor, 3);
  assert.equal((await raiseReclaimFloor(svc.engine)).floor, 1, 'no slice allocated yet: next id 1');
}

describe('slice floors: migration from the schema before them', () => {
  const base = mkdtempSync(join(tmpdir(), 'strata-leakgc-migrate-'));
  after(() => rmSync(base, { recursive: true, force: true }));

  it('SQLite schema 4 gets session.slice_floor in place; its sessions keep no floor', async () => {
    const path = join(base, 'meta.db');
    const url = `sqlite:${path}`;
    await formatVolume(url, { name: 'old' });
    // Back to schema 4's session table (no slice_floor), with a session of that time in it.
    const db = new BetterSqlite3(path);
    db.exec(`DROP TABLE session;
      CREATE TABLE session (
        id TEXT PRIMARY KEY, info TEXT NOT NULL, started_us INTEGER NOT NULL, heartbeat_us INTEGER NOT NULL
      ) WITHOUT ROWID;`);
    db.prepare('INSERT INTO session (id, info, started_us, heartbeat_us) VALUES (?, ?, ?, ?)').run(
      OLD_SESSION.id,
      OLD_SESSION.info,
      OLD_SESSION.startedUs,
      OLD_SESSION.startedUs,
    );
    db.pragma('user_version = 4');
    db.close();
    const svc = await openMetaService({ engineUrl: url, background: false });
    try {
      await checkMigrated(svc);
    } finally {
      await svc.close();
    }
    const check = new BetterSqlite3(path, { readonly: true });
    try {
      assert.equal(check.pragma('user_version', { simple: true }), SCHEMA_VERSION);
    } finally {
      check.close();
    }
  });

  it('meta dump and load carry the reclaim floor to the new engine', async () => {
    const from = `sqlite:${join(base, 'dump-from.db')}`;
    const to = `sqlite:${join(base, 'dump-to.db')}`;
    await formatVolume(from, { name: 'moved' });
    const source = await openMetaService({ engineUrl: from, background: false });
    let floor = 0;
    const lines: Buffer[] = [];
    try {
      await source.allocateSliceIds(50);
      floor = (await raiseReclaimFloor(source.engine)).floor;
      assert.equal(floor, 51);
      const out = new PassThrough();
      out.on('data', (chunk: Buffer) => lines.push(chunk));
      await dumpMeta(source.engine, out);
      out.end();
    } finally {
      await source.close();
    }
    const target = await openEngine(to, {});
    try {
      await loadMeta(target, Readable.from([Buffer.concat(lines)]));
      assert.equal(await target.read((tx) => tx.getCounter('slice_reclaim_floor')), floor);
    } finally {
      await target.close();
    }
  });

  it(
    'PostgreSQL migration 7 adds session.slice_floor; its sessions keep no floor',
    { skip: PG_SKIP_REASON },
    async () => {
      const schema = await createTestSchema('strata_leakgc');
      try {
        await formatVolume(schema.url, { name: 'old' });
        // Back to migration 6: no slice_floor column, a session of that time.
        const client = new pg.Client({ connectionString: schema.url });
        await client.connect();
        try {
          await client.query('ALTER TABLE session DROP COLUMN slice_floor');
          await client.query('DELETE FROM strata_migrations WHERE version = 7');
          await client.query(
            'INSERT INTO session (id, info, started_us, heartbeat_us) VALUES ($1, $2, $3, $3)',
            [OLD_SESSION.id, OLD_SESSION.info, OLD_SESSION.startedUs],
          );
        } finally {
          await client.end();
        }
        const svc = await openMetaService({ engineUrl: schema.url, background: false });
        try {
          await checkMigrated(svc);
        } finally {
          await svc.close();
        }
      } finally {
        await schema.drop();
      }
    },
  );
});
