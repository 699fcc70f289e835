import { allocatedTests } from './allocated.js';
import { attrTests } from './attrs.js';
import { crashTests } from './crash.js';
import { dataTests } from './data.js';
import type { EngineFixture } from './fixture.js';
import { historyTests } from './history.js';
import { idTests } from './ids.js';
import { lockTests } from './locks.js';
import { modelTests } from './model.js';
import { namespaceTests } from './namespace.js';
import { reclaimTests } from './reclaim.js';
import { renameTests } from './rename.js';
import { sessionTests } from './sessions.js';

export type { EngineFixture } from './fixture.js';

/**
 * The metadata engine conformance suite: every POSIX rule, history, sessions, ids, crash
 * consistency and a reference-model property test, through MetaService over the engine
 * that `fixture` provides. Each engine's test file calls this once, unchanged.
 */
export function runMetaConformance(fixture: EngineFixture): void {
  namespaceTests(fixture);
  renameTests(fixture);
  attrTests(fixture);
  dataTests(fixture);
  allocatedTests(fixture);
  lockTests(fixture);
  sessionTests(fixture);
  reclaimTests(fixture);
  historyTests(fixture);
  idTests(fixture);
  modelTests(fixture);
  crashTests(fixture);
}
