import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Errno, FsError, ROOT_INO, asSliceId } from '../../src/common/index.js';
import { formatVolume, type Caller } from '../../src/meta/index.js';
import { startMetaServer } from '../../src/meta/server/index.js';
import { openThreadedMetaService } from '../../src/meta/server/index.js';
import { connectMeta } from '../../src/meta/client/index.js';
import { EncodedValue } from '../../src/rpc/index.js';
import { unpack } from 'msgpackr';

const root: Caller = { uid: 0, gid: 0, pid: 1 };
const S_IFREG = 0o100000;

test('opening an engine thread on a missing volume fails with the service’s own error', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'strata-rpc-thread-'));
  try {
    await assert.rejects(openThreadedMetaService({ engineUrl: `sqlite:${join(dir, 'none.db')}` }), {
      errno: Errno.ENOENT,
      message: /no volume in .*run "strata format" first/,
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

for (const encodedReplies of [false, true]) {
  test(`a service on an engine thread serves the same calls, Buffers, Maps and errors over RPC (encodedReplies ${encodedReplies})`, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'strata-rpc-thread-'));
    const engineUrl = `sqlite:${join(dir, 'meta.db')}`;
    await formatVolume(engineUrl, { name: 'threaded' });
    const failures: Error[] = [];
    const service = await openThreadedMetaService({
      engineUrl,
      encodedReplies,
      onFailure: (error) => failures.push(error),
    });
    try {
      assert.equal(service.settings.name, 'threaded');
      // What the serving thread hands the RPC server for each create.
      const served: unknown[] = [];
      const servedListings: unknown[] = [];
      const watched = Object.create(service) as typeof service;
      watched.mknod = (...args) =>
        service.mknod(...args).then((value) => {
          served.push(value);
          return value;
        });
      watched.readdir = (...args) =>
        service.readdir(...args).then((value) => {
          servedListings.push(value);
          return value;
        });
      const server = await startMetaServer({
        service: watched,
        listen: join(dir, 'meta.sock'),
        secret: service.secret,
      });
      const client = await connectMeta({ address: server.address, secret: service.secret });
      try {
        const created = await Promise.all(
          Array.from({ length: 100 }, (_, i) => client.mknod(root, ROOT_INO, `f${i}`, S_IFREG | 0o644, 0, 0)),
        );
        assert.equal(new Set(created.map((attr) => attr.ino)).size, 100);
        // A recorded change's reply crosses from the engine thread as the bytes its outcome was
        // stored as and goes out in the RESULT frame unchanged: the same attributes as a fresh read.
        for (const i of [0, 3, 99]) assert.deepEqual(created[i], await client.getattr(created[i].ino));
        assert.equal(served.length, 100);
        for (const value of served) {
          // encodedReplies: the stored bytes, never decoded on the serving thread; else objects.
          assert.equal(value instanceof EncodedValue, encodedReplies);
          const attr = value instanceof EncodedValue ? (unpack(value.bytes) as { ino: number }) : value;
          assert.ok(created.some((c) => c.ino === (attr as { ino: number }).ino));
        }
        assert.equal((await client.lookup(root, ROOT_INO, 'f7')).ino, created[7].ino);
        await assert.rejects(client.lookup(root, ROOT_INO, 'nope'), (error: unknown) => {
          assert.ok(error instanceof FsError);
          assert.equal(error.errno, Errno.ENOENT);
          return true;
        });
        const value = Buffer.from([9, 8, 7]);
        await client.setxattr(root, created[0].ino, 'user.v', value, 0);
        assert.deepEqual(await client.getxattr(created[0].ino, 'user.v'), value);
        const slice = {
          id: asSliceId(await client.allocateSliceIds(1)),
          sliceSizeBytes: 100,
          chunkOffsetBytes: 0,
          sliceOffsetBytes: 0,
          lengthBytes: 100,
          blockSizeBytes: 4096,
        };
        const found = (await client.getattr(created[0].ino)).ctime;
        const committed = await client.commitWrites(root, created[0].ino, [{ chunkIndex: 0, slice }], 100, {
          sec: 1,
          nsec: 0,
        });
        assert.deepEqual(committed.ctimeBefore, found, 'the state the commit found crosses the thread');
        assert.deepEqual((await client.readSlices(created[0].ino, 0, 0)).get(0), [slice]);
        const listing = await client.readdir(root, ROOT_INO, 0, 1_000, true);
        assert.equal(listing.length, 102);
        const entry = listing.find((e) => e.name === 'f3');
        assert.equal(entry?.ino, created[3].ino);
        assert.equal(entry?.type, S_IFREG);
        assert.deepEqual(entry?.attr, await client.getattr(created[3].ino));
        // A read's reply is packed on the engine thread too (encodedReplies): a listing crosses as
        // bytes and is never cloned into objects, then packed again, on the serving thread.
        assert.equal(servedListings.length, 1);
        assert.equal(servedListings[0] instanceof EncodedValue, encodedReplies);
      } finally {
        await client.close();
        await server.close();
      }
    } finally {
      await service.close();
      rmSync(dir, { recursive: true, force: true });
    }
    assert.deepEqual(failures, [], 'a normal close is not a failure');
  });
}

for (const encodedReplies of [false, true]) {
  test(`an unlink through an engine thread answers its NameRemoval and its inode is pushed to the other clients (encodedReplies ${encodedReplies})`, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'strata-rpc-thread-'));
    const engineUrl = `sqlite:${join(dir, 'meta.db')}`;
    await formatVolume(engineUrl, { name: 'threaded' });
    const service = await openThreadedMetaService({ engineUrl, encodedReplies });
    const server = await startMetaServer({ service, listen: join(dir, 'meta.sock'), secret: service.secret });
    const connect = () =>
      connectMeta({
        address: server.address,
        secret: service.secret,
        timeoutMs: 10_000,
        invalidations: true,
      });
    const changer = await connect();
    const watcher = await connect();
    try {
      const heard: number[] = [];
      watcher.onInvalidation((invalidation) => heard.push(...invalidation.inos));
      const hearOf = async (ino: number): Promise<void> => {
        const deadlineMs = Date.now() + 10_000;
        while (!heard.includes(ino)) {
          if (Date.now() > deadlineMs)
            assert.fail(`inode ${ino} was not pushed; heard ${JSON.stringify(heard)}`);
          await new Promise((resolve) => setTimeout(resolve, 10));
        }
      };
      const file = await changer.mknod(root, ROOT_INO, 'two-names', S_IFREG | 0o644, 0, 0);
      await changer.link(root, file.ino, ROOT_INO, 'second-name');
      await hearOf(file.ino); // the link's own push, before the unlink's
      heard.length = 0;
      // encodedReplies: the reply crosses packed, with the inode numbers beside it for the push.
      assert.deepEqual(await changer.unlink(root, ROOT_INO, 'two-names'), { inos: [file.ino], unnamed: [] });
      await hearOf(file.ino);
      const last = await changer.unlink(root, ROOT_INO, 'second-name');
      assert.deepEqual(last?.inos, [file.ino]);
      assert.equal(last?.unnamed[0]?.nlink, 0);
    } finally {
      await changer.close();
      await watcher.close();
      await server.close();
      await service.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
}

test('hundreds of calls made in one turn on an engine thread each settle with their own reply', async () => {
  // Their replies come back in one message and settle a slice per serving-thread turn
  // (worker-service.ts): none may be lost, doubled or given to another call.
  const dir = mkdtempSync(join(tmpdir(), 'strata-rpc-thread-'));
  const engineUrl = `sqlite:${join(dir, 'meta.db')}`;
  await formatVolume(engineUrl, { name: 'threaded' });
  const service = await openThreadedMetaService({ engineUrl });
  try {
    const calls = Array.from({ length: 300 }, (_, i) =>
      // Every third name repeats the one before it: EEXIST for whichever of the two runs second.
      service.mknod(root, ROOT_INO, `g${i % 3 === 2 ? i - 1 : i}`, S_IFREG | 0o644, 0, 0),
    );
    const settled = await Promise.allSettled(calls);
    const inos = new Set<number>();
    settled.forEach((outcome, i) => {
      if (i % 3 === 2) {
        assert.equal(outcome.status, 'rejected', `call ${i}`);
        assert.equal((outcome as PromiseRejectedResult).reason.errno, Errno.EEXIST);
      } else {
        assert.equal(outcome.status, 'fulfilled', `call ${i}`);
        inos.add((outcome as PromiseFulfilledResult<{ ino: number }>).value.ino);
      }
    });
    assert.equal(inos.size, 200);
    for (let i = 0; i < 300; i += 50) {
      const name = `g${i % 3 === 2 ? i - 1 : i}`;
      const entry = await service.lookup(root, ROOT_INO, name);
      assert.ok(inos.has(entry.ino), name);
    }
  } finally {
    await service.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the engine thread alone takes the niceness it is given (Linux), the serving thread keeps its own', async () => {
  const niceOf = (tid: string): number => {
    // Field 19 of /proc/PID/task/TID/stat, counted after the command name in parentheses.
    const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16]);
  };
  const threads = (): string[] => readdirSync('/proc/self/task');
  const dir = mkdtempSync(join(tmpdir(), 'strata-rpc-thread-'));
  const engineUrl = `sqlite:${join(dir, 'meta.db')}`;
  await formatVolume(engineUrl, { name: 'threaded' });
  const before = new Set(threads().filter((tid) => niceOf(tid) === 7));
  const service = await openThreadedMetaService({ engineUrl, nice: 7 });
  try {
    const niced = threads().filter((tid) => niceOf(tid) === 7 && !before.has(tid));
    assert.equal(niced.length, 1, `threads at nice 7: ${niced.join(', ')}`);
    assert.notEqual(niced[0], String(process.pid));
    await service.mknod(root, ROOT_INO, 'after-nice', S_IFREG | 0o644, 0, 0);
  } finally {
    await service.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
