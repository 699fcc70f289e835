import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { type Ino } from '../../src/common/index.js';
import { CONTENDED_SHARE, PollSpinPolicy } from '../../src/fuse/poll-spin.js';
import { MemFs } from './memfs.js';
import { mountInProcess, rootContext, sh } from './mount-helper.js';

/** Which of `n` idle moments spin, as a string of 1s and 0s, each spin ending as `found` says. */
function pattern(policy: PollSpinPolicy, n: number, found: boolean, preempted = false): string {
  let out = '';
  for (let i = 0; i < n; i++) {
    const spins = policy.idle(preempted);
    if (spins) policy.spun(found);
    out += spins ? '1' : '0';
  }
  return out;
}

describe('when the /dev/fuse loop polls for the next request', () => {
  test('every idle moment spins while spins find requests; never with 0 microseconds', () => {
    assert.equal(pattern(new PollSpinPolicy(50), 20, true), '1'.repeat(20));
    assert.equal(pattern(new PollSpinPolicy(0), 20, true), '0'.repeat(20));
  });

  test('misses in a row leave 1, 3, 7 ... 63 idle moments without a spin; a hit resets that', () => {
    const policy = new PollSpinPolicy(50);
    assert.equal(
      pattern(policy, 1 + 1 + 1 + 3 + 1 + 7 + 1, false),
      '1' + '0' + '1' + '000' + '1' + '0000000' + '1',
    );
    const capped = new PollSpinPolicy(50);
    pattern(capped, 1000, false);
    // Past six misses in a row the gap stays at 63.
    const gaps = pattern(capped, 64 * 3, false)
      .split('1')
      .slice(1, -1)
      .map((zeros) => zeros.length);
    assert.deepEqual(gaps, [63, 63]);
    // One hit, and the next idle moment after the current gap spins again, as does every one after.
    const resets = new PollSpinPolicy(50);
    pattern(resets, 2, false); // spin (miss), skip
    assert.equal(pattern(resets, 5, true), '11111');
  });

  test('a thread preempted at most idle moments stops spinning until that passes', () => {
    const policy = new PollSpinPolicy(50);
    // A share under CONTENDED_SHARE (one idle moment in ten) keeps the spins.
    let spins = 0;
    for (let i = 0; i < 1000; i++) {
      if (policy.idle(i % 10 === 0)) {
        spins++;
        policy.spun(true);
      }
    }
    assert.equal(spins, 1000);
    assert.ok(CONTENDED_SHARE > 0.1);
    // Preempted at every idle moment: within a few of them no more spins.
    const preempted = pattern(policy, 30, true, true);
    assert.match(preempted, /^1{1,8}0+$/);
    assert.equal(policy.contendedCpu, true);
    // Half the idle moments preempted: still contended.
    let halfSpins = 0;
    for (let i = 0; i < 200; i++) if (policy.idle(i % 2 === 0)) halfSpins++;
    assert.equal(halfSpins, 0);
    // Once preemptions stop, spinning comes back.
    const calm = pattern(policy, 60, true);
    assert.match(calm, /^0+1+$/);
    assert.equal(policy.contendedCpu, false);
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
