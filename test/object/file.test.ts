import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, open, readdir, readlink, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { ObjectNotFoundError, openObjectStore } from '../../src/object/index.js';
import { FileObjectStore, fileStoreRoot } from '../../src/object/backends/file.js';
import { allocDirectBuffer, nativePut } from '../../src/object/backends/native-put.js';
import { mountTmpfs } from '../reliability/tmpfs.js';
import { describeObjectStoreConformance } from './conformance.js';

const dirs: string[] = [];
async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'strata-data-file-'));
  dirs.push(dir);
  return dir;
}
after(async () => {
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
});

describeObjectStoreConformance('file', async () => openObjectStore(`file://${await tempDir()}`));
describeObjectStoreConformance(
  'file, JavaScript puts only',
  async () => new FileObjectStore(await tempDir(), { nativePut: false }),
);

describe('file backend', () => {
  it('accepts file:///abs, file:/abs and file:relative URLs', () => {
    assert.equal(fileStoreRoot('file:///var/x'), '/var/x');
    assert.equal(fileStoreRoot('file:/var/x'), '/var/x');
    assert.equal(fileStoreRoot('file:rel/dir'), join(process.cwd(), 'rel/dir'));
  });

  it('rejects keys that could escape the root', async () => {
    const store = new FileObjectStore(await tempDir());
    for (const key of ['../x', 'a/../../x', '/abs', 'a//b', '', 'a/', '.strata-tmp/x']) {
      await assert.rejects(store.put(key, Buffer.from('x')), /invalid object key/);
    }
  });

  it('concurrent puts into one directory and into many all land whole, sharing directory syncs', async () => {
    const dir = await tempDir();
    const store = new FileObjectStore(dir);
    const body = (i: number) => Buffer.alloc(1000 + i, i & 255);
    // Waves of puts: each wave's puts rename while an earlier directory sync is still running.
    const keys: string[] = [];
    const puts: Promise<void>[] = [];
    for (let i = 0; i < 96; i++) {
      const key = i % 3 === 0 ? `d${i % 7}/o${i}` : `same/o${i}`;
      keys.push(key);
      puts.push(store.put(key, body(i)));
      if (i % 16 === 15) await Promise.race(puts);
    }
    await Promise.all(puts);
    for (let i = 0; i < keys.length; i++) assert.ok((await store.get(keys[i])).equals(body(i)), keys[i]);
    assert.deepEqual(await readdir(join(dir, '.strata-tmp')), []);
    // Later puts into a directory whose syncs went idle still work.
    await store.put('same/late', Buffer.from('late'));
    assert.equal((await store.get('same/late')).toString(), 'late');
    await store.close();
  });

  it(
    'a put with no other put in its directory is one native job; the others share directory syncs',
    {
      skip: nativePut() ? false : 'native/objput is not built (npm run build)',
    },
    async () => {
      const dir = await tempDir();
      const store = new FileObjectStore(dir);
      // Serial puts, the first into each directory making it (in the same job).
      for (let i = 0; i < 10; i++) await store.put(`d${i % 2}/o${i}`, Buffer.from(`serial ${i}`));
      assert.equal(store.nativePuts, 10);
      // New directories several levels down: made on the JavaScript path (mkdir -p), then native.
      await store.put('deep/er/still/o', Buffer.from('deep'));
      assert.equal((await store.get('deep/er/still/o')).toString(), 'deep');
      // Sixteen at once into one directory: one of them native at a time, the rest in JavaScript.
      await Promise.all(Array.from({ length: 16 }, (_, i) => store.put(`same/o${i}`, Buffer.alloc(5000, i))));
      assert.ok(store.nativePuts < 11 + 16, `${store.nativePuts - 11} of 16 concurrent puts were native`);
      for (let i = 0; i < 16; i++) assert.ok((await store.get(`same/o${i}`)).equals(Buffer.alloc(5000, i)));
      for (let i = 0; i < 10; i++)
        assert.equal((await store.get(`d${i % 2}/o${i}`)).toString(), `serial ${i}`);
      assert.deepEqual(await readdir(join(dir, '.strata-tmp')), []);
      // A native put that fails (its target is a directory) says why, as fs does, and leaves no temporary file.
      await store.put('t/inner/x', Buffer.from('x'));
      const failure = await store.put('t/inner', Buffer.from('y')).then(
        () => undefined,
        (error: NodeJS.ErrnoException) => error,
      );
      assert.ok(failure && ['EISDIR', 'ENOTEMPTY', 'EEXIST'].includes(failure.code ?? ''), String(failure));
      assert.equal(failure.syscall, 'rename');
      assert.deepEqual(await readdir(join(dir, '.strata-tmp')), []);
      await store.close();
    },
  );

  it('a directory that could not be created is tried again by the next put, not remembered', async () => {
    const store = new FileObjectStore(await tempDir());
    await store.put('x', Buffer.from('an object where a directory is wanted'));
    await assert.rejects(store.put('x/y/z', Buffer.from('1')), /a parent of it is already an object/);
    await store.delete('x');
    // New nested directories: their entries' syncs run alongside the object's own.
    await Promise.all([store.put('x/y/z', Buffer.from('1')), store.put('x/y/w', Buffer.from('2'))]);
    assert.equal((await store.get('x/y/z')).toString(), '1');
    assert.equal((await store.get('x/y/w')).toString(), '2');
    await store.close();
  });

  it('a put killed mid-way leaves no object or the whole object, and no visible temp files', async () => {
    const dir = await tempDir();
    const backend = fileURLToPath(new URL('../../src/object/backends/file.js', import.meta.url));
    const sizeBytes = 48 * 1024 * 1024;
    // The child fills a buffer with a pattern and puts it under ever new keys until killed.
    const script = `
      const { FileObjectStore } = await import(${JSON.stringify(backend)});
      const store = new FileObjectStore(${JSON.stringify(dir)});
      const data = Buffer.alloc(${sizeBytes});
      for (let i = 0; i < data.length; i++) data[i] = (i * 7) & 255;
      process.stdout.write('ready\\n');
      for (let n = 0; ; n++) await store.put('k/' + n, data);
    `;
    const expected = createHash('sha256');
    const pattern = Buffer.alloc(sizeBytes);
    for (let i = 0; i < pattern.length; i++) pattern[i] = (i * 7) & 255;
    const expectedDigest = expected.update(pattern).digest('hex');
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    try {
      await new Promise<void>((resolve, reject) => {
        child.stdout.on('data', (chunk: Buffer) => {
          if (chunk.toString().includes('ready')) resolve();
        });
        child.on('exit', (code) => reject(new Error(`child exited early with ${code}`)));
      });
      await new Promise((resolve) => setTimeout(resolve, 400));
    } finally {
      child.kill('SIGKILL');
      await new Promise((resolve) => child.once('close', resolve));
    }
    const store = await openObjectStore(`file://${dir}`, { retry: false });
    const keys: string[] = [];
    for await (const info of store.list('')) keys.push(info.key);
    for (const key of keys) {
      assert.match(key, /^k\/\d+$/);
      const digest = createHash('sha256')
        .update(await store.get(key))
        .digest('hex');
      assert.equal(digest, expectedDigest, `object ${key} is partial after the crash`);
    }
    // The interrupted put's temporary file exists but is not an object.
    const tmpFiles = await readdir(join(dir, '.strata-tmp')).catch(() => []);
    assert.ok(tmpFiles.length <= 1);
    await store.close();
  });

  it('puts, failed ones included, leave no file or directory of the store open once settled', async () => {
    const dir = await tempDir();
    const store = new FileObjectStore(dir);
    const openUnderStore = async (): Promise<string[]> => {
      const links = await Promise.all(
        (await readdir('/proc/self/fd')).map((fd) => readlink(`/proc/self/fd/${fd}`).catch(() => '')),
      );
      return links.filter((target) => target.startsWith(dir));
    };
    // Serial and overlapping puts over a few directories (directory handles are opened ahead
    // of each sync and closed after it, off the put's critical path).
    for (let i = 0; i < 20; i++) await store.put(`d${i % 3}/s${i}`, Buffer.from(`s${i}`));
    await Promise.all(
      Array.from({ length: 40 }, (_, i) => store.put(`d${i % 4}/p${i}`, Buffer.from(`p${i}`))),
    );
    // A put that fails after its directory was prepared: its target name is a directory.
    await store.put('d0/x/y', Buffer.from('y'));
    await assert.rejects(store.put('d0/x', Buffer.from('x')));
    // Closes run in the background: wait (bounded) until they all have.
    let left = await openUnderStore();
    for (let i = 0; i < 200 && left.length > 0; i++) {
      await new Promise((resolve) => setTimeout(resolve, 10));
      left = await openUnderStore();
    }
    assert.deepEqual(left, []);
    assert.equal((await store.get('d3/p39')).toString(), 'p39');
    await store.close();
  });
});

describe(
  'file backend: objects allocated ahead',
  { skip: nativePut() ? false : 'native/objput is not built (npm run build)' },
  () => {
    const native = nativePut()!;

    it('allocate gives an open file its whole length before a byte is written, from allocateMinBytes on', async () => {
      const dir = await tempDir();
      const file = await open(join(dir, 'f'), 'w');
      try {
        await native.allocate(file.fd, native.allocateMinBytes - 1, 'small');
        assert.equal((await file.stat()).size, 0, 'below allocateMinBytes nothing is allocated');
        const length = native.allocateMinBytes * 16 + 100;
        await native.allocate(file.fd, length, 'large');
        const { size, blocks } = await file.stat();
        assert.equal(size, length);
        assert.ok(blocks * 512 >= length, `${blocks} blocks of 512 bytes hold ${length} bytes`);
      } finally {
        await file.close();
      }
      await assert.rejects(
        native.allocate(1_000_000, native.allocateMinBytes, 'nowhere'),
        (error: NodeJS.ErrnoException) => {
          assert.equal(error.code, 'EBADF');
          assert.equal(error.syscall, 'fallocate');
          assert.match(error.message, /'nowhere'/);
          return true;
        },
      );
    });

    it(
      'a store without room for an object says ENOSPC when allocating, on both put paths, and keeps no partial file',
      { skip: process.getuid?.() === 0 ? false : 'needs root to mount a tmpfs' },
      async () => {
        const small = mountTmpfs('objects', 1024 * 1024);
        try {
          const store = new FileObjectStore(small.path);
          const javascriptStore = new FileObjectStore(small.path, { nativePut: false });
          await store.put('d/first', Buffer.alloc(1000, 1));
          for (const putter of [store, javascriptStore]) {
            await assert.rejects(
              putter.put('d/big', Buffer.alloc(2 * 1024 * 1024, 7)),
              (error: NodeJS.ErrnoException) => {
                assert.equal(error.code, 'ENOSPC', String(error));
                assert.equal(error.syscall, 'fallocate', String(error));
                return true;
              },
            );
          }
          assert.equal(store.nativePuts, 1);
          await javascriptStore.put('d/small', Buffer.from('s'));
          assert.equal(javascriptStore.nativePuts, 0);
          await javascriptStore.close();
          assert.deepEqual(await readdir(join(small.path, '.strata-tmp')), []);
          assert.deepEqual((await readdir(join(small.path, 'd'))).sort(), ['first', 'small']);
          assert.ok((await store.get('d/first')).equals(Buffer.alloc(1000, 1)));
          await store.close();
        } finally {
          small.dispose();
        }
      },
    );
  },
);

describe(
  'file backend: whole objects read past the page cache',
  { skip: nativePut() ? false : 'native/objput is not built (npm run build)' },
  () => {
    const native = nativePut()!;
    const MiB = 1024 * 1024;

    it('readDirect reads whole pages with O_DIRECT and the rest through the cache, nothing past the view', async () => {
      const dir = await tempDir();
      const memory = allocDirectBuffer(3 * MiB);
      for (const size of [0, 100, 4096, 3 * 4096, 3 * 4096 + 5, 2 * MiB + 4095]) {
        const data = randomBytes(size);
        await writeFile(join(dir, 'f'), data);
        memory.fill(0xa5);
        const view = memory.subarray(0, size);
        assert.equal(await native.readDirect(join(dir, 'f'), view), size);
        assert.ok(view.equals(data), `${size} bytes read whole`);
        assert.ok(
          memory.subarray(size).every((byte) => byte === 0xa5),
          `nothing past ${size} bytes written`,
        );
      }
      // A file larger than the view: its size, and nothing read.
      memory.fill(0xa5);
      assert.equal(await native.readDirect(join(dir, 'f'), memory.subarray(0, MiB)), 2 * MiB + 4095);
      assert.ok(memory.every((byte) => byte === 0xa5));
      // A view not on a 4 KiB boundary, and a missing file, say so as fs would.
      await assert.rejects(native.readDirect(join(dir, 'f'), memory.subarray(512)), {
        code: 'EINVAL',
        syscall: 'readDirect',
      });
      await assert.rejects(native.readDirect(join(dir, 'missing'), memory), {
        code: 'ENOENT',
        syscall: 'open',
      });
    });

    it('get reads a whole object into an aligned buffer directly, and anything else through the page cache', async () => {
      const store = new FileObjectStore(await tempDir());
      const data = randomBytes(4 * MiB + 1036);
      await store.put('b/one', data);
      const into = allocDirectBuffer(data.length);
      const read = await store.get('b/one', undefined, undefined, into);
      assert.ok(read.equals(data));
      assert.equal(read.buffer, into.buffer, 'read into the given memory');
      assert.equal(read.byteOffset, into.byteOffset);
      assert.equal(store.directReads, 1);
      // Not aligned, too small, ranged, or without a buffer: the same bytes the other way.
      const unaligned = allocDirectBuffer(data.length + 4096).subarray(16, 16 + data.length);
      assert.ok((await store.get('b/one', undefined, undefined, unaligned)).equals(data));
      assert.ok((await store.get('b/one', undefined, undefined, allocDirectBuffer(2 * MiB))).equals(data));
      assert.ok(
        (await store.get('b/one', 0, 2 * MiB, allocDirectBuffer(2 * MiB))).equals(data.subarray(0, 2 * MiB)),
      );
      assert.ok((await store.get('b/one')).equals(data));
      assert.equal(store.directReads, 1);
      await assert.rejects(store.get('b/none', undefined, undefined, into), ObjectNotFoundError);
      await store.close();
    });

    it('a file system that refuses O_DIRECT is asked once, then read through the page cache', async () => {
      const ramfs = mountTmpfs('nodirect', MiB, 'ramfs');
      try {
        await writeFile(join(ramfs.path, 'probe'), 'x');
        await assert.rejects(native.readDirect(join(ramfs.path, 'probe'), allocDirectBuffer(MiB)), {
          code: 'EINVAL',
          syscall: 'open',
        });
        const store = new FileObjectStore(ramfs.path);
        const data = randomBytes(2 * MiB);
        await store.put('b/one', data);
        assert.equal(store.readsPastPageCache, process.env.STRATA_DIRECT_READS !== '0');
        for (let round = 0; round < 2; round++) {
          assert.ok(
            (await store.get('b/one', undefined, undefined, allocDirectBuffer(data.length))).equals(data),
          );
          assert.equal(store.readsPastPageCache, false, 'not asked again');
        }
        assert.equal(store.directReads, 0);
        await store.close();
      } finally {
        ramfs.dispose();
      }
    });
  },
);

describe('file backend: objects kept open for reads', () => {
  const openUnder = async (dir: string): Promise<string[]> => {
    const links = await Promise.all(
      (await readdir('/proc/self/fd')).map((fd) => readlink(`/proc/self/fd/${fd}`).catch(() => '')),
    );
    return links.filter((target) => target.startsWith(dir));
  };
  const eventually = async (check: () => Promise<boolean>): Promise<void> => {
    for (let i = 0; i < 200 && !(await check()); i++) await new Promise((resolve) => setTimeout(resolve, 10));
    assert.ok(await check());
  };

  it('reads an object through one open file, ranged or whole, and closes it on put, delete and close', async () => {
    const dir = await tempDir();
    const store = new FileObjectStore(dir);
    await store.put('a/one', Buffer.from('0123456789'));
    assert.equal((await store.get('a/one')).toString(), '0123456789');
    assert.equal((await store.get('a/one', 3, 4)).toString(), '3456');
    assert.equal((await store.get('a/one', 8, 10)).toString(), '89', 'a range past the end is cut short');
    assert.equal((await store.get('a/one', 20, 4)).length, 0);
    // Into a caller's buffer when it is large enough (the data path reuses block memory so).
    const into = Buffer.alloc(16);
    const got = await store.get('a/one', 2, 5, into);
    assert.equal(got.toString(), '23456');
    assert.equal(got.buffer, into.buffer);
    assert.equal(got.byteOffset, into.byteOffset);
    const tooSmall = Buffer.alloc(3);
    assert.equal((await store.get('a/one', undefined, undefined, tooSmall)).toString(), '0123456789');
    assert.ok(tooSmall.equals(Buffer.alloc(3)), 'a buffer too small is left alone');
    // One descriptor for all those reads (the put's directory handles close in the background).
    await eventually(async () => (await openUnder(dir)).join() === join(dir, 'a/one'));
    // A put over the key: the next read sees the new object, not the file kept open.
    await store.put('a/one', Buffer.from('abc'));
    assert.equal((await store.get('a/one')).toString(), 'abc');
    // A delete: the object is gone for the next read.
    await store.delete('a/one');
    await assert.rejects(store.get('a/one'), ObjectNotFoundError);
    await eventually(async () => (await openUnder(dir)).length === 0);
    // A directory is not an object, and is not kept open.
    await store.put('d/x', Buffer.from('x'));
    await assert.rejects(store.get('d'), ObjectNotFoundError);
    assert.equal((await store.get('d/x')).toString(), 'x');
    await store.close();
    await eventually(async () => (await openUnder(dir)).length === 0);
  });

  it('keeps at most 64 objects open however many are read', async () => {
    const dir = await tempDir();
    const store = new FileObjectStore(dir);
    for (let i = 0; i < 100; i++) await store.put(`k/${i}`, Buffer.from(`v${i}`));
    for (let i = 0; i < 100; i++) assert.equal((await store.get(`k/${i}`)).toString(), `v${i}`);
    await eventually(async () => (await openUnder(dir)).length <= 64);
    assert.equal(store.openObjects.size, 64);
    await store.close();
    await eventually(async () => (await openUnder(dir)).length === 0);
  });
});

describe('registry', () => {
  it('rejects unknown schemes and malformed URLs, listing the accepted forms', async () => {
    await assert.rejects(
      openObjectStore('ftp://x/y'),
      /unsupported object store scheme "ftp:".*file:\/\/\/absolute\/dir/,
    );
    await assert.rejects(openObjectStore('/just/a/path'), /invalid object store URL.*expected one of/);
    await assert.rejects(openObjectStore('file:'), /no directory given/);
  });

  it('wraps the backend in retry unless asked not to', async () => {
    const dir = await tempDir();
    const wrapped = await openObjectStore(`file:${dir}`);
    const bare = await openObjectStore(`file:${dir}`, { retry: false });
    assert.equal(wrapped.constructor.name, 'RetryingObjectStore');
    assert.equal(bare.constructor.name, 'FileObjectStore');
    assert.equal(bare.description, `file://${dir}`);
  });
});
