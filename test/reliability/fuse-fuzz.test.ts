// Protocol fuzzing of the FUSE layer's decoder and dispatcher, without a kernel.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { fuseFuzzUnavailable, fuzzFuseFrames } from './fuse-fuzz.js';
import { longProfile } from './tmpfs.js';

const FRAMES = longProfile() ? 200_000 : 6_000;
const SEED = Number(process.env.STRATA_REL_SEED ?? 0xf022);

describe('FUSE frame fuzzing', { skip: fuseFuzzUnavailable() }, () => {
  test('every well-formed frame gets one well-formed reply; the server never crashes nor hangs', async () => {
    const result = await fuzzFuseFrames({ seed: SEED, frameCount: FRAMES });
    assert.deepEqual(result.problems, []);
    assert.equal(result.framesSent, FRAMES);
    // Frames that get no answer are each followed by a probe, so replies >= frames is not given;
    // but most frames must have been answered and checked.
    assert.ok(result.repliesChecked > FRAMES / 2, `only ${result.repliesChecked} replies checked`);
  });

  // Known problem (reported): the FUSE layer passes READ sizes beyond the negotiated
  // max_read straight to the file system; a 2 GiB READ on a large sparse inode makes
  // the server allocate it and never answer. A kernel never sends such a READ, but a
  // decoder should bound what it trusts. Replay: fuzzFuseFrames({ seed: 1, frameCount: 5000, oversize: true }).
  test.todo('READ sizes beyond the negotiated maximum are answered with an error', async () => {
    const result = await fuzzFuseFrames({ seed: 1, frameCount: 5000, oversize: true, replyTimeoutMs: 5000 });
    assert.deepEqual(result.problems, []);
  });
});
