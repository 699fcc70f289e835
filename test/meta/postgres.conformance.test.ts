import { describe } from 'node:test';
import { runMetaConformance, type EngineFixture } from './conformance/index.js';
import { createTestSchema, PG_SKIP_REASON, type TestDatabase } from './postgres-fixture.js';

// The engine conformance suite, unchanged, on the real PostgreSQL of scripts/postgres/start.sh:
// every test gets its own fresh schema.
const databases = new Map<string, TestDatabase>();

const postgres: EngineFixture = {
  name: 'postgres',
  async newUrl() {
    const db = await createTestSchema('strata_conf');
    const url = `${db.url}&pool_size=4`;
    databases.set(url, db);
    return url;
  },
  async dropUrl(url) {
    await databases.get(url)?.drop();
    databases.delete(url);
  },
};

describe('PostgreSQL engine conformance', { skip: PG_SKIP_REASON }, () => {
  runMetaConformance(postgres);
});
