import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { Errno, ROOT_INO, asIno, isFsError } from '../../src/common/index.js';
import { PostgresEngine } from '../../src/meta/engines/postgres/index.js';
import { formatVolume, openMetaService, type Caller, type MetaService } from '../../src/meta/index.js';
import { createTestDatabase, PG_SKIP_REASON, type TestDatabase } from './postgres-fixture.js';

const root: Caller = { uid: 0, gid: 0, pid: 1 };
const S_IFREG = 0o100000;

describe('PostgreSQL getattr in batches', { skip: PG_SKIP_REASON }, () => {
  let db: TestDatabase;
  let a: MetaService;
  let b: MetaService;
  let unbatched: MetaService;

  before(async () => {
    db = await createTestDatabase();
    await formatVolume(db.url, { name: 'batched' });
    a = await openMetaService({ engineUrl: db.url, background: false });
    b = await openMetaService({ engineUrl: db.url, background: false });
    unbatched = await openMetaService({ engineUrl: `${db.url}?batched_reads=off`, background: false });
  });
  after(async () => {
    await a?.close();
    await b?.close();
    await unbatched?.close();
    await db?.drop();
  });

  const readsOf = (service: MetaService) => {
    const engine = service.engine;
    assert.ok(engine instanceof PostgresEngine && engine.inodeReads);
    return engine.inodeReads;
  };

  test('concurrent getattrs share queries and answer what a read transaction answers', async () => {
    const dir = await a.mkdir(root, ROOT_INO, 'many', 0o755, 0);
    const inos = [];
    for (let n = 0; n < 64; n++)
      inos.push((await a.mknod(root, dir.ino, `f${n}`, S_IFREG | 0o600 | n, 0, 0)).ino);
    const reads = readsOf(b);
    const before = reads.batches;
    const batched = await Promise.all(inos.map((ino) => b.getattr(ino)));
    assert.ok(reads.batches - before < 64 / 4, `${reads.batches - before} queries for 64 getattrs`);
    assert.deepEqual(batched, await Promise.all(inos.map((ino) => unbatched.getattr(ino))));
    assert.deepEqual(
      batched.map((attr) => attr.mode & 0o777),
      inos.map((_, n) => 0o600 | n),
    );
  });

  test('a missing inode answers ENOENT, and the others of its batch their attributes', async () => {
    const file = await a.mknod(root, ROOT_INO, 'present', S_IFREG | 0o644, 0, 0);
    const [missing, present] = await Promise.allSettled([b.getattr(asIno(999_999_999)), b.getattr(file.ino)]);
    assert.equal(missing.status, 'rejected');
    const reason = (missing as PromiseRejectedResult).reason as unknown;
    assert.ok(isFsError(reason) && reason.errno === Errno.ENOENT);
    assert.equal(present.status === 'fulfilled' && present.value.ino, file.ino);
  });

  test("another server's change is seen by the next getattr, without waiting for its notification", async () => {
    const file = await a.mknod(root, ROOT_INO, 'changed', S_IFREG | 0o644, 0, 0);
    assert.equal((await b.getattr(file.ino)).mode & 0o777, 0o644);
    for (const mode of [0o600, 0o640, 0o604]) {
      await a.setattr(root, file.ino, { mode });
      assert.equal((await b.getattr(file.ino)).mode & 0o777, mode);
    }
  });

  test('getattr goes on after PostgreSQL dropped every connection of the database', async () => {
    const file = await a.mknod(root, ROOT_INO, 'survivor', S_IFREG | 0o644, 0, 0);
    await b.getattr(file.ino); // the reader has a connection now
    const admin = new pg.Client({ connectionString: db.url });
    await admin.connect();
    try {
      await admin.query(
        'SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()',
      );
    } finally {
      await admin.end();
    }
    assert.equal((await b.getattr(file.ino)).ino, file.ino);
  });
});
