import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { type Ino } from '../../src/common/index.js';
import { Fattr, fuse_dirent, fuse_direntplus, fuse_entry_out, fuse_setattr_in } from '../../src/fuse/abi.js';
import {
  readAttr,
  readCString,
  readI32,
  readLock,
  readS64,
  readU32,
  readU64,
  writeAttr,
  writeEntryOut,
  writeLock,
  writeS64,
  writeU32,
  writeU64,
} from '../../src/fuse/codec.js';
import { packDirents } from '../../src/fuse/dirents.js';
import { decodeSetattr } from '../../src/fuse/setattr.js';
import type { FuseAttr } from '../../src/fuse/index.js';

const attr: FuseAttr = {
  ino: 4_294_967_301 as Ino,
  sizeBytes: 5 * 1024 ** 3 + 7,
  blocks: 12,
  atimeSec: -86_400,
  atimeNsec: 999_999_999,
  mtimeSec: 1_700_000_000,
  mtimeNsec: 1,
  ctimeSec: 4_102_444_800,
  ctimeNsec: 0,
  mode: 0o100644,
  nlink: 3,
  uid: 65534,
  gid: 4_000_000_000,
  rdev: 0x0801,
  blksize: 65536,
};

test('32-bit fields by byte agree with Buffer.writeUInt32LE/readUInt32LE/readInt32LE, and refuse offsets outside', () => {
  fc.assert(
    fc.property(fc.integer({ min: -(2 ** 31), max: 2 ** 32 - 1 }), fc.nat(12), (value, offset) => {
      const ours = Buffer.alloc(16, 0xaa);
      const node = Buffer.alloc(16, 0xaa);
      writeU32(ours, offset, value);
      if (value < 0) node.writeInt32LE(value, offset);
      else node.writeUInt32LE(value, offset);
      assert.deepEqual(ours, node);
      assert.equal(readU32(ours, offset), node.readUInt32LE(offset));
      assert.equal(readI32(ours, offset), node.readInt32LE(offset));
    }),
    { seed: 0x3232 },
  );
  assert.throws(() => writeU32(Buffer.alloc(8), 5, 1), RangeError);
  assert.throws(() => readU32(Buffer.alloc(8), -1), RangeError);
});

test('64-bit fields round-trip through the two-halves codec, including negatives', () => {
  fc.assert(
    fc.property(fc.integer({ min: Number.MIN_SAFE_INTEGER, max: Number.MAX_SAFE_INTEGER }), (value) => {
      const buf = Buffer.alloc(8);
      writeS64(buf, 0, value);
      assert.equal(buf.readBigInt64LE(0), BigInt(value));
      assert.equal(readS64(buf, 0), value);
      if (value >= 0) {
        writeU64(buf, 0, value);
        assert.equal(buf.readBigUInt64LE(0), BigInt(value));
        assert.equal(readU64(buf, 0), value);
      }
    }),
  );
});

test('an attribute written and read back is the same, with pre-1970 times and > 4 GiB sizes', () => {
  const buf = Buffer.alloc(200);
  writeAttr(buf, 8, attr);
  assert.deepEqual(readAttr(buf, 8), attr);
  assert.equal(buf.readBigInt64LE(8 + 24), -86_400n);
});

test('an entry reply carries the timeouts split into seconds and nanoseconds', () => {
  const buf = Buffer.alloc(fuse_entry_out.size);
  writeEntryOut(buf, 0, { attr, generation: 9, entryTimeoutMs: 1500, attrTimeoutMs: 0.25 });
  assert.equal(readU64(buf, fuse_entry_out.nodeid), attr.ino);
  assert.equal(readU64(buf, fuse_entry_out.generation), 9);
  assert.equal(readU64(buf, fuse_entry_out.entry_valid), 1);
  assert.equal(buf.readUInt32LE(fuse_entry_out.entry_valid_nsec), 500_000_000);
  assert.equal(readU64(buf, fuse_entry_out.attr_valid), 0);
  assert.equal(buf.readUInt32LE(fuse_entry_out.attr_valid_nsec), 250_000);
  assert.deepEqual(readAttr(buf, fuse_entry_out.attr), attr);
});

test('a lock to end of file keeps the kernel OFFSET_MAX on the wire', () => {
  const buf = Buffer.alloc(24);
  buf.writeBigUInt64LE(0x7fff_ffff_ffff_ffffn, 8);
  const lock = readLock(buf, 0);
  assert.equal(lock.end, Number.MAX_SAFE_INTEGER);
  const out = Buffer.alloc(24);
  writeLock(out, 0, { ...lock, start: 10, type: 1, pid: 42 });
  assert.equal(out.readBigUInt64LE(8), 0x7fff_ffff_ffff_ffffn);
  assert.deepEqual(readLock(out, 0), { start: 10, end: Number.MAX_SAFE_INTEGER, type: 1, pid: 42 });
});

test('names are read up to their NUL, and the next name follows it', () => {
  const buf = Buffer.from('abc\0héllo\0', 'utf8');
  const [first, next] = readCString(buf, 0, buf.length);
  assert.equal(first, 'abc');
  assert.equal(readCString(buf, next, buf.length)[0], 'héllo');
});

test('directory entries are packed 8-byte aligned, only as many as fit, with zeroed padding', () => {
  const entries = Array.from({ length: 50 }, (_, i) => ({
    name: `file-${'x'.repeat(i % 9)}-${i}`,
    ino: (100 + i) as Ino,
    type: 8,
    nextOffset: i + 1,
  }));
  const out = Buffer.alloc(2048, 0xff);
  const [bytes, packed] = packDirents(out, 16, 1000, entries, false);
  assert.ok(packed > 0 && packed < entries.length);
  assert.ok(bytes <= 1000 && bytes % 8 === 0);
  let at = 16;
  for (let i = 0; i < packed; i++) {
    const nameBytes = out.readUInt32LE(at + fuse_dirent.namelen);
    assert.equal(readU64(out, at + fuse_dirent.ino), 100 + i);
    assert.equal(readU64(out, at + fuse_dirent.off), i + 1);
    assert.equal(
      out.toString('utf8', at + fuse_dirent.size, at + fuse_dirent.size + nameBytes),
      entries[i].name,
    );
    const end = at + ((fuse_dirent.size + nameBytes + 7) & ~7);
    for (let p = at + fuse_dirent.size + nameBytes; p < end; p++)
      assert.equal(out[p], 0, 'padding is zeroed');
    at = end;
  }
  assert.equal(at - 16, bytes);
});

test('READDIRPLUS records put the entry first and the dirent after it', () => {
  const out = Buffer.alloc(4096);
  const entry = { attr, generation: 0, entryTimeoutMs: 1000, attrTimeoutMs: 1000 };
  const [bytes, packed] = packDirents(
    out,
    0,
    4096,
    [{ name: 'a', ino: attr.ino, type: 8, nextOffset: 3, entry }],
    true,
  );
  assert.equal(packed, 1);
  assert.equal(bytes, (fuse_direntplus.size + 1 + 7) & ~7);
  assert.equal(readU64(out, fuse_entry_out.nodeid), attr.ino);
  assert.equal(readU64(out, fuse_direntplus.dirent + fuse_dirent.off), 3);
  assert.equal(out.toString('utf8', fuse_direntplus.size, fuse_direntplus.size + 1), 'a');
});

test('setattr decodes only the fields its valid bits name, and "now" wins over an explicit time', () => {
  const buf = Buffer.alloc(fuse_setattr_in.size);
  buf.writeUInt32LE(Fattr.MODE | Fattr.SIZE | Fattr.ATIME | Fattr.ATIME_NOW | Fattr.MTIME | Fattr.FH, 0);
  buf.writeUInt32LE(0o4755, fuse_setattr_in.mode);
  writeU64(buf, fuse_setattr_in.size_, 5 * 1024 ** 3);
  writeS64(buf, fuse_setattr_in.mtime, -5);
  buf.writeUInt32LE(7, fuse_setattr_in.mtimensec);
  writeU64(buf, fuse_setattr_in.fh, 77);
  buf.writeUInt32LE(1000, fuse_setattr_in.uid);
  assert.deepEqual(decodeSetattr(buf, 0), {
    mode: 0o4755,
    sizeBytes: 5 * 1024 ** 3,
    atime: 'now',
    mtime: { sec: -5, nsec: 7 },
    fh: 77,
  });
});
