import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { type Ino } from '../../src/common/index.js';
import { CONTENDED_SAMPLE_EVERY, CONTENDED_SHARE, PollSpinPolicy } from '../../src/fuse/poll-spin.js';
import { MemFs } from './memfs.js';
import { mountInProcess, rootContext, sh } from './mount-helper.js';

/**
 * Drives a policy as the /dev/fuse loop does, over idle moments each preempted or not (as
 * `preempted(i)` says), each spin ending as `found` says (and preempted during the spin as
 * `spinPreempted` says). Returns which moments spun, as a string of 1s and 0s. A sample reports
 * a preemption if any moment since the last sample had one, as the thread's counter would.
 */
function drive(
  policy: PollSpinPolicy,
  n: number,
  found: boolean,
  preempted: (i: number) => boolean = () => false,
  spinPreempted = false,
): string {
  let out = '';
  let pending = false;
  for (let i = 0; i < n; i++) {
    pending ||= preempted(i);
    let spins = false;
    if (policy.skip() === undefined) {
      spins = policy.sampled(pending);
      pending = false;
      if (spins) policy.spun(found, spinPreempted);
    }
    out += spins ? '1' : '0';
  }
  return out;
}

describe('when the /dev/fuse loop polls for the next request', () => {
  test('every idle moment spins while spins find requests; never with 0 microseconds', () => {
    assert.equal(drive(new PollSpinPolicy(50), 20, true), '1'.repeat(20));
    assert.equal(drive(new PollSpinPolicy(0), 20, true), '0'.repeat(20));
  });

  test('misses in a row leave 1, 3, 7 ... 63 idle moments without a spin; a hit resets that', () => {
    const policy = new PollSpinPolicy(50);
    assert.equal(
      drive(policy, 1 + 1 + 1 + 3 + 1 + 7 + 1, false),
      '1' + '0' + '1' + '000' + '1' + '0000000' + '1',
    );
    const capped = new PollSpinPolicy(50);
    drive(capped, 1000, false);
    // Past six misses in a row the gap stays at 63.
    const gaps = drive(capped, 64 * 3, false)
      .split('1')
      .slice(1, -1)
      .map((zeros) => zeros.length);
    assert.deepEqual(gaps, [63, 63]);
    // One hit, and the next idle moment after the current gap spins again, as does every one after.
    const resets = new PollSpinPolicy(50);
    drive(resets, 2, false); // spin (miss), skip
    assert.equal(drive(resets, 5, true), '11111');
  });

  test('a thread preempted at most idle moments stops spinning, is sampled 1 in 16, and spins again after', () => {
    const policy = new PollSpinPolicy(50);
    // A share under CONTENDED_SHARE (one idle moment in ten) keeps the spins.
    assert.equal(
      drive(policy, 1000, true, (i) => i % 10 === 0),
      '1'.repeat(1000),
    );
    assert.ok(CONTENDED_SHARE > 0.1);
    // Preempted at every idle moment: within a few of them no more spins.
    assert.match(
      drive(policy, 30, true, () => true),
      /^1{1,8}0+$/,
    );
    assert.equal(policy.contendedCpu, true);
    // Contended, only one idle moment in CONTENDED_SAMPLE_EVERY asks for a sample.
    let samples = 0;
    for (let i = 0; i < 160; i++) {
      if (policy.skip() === undefined) {
        samples++;
        assert.equal(policy.sampled(true), false);
      }
    }
    assert.equal(samples, 160 / CONTENDED_SAMPLE_EVERY);
    // Half the idle moments preempted: still contended (each sample covers 16 moments).
    assert.equal(
      drive(policy, 400, true, (i) => i % 2 === 0),
      '0'.repeat(400),
    );
    // Once preemptions stop, spinning comes back.
    assert.match(drive(policy, 2000, true), /^0+1+$/);
    assert.equal(policy.contendedCpu, false);
  });

  test('a spin preempted while it polled counts as a miss even when it found a request', () => {
    // A caller on the same CPU sends its next request only once the spin is preempted: such
    // "finds" back off like misses, and count towards the contended share.
    const policy = new PollSpinPolicy(50);
    assert.equal(
      drive(policy, 1 + 1 + 1 + 3 + 1, true, () => false, true),
      '1' + '0' + '1' + '000' + '1',
    );
    const direct = new PollSpinPolicy(50);
    for (let i = 0; i < 40; i++) direct.spun(true, true);
    assert.equal(direct.contendedCpu, true);
    // A hit that was not preempted resets the back-off as before.
    const resets = new PollSpinPolicy(50);
    resets.spun(true, true);
    assert.equal(resets.skip(), 'missed');
    resets.spun(true, false);
    assert.equal(drive(resets, 5, true), '11111');
  });

  test('a mount that polls serves a caller statting in a loop, and so does one that never polls', async () => {
    for (const pollSpinUs of [50, 0]) {
      const fs = new MemFs({ attrTimeoutMs: 0, entryTimeoutMs: 0 });
      const mounted = await mountInProcess(fs, { pollSpinUs });
      try {
        for (let i = 0; i < 50; i++) await fs.create(rootContext, 1 as Ino, `f${i}`, 0o644, 0);
        const script = `for i in $(seq 1 20); do for n in $(seq 0 49); do stat -c %s ${mounted.mountpoint}/f$n; done; done | wc -l`;
        assert.equal((await sh(script)).trim(), '1000');
        const spins = mounted.session.pollSpins;
        if (pollSpinUs === 0) assert.deepEqual(spins, { found: 0, missed: 0, contended: 0 });
        else assert.ok(spins.found + spins.missed + spins.contended > 0, JSON.stringify(spins));
      } finally {
        await mounted.cleanup();
      }
    }
  });

  test('a poll time outside 0..1000 microseconds is refused with what to use', async () => {
    for (const pollSpinUs of [-1, 1001, 2.5]) {
      await assert.rejects(
        mountInProcess(new MemFs(), { pollSpinUs }),
        /pollSpinUs .* out of range: use 0\.\.1000/,
      );
    }
  });
});
