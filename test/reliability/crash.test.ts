// Crash injection against strata up: kill -9 during a write/fsync workload,
// restart on the same data, and check what survived.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { FileModel, fillPattern, runCrashLoop } from './crash.js';
import { strataUnavailable } from './strata-mount.js';
import { longProfile } from './tmpfs.js';

const CRASHES = longProfile() ? 100 : 4;
const SEED = Number(process.env.STRATA_REL_SEED ?? 0xc2a5);

describe('crash model', () => {
  test('accepts the acknowledged image, later writes, and zeros of an extension', () => {
    const model = new FileModel();
    model.write(0, fillPattern(100, 1));
    model.ack();
    model.write(50, fillPattern(100, 2)); // may or may not have landed, in any part
    const mixed = Uint8Array.from(model.current);
    mixed.set(model.acked?.subarray(50, 60) ?? [], 50); // first bytes of the write lost
    assert.equal(model.check(model.acked), undefined);
    assert.equal(model.check(model.current), undefined);
    assert.equal(model.check(mixed), undefined);
    const extended = new Uint8Array(150);
    extended.set(model.acked ?? []);
    assert.equal(model.check(extended), undefined);
  });

  test('rejects lost acknowledged bytes, bytes never written, and a missing file', () => {
    const model = new FileModel();
    model.write(0, fillPattern(100, 1));
    model.ack();
    assert.match(model.check(model.acked?.subarray(0, 99) ?? null) ?? '', /size 99 < acknowledged 100/);
    const garbage = Uint8Array.from(model.acked ?? []);
    garbage[42] = garbage[42] ^ 0xff;
    assert.match(model.check(garbage) ?? '', /byte 42/);
    assert.match(model.check(null) ?? '', /missing/);
    assert.match(model.check(new Uint8Array(101)) ?? '', /size 101 > anything written/);
  });

  test('a truncate after the acknowledgement may shorten the file, but not invent bytes', () => {
    const model = new FileModel();
    model.write(0, fillPattern(100, 1));
    model.ack();
    model.truncate(10);
    model.write(10, fillPattern(5, 3));
    assert.equal(model.check(model.current), undefined);
    assert.equal(model.check(model.acked), undefined);
    const wrong = Uint8Array.from(model.current);
    wrong[12] = wrong[12] ^ 0x55;
    if (wrong[12] !== (model.acked ?? [])[12]) assert.match(model.check(wrong) ?? '', /byte 12/);
  });
});

describe('crash injection against strata up', { skip: strataUnavailable() }, () => {
  test(`${CRASHES} kill -9 of the mount during writes: acknowledged fsyncs survive, no invented bytes`, async () => {
    const result = await runCrashLoop({ seed: SEED, crashes: CRASHES });
    assert.deepEqual(result.problems, []);
    assert.equal(result.crashesInjected, CRASHES);
    assert.ok(result.fsyncsAcknowledged > 0, 'the workload must get fsyncs acknowledged before the kills');
  });
});
