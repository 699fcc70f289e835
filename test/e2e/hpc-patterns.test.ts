import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  cleanup,
  freePort,
  isLongProfile,
  isMounted,
  sh,
  StrataProcess,
  tempDir,
  waitUntil,
} from './harness.js';

// The coordination patterns HPC and AI teams rely on, run by real programs (C, python3,
// coreutils) on two mounts of one volume (`strata up --listen` and a `strata mount`, kernel
// caches kept for minutes so only close-to-open and the server's invalidations keep them
// true): N-1 and N-N checkpoints, commit by rename, lock files, a log followed by a reader on
// the other mount, and many readers of a data set. What each may expect is what NFS's
// close-to-open semantics promise (docs/RELIABILITY.md).
const root = tempDir('hpc-patterns');
const dataDir = join(root, 'data');
const mntA = join(root, 'a');
const mntB = join(root, 'b');
const tools = join(root, 'tools');
const hpc = join(tools, 'hpc');
const procs: StrataProcess[] = [];
const CACHE = ['--attr-timeout', '300s', '--entry-timeout', '300s'];
const scale = isLongProfile ? 4 : 1;

/**
 * The C side: writers of one shared file (pwrite of records, or stores through a MAP_SHARED
 * mapping of pages) and its checker. Every byte of record r is 1 + (r * 31 + j) % 255, never
 * zero, so a byte some writer's data lost reads as a mismatch, and the record says whose it was.
 */
const HPC_C = String.raw`
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static unsigned char pattern(long record, long j) { return (unsigned char)(1 + (record * 31 + j) % 255); }

static void die(const char *what) { perror(what); exit(2); }

/* A barrier with the other writers: say where we are, wait for the test's go (a line on stdin). */
static void barrier(const char *reached) {
  char line[16];
  printf("%s\n", reached);
  fflush(stdout);
  if (fgets(line, sizeof line, stdin) == NULL) { fprintf(stderr, "no go after %s\n", reached); exit(2); }
}

int main(int argc, char **argv) {
  if (argc < 3) { fprintf(stderr, "usage: hpc pwrite|mmapwrite|check PATH ...\n"); return 2; }
  const char *mode = argv[1], *path = argv[2];
  if (strcmp(mode, "pwrite") == 0) {
    /* hpc pwrite PATH RANK RANKS RECORDS RECORD_BYTES: records rank, rank + ranks, ... each read
       first (a restart reads what it overwrites), then written; fsync, then close */
    long rank = atol(argv[3]), ranks = atol(argv[4]), records = atol(argv[5]), size = atol(argv[6]);
    int fd = open(path, O_RDWR | O_CREAT, 0644);
    if (fd < 0) die("open");
    barrier("opened");
    unsigned char *buf = malloc(size);
    for (long r = rank; r < records; r += ranks) {
      if (pread(fd, buf, size, r * size) < 0) die("pread");
      for (long j = 0; j < size; j++) buf[j] = pattern(r, j);
      if (pwrite(fd, buf, size, r * size) != size) die("pwrite");
    }
    barrier("written");
    if (fsync(fd) != 0) die("fsync");
    barrier("synced");
    if (close(fd) != 0) die("close");
    return 0;
  }
  if (strcmp(mode, "mmapwrite") == 0) {
    /* hpc mmapwrite PATH RANK RANKS PAGES: pages rank, rank + ranks, ... of a file that size */
    long rank = atol(argv[3]), ranks = atol(argv[4]), pages = atol(argv[5]);
    long page = sysconf(_SC_PAGESIZE);
    int fd = open(path, O_RDWR);
    if (fd < 0) die("open");
    unsigned char *map = mmap(NULL, pages * page, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (map == MAP_FAILED) die("mmap");
    barrier("mapped");
    for (long p = rank; p < pages; p += ranks)
      for (long j = 0; j < page; j++) map[p * page + j] = pattern(p, j);
    barrier("stored");
    if (msync(map, pages * page, MS_SYNC) != 0) die("msync");
    if (munmap(map, pages * page) != 0) die("munmap");
    if (close(fd) != 0) die("close");
    return 0;
  }
  if (strcmp(mode, "check") == 0) {
    /* hpc check PATH RECORDS RECORD_BYTES: the whole file, read after its own open */
    long records = atol(argv[3]), size = atol(argv[4]);
    int fd = open(path, O_RDONLY);
    if (fd < 0) die("open");
    struct stat st;
    if (fstat(fd, &st) != 0) die("fstat");
    if (st.st_size != records * size) {
      printf("size %ld, expected %ld\n", (long)st.st_size, records * size);
      return 1;
    }
    unsigned char *buf = malloc(size);
    long bad = 0;
    for (long r = 0; r < records; r++) {
      if (pread(fd, buf, size, r * size) != size) die("pread");
      for (long j = 0; j < size; j++) {
        if (buf[j] == pattern(r, j)) continue;
        if (bad++ < 5) printf("record %ld byte %ld (offset %ld): %u, expected %u\n", r, j, r * size + j, buf[j], pattern(r, j));
      }
    }
    close(fd);
    if (bad > 0) { printf("%ld bytes wrong\n", bad); return 1; }
    return 0;
  }
  fprintf(stderr, "unknown mode %s\n", mode);
  return 2;
}
`;

before(async () => {
  mkdirSync(mntA, { recursive: true });
  mkdirSync(mntB);
  mkdirSync(tools);
  writeFileSync(`${hpc}.c`, HPC_C);
  sh(`gcc -O2 -Wall -o ${hpc} ${hpc}.c`);
  const port = await freePort();
  const up = new StrataProcess(['up', dataDir, mntA, '--listen', `127.0.0.1:${port}`, ...CACHE]);
  procs.push(up);
  await up.waitFor(() => isMounted(mntA) && up.output.includes('metadata served on'), 'strata up to serve');
  const client = new StrataProcess([
    'mount',
    `127.0.0.1:${port}/strata`,
    mntB,
    '--secret-file',
    join(dataDir, 'meta.db.secret'),
    ...CACHE,
  ]);
  procs.push(client);
  await client.waitFor(() => isMounted(mntB) && client.output.includes('mounted at'), 'the client mount');
});

after(async () => {
  // The client first, then the mount that serves it.
  await cleanup(procs.slice(1), [mntB], []);
  await cleanup(procs.slice(0, 1), [mntA], [root]);
});

/** Runs `command ARGS` to completion; rejects with its output unless it exits 0. Resolves to stdout. */
function run(command: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) =>
      code === 0
        ? resolve(stdout)
        : reject(new Error(`${command} ${args.join(' ')} exited ${code}:\n${stdout}\n${stderr}`)),
    );
  });
}

/**
 * Processes of one parallel job, rank r running `command argsOf(r)`, moved through their
 * barriers by the test: each prints a line on reaching a barrier and waits for a line on stdin.
 */
class Ranks {
  private readonly children: {
    child: ChildProcessWithoutNullStreams;
    output: string;
    reached: number;
    closed: Promise<number | null>;
  }[];

  constructor(
    command: string,
    count: number,
    private readonly argsOf: (rank: number) => string[],
  ) {
    this.children = Array.from({ length: count }, (_, rank) => {
      const child = spawn(command, argsOf(rank), { stdio: ['pipe', 'pipe', 'pipe'] });
      const entry = { child, output: '', reached: 0, closed: Promise.resolve<number | null>(null) };
      entry.closed = new Promise((resolve) => child.on('close', resolve));
      child.stdout.on('data', (chunk: Buffer) => {
        entry.output += chunk.toString();
        entry.reached = entry.output.split('\n').length - 1;
      });
      child.stderr.on('data', (chunk: Buffer) => (entry.output += chunk.toString()));
      return entry;
    });
  }

  /** Waits until the ranks `which` selects have reached barrier number `barrier` (from 1). */
  async reach(barrier: number, which: (rank: number) => boolean = () => true): Promise<void> {
    await waitUntil(
      () =>
        this.children.every((entry, rank) => {
          if (!which(rank) || entry.reached >= barrier) return true;
          if (entry.child.exitCode !== null) throw new Error(this.failure(rank));
          return false;
        }),
      `ranks at barrier ${barrier}`,
    );
  }

  /** Lets the ranks `which` selects go on from their barrier. */
  go(which: (rank: number) => boolean = () => true): void {
    this.children.forEach((entry, rank) => {
      if (which(rank)) entry.child.stdin.write('go\n');
    });
  }

  /** Waits for the ranks `which` selects to exit, each with status 0. */
  async finish(which: (rank: number) => boolean = () => true): Promise<void> {
    for (const [rank, entry] of this.children.entries()) {
      if (!which(rank)) continue;
      assert.equal(await entry.closed, 0, this.failure(rank));
    }
  }

  /** Every barrier at once for all ranks, then their exit. */
  async lockstep(barriers: number): Promise<void> {
    for (let barrier = 1; barrier <= barriers; barrier++) {
      await this.reach(barrier);
      this.go();
    }
    await this.finish();
  }

  kill(): void {
    for (const { child } of this.children) if (child.exitCode === null) child.kill('SIGKILL');
  }

  private failure(rank: number): string {
    const entry = this.children[rank];
    return `rank ${rank} (${this.argsOf(rank).join(' ')}) exited ${entry.child.exitCode}:\n${entry.output}`;
  }
}

/** The mount rank `rank` runs on: even ranks on A, odd ones on B. */
function mountOf(rank: number): string {
  return rank % 2 === 0 ? mntA : mntB;
}

const onA = (rank: number): boolean => rank % 2 === 0;
const onB = (rank: number): boolean => rank % 2 === 1;

test('N-1 checkpoint: 1000-byte records pwritten from both mounts at once into one file are all there, read on either', async () => {
  const ranks = 4;
  const records = 400 * scale;
  const recordBytes = 1000;
  const path = (mnt: string): string => join(mnt, 'n1.ckpt');
  // Sized first, so each rank reads the records it overwrites (a restart's read-modify-write).
  sh(`truncate -s ${records * recordBytes} ${path(mntA)}`);
  const job = new Ranks(hpc, ranks, (rank) => [
    'pwrite',
    path(mountOf(rank)),
    String(rank),
    String(ranks),
    String(records),
    String(recordBytes),
  ]);
  try {
    // All open and write; B's ranks commit and close while A's still hold their writes; then
    // A's fsync and, still open, a reader opens on each mount; then A's close.
    await job.reach(1);
    job.go();
    await job.reach(2);
    job.go(onB);
    await job.reach(3, onB);
    job.go(onB);
    await job.finish(onB);
    job.go(onA);
    await job.reach(3, onA);
    for (const mnt of [mntA, mntB])
      await run(hpc, ['check', path(mnt), String(records), String(recordBytes)]);
    job.go(onA);
    await job.finish(onA);
    for (const mnt of [mntA, mntB])
      await run(hpc, ['check', path(mnt), String(records), String(recordBytes)]);
  } finally {
    job.kill();
  }
});

test('N-1 checkpoint through MAP_SHARED mappings: pages stored from both mounts at once are all there', async () => {
  const ranks = 4;
  const pages = 256 * scale;
  const path = (mnt: string): string => join(mnt, 'n1-mmap.ckpt');
  sh(`truncate -s ${pages * 4096} ${path(mntA)}`);
  const job = new Ranks(hpc, ranks, (rank) => [
    'mmapwrite',
    path(mountOf(rank)),
    String(rank),
    String(ranks),
    String(pages),
  ]);
  try {
    await job.lockstep(2);
  } finally {
    job.kill();
  }
  for (const mnt of [mntA, mntB]) await run(hpc, ['check', path(mnt), String(pages), '4096']);
});
