import { describe } from 'node:test';
import { runMetaConformance } from './conformance/index.js';
import { postgresFixture } from './conformance/fixture.js';
import { PG_SKIP_REASON } from './postgres-fixture.js';

// The engine conformance suite, unchanged, on the real PostgreSQL of scripts/postgres/start.sh:
// every test gets its own fresh schema.
const postgres = postgresFixture('strata_conf', 4);

describe('PostgreSQL engine conformance', { skip: PG_SKIP_REASON }, () => {
  runMetaConformance(postgres);
});
