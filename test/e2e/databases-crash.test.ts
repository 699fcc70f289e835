import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import {
  cleanup,
  isLongProfile,
  isMounted,
  repoRoot,
  sh,
  startUp,
  tempDir,
  type StrataProcess,
  waitUntil,
} from './harness.js';

// What databases other than PostgreSQL rely on, through a kill -9 of the mount: SQLite's
// rollback journal and WAL (synchronous=FULL, transactions from 1 to 3000 rows that spill
// before commit), and the page writers under storage engines: msync of a shared mapping,
// fallocate + O_DIRECT + fdatasync, sync_file_range + fdatasync. Every writer says when a
// round is acknowledged; after the remount every acknowledged round must be there, whole.
const root = tempDir('db-crash');
const dataDir = join(root, 'data');
const mnt = join(root, 'mnt');
const writersPy = join(repoRoot(), 'test', 'e2e', 'databases-writers.py');
let up: StrataProcess | undefined;
const allWriters: Writer[] = [];

before(async () => {
  up = await startUp(dataDir, mnt);
});

after(async () => {
  for (const writer of allWriters) writer.kill();
  await cleanup([up], [mnt], [root]);
});

/** How long the writers get to fail on their own once the mount is gone. */
const WRITER_EXIT_GRACE_MS = 15_000;

/** What a writer's output keeps: its start and its end (a flood must not exhaust the test's memory). */
const OUTPUT_KEEP_CHARS = 64 * 1024;

/** A writer of databases-writers.py; `lastAcked` follows its `acked N` lines. */
class Writer {
  lastAcked = 0;
  private head = '';
  private tail = '';
  /** Characters of output seen, kept or not. */
  outputChars = 0;
  readonly exited: Promise<number | null>;
  private readonly child: ChildProcess;

  constructor(
    readonly args: string[],
    command = ['python3', writersPy],
  ) {
    // A group of its own, so that kill() reaches what it started too (git gc runs git reflog,
    // git repack, ...): nothing outlives the test.
    this.child = spawn(command[0], [...command.slice(1), ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    allWriters.push(this);
    let pending = '';
    this.child.stdout!.on('data', (chunk: Buffer) => {
      pending += chunk.toString();
      const lines = pending.split('\n');
      pending = lines.pop()!;
      for (const line of lines) {
        const match = /^acked (\d+)$/.exec(line);
        if (match) this.lastAcked = Number(match[1]);
        else this.keep(`${line}\n`);
      }
    });
    this.child.stderr!.on('data', (chunk: Buffer) => this.keep(chunk.toString()));
    this.exited = new Promise((resolve) => this.child.once('exit', resolve));
  }

  /** Kills it and everything it started (its process group). */
  kill(): void {
    if (this.child.pid === undefined) return;
    try {
      process.kill(-this.child.pid, 'SIGKILL');
    } catch {
      // the whole group is gone already
    }
  }

  /** Its exit code, or null when it was still running after `graceMs` and had to be killed. */
  async exitWithin(graceMs: number): Promise<number | null> {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<'late'>((resolve) => (timer = setTimeout(() => resolve('late'), graceMs)));
    const first = await Promise.race([this.exited, late]);
    clearTimeout(timer);
    if (first !== 'late') return first;
    this.kill();
    await this.exited;
    return null;
  }

  /** Its output other than `acked` lines, with the size of what was left out of the middle. */
  get output(): string {
    const left = this.outputChars - this.head.length - this.tail.length;
    return left > 0 ? `${this.head}\n[... ${left} characters ...]\n${this.tail}` : this.head + this.tail;
  }

  private keep(text: string): void {
    this.outputChars += text.length;
    if (this.head.length < OUTPUT_KEEP_CHARS) {
      const room = OUTPUT_KEEP_CHARS - this.head.length;
      this.head += text.slice(0, room);
      text = text.slice(room);
    }
    this.tail = (this.tail + text).slice(-OUTPUT_KEEP_CHARS);
  }
}

/** kill -9 of the mount with the writers going; they fail on their next call; then a remount. */
async function killMountAndRemount(writers: Writer[]): Promise<void> {
  up!.child.kill('SIGKILL');
  await up!.exited;
  up = undefined;
  // Most programs stop at their first ENOTCONN; git's directory walk (git reflog expire, inside
  // git gc) prints a warning and reads the directory again, forever (git 2.39). So after a grace
  // period a writer still running is killed, with what it started.
  const codes = await Promise.all(writers.map((w) => w.exitWithin(WRITER_EXIT_GRACE_MS)));
  for (const [i, code] of codes.entries()) {
    assert.notEqual(code, 0, `${writers[i].args.join(' ')} cannot have finished: ${writers[i].output}`);
    // One CI run saw a writer (the git gc loop) print over 512 MiB here; say what it was.
    if (writers[i].outputChars > OUTPUT_KEEP_CHARS)
      console.log(
        `writer ${writers[i].args.join(' ')} printed ${writers[i].outputChars} characters:\n${writers[i].output}`,
      );
  }
  sh(`umount -l ${mnt}`);
  assert.ok(!isMounted(mnt));
  up = await startUp(dataDir, mnt);
}

function verify(args: string[]): string {
  return sh(`python3 ${writersPy} ${args.map((a) => `'${a}'`).join(' ')}`).trim();
}

test('SQLite in WAL and rollback-journal mode: kill -9 of the mount mid-transaction loses no committed transaction', async () => {
  const modes = ['wal', 'delete'];
  // The long profile crashes the same databases again and again, each time mid-transaction.
  const crashes = isLongProfile ? 12 : 1;
  const kept = modes.map(() => 0);
  for (let crash = 1; crash <= crashes; crash++) {
    const writers = modes.map((mode) => new Writer(['sqlite', join(mnt, `${mode}.db`), mode]));
    // At least three of the 3000-row transactions (every fifth) committed in each, each time.
    await waitUntil(
      () => writers.every((w, i) => w.lastAcked >= kept[i] + 16),
      `each SQLite writer to commit 16 transactions (crash ${crash})`,
    );
    assert.deepEqual(
      writers.map((w) => w.output.split('\n')[0]),
      modes,
      'journal modes in force',
    );
    await killMountAndRemount(writers);
    for (const [i, mode] of modes.entries()) {
      const what = `${mode}, crash ${crash} of ${crashes}`;
      const out = verify(['sqlite-verify', join(mnt, `${mode}.db`)]).split('\n');
      assert.equal(out[0], 'ok', `${what}: integrity_check`);
      const match = /^mismatched (\d+) orphans (\d+) last (\d+) count (\d+)$/.exec(out[1]);
      assert.ok(match, out[1]);
      const [mismatched, orphans, last, count] = match.slice(1).map(Number);
      assert.deepEqual([mismatched, orphans], [0, 0], `${what}: every transaction whole`);
      assert.equal(count, last, `${what}: no transaction missing below the last`);
      assert.ok(last >= writers[i].lastAcked, `${what}: ${last} kept, ${writers[i].lastAcked} committed`);
      kept[i] = last;
    }
  }
  // And the databases take writes again, recovering the hot journal or WAL on open; a
  // writer killed mid-transaction (the application crash, the file system alive) loses nothing either.
  for (const mode of modes) {
    const path = join(mnt, `${mode}.db`);
    const again = new Writer(['sqlite', path, mode]);
    await waitUntil(
      () => again.lastAcked > 0 && again.lastAcked % 5 === 0,
      `${mode}: a large commit after the remount`,
    );
    const kept = again.lastAcked;
    await new Promise((resolve) => setTimeout(resolve, 150));
    again.kill();
    await again.exited;
    const out = verify(['sqlite-verify', path]).split('\n');
    assert.equal(out[0], 'ok', `${mode}: integrity_check after the writer was killed`);
    const match = /^mismatched 0 orphans 0 last (\d+) count (\d+)$/.exec(out[1]);
    assert.ok(
      match && match[1] === match[2] && Number(match[1]) >= kept,
      `${mode}: ${out[1]}, ${kept} committed`,
    );
  }
});

test('msync, O_DIRECT + fdatasync and sync_file_range + fdatasync page writers keep every acknowledged page', async () => {
  const kinds = ['mmap', 'direct', 'buffered'];
  const writers = kinds.map((kind) => new Writer(['pages', kind, join(mnt, `${kind}.pages`)]));
  await waitUntil(
    () => writers.every((w) => w.lastAcked >= 200),
    'each page writer to acknowledge 200 rounds',
  );
  await killMountAndRemount(writers);
  for (const [i, kind] of kinds.entries()) {
    const out = verify(['pages-verify', join(mnt, `${kind}.pages`), String(writers[i].lastAcked)]);
    assert.equal(out, 'pages 2048 problems 0', `${kind} after ${writers[i].lastAcked} acknowledged rounds`);
  }
});

test('git gc --aggressive cut by kill -9 of the mount: after a remount git fsck --strict passes and every commit is there', async () => {
  const repo = join(mnt, 'repo');
  // core.fsync=all: git syncs what it writes before renaming it into place (packs, indexes, refs).
  sh(`git init -q ${repo} && cd ${repo} && git config core.fsync all && git config core.fsyncMethod fsync
    git config user.email t@example.com && git config user.name t
    for i in $(seq 1 40); do seq $i 3000 > f$((i % 9)); head -c 20000 /dev/urandom > r$((i % 5)); git add -A; git commit -qm c$i; done`);
  const head = sh(`git -C ${repo} rev-parse HEAD`).trim();
  const gc = new Writer(
    [repo],
    [
      'python3',
      '-c',
      `import subprocess, sys
for i in range(1000):
    subprocess.run(['git', '-C', sys.argv[1], 'gc', '-q', '--aggressive', '--prune=now'], check=True)
    subprocess.run(['git', '-C', sys.argv[1], 'repack', '-adfq'], check=True)
    print(f'acked {i + 1}', flush=True)`,
    ],
  );
  await waitUntil(() => gc.lastAcked >= 1, 'a first gc and repack');
  // Somewhere in the middle of the next ones.
  await new Promise((resolve) => setTimeout(resolve, 700));
  await killMountAndRemount([gc]);
  sh(`git -C ${repo} fsck --strict --no-dangling`);
  assert.equal(sh(`git -C ${repo} rev-parse HEAD`).trim(), head);
  assert.equal(sh(`git -C ${repo} rev-list --count HEAD`).trim(), '40');
  // And the repository takes the next gc, once the lock and temporary files the killed gc held
  // are gone (as after a crash on any file system, git refuses to run while they exist: e.g.
  // objects/info/commit-graph.lock when the kill came while it wrote the graph, packed-refs.new
  // while it packed the refs).
  sh(`find ${repo}/.git \\( -name '*.lock' -o -name packed-refs.new \\) -type f -delete`);
  sh(`git -C ${repo} gc -q && git -C ${repo} fsck --strict --no-dangling`);
});
