// An engine task for test/meta/engine-task.test.ts: reports what it does, with the engine's own
// answers, so the test sees where it ran and in which order it was started and stopped.
import { isMainThread } from 'node:worker_threads';
import { ROOT_INO } from '../../src/common/index.js';
import type { StartEngineTask } from '../../src/meta/server/index.js';

export const startEngineTask: StartEngineTask = async (service, data, report) => {
  const { fail } = data as { fail?: string };
  if (fail !== undefined) throw new Error(fail);
  report({ started: (await service.volume()).name, mainThread: isMainThread });
  return {
    stop: async () => {
      // The engine is still open while the task stops: a pass may end with a write.
      const attr = await service.getattr(ROOT_INO);
      report({ stopped: attr.ino });
    },
  };
};
