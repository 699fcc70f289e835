import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import {
  ChangeFeed,
  FEED_APP_NAME,
  NOTIFIER_APP_PREFIX,
  decodeChange,
  encodeChange,
  type MetaChange,
} from '../../src/meta/engines/postgres/changefeed.js';
import { createTestDatabase, PG_SKIP_REASON, type TestDatabase } from './postgres-fixture.js';

const CHANNEL = 'strata_test_changes';

function nextChange(feed: ChangeFeed, timeoutMs = 5000): Promise<MetaChange> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no change within ${timeoutMs} ms`)), timeoutMs);
    feed.once('change', (change: MetaChange) => {
      clearTimeout(timer);
      resolve(change);
    });
  });
}

describe('change feed encoding', () => {
  test('a change round-trips through its payload', () => {
    const change = decodeChange(
      encodeChange(
        'srv-a',
        [3, 4, 3],
        [
          [1, 'x y'],
          [2, 'é'],
        ],
      ),
    );
    assert.deepEqual(change, {
      originId: 'srv-a',
      inos: [3, 4],
      entries: [
        { parent: 1, name: 'x y' },
        { parent: 2, name: 'é' },
      ],
      invalidateAll: false,
    });
  });

  test('a change too large for NOTIFY degrades to parent inodes, then to invalidate-all', () => {
    const names: Array<[number, string]> = Array.from({ length: 400 }, (_, n) => [
      7,
      `file-${n}-${'x'.repeat(20)}`,
    ]);
    const coarse = decodeChange(encodeChange('s', [1], names));
    assert.deepEqual(coarse.inos, [1, 7]);
    assert.deepEqual(coarse.entries, []);
    assert.equal(coarse.invalidateAll, false);
    const huge = decodeChange(
      encodeChange(
        's',
        Array.from({ length: 3000 }, (_, n) => n + 1000),
        [],
      ),
    );
    assert.equal(huge.invalidateAll, true);
  });
});

describe('change feed over LISTEN/NOTIFY', { skip: PG_SKIP_REASON }, () => {
  let db: TestDatabase;
  let feed: ChangeFeed;
  let writer: pg.Client;

  before(async () => {
    db = await createTestDatabase();
    feed = await ChangeFeed.start({ connectionString: db.url, channel: CHANNEL, reconnectDelayMs: 50 });
    feed.on('error', () => undefined);
    writer = new pg.Client({ connectionString: db.url });
    await writer.connect();
  });

  after(async () => {
    await writer?.end();
    await feed?.close();
    await db?.drop();
  });

  test('a committed change arrives; a rolled-back one never does', async () => {
    await writer.query('BEGIN');
    await writer.query('SELECT pg_notify($1, $2)', [CHANNEL, encodeChange('w', [99], [])]);
    await writer.query('ROLLBACK');
    const arriving = nextChange(feed);
    await writer.query('BEGIN');
    await writer.query('SELECT pg_notify($1, $2)', [CHANNEL, encodeChange('w', [5], [[1, 'a']])]);
    await writer.query('COMMIT');
    const change = await arriving;
    assert.deepEqual(change.inos, [5]);
    assert.deepEqual(change.entries, [{ parent: 1, name: 'a' }]);
  });

  test('the async iterator yields changes in commit order', async () => {
    const abort = new AbortController();
    const seen: number[] = [];
    const reading = (async () => {
      for await (const change of feed.changes(abort.signal)) {
        seen.push(...change.inos);
        if (seen.length === 3) abort.abort();
      }
    })();
    for (const ino of [11, 12, 13]) {
      await writer.query('SELECT pg_notify($1, $2)', [CHANNEL, encodeChange('w', [ino], [])]);
    }
    await reading;
    assert.deepEqual(seen, [11, 12, 13]);
  });

  test('after its connection is killed the feed reconnects and asks for a full invalidation', async () => {
    const resync = nextChange(feed);
    await writer.query(
      `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
        WHERE datname = current_database() AND application_name = $1`,
      [FEED_APP_NAME],
    );
    assert.equal((await resync).invalidateAll, true);
    const arriving = nextChange(feed);
    await writer.query('SELECT pg_notify($1, $2)', [CHANNEL, encodeChange('w', [21], [])]);
    assert.deepEqual((await arriving).inos, [21]);
  });

  test('a server whose notifier connection vanishes makes the feed ask for a full invalidation', async () => {
    // Servers announce changes after commit (notifier.ts): one that dies in between never will,
    // and its notifier connection dies with it.
    const name = `${NOTIFIER_APP_PREFIX}vanishing`;
    const notifier = new pg.Client({ connectionString: db.url, application_name: name });
    await notifier.connect();
    notifier.on('error', () => undefined);
    await new Promise((resolve) => setTimeout(resolve, 600)); // the feed's presence polls saw it
    const resync = nextChange(feed);
    await writer.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1', [
      name,
    ]);
    assert.equal((await resync).invalidateAll, true);
    await notifier.end().catch(() => undefined);
  });
});
