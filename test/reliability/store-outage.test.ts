// The object store away for longer than the retry budget, on a real mount (through a TCP
// proxy in front of radosgw that the test cuts): EIO on fsync/close, nothing acknowledged
// lost, and the same mount works again once the store is back.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { S3_TEST_URL, SKIP_REASON, testUrl, uniquePrefix } from '../object/s3-helpers.js';
import { runStoreOutage } from './store-outage.js';
import { strataUnavailable } from './strata-mount.js';

const SEED = Number(process.env.STRATA_REL_SEED ?? 0x5707);

describe(
  'object store down past the retry budget, on a mount',
  { skip: strataUnavailable() ?? SKIP_REASON },
  () => {
    test('fsync, fdatasync and close fail with EIO, acknowledged data survives, the mount recovers', async () => {
      assert.ok(S3_TEST_URL);
      const result = await runStoreOutage({
        storeUrl: testUrl(uniquePrefix('rel-outage')),
        retryBudget: '2s',
        seed: SEED,
      });
      assert.deepEqual(result.duringOutage, [
        'fsync f1: err EIO',
        'fdatasync f2: err EIO',
        'close f3: err EIO',
      ]);
      assert.deepEqual(result.failuresAfter, []);
      assert.deepEqual(result.problems, []);
      assert.equal(result.acknowledged, 4);
    });
  },
);
