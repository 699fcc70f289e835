import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { join } from 'node:path';
import pg from 'pg';
import {
  adminQuery,
  cleanup,
  createPgDatabase,
  formatVolume,
  repoRoot,
  serveMeta,
  sh,
  StrataProcess,
  tempDir,
  startMount,
} from './harness.js';

/**
 * The N-1 checkpoint of test/e2e/hpc-patterns.test.ts with the two mounts on different
 * metadata servers of one PostgreSQL database: B's ranks commit their records while A's hold
 * theirs, then A's commit, and a new open on A reads the whole file. A hears of B's commit
 * through PostgreSQL's change feed, pushed by its own server about a millisecond after that
 * commit, which can be after the reply of A's own commit. Here B's server publishes no feed
 * (notify=off), so the notice never comes: A must learn of B's commit from the reply of its
 * own (ctimeBefore, src/vfs/open-files.ts) and not take the slice lists it read before, plus
 * its own commit, for the file, or the open reads zeros where B's records are (every round,
 * before that check).
 */
const PG_URL = process.env.STRATA_PG_TEST_URL;
const ROUNDS = 3;
/** Ranks alternate between the mounts: even ranks on A, odd ones on B. */
const RANKS = 4;
const RECORDS = 200;
const RECORD_BYTES = 1000;
const CACHE = ['--attr-timeout', '300s', '--entry-timeout', '300s'];

const root = tempDir('hpc-multiserver');
const mntA = join(root, 'a');
const mntB = join(root, 'b');
const hpc = join(root, 'hpc');
const database = `strata_hpcms_${process.pid}`;
const servers: StrataProcess[] = [];
const mounts: StrataProcess[] = [];

before(async () => {
  if (!PG_URL) return;
  sh(`gcc -O2 -Wall -o ${hpc} ${join(repoRoot(), 'test', 'e2e', 'hpc-patterns.c')}`);
  const engine = await createPgDatabase(database);
  const secretFile = join(root, 'volume.secret');
  formatVolume(engine, join(root, 'objects'), 'ckpt', secretFile);
  // B's server publishes no change feed: A's server never hears of B's commits, the latest a
  // notice can come (otherwise late only when A's commit lands within a millisecond or so).
  const silent = new URL(engine);
  silent.searchParams.set('notify', 'off');
  for (const [mountpoint, serverEngine] of [
    [mntA, engine],
    [mntB, silent.toString()],
  ]) {
    const { address, proc } = await serveMeta(serverEngine);
    servers.push(proc);
    await startMount(`${address}/ckpt`, mountpoint, ['--secret-file', secretFile, ...CACHE], mounts);
  }
});

after(async () => {
  await cleanup(mounts, [mntA, mntB], []);
  await cleanup(servers, [], [root]);
  if (PG_URL) await adminQuery(`DROP DATABASE IF EXISTS ${pg.escapeIdentifier(database)} WITH (FORCE)`);
});

const onA = (_: Rank, rank: number): boolean => rank % 2 === 0;
const onB = (_: Rank, rank: number): boolean => rank % 2 === 1;

/** `hpc check` of the whole file after its own open: '' when right, else what it found. */
function check(path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(hpc, ['check', path, String(RECORDS), String(RECORD_BYTES)], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (out += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve(code === 0 ? '' : out || `exit ${code}`));
  });
}

/** One writer rank (test/e2e/hpc-patterns.c pwrite), moved through its barriers by the test. */
class Rank {
  private readonly child: ChildProcessWithoutNullStreams;
  private output = '';
  private readonly closed: Promise<number | null>;
  private wake: () => void = () => undefined;

  constructor(args: string[]) {
    this.child = spawn(hpc, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    this.closed = new Promise((resolve) => this.child.on('close', resolve));
    const note = (chunk: Buffer): void => {
      this.output += chunk.toString();
      this.wake();
    };
    this.child.stdout.on('data', note);
    this.child.stderr.on('data', note);
    void this.closed.then(() => this.wake());
  }

  /** Waits for barrier `name` (its line on stdout), without polling: the race is short. */
  async reach(name: string): Promise<void> {
    while (!this.output.split('\n').includes(name)) {
      if (this.child.exitCode !== null) throw new Error(`rank exited ${this.child.exitCode}: ${this.output}`);
      await new Promise<void>((resolve) => (this.wake = resolve));
    }
  }

  go(): void {
    this.child.stdin.write('go\n');
  }

  async finish(): Promise<void> {
    assert.equal(await this.closed, 0, this.output);
  }

  kill(): void {
    if (this.child.exitCode === null) this.child.kill('SIGKILL');
  }
}

test(
  'N-1 checkpoint with the mounts on two PostgreSQL servers: a new open on A right after its commit reads the records B committed first',
  {
    skip: PG_URL ? undefined : 'STRATA_PG_TEST_URL is not set: run eval "$(scripts/postgres/start.sh)" first',
  },
  async () => {
    const failures: string[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      const name = `n1-${round}.ckpt`;
      sh(`truncate -s ${RECORDS * RECORD_BYTES} ${join(mntA, name)}`);
      const ranks = Array.from(
        { length: RANKS },
        (_, rank) =>
          new Rank([
            'pwrite',
            join(rank % 2 === 0 ? mntA : mntB, name),
            String(rank),
            String(RANKS),
            String(RECORDS),
            String(RECORD_BYTES),
          ]),
      );
      try {
        for (const rank of ranks) await rank.reach('opened');
        for (const rank of ranks) rank.go();
        // Each reads the records it overwrites (each mount's lists of the file are cached from
        // here) and writes them; B's ranks commit and close while A's hold their writes.
        for (const rank of ranks) await rank.reach('written');
        for (const rank of ranks.filter(onB)) rank.go();
        for (const rank of ranks.filter(onB)) await rank.reach('synced');
        for (const rank of ranks.filter(onB)) rank.go();
        for (const rank of ranks.filter(onB)) await rank.finish();
        for (const rank of ranks.filter(onA)) rank.go();
        for (const rank of ranks.filter(onA)) await rank.reach('synced');
        // A new open on A while A's ranks still hold the file open, then after their close.
        const open = await check(join(mntA, name));
        if (open !== '') failures.push(`round ${round}, A still open: ${open}`);
        for (const rank of ranks.filter(onA)) rank.go();
        for (const rank of ranks.filter(onA)) await rank.finish();
        const closed = await check(join(mntA, name));
        if (closed !== '') failures.push(`round ${round}, A closed: ${closed}`);
      } finally {
        for (const rank of ranks) rank.kill();
      }
    }
    assert.deepEqual(failures, []);
  },
);
