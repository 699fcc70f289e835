import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import {
  adminQuery,
  cleanup,
  createPgDatabase,
  serveMeta,
  StrataProcess,
  tempDir,
  formatVolume,
  startMount,
} from './harness.js';

/**
 * Failover under a real mount: `strata mount A,B/vol` with two `meta serve` processes on one
 * PostgreSQL database; a shell workload writes, renames and removes files in the mount while
 * server A (the one the mount uses first) is killed with SIGKILL. The workload must finish
 * without a single failed command, and the files must be there with their content.
 */
const PG_URL = process.env.STRATA_PG_TEST_URL;
const FILES = 150;

const root = tempDir('failover');
const mnt = join(root, 'mnt');
const mounts: StrataProcess[] = [];
const servers: StrataProcess[] = [];
const database = `strata_fo_${process.pid}`;

after(async () => {
  await cleanup(mounts, [mnt], []);
  await cleanup(servers, [], [root]);
  if (PG_URL) await adminQuery(`DROP DATABASE IF EXISTS ${pg.escapeIdentifier(database)} WITH (FORCE)`);
});

async function serve(engine: string): Promise<{ address: string; proc: StrataProcess }> {
  const served = await serveMeta(engine);
  servers.push(served.proc);
  return served;
}

test(
  'a mount given two servers keeps working through kill -9 of the one it uses',
  {
    skip: PG_URL ? undefined : 'STRATA_PG_TEST_URL is not set: run eval "$(scripts/postgres/start.sh)" first',
  },
  async () => {
    const engine = await createPgDatabase(database);
    const secretFile = join(root, 'vol.secret');
    formatVolume(engine, join(root, 'objects'), 'vol', secretFile);
    const first = await serve(engine);
    const second = await serve(engine);
    const mount = await startMount(
      `${first.address},${second.address}/vol`,
      mnt,
      ['--secret-file', secretFile],
      mounts,
    );

    // Every command must succeed (set -e); each file is written, renamed, and every third removed.
    mkdirSync(join(mnt, 'w'));
    const script = `set -e; cd ${mnt}; for i in $(seq 1 ${FILES}); do
      printf 'content %s' $i > w/f$i; mv w/f$i w/g$i; if [ $((i % 3)) -eq 0 ]; then rm w/g$i; fi; done`;
    const workload = spawn('sh', ['-c', script], { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    workload.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    workload.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => workload.once('exit', resolve));
    try {
      // Kill the first server once the workload is well under way.
      const startMs = Date.now();
      while (Date.now() - startMs < 20_000) {
        const done = readdirSync(join(mnt, 'w'), { withFileTypes: true }).length;
        if (done >= FILES / 5) break;
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      assert.equal(workload.exitCode, null, 'the workload is still running when the server dies');
      first.proc.kill();
      const code = await exited;
      assert.equal(code, 0, `the workload failed: ${output}\nmount log:\n${mount.output}`);
    } finally {
      workload.kill('SIGKILL');
    }
    const names = readdirSync(join(mnt, 'w')).sort();
    const expected: string[] = [];
    for (let i = 1; i <= FILES; i++) if (i % 3 !== 0) expected.push(`g${i}`);
    assert.deepEqual(names, expected.sort());
    for (const name of names) {
      assert.equal(readFileSync(join(mnt, 'w', name), 'utf8'), `content ${name.slice(1)}`);
    }
  },
);
