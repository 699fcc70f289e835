import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Errno, FsError, ROOT_INO, asSliceId, type Ino } from '../../src/common/index.js';
import { formatVolume, openMetaService, type Caller, type MetaService } from '../../src/meta/index.js';
import { startMetaServer, type MetaServer } from '../../src/meta/server/index.js';
import { connectMeta, type MetaClient } from '../../src/meta/client/index.js';
import { RpcClient } from '../../src/rpc/index.js';
import { CuttingProxy } from '../rpc/helpers.js';

const root: Caller = { uid: 0, gid: 0, pid: 1 };
const S_IFREG = 0o100000;
const S_IFDIR = 0o040000;

interface Setup {
  service: MetaService;
  server: MetaServer;
  client: MetaClient;
  secret: string;
}

/** A real SQLite volume served over RPC on a Unix socket, with a connected client. */
async function withServedVolume(fn: (setup: Setup) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'strata-rpc-meta-'));
  const engineUrl = `sqlite:${join(dir, 'meta.db')}`;
  await formatVolume(engineUrl, { name: 'rpc-test' });
  const service = await openMetaService({ engineUrl, background: false });
  let server: MetaServer | null = null;
  let client: MetaClient | null = null;
  try {
    const secret = await service.volumeSecret();
    server = await startMetaServer({ service, listen: join(dir, 'meta.sock'), secret });
    client = await connectMeta({ address: server.address, secret, timeoutMs: 10_000, connections: 2 });
    await fn({ service, server, client, secret });
  } finally {
    await client?.close();
    await server?.close();
    await service.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

test('create, lookup, readdir and rename over RPC behave like the service itself', async () => {
  await withServedVolume(async ({ client, service }) => {
    const dir = await client.mkdir(root, ROOT_INO, 'docs', 0o755, 0o022);
    assert.equal(dir.mode, S_IFDIR | 0o755);
    const file = await client.mknod(root, dir.ino, 'a.txt', S_IFREG | 0o666, 0, 0o022);
    assert.equal(file.mode, S_IFREG | 0o644);
    assert.deepEqual(
      await client.lookup(root, dir.ino, 'a.txt'),
      await service.lookup(root, dir.ino, 'a.txt'),
    );

    await client.rename(root, dir.ino, 'a.txt', ROOT_INO, 'b.txt', 0);
    await assert.rejects(client.lookup(root, dir.ino, 'a.txt'), (error: unknown) => {
      assert.ok(error instanceof FsError, 'errors arrive as FsError');
      assert.equal(error.errno, Errno.ENOENT);
      return true;
    });
    const moved = await client.lookup(root, ROOT_INO, 'b.txt');
    assert.equal(moved.ino, file.ino);

    const names = (await client.readdir(root, ROOT_INO, 0, 100, false)).map((entry) => entry.name);
    assert.deepEqual(names.sort(), ['.', '..', 'b.txt', 'docs']);
    const plus = await client.readdir(root, ROOT_INO, 0, 100, true);
    const entry = plus.find((e) => e.name === 'b.txt');
    assert.equal(entry?.attr?.ino, file.ino);

    await assert.rejects(client.rmdir(root, ROOT_INO, 'b.txt'), { errno: Errno.ENOTDIR });
    await client.unlink(root, ROOT_INO, 'b.txt');
    await assert.rejects(client.getattr(file.ino), { errno: Errno.ENOENT });
  });
});

test('binary xattrs, symlinks, as-of reads and data maps round-trip over RPC', async () => {
  await withServedVolume(async ({ client }) => {
    const file = await client.mknod(root, ROOT_INO, 'f', S_IFREG | 0o644, 0, 0);
    const value = Buffer.from([0, 1, 2, 255, 0]);
    await client.setxattr(root, file.ino, 'user.bin', value, 0);
    assert.deepEqual(await client.getxattr(file.ino, 'user.bin'), value);
    assert.deepEqual(await client.listxattr(file.ino), ['user.bin']);

    const link = await client.symlink(root, ROOT_INO, 'l', '/some/where');
    assert.equal(await client.readlink(link.ino), '/some/where');

    const before = Date.now() * 1000;
    await new Promise((resolve) => setTimeout(resolve, 5));
    await client.rename(root, ROOT_INO, 'f', ROOT_INO, 'g', 0);
    assert.equal((await client.lookup(root, ROOT_INO, 'f', { asOfUs: before })).ino, file.ino);

    const first = await client.allocateSliceIds(2);
    const slice = {
      id: asSliceId(first),
      sliceSizeBytes: 8192,
      chunkOffsetBytes: 0,
      sliceOffsetBytes: 0,
      lengthBytes: 8192,
      blockSizeBytes: 4 * 1024 * 1024,
    };
    const ctimeBefore = (await client.getattr(file.ino)).ctime;
    const attr = await client.commitWrites(root, file.ino, [{ chunkIndex: 0, slice }], 8192, {
      sec: 1,
      nsec: 0,
    });
    assert.equal(attr.sizeBytes, 8192);
    assert.deepEqual(attr.ctimeBefore, ctimeBefore, 'the inode state the commit found travels back');
    const slices = await client.readSlices(file.ino, 0, 0);
    assert.ok(slices instanceof Map, 'readSlices answers a Map');
    assert.deepEqual(slices.get(0), [slice]);
    const stat = await client.statfs();
    assert.ok(stat.inodesUsed >= 3);
    assert.equal((await client.volume()).name, 'rpc-test');
  });
});

test('wrong argument types and counts are refused before the service sees them', async () => {
  await withServedVolume(async ({ server, secret }) => {
    const raw = new RpcClient({ address: server.address, secret, timeoutMs: 5_000 });
    try {
      const call = (method: string, args: unknown[]) => raw.call(method, args, { idempotent: true });
      await assert.rejects(call('getattr', ['1']), {
        errno: Errno.EINVAL,
        message:
          'getattr: argument 1 (ino) must be an inode number (integer >= 1), got a string of 1 characters',
      });
      await assert.rejects(call('lookup', [{ uid: 0, gid: 0 }, 1, 'x']), {
        errno: Errno.EINVAL,
        message: /argument 1 \(caller\)/,
      });
      await assert.rejects(call('lookup', [root, 1]), {
        errno: Errno.EINVAL,
        message: /argument 3 \(name\) must be a string/,
      });
      await assert.rejects(call('statfs', [1]), { errno: Errno.EINVAL, message: /at most 0 arguments/ });
      await assert.rejects(call('setattr', [root, 1, { mtime: 'yesterday' }]), {
        errno: Errno.EINVAL,
        message: /changes/,
      });
      await assert.rejects(call('dropDatabase', []), {
        errno: Errno.ENOSYS,
        message: /unknown metadata method "dropDatabase"/,
      });
      await assert.rejects(call('constructor', []), { errno: Errno.ENOSYS });
      await assert.rejects(
        call('volumeSecret', []),
        { errno: Errno.ENOSYS },
        'only MetaApi methods are served',
      );
      // The service is unharmed.
      assert.equal(((await call('getattr', [1])) as { ino: Ino }).ino, ROOT_INO);
    } finally {
      await raw.close();
    }
  });
});

test('the metrics hook sees every call with its method and errno', async () => {
  await withServedVolume(async ({ service, secret }) => {
    const seen: [string, number][] = [];
    const server = await startMetaServer({
      service,
      listen: '127.0.0.1:0',
      secret,
      onCall: (method, durationMs, errno) => {
        assert.ok(durationMs >= 0);
        seen.push([method, errno]);
      },
    });
    const client = await connectMeta({ address: server.address, secret });
    try {
      await client.getattr(ROOT_INO);
      await assert.rejects(client.lookup(root, ROOT_INO, 'missing'), { errno: Errno.ENOENT });
      assert.deepEqual(seen, [
        ['getattr', 0],
        ['lookup', Errno.ENOENT],
      ]);
    } finally {
      await client.close();
      await server.close();
    }
  });
});

test('a client with the wrong secret fails to connect with EACCES, without retrying', async () => {
  await withServedVolume(async ({ server }) => {
    await assert.rejects(connectMeta({ address: server.address, secret: 'guess', maxAttempts: 50 }), {
      errno: Errno.EACCES,
      message: /authentication failed/,
    });
  });
});

test('a create whose answer was lost is retried and applied once: no EEXIST, the original inode', async () => {
  await withServedVolume(async ({ service, secret }) => {
    const server = await startMetaServer({ service, listen: '127.0.0.1:0', secret });
    const proxy = await CuttingProxy.start(server.address);
    const client = await connectMeta({ address: proxy.address, secret, timeoutMs: 10_000 });
    try {
      proxy.dropNextReply = true;
      const created = await client.mknod(root, ROOT_INO, 'once', S_IFREG | 0o644, 0, 0);
      assert.equal(proxy.cuts, 1, 'the answer should have been lost once');
      assert.equal(client.retriedCalls, 1);
      assert.equal((await service.lookup(root, ROOT_INO, 'once')).ino, created.ino);
      // Without at-most-once the resend would have failed with EEXIST; a genuine second create does.
      await assert.rejects(client.mknod(root, ROOT_INO, 'once', S_IFREG | 0o644, 0, 0), {
        errno: Errno.EEXIST,
      });
    } finally {
      await client.close();
      await proxy.close();
      await server.close();
    }
  });
});
