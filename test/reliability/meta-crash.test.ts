// Crash injection of the metadata server as its own process: kill -9 of
// `strata meta serve` under a live `strata mount`, restart on the same engine,
// and check that the same mount recovers and nothing acknowledged was lost.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { runMetaCrashLoop } from './meta-crash.js';
import { strataUnavailable } from './strata-mount.js';
import { longProfile } from './tmpfs.js';

const CRASHES = longProfile() ? 60 : 3;
const SEED = Number(process.env.STRATA_REL_SEED ?? 0x3e7a);

describe('crash injection of the metadata server', { skip: strataUnavailable() }, () => {
  test(`${CRASHES} kill -9 of strata meta serve during writes: the mount reconnects, acknowledged data survives, fsck clean`, async () => {
    const result = await runMetaCrashLoop({ seed: SEED, crashes: CRASHES });
    assert.deepEqual(result.problems, []);
    assert.equal(result.crashesInjected, CRASHES);
    assert.ok(
      result.fsyncsAfterRestart >= CRASHES,
      'the same mount must acknowledge fsyncs after each restart',
    );
  });
});
