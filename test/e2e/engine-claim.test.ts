import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cleanup, freePort, isMounted, startUp, strata, StrataProcess, tempDir } from './harness.js';

// One writer per SQLite volume: a second `strata up` on the same data directory, a `meta serve`
// beside it or a `strata gc` next to an idle server would allocate the same inode and slice
// ids from counters each keeps in memory. They are refused; kill -9 frees the claim at once.
const root = tempDir('claim');
const dataDir = join(root, 'data');
const engine = `sqlite:${join(dataDir, 'meta.db')}`;
const procs: StrataProcess[] = [];
const mountpoints = [join(root, 'a'), join(root, 'b'), join(root, 'c')];

after(async () => {
  await cleanup(procs.slice().reverse(), mountpoints, [root]);
});

test('a SQLite volume has one serving process; a killed one frees it at once', async () => {
  const [a, b, c] = mountpoints as [string, string, string];
  const first = await startUp(dataDir, a);
  procs.push(first);
  writeFileSync(join(a, 'kept.txt'), 'one writer\n');

  mkdirSync(b);
  const second = strata(['up', dataDir, b]);
  assert.equal(second.status, 1);
  assert.match(second.stderr, /has .*meta\.db in use: a SQLite volume takes one writer/);
  assert.ok(!isMounted(b), 'the second strata up mounted nothing');
  const serve = strata(['meta', 'serve', '--engine', engine, '--listen', `127.0.0.1:${await freePort()}`]);
  assert.equal(serve.status, 1);
  assert.match(serve.stderr, /one writer/);

  // An idle server, no mount at all: gc is refused too (it checked only mount sessions before).
  first.kill();
  await first.exited;
  strata(['umount', '--lazy', a]);
  const server = new StrataProcess([
    'meta',
    'serve',
    '--engine',
    engine,
    '--listen',
    `127.0.0.1:${await freePort()}`,
  ]);
  procs.push(server);
  await server.waitFor(() => server.output.includes('listening'), 'the metadata server to listen');
  const gc = strata(['gc', '--engine', engine]);
  assert.equal(gc.status, 1);
  assert.match(gc.stderr, /one writer.*"strata meta serve" collect garbage in the background by themselves/);
  assert.equal(strata(['gc', '--engine', engine, '--dry-run']).status, 0);
  await server.stop();

  // The killed `strata up` above held the claim too: nothing stale is left behind.
  const again = await startUp(dataDir, c);
  procs.push(again);
  assert.equal(readFileSync(join(c, 'kept.txt'), 'utf8'), 'one writer\n');
});
