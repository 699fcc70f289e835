// Engine tasks (src/meta/server/engine-task.ts): work run through the engine a metadata server
// owns, on its engine thread. The task's reports reach the serving thread in order (those made
// while it starts, after the service is ready), it stops while the engine is still open, and a
// task that cannot start fails the opening with its own message.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT_INO } from '../../src/common/index.js';
import { formatVolume } from '../../src/meta/index.js';
import { openThreadedMetaService } from '../../src/meta/server/index.js';

const moduleUrl = new URL('./engine-task-fixture.js', import.meta.url).href;

async function withVolume(fn: (engineUrl: string) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'strata-engine-task-'));
  try {
    const engineUrl = `sqlite:${join(dir, 'meta.db')}`;
    await formatVolume(engineUrl, { name: 'tasked' });
    await fn(engineUrl);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('a task runs on the engine thread, reports to the serving thread and stops before the engine closes', () =>
  withVolume(async (engineUrl) => {
    const heard: unknown[] = [];
    const service = await openThreadedMetaService({
      engineUrl,
      task: { moduleUrl, data: {} },
      onTaskMessage: (message) => heard.push(message),
    });
    try {
      assert.equal((await service.getattr(ROOT_INO)).ino, ROOT_INO, 'the service answers beside the task');
    } finally {
      await service.close();
    }
    assert.deepEqual(heard, [{ started: 'tasked', mainThread: false }, { stopped: ROOT_INO }]);
  }));

test('a task that cannot start fails the opening with its message; the volume opens again', () =>
  withVolume(async (engineUrl) => {
    await assert.rejects(
      openThreadedMetaService({ engineUrl, task: { moduleUrl, data: { fail: 'no object store here' } } }),
      /no object store here/,
    );
    const again = await openThreadedMetaService({ engineUrl });
    await again.close();
  }));

test('a module without startEngineTask is refused with a line naming it', () =>
  withVolume(async (engineUrl) => {
    const notATask = new URL('../../src/common/index.js', import.meta.url).href;
    await assert.rejects(
      openThreadedMetaService({ engineUrl, task: { moduleUrl: notATask, data: {} } }),
      /common\/index\.js exports no startEngineTask function/,
    );
  }));
