import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isLongProfile } from '../e2e/harness.js';
import { runSoak } from './soak.js';

// A mount that stays up must not leak: ten minutes of the mixed soak workload on strata up
// plus a second mount of the same volume, every round's data checked, and no resource of any
// strata process (descriptors, threads, timers, heap after GC, RSS, WAL, disk cache, session
// and lock rows) on a rising line over the second half. Long profile only.
test(
  'ten minutes of mixed work on two mounts of one volume: data intact, no resource grows without bound',
  { skip: !isLongProfile && 'long profile only (10 minutes)', timeout: 20 * 60_000 },
  async () => {
    // Shorter runs end while the mounts' memory budget (512M) is still filling, which the
    // trend rightly reads as growth: a 1-minute run flags external memory and RSS.
    const minutes = Math.max(5, Number(process.env.STRATA_SOAK_MINUTES ?? '10'));
    const result = await runSoak({
      setup: 'up',
      durationMs: minutes * 60_000,
      sampleEveryMs: 10_000,
      log: () => undefined,
    });
    assert.ok(result.rounds >= 3, `only ${result.rounds} rounds ran:\n${result.report}`);
    assert.deepEqual(result.failures, [], result.report);
  },
);
