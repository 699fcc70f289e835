// The shared ObjectStore conformance suite, run on the S3 backend against the real radosgw,
// opened through the registry as users open it (retry wrapper included).
import { describe, it } from 'node:test';
import { openObjectStore } from '../../src/object/index.js';
import { describeObjectStoreConformance } from './conformance.js';
import { S3_TEST_URL, SKIP_REASON, testUrl, uniquePrefix } from './s3-helpers.js';

if (S3_TEST_URL) {
  // A small list page makes the suite's paging test cross many S3 pages, not just one boundary.
  describeObjectStoreConformance('s3 (radosgw)', () =>
    openObjectStore(testUrl(uniquePrefix('conformance'), { list_page_size: '250' })),
  );
} else {
  describe('ObjectStore conformance: s3 (radosgw)', () => {
    it('runs against a real radosgw', { skip: SKIP_REASON }, () => undefined);
  });
}
