import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { groupsOfStatus } from '../../src/vfs/caller.js';

describe('supplementary groups from /proc/PID/status', () => {
  it('reads the groups of the Groups line', () => {
    assert.deepEqual(groupsOfStatus('Gid:\t5\t5\t5\t5\nGroups:\t2100 2200 \nNStgid:\t4242\n'), [2100, 2200]);
  });

  it('an empty Groups line is no groups, not the next line (NStgid and the pid)', () => {
    assert.deepEqual(groupsOfStatus('Gid:\t5\t5\t5\t5\nGroups:\t\nNStgid:\t4242\nNSpid:\t4242\n'), []);
    assert.deepEqual(groupsOfStatus('Groups:\nNStgid:\t4242\n'), []);
    // what Linux 6.18 writes: a tab and a space
    assert.deepEqual(groupsOfStatus('Groups:\t \nNStgid:\t4242\n'), []);
  });

  it('a status without a Groups line gives no answer', () => {
    assert.equal(groupsOfStatus('Name:\tx\n'), undefined);
  });
});
