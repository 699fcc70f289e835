import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { appendFile, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { ObjectNotFoundError, openObjectStore, type ObjectInfo } from '../../src/object/index.js';
import { FileObjectStore } from '../../src/object/backends/file.js';
import { LOG_DIR, LoggedFileStore, type FileLogOptions } from '../../src/object/backends/file-log/index.js';
import { encodeRecord, RecordKind } from '../../src/object/backends/file-log/record.js';
import { describeObjectStoreConformance } from './conformance.js';

const dirs: string[] = [];
async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'strata-file-log-'));
  dirs.push(dir);
  return dir;
}
after(async () => {
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
});

function openLogged(dir: string, options: Partial<FileLogOptions> = {}): Promise<LoggedFileStore> {
  return LoggedFileStore.open(new FileObjectStore(dir), options);
}

async function collect(iterable: AsyncIterable<ObjectInfo>): Promise<ObjectInfo[]> {
  const out: ObjectInfo[] = [];
  for await (const info of iterable) out.push(info);
  return out;
}

/** The bytes every test writes under a key: derived from the key, so a reader can check them. */
function bodyOf(key: string, sizeBytes: number): Buffer {
  const out = Buffer.alloc(sizeBytes);
  let block = createHash('sha256').update(key).digest();
  for (let at = 0; at < sizeBytes; at += block.length) {
    block.copy(out, at);
    block = createHash('sha256').update(block).digest();
  }
  return out;
}

/** A segment name whose owner is a process that cannot be running (pid above pid_max). */
async function deadOwnerSegmentName(): Promise<string> {
  const boot = (await readFile('/proc/sys/kernel/random/boot_id', 'utf8'))
    .trim()
    .replace(/-/g, '')
    .slice(0, 12);
  return `${boot}_99999999_1_deadbeef-000000.seg`;
}

const logBackend = fileURLToPath(new URL('../../src/object/backends/file-log/index.js', import.meta.url));
const fileBackend = fileURLToPath(new URL('../../src/object/backends/file.js', import.meta.url));

/**
 * Starts a child that opens the store with `options` and runs `body` (JavaScript with `store`
 * and `bodyOf` in scope); it prints "ack KEY SIZE" once a put resolved.
 */
function spawnStoreChild(dir: string, options: Partial<FileLogOptions>, body: string): ChildProcess {
  const script = `
    const { createHash } = await import('node:crypto');
    const { LoggedFileStore } = await import(${JSON.stringify(logBackend)});
    const { FileObjectStore } = await import(${JSON.stringify(fileBackend)});
    ${bodyOf.toString()}
    const store = await LoggedFileStore.open(new FileObjectStore(${JSON.stringify(dir)}), ${JSON.stringify(options)});
    process.stdout.write('ready\\n');
    ${body}
  `;
  return spawn(process.execPath, ['--input-type=module', '-e', script], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
}

/** Collects the child's "ack KEY SIZE" lines; resolves on "ready". */
function watchChild(child: ChildProcess, acked: Map<string, number>): Promise<void> {
  let pending = '';
  return new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (chunk: Buffer) => {
      pending += chunk.toString();
      const lines = pending.split('\n');
      pending = lines.pop() ?? '';
      for (const line of lines) {
        if (line === 'ready') resolve();
        const match = /^ack (\S+) (\d+)$/.exec(line);
        if (match) acked.set(match[1], Number(match[2]));
        // A delete in flight when the child died may or may not have happened.
        const deleting = /^deleting (\S+)$/.exec(line);
        if (deleting) acked.delete(deleting[1]);
      }
    });
    child.once('exit', (code) => reject(new Error(`child exited early with ${code}`)));
  });
}

async function killChild(child: ChildProcess): Promise<void> {
  if (child.exitCode === null && child.signalCode === null) {
    const closed = new Promise((resolve) => child.once('close', resolve));
    child.kill('SIGKILL');
    await closed;
  }
}

describeObjectStoreConformance('file with small-object log', async () => openLogged(await tempDir()));
describeObjectStoreConformance('file with small-object log, drain held back', async () =>
  openLogged(await tempDir(), { drainIdleMs: 3_600_000, segmentBytes: 256 * 1024 }),
);

describe('small-object log in the file store', () => {
  it('acknowledges small puts from the log and leaves the plain layout after close', async () => {
    const dir = await tempDir();
    const store = await openLogged(dir, { drainIdleMs: 3_600_000 });
    const keys = Array.from(
      { length: 50 },
      (_, i) => `chunks/${(i % 4).toString(16).padStart(3, '0')}/${i}_0_4096`,
    );
    await Promise.all(keys.map((key) => store.put(key, bodyOf(key, 4096))));
    const big = 'chunks/fff/big_0_1048576';
    await store.put(big, bodyOf(big, 1 << 20));
    // Logged, not yet files: served from the segment, ranged reads and head included.
    assert.equal(store.loggedObjects, 50);
    await assert.rejects(stat(join(dir, keys[0])), { code: 'ENOENT' });
    assert.ok((await stat(join(dir, big))).isFile(), 'a large object bypasses the log');
    assert.ok((await store.get(keys[1])).equals(bodyOf(keys[1], 4096)));
    assert.ok((await store.get(keys[2], 100, 50)).equals(bodyOf(keys[2], 4096).subarray(100, 150)));
    assert.equal((await store.head(keys[3]))?.sizeBytes, 4096);
    const listed = (await collect(store.list('chunks/'))).map((info) => info.key);
    assert.deepEqual(listed, [...keys, big].sort());
    await store.close();
    assert.deepEqual(await readdir(join(dir, LOG_DIR)), []);
    for (const key of keys) assert.ok((await readFile(join(dir, key))).equals(bodyOf(key, 4096)), key);
  });

  it('the drain writes objects out and retires segments while the store runs', async () => {
    const dir = await tempDir();
    const store = await openLogged(dir, { segmentBytes: 64 * 1024 });
    const keys = Array.from({ length: 60 }, (_, i) => `d${i % 3}/k${i}`);
    for (const key of keys) await store.put(key, bodyOf(key, 3000));
    // Only the current segment stays (and perhaps the preallocated next one).
    const segmentsLeft = async () => (await readdir(join(dir, LOG_DIR))).length;
    for (let i = 0; i < 500 && (store.loggedObjects > 0 || (await segmentsLeft()) > 2); i++) {
      await new Promise((r) => setTimeout(r, 10));
    }
    assert.equal(store.loggedObjects, 0);
    assert.ok((await segmentsLeft()) <= 2);
    for (const key of keys) assert.ok((await readFile(join(dir, key))).equals(bodyOf(key, 3000)));
    await store.close();
    assert.deepEqual(await readdir(join(dir, LOG_DIR)), []);
  });

  it('refuses, as the plain store does, a key under an object or where a directory is', async () => {
    const store = await openLogged(await tempDir());
    await store.put('x/y', Buffer.from('y'));
    await store.put('a', Buffer.from('a'));
    await store.close();
    const again = await openLogged(store.description.slice('file://'.length));
    await assert.rejects(again.put('x', Buffer.from('x')), /directory-backed store/);
    await assert.rejects(again.put('a/b', Buffer.from('b')), /directory-backed store/);
    await assert.rejects(again.put(`${LOG_DIR}/k`, Buffer.from('k')), /invalid object key/);
    await again.close();
  });

  it('a segment left by a dead process is drained at open; a torn or garbled tail is ignored', async () => {
    const dir = await tempDir();
    await mkdir(join(dir, LOG_DIR), { recursive: true });
    const stamp = Date.now();
    const good = ['t/a', 't/b', 't/c'].map((key, i) =>
      encodeRecord(RecordKind.Put, key, bodyOf(key, 100 + i), stamp + i),
    );
    const deleted = encodeRecord(RecordKind.Put, 't/gone', bodyOf('t/gone', 10), stamp + 3);
    const tombstone = encodeRecord(RecordKind.Tombstone, 't/gone', Buffer.alloc(0), stamp + 4);
    const torn = encodeRecord(RecordKind.Put, 't/torn', bodyOf('t/torn', 500), stamp + 5);
    const garbled = Buffer.from(torn);
    garbled[garbled.length - 20] ^= 0xff;
    const after = encodeRecord(RecordKind.Put, 't/after', bodyOf('t/after', 10), stamp + 6);
    const segment = join(dir, LOG_DIR, await deadOwnerSegmentName());
    // Valid records, then one whose payload is damaged, then a valid one that must not count
    // (records after a bad one were never acknowledged), then zeros as preallocated.
    await writeFile(
      segment,
      Buffer.concat([...good, deleted, tombstone, garbled, after, Buffer.alloc(8192)]),
    );
    const store = await openLogged(dir);
    for (const [i, key] of ['t/a', 't/b', 't/c'].entries()) {
      assert.ok((await store.get(key)).equals(bodyOf(key, 100 + i)), key);
    }
    await assert.rejects(store.get('t/gone'), ObjectNotFoundError);
    await assert.rejects(store.get('t/torn'), ObjectNotFoundError);
    await assert.rejects(store.get('t/after'), ObjectNotFoundError);
    await store.close();
    assert.deepEqual(await readdir(join(dir, LOG_DIR)), []);
    assert.deepEqual((await readdir(join(dir, 't'))).sort(), ['a', 'b', 'c']);

    // A segment cut in the middle of a record (a torn write) and one with its last record's
    // header half written.
    const cut = Buffer.concat(good).subarray(0, good[0].length + good[1].length + 40);
    await writeFile(segment, cut);
    const halfHeader = Buffer.concat([good[0], good[1].subarray(0, 12)]);
    await writeFile(
      join(dir, LOG_DIR, (await deadOwnerSegmentName()).replace('000000', '000001')),
      halfHeader,
    );
    await rm(join(dir, 't'), { recursive: true });
    const reopened = await openLogged(dir);
    assert.ok((await reopened.get('t/a')).equals(bodyOf('t/a', 100)));
    assert.ok((await reopened.get('t/b')).equals(bodyOf('t/b', 101)));
    await assert.rejects(reopened.get('t/c'), ObjectNotFoundError);
    await reopened.close();
    assert.deepEqual(await readdir(join(dir, LOG_DIR)), []);
  });

  it('with the log off, a store still serves and drains objects a crashed process logged', async () => {
    const dir = await tempDir();
    await mkdir(join(dir, LOG_DIR), { recursive: true });
    const record = encodeRecord(RecordKind.Put, 'off/a', bodyOf('off/a', 300), Date.now());
    await writeFile(
      join(dir, LOG_DIR, await deadOwnerSegmentName()),
      Buffer.concat([record, Buffer.alloc(4096)]),
    );
    const saved = process.env.STRATA_FILE_LOG;
    process.env.STRATA_FILE_LOG = 'off';
    try {
      const store = (await openObjectStore(`file://${dir}`, { retry: false })) as LoggedFileStore;
      assert.ok((await store.get('off/a')).equals(bodyOf('off/a', 300)));
      await store.put('off/b', Buffer.from('b'));
      assert.equal((await readFile(join(dir, 'off/b'))).toString(), 'b', 'not logged: a file at once');
      await store.close();
      assert.deepEqual(await readdir(join(dir, LOG_DIR)), []);
      assert.deepEqual((await readdir(join(dir, 'off'))).sort(), ['a', 'b']);
      process.env.STRATA_FILE_LOG = 'on';
      const on = (await openObjectStore(`file://${dir}`, { retry: false })) as LoggedFileStore;
      await on.put('off/c', Buffer.from('c'));
      assert.equal(on.loggedObjects, 1);
      await on.close();
      process.env.STRATA_FILE_LOG = 'sometimes';
      await assert.rejects(openObjectStore(`file://${dir}`), /STRATA_FILE_LOG="sometimes" is not understood/);
    } finally {
      if (saved === undefined) delete process.env.STRATA_FILE_LOG;
      else process.env.STRATA_FILE_LOG = saved;
    }
  });

  it('a logged object whose record fails its checksum is an error, never wrong bytes', async () => {
    const dir = await tempDir();
    const store = await openLogged(dir, { drainIdleMs: 3_600_000 });
    await store.put('k', bodyOf('k', 2000));
    const [name] = await readdir(join(dir, LOG_DIR));
    const path = join(dir, LOG_DIR, name);
    const bytes = await readFile(path);
    bytes[1000] ^= 0x01;
    await writeFile(path, bytes.subarray(0, 4096), { flag: 'r+' });
    await assert.rejects(store.get('k'), /fails its checksum/);
    bytes[1000] ^= 0x01;
    await writeFile(path, bytes.subarray(0, 4096), { flag: 'r+' });
    await store.close();
  });

  it('deletes: a deleted logged object stays deleted after a crash, a put after a delete stays', async () => {
    const dir = await tempDir();
    const acked = new Map<string, number>();
    const child = spawnStoreChild(
      dir,
      { drainIdleMs: 3_600_000 },
      `
      for (const key of ['d/keep', 'd/drop', 'd/again']) await store.put(key, bodyOf(key, 777));
      await store.delete('d/drop');
      await store.delete('d/again');
      await store.put('d/again', bodyOf('d/again', 777));
      for (const key of ['d/keep', 'd/again']) process.stdout.write('ack ' + key + ' 777\\n');
      process.stdout.write('done\\n');
      setInterval(() => {}, 1 << 30); // stays alive until killed
    `,
    );
    try {
      await watchChild(child, acked);
      for (let i = 0; i < 500 && acked.size < 2; i++) await new Promise((r) => setTimeout(r, 10));
    } finally {
      await killChild(child);
    }
    assert.equal(acked.size, 2);
    assert.notDeepEqual(await readdir(join(dir, LOG_DIR)), [], 'the child died with its log');
    const store = await openLogged(dir);
    assert.ok((await store.get('d/keep')).equals(bodyOf('d/keep', 777)));
    assert.ok((await store.get('d/again')).equals(bodyOf('d/again', 777)));
    assert.equal(await store.head('d/drop'), null);
    await store.close();
    assert.deepEqual((await readdir(join(dir, 'd'))).sort(), ['again', 'keep']);
  });

  it('two processes on one store: each reads, lists and deletes what the other logged', async () => {
    const dir = await tempDir();
    const acked = new Map<string, number>();
    const child = spawnStoreChild(
      dir,
      { drainIdleMs: 3_600_000 },
      `
      for (let i = 0; i < 20; i++) {
        const key = 'two/' + i;
        await store.put(key, bodyOf(key, 1000 + i));
        process.stdout.write('ack ' + key + ' ' + (1000 + i) + '\\n');
      }
      setInterval(() => {}, 1 << 30); // stays alive until killed
    `,
    );
    let here: LoggedFileStore | null = null;
    try {
      await watchChild(child, acked);
      for (let i = 0; i < 500 && acked.size < 20; i++) await new Promise((r) => setTimeout(r, 10));
      assert.equal(acked.size, 20);
      here = await openLogged(dir, { drainIdleMs: 3_600_000 });
      // Opened after the child's puts: found by the scan at open.
      assert.ok((await here.get('two/3')).equals(bodyOf('two/3', 1003)));
      assert.equal((await here.head('two/4'))?.sizeBytes, 1004);
      assert.equal((await collect(here.list('two/'))).length, 20);
      await here.delete('two/5');
      assert.equal(await here.head('two/5'), null);
      // The child dies. This store, missing the key, claims the child's segments: the key it
      // deleted does not come back. A third store reads everything through this one's log.
      await killChild(child);
      assert.equal(await here.head('two/5'), null);
      assert.ok((await here.get('two/6')).equals(bodyOf('two/6', 1006)));
      const third = await openLogged(dir);
      for (const [key, size] of acked) {
        if (key === 'two/5') continue;
        assert.ok((await third.get(key)).equals(bodyOf(key, size)), key);
      }
      assert.equal(await third.head('two/5'), null, 'the tombstone of the other process counts');
      await third.close();
      await here.close();
      here = null;
      assert.deepEqual(await readdir(join(dir, LOG_DIR)), []);
      assert.equal((await readdir(join(dir, 'two'))).length, 19);
      assert.ok(!(await readdir(join(dir, 'two'))).includes('5'));
    } finally {
      await killChild(child);
      await here?.close();
    }
  });

  it('a process that misses a key rescans the segments another live process appended since', async () => {
    const dir = await tempDir();
    const here = await openLogged(dir, { drainIdleMs: 3_600_000 });
    const acked = new Map<string, number>();
    const child = spawnStoreChild(
      dir,
      { drainIdleMs: 3_600_000 },
      `
      process.stdin.on('data', async (line) => {
        const key = line.toString().trim();
        await store.put(key, bodyOf(key, 4321));
        process.stdout.write('ack ' + key + ' 4321\\n');
      });
      setInterval(() => {}, 1 << 30); // stays alive until killed
    `,
    );
    try {
      await watchChild(child, acked);
      for (const key of ['late/1', 'late/2']) {
        child.stdin!.write(key + '\n');
        for (let i = 0; i < 500 && !acked.has(key); i++) await new Promise((r) => setTimeout(r, 10));
        assert.ok((await here.get(key)).equals(bodyOf(key, 4321)), key);
      }
    } finally {
      await killChild(child);
      await here.close();
    }
  });

  it('SIGKILL at random moments during puts, drains and rotations loses no acknowledged object', async () => {
    const dir = await tempDir();
    const seed = Number(process.env.STRATA_TEST_SEED ?? Date.now() % 1_000_000);
    let random = seed;
    const next = (): number => {
      random = (random * 1103515245 + 12345) % 2147483648;
      return random / 2147483648;
    };
    const rounds = process.env.STRATA_TEST_PROFILE === 'long' ? 30 : 8;
    const acked = new Map<string, number>();
    const leftOpen: LoggedFileStore[] = [];
    for (let round = 0; round < rounds; round++) {
      // Small segments so that kills land in rotations too; sizes on both sides of the threshold.
      const child = spawnStoreChild(
        dir,
        {
          segmentBytes: 96 * 1024,
          maxLoggedObjectBytes: 16 * 1024,
          drainIdleMs: 1,
          drainBatchObjects: 16,
          drainBacklogBytes: 32 * 1024,
        },
        `
        let n = 0;
        const one = async () => {
          for (;;) {
            const i = n++;
            const key = 'r${round}/' + (i % 5) + '/' + i;
            const size = [10, 900, 4096, 15000, 20000][i % 5];
            await store.put(key, bodyOf(key, size));
            process.stdout.write('ack ' + key + ' ' + size + '\\n');
            if (i % 7 === 3) {
              process.stdout.write('deleting ' + key + '\\n');
              await store.delete(key);
            }
          }
        };
        await Promise.all([one(), one(), one(), one()]);
      `,
      );
      try {
        await watchChild(child, acked);
        await new Promise((r) => setTimeout(r, 30 + next() * 400));
      } finally {
        await killChild(child);
      }
      const store = await openLogged(dir);
      try {
        for (const [key, size] of acked) {
          let data: Buffer;
          try {
            data = await store.get(key);
          } catch (error) {
            assert.fail(`seed ${seed} round ${round}: acknowledged ${key} lost: ${String(error)}`);
          }
          assert.ok(data.equals(bodyOf(key, size)), `seed ${seed} round ${round}: ${key} has wrong bytes`);
        }
      } finally {
        // Every other round the reopened store closes cleanly; otherwise it stays open (its
        // segments belong to a live process) while the next child runs.
        if (round % 2 === 0) await store.close();
        else leftOpen.push(store);
      }
    }
    for (const store of leftOpen) await store.close();
    assert.ok(acked.size > 0);
    assert.deepEqual(await readdir(join(dir, LOG_DIR)), []);
  });

  it('keeps what it has not written out when the drain fails, and retries', async () => {
    const dir = await tempDir();
    const plain = new FileObjectStore(dir);
    let failures = 2;
    const flaky = Object.assign(Object.create(plain) as FileObjectStore, {
      putWithoutSync: async (key: string, data: Buffer) => {
        if (failures-- > 0) throw Object.assign(new Error('ENOSPC'), { code: 'ENOSPC' });
        return plain.putWithoutSync(key, data);
      },
    });
    const store = await LoggedFileStore.open(flaky, { drainRetryMs: 20 });
    await store.put('f/1', Buffer.from('one'));
    for (let i = 0; i < 500 && store.loggedObjects > 0; i++) await new Promise((r) => setTimeout(r, 10));
    assert.equal(store.loggedObjects, 0);
    assert.equal((await readFile(join(dir, 'f/1'))).toString(), 'one');
    assert.equal(failures, -1, 'the drain failed twice, then wrote the object out');
    await store.close();
  });
});

describe('small-object log drain without a sync program', () => {
  it('syncs each object when the file-system sync cannot run', async () => {
    const dir = await tempDir();
    const plain = new FileObjectStore(dir);
    let durablePuts = 0;
    const noSync = Object.assign(Object.create(plain) as FileObjectStore, {
      syncFileSystem: () =>
        Promise.reject(
          new Error('no sync', { cause: Object.assign(new Error('spawn sync ENOENT'), { code: 'ENOENT' }) }),
        ),
      put: (key: string, data: Buffer) => {
        durablePuts++;
        return plain.put(key, data);
      },
    });
    const store = await LoggedFileStore.open(noSync, { drainIdleMs: 1 });
    await Promise.all(['n/1', 'n/2', 'n/3'].map((key) => store.put(key, Buffer.from(key))));
    await store.close();
    assert.equal(durablePuts, 3);
    assert.deepEqual((await readdir(join(dir, 'n'))).sort(), ['1', '2', '3']);
  });
});

// Garbage beside segments (a crashed tool's file, a name without an owner) is left alone.
describe('small-object log folder', () => {
  it('ignores files that are not segments', async () => {
    const dir = await tempDir();
    await mkdir(join(dir, LOG_DIR), { recursive: true });
    await appendFile(join(dir, LOG_DIR, 'notes.txt'), randomBytes(100));
    const store = await openLogged(dir);
    await store.put('x', Buffer.from('x'));
    await store.close();
    assert.deepEqual(await readdir(join(dir, LOG_DIR)), ['notes.txt']);
  });
});
