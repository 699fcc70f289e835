import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { ROOT_INO, isFsError } from '../../src/common/index.js';
import { formatVolume, openMetaService, type Caller } from '../../src/meta/index.js';
import { openThreadedMetaService, startMetaServer, type MetaServer } from '../../src/meta/server/index.js';
import { withLocalReads } from '../../src/meta/server/local-reads.js';
import { sendNumbered } from './numbered-call.js';

/**
 * A server whose service runs on an engine thread hands each numbered call's key to that thread
 * without AsyncLocalStorage (call-outcomes.ts, forwardNumberedCall): the outcome must still be
 * stored by the change's own transaction there, and a resend must find it, whichever kind of
 * server ran the first attempt.
 */

const root: Caller = { uid: 0, gid: 0, pid: 1 };
const S_IFREG = 0o100000;

test('numbered calls through an engine-thread server store outcomes that resends find', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'strata-perf-outcomes-'));
  const engineUrl = `sqlite:${join(dir, 'meta.db')}`;
  await formatVolume(engineUrl, { name: 'outcomes' });
  // A small inode batch: creates in flight also wait for refills on the engine thread.
  const threaded = await openThreadedMetaService({ engineUrl, inoBatch: 4 });
  const local = await openMetaService({ engineUrl, background: false });
  const servers: MetaServer[] = [];
  // The default server: reads on the serving thread, changes passed on to the engine thread.
  const localReads = await withLocalReads(threaded, engineUrl, threaded.settings);
  try {
    assert.ok(localReads);
    const secret = threaded.secret;
    servers.push(await startMetaServer({ service: threaded, listen: '127.0.0.1:0', secret }));
    servers.push(await startMetaServer({ service: local, listen: '127.0.0.1:0', secret }));
    servers.push(await startMetaServer({ service: localReads.api, listen: '127.0.0.1:0', secret }));
    const [onThread, inProcess, withReads] = servers;
    const create = (address: string, seq: number, resend: boolean, name: string) =>
      sendNumbered(address, secret, 'test/outcomes-thread', seq, resend, 'mknod', [
        root,
        ROOT_INO,
        name,
        S_IFREG | 0o644,
        0,
        0,
      ]);
    /** A create on `first`, resent under the same number to `then`: the original reply comes back. */
    const createThenResend = async (first: string, then: string, seq: number, name: string, what: string) => {
      const original = await create(first, seq, false, name);
      assert.ok(original.ok, `the ${what} create failed: ${original.error?.message}`);
      const resent = await create(then, seq, true, name);
      assert.ok(resent.ok, `the resent ${what} create failed: ${resent.error?.message}`);
      assert.deepEqual(resent.value, original.value);
    };

    // First attempt on the engine thread, resend to the in-process server.
    await createThenResend(onThread.address, inProcess.address, 1, 'a', 'first');
    // The other way round: the engine thread looks the outcome up itself.
    await createThenResend(inProcess.address, onThread.address, 2, 'b', 'second');

    // Many creates in flight at once on the thread: each resend gets its own reply.
    const burst = await Promise.all(
      Array.from({ length: 40 }, (_, i) => create(onThread.address, 10 + i, false, `c${i}`)),
    );
    for (let i = 0; i < burst.length; i++) {
      const again = await create(inProcess.address, 10 + i, true, `c${i}`);
      assert.ok(again.ok, `resend ${i} failed: ${again.error?.message}`);
      assert.deepEqual(again.value, burst[i].value);
    }

    // Through the local-reads front of the default server, then resent to the in-process one.
    await createThenResend(withReads.address, inProcess.address, 3, 'd', 'third (through local reads)');

    // The control: a new number really runs, and fails as it should.
    const fresh = await create(onThread.address, 100, true, 'a');
    assert.ok(!fresh.ok && isFsError(fresh.error) && fresh.error.code === 'EEXIST');
  } finally {
    for (const server of servers) await server.close();
    await localReads?.close();
    await local.close();
    await threaded.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
