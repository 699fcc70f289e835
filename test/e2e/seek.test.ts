import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cleanup, sh, startUp, tempDir, tmpfsTwinOf, type StrataProcess } from './harness.js';

// SEEK_DATA / SEEK_HOLE on a real mount, compared with the same steps on tmpfs (/dev/shm),
// which reports holes exactly at page granularity: every offset below is page aligned.
const root = tempDir('seek');
const mnt = join(root, 'mnt');
const local = tmpfsTwinOf(root);
const script = join(root, 'seek-map.py');
let up: StrataProcess | undefined;

// Each step changes the file "f" in DIR, then prints what lseek answers at a set of offsets
// (the same fd for the unflushed step, so the writes are still pending in the mount).
const SEEK_MAP_PY = `
import ctypes, errno, json, os, sys
d = sys.argv[1]
MiB = 1 << 20
libc = ctypes.CDLL(None, use_errno=True)
libc.fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_long, ctypes.c_long]
def probe(fd, label):
    size = os.fstat(fd).st_size
    offsets = sorted({0, 4096, MiB - 4096, MiB, 2 * MiB, 3 * MiB, 3 * MiB + 65536, 4 * MiB, 5 * MiB,
                      64 * MiB, 130 * MiB, max(size - 4096, 0), size, size + 4096})
    out = []
    for off in offsets:
        for name, whence in (("data", os.SEEK_DATA), ("hole", os.SEEK_HOLE)):
            try:
                r = os.lseek(fd, off, whence)
            except OSError as e:
                r = errno.errorcode[e.errno]
            out.append([off, name, r])
    print(json.dumps({"step": label, "size": size, "seeks": out}))
p = os.path.join(d, "f")
fd = os.open(p, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
os.pwrite(fd, b"a" * MiB, 0)
os.pwrite(fd, b"b" * MiB, 3 * MiB)
os.ftruncate(fd, 6 * MiB)
os.close(fd)
fd = os.open(p, os.O_RDONLY)
probe(fd, "data, hole, data, hole at end")
os.close(fd)
fd = os.open(p, os.O_RDWR)
if libc.fallocate(fd, 3, 3 * MiB + 65536, 131072) != 0:
    raise OSError(ctypes.get_errno(), "fallocate punch hole")
os.close(fd)
fd = os.open(p, os.O_RDONLY)
probe(fd, "after punching a hole inside the second data range")
os.close(fd)
fd = os.open(p, os.O_RDWR)
os.ftruncate(fd, 512 * 1024)
os.ftruncate(fd, 140 * MiB)
os.close(fd)
fd = os.open(p, os.O_RDONLY)
probe(fd, "after truncating down and up past two chunk boundaries")
os.close(fd)
fd = os.open(p, os.O_RDWR)
os.pwrite(fd, b"c" * 65536, 130 * MiB)
os.pwrite(fd, b"d" * 4096, 2 * MiB)
probe(fd, "with unflushed writes on the same descriptor")
os.close(fd)
fd = os.open(p, os.O_RDONLY)
probe(fd, "after close")
os.close(fd)
`;

before(async () => {
  writeFileSync(script, SEEK_MAP_PY);
  mkdirSync(local);
  up = await startUp(join(root, 'data'), mnt);
});

after(async () => {
  await cleanup([up], [mnt], [root, local]);
});

function seekMap(dir: string): unknown[] {
  return sh(`python3 ${script} ${dir}`)
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as unknown);
}

test('SEEK_DATA and SEEK_HOLE answer as on tmpfs: holes, punched holes, truncate up, unflushed writes', () => {
  const expected = seekMap(local);
  const got = seekMap(mnt);
  assert.equal(got.length, 5);
  for (let i = 0; i < expected.length; i++) assert.deepEqual(got[i], expected[i]);
});

test('cp --sparse=always of a sparse file on the mount keeps its data and its holes', () => {
  const src = join(mnt, 'f');
  const dst = join(mnt, 'f-copy');
  sh(`cp --sparse=always ${src} ${dst}`);
  assert.equal(sh(`cmp ${src} ${dst} && echo same`).trim(), 'same');
  const seeks = (file: string): number[] =>
    sh(
      `python3 -c 'import os,sys; fd=os.open(sys.argv[1], os.O_RDONLY); print(os.lseek(fd, 0, os.SEEK_HOLE), os.lseek(fd, 3 << 20, os.SEEK_DATA))' ${file}`,
    )
      .trim()
      .split(' ')
      .map(Number);
  const [srcHole, srcDataAfterHole] = seeks(src);
  const [dstHole, dstDataAfterHole] = seeks(dst);
  // cp writes whole buffers of st_blksize bytes, so the copy's first hole may start later
  // than the source's, but the copy must not be dense: the 127 MiB hole stays a hole.
  assert.ok(dstHole >= srcHole && dstHole < 2 * 1024 * 1024, `first hole of the copy at ${dstHole}`);
  assert.equal(dstDataAfterHole, srcDataAfterHole);
});
