import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Errno, FsError, fsError, isFsError } from '../../src/common/index.js';

function frames(error: Error): string[] {
  return (error.stack ?? '').split('\n').filter((line) => line.trimStart().startsWith('at '));
}

test('errors that answer a question (ENOENT, ENODATA, EEXIST, EAGAIN) are made without a stack trace', () => {
  for (const error of [
    fsError.ENOENT('no entry "a" in directory 7'),
    fsError.ENODATA('no xattr security.capability'),
    fsError.EEXIST('"a" exists'),
    fsError.EAGAIN('lock held'),
  ]) {
    assert.deepEqual(frames(error), [], error.message);
    assert.ok(isFsError(error));
    assert.ok(error instanceof Error);
    assert.ok(error.stack?.includes(error.message), 'the stack text still names the error');
  }
});

test('failures keep their stack trace, and the stack trace limit is restored after an answer', () => {
  const limit = Error.stackTraceLimit;
  fsError.ENOENT('answer');
  assert.equal(Error.stackTraceLimit, limit);
  const failure = fsError.EIO('the store failed', new Error('cause'));
  assert.ok(frames(failure).length > 0, 'EIO has frames');
  assert.equal(failure.errno, Errno.EIO);
  assert.equal((failure.cause as Error).message, 'cause');
  assert.ok(frames(new FsError(Errno.EINVAL, 'bad argument')).length > 0, 'EINVAL has frames');
});
