import { runMetaConformance } from './conformance/index.js';
import { sqliteFixture } from './conformance/fixture.js';

runMetaConformance(sqliteFixture('meta-conf'));
