import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { decodeName, encodeName, nameByteLength, writeName } from '../../src/common/index.js';

const decode = (bytes: Buffer): string => decodeName(bytes, 0, bytes.length);

test('valid UTF-8 names decode to the characters they spell', () => {
  for (const text of ['plain.txt', 'café', '日本語', 'emoji-😀', 'a b\tc']) {
    assert.equal(decode(Buffer.from(text, 'utf8')), text);
    assert.ok(encodeName(text).equals(Buffer.from(text, 'utf8')));
  }
});

test('bytes that are not UTF-8 stay distinct names and come back byte for byte', () => {
  const names = [[0x80], [0x81], [0xff], [0xc3], [0xc3, 0x28], [0xed, 0xa0, 0x80], [0xf4, 0x90, 0x80, 0x80]];
  const decoded = names.map((bytes) => decode(Buffer.from(bytes)));
  assert.equal(new Set(decoded).size, names.length);
  decoded.forEach((name, i) => assert.deepEqual([...encodeName(name)], names[i]));
});

test("a name's own U+F700..U+F7FF characters cannot collide with escaped bytes", () => {
  const own = Buffer.from('\uf780', 'utf8'); // EF 9E 80
  const escaped = Buffer.from([0x80]);
  assert.notEqual(decode(own), decode(escaped));
  assert.ok(encodeName(decode(own)).equals(own));
  assert.equal(nameByteLength(decode(own)), 3);
});

test('any byte string round-trips, and lengths count bytes as the kernel does', () => {
  fc.assert(
    fc.property(fc.uint8Array({ minLength: 1, maxLength: 300 }), (array) => {
      const bytes = Buffer.from(array);
      const name = decode(bytes);
      assert.ok(encodeName(name).equals(bytes));
      assert.equal(nameByteLength(name), bytes.length);
      const out = Buffer.alloc(bytes.length + 4);
      assert.equal(writeName(out, 2, name), bytes.length);
      assert.ok(out.subarray(2, 2 + bytes.length).equals(bytes));
    }),
    { numRuns: 2000 },
  );
});

test('different byte strings never decode to the same name', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 12 }), fc.uint8Array({ maxLength: 12 }), (a, b) => {
      const [x, y] = [Buffer.from(a), Buffer.from(b)];
      assert.equal(decode(x) === decode(y), x.equals(y));
    }),
    { numRuns: 5000 },
  );
});
