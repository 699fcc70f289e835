import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { ROOT_INO, isFsError } from '../../src/common/index.js';
import { formatVolume, openMetaService, type Caller, type MetaService } from '../../src/meta/index.js';
import { startMetaServer, type MetaServer } from '../../src/meta/server/index.js';
import { sendNumbered } from './numbered-call.js';
import { createTestDatabase, PG_SKIP_REASON, type TestDatabase } from './postgres-fixture.js';

/**
 * A change whose reply is lost (its server died after the commit) is resent under the same
 * number to another server of the volume: it must get the original reply, not run again. The
 * outcome lives in the engine, written by the change's own transaction, so it does not matter
 * that the second server never saw the first attempt.
 */

const root: Caller = { uid: 0, gid: 0, pid: 1 };
const S_IFREG = 0o100000;

/** Two servers of one volume (two services, each with its own engine connection). */
async function twoServers(engineUrl: string): Promise<{
  servers: MetaServer[];
  services: MetaService[];
  secret: string;
  close(): Promise<void>;
}> {
  const services: MetaService[] = [];
  const servers: MetaServer[] = [];
  for (let i = 0; i < 2; i++) {
    const service = await openMetaService({ engineUrl, background: false });
    services.push(service);
    servers.push(
      await startMetaServer({ service, listen: '127.0.0.1:0', secret: await service.volumeSecret() }),
    );
  }
  return {
    servers,
    services,
    secret: await services[0].volumeSecret(),
    close: async () => {
      for (const server of servers) await server.close();
      for (const service of services) await service.close();
    },
  };
}

async function checkRetriesAcrossServers(engineUrl: string): Promise<void> {
  await formatVolume(engineUrl, { name: 'once' });
  const { servers, services, secret, close } = await twoServers(engineUrl);
  try {
    const [a, b] = servers.map((server) => server.address);
    const clientId = 'test/at-most-once';
    // The first attempt reaches server A and commits; pretend its reply was lost.
    const first = await sendNumbered(a, secret, clientId, 1, false, 'mknod', [
      root,
      ROOT_INO,
      'f',
      S_IFREG | 0o644,
      0,
      0,
    ]);
    assert.ok(first.ok, `the first create failed: ${first.error?.message}`);
    // The resend goes to server B, which never saw the first attempt.
    const resent = await sendNumbered(b, secret, clientId, 1, true, 'mknod', [
      root,
      ROOT_INO,
      'f',
      S_IFREG | 0o644,
      0,
      0,
    ]);
    assert.ok(resent.ok, `the resent create failed: ${resent.error?.message}`);
    assert.deepEqual(resent.value, first.value, 'the resend gets the original reply');

    // A rename resent elsewhere answers success instead of ENOENT, and is not applied twice.
    const renamed = await sendNumbered(a, secret, clientId, 2, false, 'rename', [
      root,
      ROOT_INO,
      'f',
      ROOT_INO,
      'g',
      0,
    ]);
    assert.ok(renamed.ok);
    const renamedAgain = await sendNumbered(b, secret, clientId, 2, true, 'rename', [
      root,
      ROOT_INO,
      'f',
      ROOT_INO,
      'g',
      0,
    ]);
    assert.ok(renamedAgain.ok, `the resent rename failed: ${renamedAgain.error?.message}`);

    // The control: the same create under a new number really runs, and fails as it should.
    const fresh = await sendNumbered(b, secret, clientId, 3, true, 'mknod', [
      root,
      ROOT_INO,
      'g',
      S_IFREG | 0o644,
      0,
      0,
    ]);
    assert.ok(!fresh.ok && isFsError(fresh.error) && fresh.error.code === 'EEXIST');

    const names = (await services[1].readdir(root, ROOT_INO, 0, 100, false))
      .map((e) => e.name)
      .filter((name) => name !== '.' && name !== '..');
    assert.deepEqual(names, ['g']);
    const attr = await services[1].lookup(root, ROOT_INO, 'g');
    assert.equal(attr.ino, (first.value as { ino: number }).ino);
    assert.equal(attr.nlink, 1);
  } finally {
    await close();
  }
}

describe('at-most-once across metadata servers', () => {
  const dirs: string[] = [];
  after(() => {
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });

  test('SQLite: a create and a rename resent to a second server get their original replies', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'strata-multi-once-'));
    dirs.push(dir);
    await checkRetriesAcrossServers(`sqlite:${join(dir, 'meta.db')}`);
  });

  test(
    'PostgreSQL: a create and a rename resent to a second server get their original replies',
    { skip: PG_SKIP_REASON },
    async () => {
      let db: TestDatabase | undefined;
      try {
        db = await createTestDatabase('strata_once');
        await checkRetriesAcrossServers(db.url);
      } finally {
        await db?.drop();
      }
    },
  );
});
