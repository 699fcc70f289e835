import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { cleanup, formatVolume, freePort, isMounted, StrataProcess, tempDir, startMount } from './harness.js';

// A mount whose metadata server is gone for good (stopped first, a machine lost): its
// heartbeats fail one at a time instead of piling up behind each other (one log line per
// failed try, not a burst of them each retry window), and Ctrl-C unmounts it after a short
// wait for the session's close instead of the whole --meta-retry budget.
const root = tempDir('server-gone');
const procs: StrataProcess[] = [];
const mountpoints: string[] = [];

after(async () => {
  await cleanup(procs.slice().reverse(), mountpoints, [root]);
});

test('a mount whose server is gone logs one heartbeat failure per try and stops at Ctrl-C without waiting out --meta-retry', async () => {
  const engine = `sqlite:${join(root, 'meta.db')}`;
  const formatted = formatVolume(engine, join(root, 'objects'), 'gone');
  const secretFile = /client secret: (\S+)/.exec(formatted)?.[1];
  assert.ok(secretFile, formatted);
  const address = `127.0.0.1:${await freePort()}`;
  const server = new StrataProcess(['meta', 'serve', '--engine', engine, '--listen', address]);
  procs.push(server);
  await server.waitFor(() => server.output.includes('listening'), 'the metadata server to listen');
  const mount = async (name: string, flags: string[]): Promise<StrataProcess> => {
    const mnt = join(root, name);
    mountpoints.push(mnt);
    return startMount(`${address}/gone`, mnt, ['--secret-file', secretFile, ...flags], procs);
  };
  // Heartbeats every second, each retried for 4 s: unguarded, four would be in flight at once.
  const beating = await mount('beating', ['--heartbeat', '1s', '--meta-retry', '4s']);
  // A long retry budget, which the unmount must not wait out for the session's close.
  const patient = await mount('patient', ['--meta-retry', '300s']);

  server.kill();
  await server.exited;
  const failures = (): number[] =>
    [...beating.output.matchAll(/^(\S+) strata: session heartbeat failed/gm)].map((m) => Date.parse(m[1]));
  await beating.waitFor(() => failures().length >= 3, 'three failed heartbeats', 60_000);
  const times = failures();
  for (let i = 1; i < times.length; i++) {
    assert.ok(
      times[i] - times[i - 1] >= 1000,
      `heartbeat failures at ${times[i - 1]} and ${times[i]} came together: they piled up\n${beating.output}`,
    );
  }

  // SIGTERM, SIGKILL after 120 s: well short of the 300 s a close retried to the end would take.
  const startedMs = Date.now();
  const code = await patient.stop(120_000);
  assert.equal(code, 0, `the mount stops cleanly (it took ${Date.now() - startedMs} ms):\n${patient.output}`);
  assert.match(patient.output, /could not close session .* it ends the session itself/);
  assert.ok(!isMounted(join(root, 'patient')), 'unmounted');
});
