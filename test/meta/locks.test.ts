import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { applyPosixChange, findConflict } from '../../src/meta/locks.js';
import { asIno } from '../../src/common/index.js';

const EOF_POS = Number.MAX_SAFE_INTEGER;

describe('POSIX lock ranges', () => {
  it('unlocking the middle splits a range in two', () => {
    const held = applyPosixChange([{ type: 'write', start: 0, end: 99, pid: 1 }], {
      type: 'unlock',
      start: 10,
      end: 19,
      pid: 1,
    });
    assert.deepEqual(
      held.map((r) => [r.start, r.end]),
      [
        [0, 9],
        [20, 99],
      ],
    );
  });

  it('adjacent ranges of one type merge; a different type in the middle splits and replaces', () => {
    let held = applyPosixChange([], { type: 'read', start: 0, end: 9, pid: 1 });
    held = applyPosixChange(held, { type: 'read', start: 10, end: 19, pid: 1 });
    assert.deepEqual(
      held.map((r) => [r.start, r.end]),
      [[0, 19]],
    );
    held = applyPosixChange(held, { type: 'write', start: 5, end: 14, pid: 1 });
    assert.deepEqual(
      held.map((r) => [r.type, r.start, r.end]),
      [
        ['read', 0, 4],
        ['write', 5, 14],
        ['read', 15, 19],
      ],
    );
    held = applyPosixChange(held, { type: 'unlock', start: 0, end: EOF_POS, pid: 1 });
    assert.deepEqual(held, []);
  });

  it('conflicts: only other owners, only overlapping, never read against read', () => {
    const lock = (owner: string, type: 'read' | 'write', start: number, end: number) => ({
      ino: asIno(2),
      sessionId: 's',
      owner,
      flock: false,
      type,
      start,
      end,
      pid: 1,
    });
    const held = [lock('a', 'read', 0, 9), lock('b', 'write', 20, 29)];
    assert.equal(findConflict(held, 's', 'c', false, { type: 'read', start: 0, end: 15, pid: 2 }), undefined);
    assert.equal(
      findConflict(held, 's', 'c', false, { type: 'write', start: 5, end: 5, pid: 2 })?.owner,
      'a',
    );
    assert.equal(
      findConflict(held, 's', 'b', false, { type: 'write', start: 20, end: 20, pid: 2 }),
      undefined,
    );
    assert.equal(
      findConflict(held, 's', 'c', false, { type: 'read', start: 30, end: 40, pid: 2 }),
      undefined,
    );
    assert.equal(
      findConflict(held, 's', 'c', true, { type: 'write', start: 0, end: EOF_POS, pid: 2 }),
      undefined,
    );
  });
});
