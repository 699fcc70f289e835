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

  // A kernel never sends a READ beyond max_pages (1 MiB here); the FUSE layer answers one
  // with EINVAL instead of passing the size to the file system (it once made the server
  // allocate 2 GiB for a sparse inode and never answer).
  test('READ sizes beyond the negotiated maximum are answered with an error', async () => {
    const result = await fuzzFuseFrames({ seed: 1, frameCount: 5000, oversize: true, replyTimeoutMs: 5000 });
    assert.deepEqual(result.problems, []);
  });
});
