import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { Errno, ROOT_INO, asIno, isFsError } from '../../src/common/index.js';
import { AclTag, encodeAcl } from '../../src/meta/acl.js';
import { formatVolume, openMetaService, type Caller, type MetaService } from '../../src/meta/index.js';
import {
  createTestDatabase,
  errnoOf,
  PG_SKIP_REASON,
  postgresEngineOf,
  type TestDatabase,
} from './postgres-fixture.js';

const root: Caller = { uid: 0, gid: 0, pid: 1 };
const S_IFREG = 0o100000;

describe('PostgreSQL getattr and lookup in batches', { skip: PG_SKIP_REASON }, () => {
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
    const reads = postgresEngineOf(service).batchedReads;
    assert.ok(reads);
    return reads;
  };

  test('concurrent getattrs share queries and answer what a read transaction answers', async () => {
    const dir = await a.mkdir(root, ROOT_INO, 'many', 0o755, 0);
    const inos = [];
    for (let n = 0; n < 64; n++)
      inos.push((await a.mknod(root, dir.ino, `f${n}`, S_IFREG | 0o600 | n, 0, 0)).ino);
    const reads = readsOf(b).inodes;
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

  test('concurrent lookups share queries and answer what a read transaction answers, errors included', async () => {
    const dir = await a.mkdir(root, ROOT_INO, 'lookups', 0o755, 0);
    for (let n = 0; n < 32; n++) await a.mknod(root, dir.ino, `f${n}`, S_IFREG | 0o640, 0, 0);
    const sub = await a.mkdir(root, dir.ino, 'sub', 0o700, 0);
    const file = await a.mknod(root, ROOT_INO, 'not-a-dir', S_IFREG | 0o644, 0, 0);
    const asked: [number, string][] = [
      ...Array.from({ length: 32 }, (_, n): [number, string] => [dir.ino, `f${n}`]),
      [dir.ino, 'absent'],
      [dir.ino, '.'],
      [dir.ino, '..'],
      [dir.ino, 'sub'],
      [sub.ino, 'x'],
      [file.ino, 'x'],
      [999_999_999, 'x'],
    ];
    const outcome = (work: Promise<unknown>) =>
      work.then(
        (value) => value,
        (error: unknown) => (isFsError(error) ? `errno ${error.errno}` : error),
      );
    const reads = readsOf(b).lookups;
    const before = reads.batches;
    const batched = await Promise.all(
      asked.map(([parent, name]) => outcome(b.lookup(root, asIno(parent), name))),
    );
    assert.ok(
      reads.batches - before < asked.length / 4,
      `${reads.batches - before} queries for ${asked.length} lookups`,
    );
    const plain = await Promise.all(
      asked.map(([parent, name]) => outcome(unbatched.lookup(root, asIno(parent), name))),
    );
    assert.deepEqual(batched, plain);
    assert.deepEqual(batched.slice(32, 33), [`errno ${Errno.ENOENT}`]);
    assert.deepEqual(batched.slice(-2), [`errno ${Errno.ENOTDIR}`, `errno ${Errno.ENOENT}`]);
  });

  test("lookup applies the directory's mode and access ACL to a caller who is neither root nor its owner", async () => {
    const owner: Caller = { uid: 3001, gid: 3001, pid: 3 };
    const alice: Caller = { uid: 3002, gid: 3002, pid: 4 };
    const dir = await a.mkdir(root, ROOT_INO, 'guarded', 0o700, 0);
    await a.setattr(root, dir.ino, { uid: owner.uid, gid: owner.gid });
    await a.mknod(owner, dir.ino, 'inside', S_IFREG | 0o644, 0, 0);
    assert.equal(await errnoOf(b.lookup(alice, dir.ino, 'inside')), Errno.EACCES);
    assert.equal(await errnoOf(b.lookup(owner, dir.ino, 'inside')), 'ok');
    const { USER_OBJ, USER, GROUP_OBJ, MASK, OTHER } = AclTag;
    const acl = encodeAcl([
      [USER_OBJ, 7, 0xffffffff],
      [USER, 1, alice.uid],
      [GROUP_OBJ, 0, 0xffffffff],
      [MASK, 1, 0xffffffff],
      [OTHER, 0, 0xffffffff],
    ]);
    await a.setxattr(owner, dir.ino, 'system.posix_acl_access', acl, 0);
    // The group bits are the mask: while they are 0 the ACL is not consulted (as the kernel does).
    assert.equal(await errnoOf(b.lookup(alice, dir.ino, 'inside')), Errno.EACCES);
    await a.setattr(owner, dir.ino, { mode: 0o710 });
    assert.equal(await errnoOf(b.lookup(alice, dir.ino, 'inside')), 'ok');
    assert.equal(await errnoOf(unbatched.lookup(alice, dir.ino, 'inside')), 'ok');
  });

  test('what a batched lookup read serves the next change from the cache, as a read transaction did', async () => {
    /** Round trips of a create in a directory the server knows only from lookups. */
    const createAfterLookups = async (server: MetaService, label: string): Promise<number> => {
      const dir = await a.mkdir(root, ROOT_INO, `seen-by-${label}`, 0o755, 0);
      await a.mknod(root, dir.ino, 'present', S_IFREG | 0o644, 0, 0);
      // Inode numbers and readdir cursors in hand (fetching them costs round trips of their own).
      await server.mknod(root, ROOT_INO, `warm-up-${label}`, S_IFREG | 0o644, 0, 0);
      await server.lookup(root, ROOT_INO, `seen-by-${label}`);
      await server.lookup(root, dir.ino, 'present');
      const engine = postgresEngineOf(server);
      const before = engine.roundTrips;
      await server.mknod(root, dir.ino, 'new', S_IFREG | 0o644, 0, 0);
      return engine.roundTrips - before;
    };
    assert.equal(await createAfterLookups(b, 'batched'), await createAfterLookups(unbatched, 'read-tx'));
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
    assert.equal((await b.lookup(root, ROOT_INO, 'survivor')).ino, file.ino);
  });
});
