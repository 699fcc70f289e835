import { test } from 'node:test';
import assert from 'node:assert/strict';
import { modeBitsOfAcl } from '../../src/vfs/acl-mode.js';

function acl(entries: [number, number, number][]): Buffer {
  const out = Buffer.alloc(4 + entries.length * 8);
  out.writeUInt32LE(2, 0);
  entries.forEach(([tag, perm, id], i) => {
    out.writeUInt16LE(tag, 4 + i * 8);
    out.writeUInt16LE(perm, 6 + i * 8);
    out.writeUInt32LE(id >>> 0, 8 + i * 8);
  });
  return out;
}

test('the group bits of an ACL with a mask come from the mask, as setfacl expects', () => {
  // user::rw- user:nobody:r-- group::--- mask::r-- other::---
  const value = acl([
    [0x01, 6, -1],
    [0x02, 4, 65534],
    [0x04, 0, -1],
    [0x10, 4, -1],
    [0x20, 0, -1],
  ]);
  assert.equal(modeBitsOfAcl(value), 0o640);
});

test('a minimal ACL maps straight to the mode bits', () => {
  assert.equal(
    modeBitsOfAcl(
      acl([
        [0x01, 7, -1],
        [0x04, 5, -1],
        [0x20, 1, -1],
      ]),
    ),
    0o751,
  );
});

test('malformed ACL values are left alone', () => {
  assert.equal(modeBitsOfAcl(Buffer.from('garbage')), null);
  assert.equal(modeBitsOfAcl(acl([[0x01, 7, -1]])), null, 'no group or other entry');
  const wrongVersion = acl([
    [0x01, 7, -1],
    [0x04, 5, -1],
    [0x20, 1, -1],
  ]);
  wrongVersion.writeUInt32LE(1, 0);
  assert.equal(modeBitsOfAcl(wrongVersion), null);
});
