import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { cleanup, sh, startUp, tempDir, tmpfsTwinOf, type StrataProcess } from './harness.js';

// st_blocks on a real mount (stat %b, du, ls -s), step by step beside the same steps on tmpfs
// (/dev/shm), which reports the pages a file really holds: a sparse file counts its data, not
// its size. tmpfs counts whole 4 KiB pages where strata counts bytes (in 512-byte units), so
// each file may differ by less than a page.
const root = tempDir('allocated');
const mnt = join(root, 'mnt');
const local = tmpfsTwinOf(root);
const PAGE_SECTORS = 8;
let up: StrataProcess | undefined;

before(async () => {
  mkdirSync(local);
  up = await startUp(join(root, 'data'), mnt);
});

after(async () => {
  await cleanup([up], [mnt], [root, local]);
});

interface Seen {
  sizeBytes: number;
  /** stat -c %b: 512-byte blocks. */
  blocks: number;
  /** du -B1: bytes. */
  duBytes: number;
  /** ls -s --block-size=1: bytes. */
  lsBytes: number;
}

function seen(dir: string, name: string): Seen {
  const path = join(dir, name);
  const [sizeBytes, blocks] = sh(`stat -c '%s %b' ${path}`).trim().split(' ').map(Number);
  const duBytes = Number(sh(`du -B1 ${path}`).split(/\s/)[0]);
  const lsBytes = Number(sh(`ls -s --block-size=1 ${path}`).trim().split(/\s/)[0]);
  return { sizeBytes, blocks, duBytes, lsBytes };
}

/** Runs `script` in both directories, then compares what each says about `names`. */
function step(label: string, script: string, names: string[]): Map<string, Seen> {
  const out = new Map<string, Seen>();
  for (const dir of [local, mnt]) sh(script, dir);
  for (const name of names) {
    const mine = seen(mnt, name);
    const tmpfs = seen(local, name);
    out.set(name, mine);
    const what = `${label}: ${name} (strata ${JSON.stringify(mine)}, tmpfs ${JSON.stringify(tmpfs)})`;
    assert.equal(mine.sizeBytes, tmpfs.sizeBytes, what);
    assert.ok(Math.abs(mine.blocks - tmpfs.blocks) < PAGE_SECTORS, what);
    assert.equal(mine.duBytes, mine.blocks * 512, `${what}: du counts st_blocks`);
    assert.equal(mine.lsBytes, mine.blocks * 512, `${what}: ls -s counts st_blocks`);
  }
  return out;
}

const GiB = 1024 ** 3;
const MiB = 1024 ** 2;

test('a 10 GiB sparse file counts the data written into it, not its size', () => {
  const s = step(
    'truncate, then 1 MiB written 5000 MiB in',
    'truncate -s 10G f && dd if=/dev/urandom of=f bs=1M count=1 seek=5000 conv=notrunc status=none',
    ['f'],
  );
  const f = s.get('f')!;
  assert.equal(f.sizeBytes, 10 * GiB);
  assert.equal(f.blocks, MiB / 512, 'exactly the megabyte written');
  assert.ok(f.blocks * 512 < f.sizeBytes, 'st_blocks < size: tools see a sparse file');
});

test('fallocate -p takes the punched range out', () => {
  const s = step('a hole punched in the data', `fallocate -p -o ${5000 * MiB + 256 * 1024} -l 256KiB f`, [
    'f',
  ]);
  assert.equal(s.get('f')!.blocks, (768 * 1024) / 512);
});

test('cp --sparse=always keeps the copy small; a plain small file counts its bytes', () => {
  const s = step(
    'sparse copy and small files',
    'cp --sparse=always f g && printf hello > small && dd if=/dev/urandom of=odd bs=1000 count=5 status=none',
    ['g', 'small', 'odd'],
  );
  assert.ok(s.get('g')!.blocks <= (768 * 1024) / 512 + PAGE_SECTORS, `copy: ${s.get('g')!.blocks} blocks`);
  assert.equal(s.get('small')!.blocks, 1, 'five bytes: one 512-byte unit');
  assert.equal(s.get('odd')!.blocks, Math.ceil(5000 / 512));
});

test('truncate down gives the data back; truncate up adds none; du of the tree adds it up', () => {
  const s = step(
    'truncate down into the data (past the punched hole), then up',
    `truncate -s ${5000 * MiB + 512 * 1024} f && truncate -s 20G f`,
    ['f'],
  );
  assert.equal(s.get('f')!.blocks, (256 * 1024) / 512);
  const total = Number(sh(`du -s -B1 ${mnt}`).split(/\s/)[0]);
  const files = ['f', 'g', 'small', 'odd'].reduce((sum, name) => sum + seen(mnt, name).blocks * 512, 0);
  assert.equal(total, files, 'directories count no blocks of their own');
});

test('a file still being written counts its written bytes before its close, so tar --sparse archives them', () => {
  // The service counts committed data only; the writes here stay pending until the close.
  const out = sh(
    `python3 -c "
import os, subprocess
fd = os.open('${mnt}/writing', os.O_CREAT | os.O_WRONLY, 0o644)
os.write(fd, os.urandom(300000))
print(os.fstat(fd).st_blocks, subprocess.run(['stat', '-c', '%b', '${mnt}/writing'], capture_output=True, text=True).stdout.strip())
os.close(fd)
print(os.stat('${mnt}/writing').st_blocks)
"`,
  );
  const [whileOpen, byPath, afterClose] = out.trim().split(/\s+/).map(Number);
  const written = Math.ceil(300000 / 512);
  assert.ok(whileOpen >= written, `fstat while writing: ${whileOpen} blocks`);
  assert.ok(byPath >= written, `stat by another process while writing: ${byPath} blocks`);
  assert.equal(afterClose, written, 'exact once committed');
});
