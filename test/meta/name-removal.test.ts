import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Errno, ROOT_INO, isFsError, type Ino } from '../../src/common/index.js';
import {
  RENAME_EXCHANGE,
  formatVolume,
  openMetaService,
  type Caller,
  type InodeAttr,
  type MetaService,
} from '../../src/meta/index.js';
import { startMetaServer, type MetaServer } from '../../src/meta/server/index.js';
import { connectMeta, type MetaClient, type MetaInvalidation } from '../../src/meta/client/index.js';
import { createTestDatabase, PG_SKIP_REASON, type TestDatabase } from './postgres-fixture.js';

/**
 * unlink, rmdir and rename report the inodes they took a name from or moved (NameRemoval), with
 * their attributes after the call, and the server pushes those inodes to the other clients: a
 * hard link's link count and ctime on another mount follow at once (the kernel caches them for
 * the attribute timeout otherwise).
 */
const root: Caller = { uid: 0, gid: 0, pid: 1 };
const S_IFREG = 0o100000;
const S_IFDIR = 0o040000;

const dir = mkdtempSync(join(tmpdir(), 'strata-name-removal-'));
let service: MetaService;
let server: MetaServer;
let changer: MetaClient;
let watcher: MetaClient;
const heard: MetaInvalidation[] = [];

before(async () => {
  const engineUrl = `sqlite:${join(dir, 'meta.db')}`;
  await formatVolume(engineUrl, { name: 'removal' });
  service = await openMetaService({ engineUrl, background: false });
  const secret = await service.volumeSecret();
  server = await startMetaServer({ service, listen: join(dir, 'meta.sock'), secret });
  changer = await connectMeta({ address: server.address, secret, timeoutMs: 10_000, invalidations: true });
  watcher = await connectMeta({ address: server.address, secret, timeoutMs: 10_000, invalidations: true });
  watcher.onInvalidation((invalidation) => heard.push(invalidation));
});

after(async () => {
  await changer?.close();
  await watcher?.close();
  await server?.close();
  await service?.close();
  rmSync(dir, { recursive: true, force: true });
});

let fileCount = 0;
async function newFile(contentBytes = 0): Promise<InodeAttr> {
  const attr = await service.mknod(root, ROOT_INO, `file-${++fileCount}`, S_IFREG | 0o640, 0, 0);
  if (contentBytes === 0) return attr;
  return service.setattr(root, attr.ino, { sizeBytes: contentBytes });
}

const laterThan = (a: InodeAttr, b: InodeAttr): boolean =>
  a.ctime.sec > b.ctime.sec || (a.ctime.sec === b.ctime.sec && a.ctime.nsec > b.ctime.nsec);

/** Runs `change`, then waits for a watcher to hear of `ino` in `heardBy` (or fails). */
async function pushedTo(ino: Ino, change: () => Promise<unknown>, heardBy = heard): Promise<void> {
  heardBy.length = 0;
  await change();
  const deadlineMs = Date.now() + 10_000;
  while (!heardBy.some((invalidation) => invalidation.inos.includes(ino))) {
    if (Date.now() > deadlineMs) {
      assert.fail(`inode ${ino} was not pushed; heard ${JSON.stringify(heardBy)}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

describe('the service reports the inodes a name removal changed', () => {
  test('unlink of one of two names: the inode (its nlink and ctime moved), with no attributes', async () => {
    const file = await newFile(5);
    await service.link(root, file.ino, ROOT_INO, 'second-name');
    const before = await service.getattr(file.ino);
    await new Promise((resolve) => setTimeout(resolve, 2));
    const removal = await service.unlink(root, ROOT_INO, `file-${fileCount}`);
    assert.deepEqual(removal, { inos: [file.ino], unnamed: [] });
    const after = await service.getattr(file.ino);
    assert.equal(after.nlink, 1);
    assert.ok(laterThan(after, before), 'ctime moved');
  });

  test('unlink of the last name: the last attributes with nlink 0, though the inode is gone', async () => {
    const file = await newFile(1234);
    await new Promise((resolve) => setTimeout(resolve, 2));
    const removal = await service.unlink(root, ROOT_INO, `file-${fileCount}`);
    assert.deepEqual(removal.inos, [file.ino]);
    assert.equal(removal.unnamed.length, 1);
    const last = removal.unnamed[0]!;
    assert.deepEqual([last.ino, last.nlink, last.sizeBytes, last.mode], [file.ino, 0, 1234, S_IFREG | 0o640]);
    assert.ok(laterThan(last, file), 'ctime moved');
    await assert.rejects(service.getattr(file.ino), (e) => isFsError(e) && e.errno === Errno.ENOENT);
  });

  test('rmdir: the directory with nlink 0', async () => {
    const made = await service.mkdir(root, ROOT_INO, 'gone-dir', 0o750, 0);
    const removal = await service.rmdir(root, ROOT_INO, 'gone-dir');
    assert.deepEqual(removal.inos, [made.ino]);
    assert.deepEqual(
      removal.unnamed.map((a) => [a.ino, a.nlink, a.mode]),
      [[made.ino, 0, S_IFDIR | 0o750]],
    );
  });

  test('rename over a hard-linked name: the moved inode and the replaced one, which keeps a name', async () => {
    const target = await newFile();
    const targetName = `file-${fileCount}`;
    await service.link(root, target.ino, ROOT_INO, 'target-link');
    const moved = await newFile();
    const removal = await service.rename(root, ROOT_INO, `file-${fileCount}`, ROOT_INO, targetName, 0);
    assert.deepEqual(removal, { inos: [moved.ino, target.ino], unnamed: [] });
    assert.equal((await service.getattr(target.ino)).nlink, 1);
  });

  test('rename over a file and over an empty directory reports the replaced inode with nlink 0; RENAME_EXCHANGE both inodes', async () => {
    const file = await newFile(7);
    const fileName = `file-${fileCount}`;
    const movedFile = await newFile();
    const overFile = await service.rename(root, ROOT_INO, `file-${fileCount}`, ROOT_INO, fileName, 0);
    assert.deepEqual(overFile.inos, [movedFile.ino, file.ino]);
    assert.deepEqual(
      overFile.unnamed.map((a) => [a.ino, a.nlink, a.sizeBytes]),
      [[file.ino, 0, 7]],
    );

    const victim = await service.mkdir(root, ROOT_INO, 'victim-dir', 0o755, 0);
    const mover = await service.mkdir(root, ROOT_INO, 'mover-dir', 0o755, 0);
    const overDir = await service.rename(root, ROOT_INO, 'mover-dir', ROOT_INO, 'victim-dir', 0);
    assert.deepEqual(overDir.inos, [mover.ino, victim.ino]);
    assert.deepEqual(
      overDir.unnamed.map((a) => [a.ino, a.nlink]),
      [[victim.ino, 0]],
    );

    const a = await newFile();
    const b = await newFile();
    const swapped = await service.rename(
      root,
      ROOT_INO,
      `file-${fileCount - 1}`,
      ROOT_INO,
      `file-${fileCount}`,
      RENAME_EXCHANGE,
    );
    assert.deepEqual(swapped, { inos: [a.ino, b.ino], unnamed: [] });
  });

  test('rename onto another name of the same inode changes nothing and reports nothing', async () => {
    const file = await newFile();
    await service.link(root, file.ino, ROOT_INO, 'same-inode');
    const removal = await service.rename(root, ROOT_INO, `file-${fileCount}`, ROOT_INO, 'same-inode', 0);
    assert.deepEqual(removal, { inos: [], unnamed: [] });
  });
});

describe('the server pushes those inodes to the other clients', () => {
  test('unlink over RPC: the reply carries the inode, and the other client hears of it', async () => {
    const file = await newFile();
    await service.link(root, file.ino, ROOT_INO, 'rpc-second-name');
    await pushedTo(file.ino, async () => {
      const removal = await changer.unlink(root, ROOT_INO, `file-${fileCount}`);
      assert.deepEqual(removal, { inos: [file.ino], unnamed: [] });
    });
  });

  test('rename over a hard-linked name over RPC: the replaced inode is pushed', async () => {
    const target = await newFile();
    const targetName = `file-${fileCount}`;
    await service.link(root, target.ino, ROOT_INO, 'rpc-target-link');
    await newFile();
    await pushedTo(target.ino, () =>
      changer.rename(root, ROOT_INO, `file-${fileCount}`, ROOT_INO, targetName, 0),
    );
  });

  test('rmdir over RPC: the removed directory is pushed', async () => {
    const made = await service.mkdir(root, ROOT_INO, 'rpc-gone-dir', 0o755, 0);
    await pushedTo(made.ino, () => changer.rmdir(root, ROOT_INO, 'rpc-gone-dir'));
  });

  test('a change made in the server process (strata up) is pushed with its result too', async () => {
    const file = await newFile();
    await service.link(root, file.ino, ROOT_INO, 'local-second-name');
    const name = `file-${fileCount}`;
    await pushedTo(file.ino, async () => {
      const removal = await service.unlink(root, ROOT_INO, name);
      server.noteLocalChange('unlink', [root, ROOT_INO, name], removal);
    });
  });
});

describe('two servers on one PostgreSQL database', { skip: PG_SKIP_REASON }, () => {
  let db: TestDatabase;
  const services: MetaService[] = [];
  const servers: MetaServer[] = [];
  const clients: MetaClient[] = [];
  const heardOnB: MetaInvalidation[] = [];

  before(async () => {
    db = await createTestDatabase('strata_removal');
    await formatVolume(db.url, { name: 'removal-pg' });
    for (const side of ['a', 'b']) {
      const pgService = await openMetaService({ engineUrl: db.url, background: false });
      services.push(pgService);
      const secret = await pgService.volumeSecret();
      const pgServer = await startMetaServer({
        service: pgService,
        listen: join(dir, `pg-${side}.sock`),
        secret,
      });
      servers.push(pgServer);
      clients.push(
        await connectMeta({ address: pgServer.address, secret, timeoutMs: 10_000, invalidations: true }),
      );
    }
    clients[1]!.onInvalidation((invalidation) => heardOnB.push(invalidation));
  });

  after(async () => {
    for (const client of clients) await client.close();
    for (const pgServer of servers) await pgServer.close();
    for (const pgService of services) await pgService.close();
    await db?.drop();
  });

  test("an unlink and a rename over a hard link through one server reach the other server's clients (change feed)", async () => {
    const [a] = clients;
    const file = await a!.mknod(root, ROOT_INO, 'pg-linked', S_IFREG | 0o644, 0, 0);
    await a!.link(root, file.ino, ROOT_INO, 'pg-link-2');
    await a!.link(root, file.ino, ROOT_INO, 'pg-link-3');
    await a!.mknod(root, ROOT_INO, 'pg-replacement', S_IFREG | 0o644, 0, 0);
    // The links' own notifications (which name the inode too) must not stand in for the unlink's.
    await new Promise((resolve) => setTimeout(resolve, 300));
    await pushedTo(file.ino, () => a!.unlink(root, ROOT_INO, 'pg-linked'), heardOnB);
    await new Promise((resolve) => setTimeout(resolve, 300));
    await pushedTo(
      file.ino,
      () => a!.rename(root, ROOT_INO, 'pg-replacement', ROOT_INO, 'pg-link-2', 0),
      heardOnB,
    );
    assert.equal((await clients[1]!.getattr(file.ino)).nlink, 1);
  });
});
