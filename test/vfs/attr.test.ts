import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { changeTimeAfter } from '../../src/vfs/attr.js';

describe('the ctime a change gives an inode', () => {
  it('is the change time when it is later than the current ctime', () => {
    assert.deepEqual(changeTimeAfter({ sec: 10, nsec: 5 }, { sec: 10, nsec: 6 }), { sec: 10, nsec: 6 });
  });

  it('is one microsecond after the current ctime when the change time is not later (another clock)', () => {
    assert.deepEqual(changeTimeAfter({ sec: 10, nsec: 5000 }, { sec: 9, nsec: 0 }), { sec: 10, nsec: 6000 });
    assert.deepEqual(changeTimeAfter({ sec: 10, nsec: 5000 }, { sec: 10, nsec: 5000 }), {
      sec: 10,
      nsec: 6000,
    });
    assert.deepEqual(changeTimeAfter({ sec: 10, nsec: 999_999_500 }, { sec: 1, nsec: 0 }), {
      sec: 11,
      nsec: 500,
    });
  });
});
