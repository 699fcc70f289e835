// Crash injection of the metadata server as its own process: `strata meta
// serve` and `strata mount` run separately, a write/truncate/fsync/close
// workload runs on the mount, and the server gets SIGKILL at a random moment.
// While it is down, `strata fsck` checks the engine it left behind; after a
// random outage it is restarted on the same engine and address, and the SAME
// mount must reconnect by itself (no remount) and acknowledge fsyncs again.
// Then every file is checked through the mount, and at the end through a
// fresh mount (so only what is durable counts): every acknowledged fsync or
// close intact, no byte that was never written.
//
// Operations that fail while the server is down are expected (EIO once the
// RPC client's retries give up). A file that saw any failure is frozen for the
// rest of its cycle: after a failed write or fsync nothing says which of its
// earlier writes landed, so its model keeps them all as "maybe" and it is
// never acknowledged again.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { checkMetadata, FileModel, fillPattern, readOrNull } from './crash.js';
import { Executor, repoRoot } from './executor.js';
import { Random } from './generator.js';
import { distDir, isMounted } from './strata-mount.js';

const MAX_FILE_BYTES = 256 * 1024;
/** Executor slots 0..DIR_SLOT-1 hold files; DIR_SLOT holds the cycle's directory. */
const DIR_SLOT = 15;
const LIVE_FILES = 4;
const MAX_FILES_PER_CYCLE = 48;
/** Acknowledged fsyncs after the restart that show the mount has recovered. */
const ACKS_TO_RECOVER = 3;
const RECOVER_TIMEOUT_MS = 30_000;

export interface MetaCrashOptions {
  seed: number;
  crashes: number;
  /** The longest the workload runs before the kill. */
  maxRunMs?: number;
  /** The longest the server stays down (after fsck) before its restart. */
  maxDownMs?: number;
}

export interface MetaCrashResult {
  crashesInjected: number;
  fsyncsAcknowledged: number;
  /** Acknowledged after a restart of the server, on the mount that saw the crash. */
  fsyncsAfterRestart: number;
  /** Operations that failed while the server was away (expected, counted for the summary). */
  operationsFailed: number;
  writesIssued: number;
  problems: string[];
}

interface TrackedFile {
  path: string;
  model: FileModel;
  slot: number;
  live: boolean;
}

/** A `strata` child process with the tail of its output. */
interface StrataProcess {
  child: ChildProcess;
  log(): string;
  exited: Promise<void>;
}

function spawnStrata(args: string[]): StrataProcess {
  let output = '';
  const child = spawn(process.execPath, [join(repoRoot(), 'bin', 'strata.js'), ...args], {
    cwd: repoRoot(),
    env: { ...process.env, STRATA_DIST_DIR: distDir() },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const collect = (chunk: Buffer): void => {
    output = (output + chunk.toString('utf8')).slice(-8192);
  };
  child.stdout?.on('data', collect);
  child.stderr?.on('data', collect);
  const exited = new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    else child.once('exit', () => resolve());
  });
  return { child, log: () => output, exited };
}

function running(p: StrataProcess): boolean {
  return p.child.exitCode === null && p.child.signalCode === null;
}

async function waitFor(
  p: StrataProcess,
  ready: () => boolean,
  what: string,
  timeoutMs = 30_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!ready()) {
    if (!running(p) || Date.now() > deadline) {
      p.child.kill('SIGKILL');
      await p.exited;
      throw new Error(`${what} did not start:\n${p.log().trim()}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

async function kill(p: StrataProcess, signal: NodeJS.Signals): Promise<void> {
  if (!running(p)) return;
  p.child.kill(signal);
  const timer = setTimeout(() => p.child.kill('SIGKILL'), 15_000);
  await p.exited;
  clearTimeout(timer);
}

/** A TCP port free right now; the server must come back on the same one. */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === 'string') throw new Error('no TCP port for the metadata server');
  return address.port;
}

/** The volume's pieces, and the processes serving and mounting it. */
class Cluster {
  server: StrataProcess | undefined;
  mount: StrataProcess | undefined;
  readonly engineUrl: string;
  readonly storageUrl: string;
  readonly mountpoint: string;
  private address = '';

  constructor(readonly work: string) {
    this.engineUrl = `sqlite:${join(work, 'meta.db')}`;
    this.storageUrl = `file:${join(work, 'objects')}`;
    this.mountpoint = join(work, 'mnt');
  }

  async format(): Promise<void> {
    mkdirSync(this.mountpoint, { recursive: true });
    const formatted = spawnSync(
      process.execPath,
      [
        join(repoRoot(), 'bin', 'strata.js'),
        'format',
        '--engine',
        this.engineUrl,
        '--storage',
        this.storageUrl,
        '--name',
        'crashvol',
      ],
      { cwd: repoRoot(), env: { ...process.env, STRATA_DIST_DIR: distDir() }, encoding: 'utf8' },
    );
    if (formatted.status !== 0) throw new Error(`strata format failed: ${formatted.stderr}`);
    this.address = `127.0.0.1:${await freePort()}`;
  }

  async startServer(): Promise<void> {
    const server = spawnStrata(['meta', 'serve', '--engine', this.engineUrl, '--listen', this.address]);
    this.server = server;
    await waitFor(server, () => server.log().includes('listening on'), 'strata meta serve');
  }

  async startMount(): Promise<void> {
    const mount = spawnStrata([
      'mount',
      `${this.address}/crashvol`,
      this.mountpoint,
      '--secret-file',
      join(this.work, 'meta.db.secret'),
    ]);
    this.mount = mount;
    await waitFor(
      mount,
      () => mount.log().includes('mounted at') && isMounted(this.mountpoint),
      'strata mount',
    );
  }

  /** Why paths under the mountpoint no longer reach this cluster's mount, if they do not. */
  detachedWhy(): string | undefined {
    const mount = this.mount;
    if (mount === undefined) return 'no mount was started';
    if (!running(mount)) {
      return `the mount process ended (${mount.child.exitCode ?? mount.child.signalCode}): ${mount.log().trim().slice(-600)}`;
    }
    if (!isMounted(this.mountpoint)) {
      return `${this.mountpoint} is no longer mounted although its mount process runs: detached from outside (umount -l by another process?)`;
    }
    return undefined;
  }

  /** kill -9 of the mount; the dead mount is detached so a new one can take its place. */
  async crashMount(): Promise<void> {
    if (this.mount) await kill(this.mount, 'SIGKILL');
    if (isMounted(this.mountpoint)) spawnSync('umount', ['-l', this.mountpoint]);
  }

  /** Leaves no process and no mount behind, whatever state things are in. */
  async stop(): Promise<void> {
    if (this.mount) await kill(this.mount, 'SIGTERM');
    if (isMounted(this.mountpoint)) spawnSync('umount', ['-l', this.mountpoint]);
    if (this.server) await kill(this.server, 'SIGTERM');
  }
}

/** Runs `crashes` kill -9 / restart cycles of the metadata server under one mount. */
export async function runMetaCrashLoop(options: MetaCrashOptions): Promise<MetaCrashResult> {
  const r = new Random(options.seed);
  const result: MetaCrashResult = {
    crashesInjected: 0,
    fsyncsAcknowledged: 0,
    fsyncsAfterRestart: 0,
    operationsFailed: 0,
    writesIssued: 0,
    problems: [],
  };
  const work = mkdtempSync('/tmp/strata-rel-metacrash-');
  const cluster = new Cluster(work);
  const files: TrackedFile[] = [];
  const trail: string[] = [];
  const checkAll = async (when: string, list: readonly TrackedFile[]): Promise<void> => {
    // Paths only reach the volume while this mount is attached. A mount detached from outside
    // (a stray `umount -l`) keeps serving the workload's open descriptors, so the workload goes
    // on, but every path then names the empty directory beneath: report that, not lost files.
    const detached = cluster.detachedWhy();
    if (detached !== undefined) {
      result.problems.push(`seed ${options.seed} ${when}: cannot check files: ${detached}`);
      return;
    }
    for (const file of list) {
      const path = join(cluster.mountpoint, file.path);
      const problem = file.model.check(readOrNull(path));
      if (problem) {
        const seen = await explainMissing(cluster, file.path, trail);
        result.problems.push(`seed ${options.seed} ${when}: ${file.path}: ${problem}${seen}`);
      }
    }
  };
  try {
    await cluster.format();
    await cluster.startServer();
    await cluster.startMount();
    for (let cycle = 0; cycle < options.crashes && result.problems.length === 0; cycle++) {
      trail.length = 0;
      const cycleFiles = await runCycle(cluster, `cycle-${cycle}`, r, options, result, trail);
      files.push(...cycleFiles);
      await checkAll(`crash ${cycle}, through the reconnected mount`, cycleFiles);
    }
    // Only what reached the metadata server and the store counts now.
    await cluster.crashMount();
    await cluster.startMount();
    trail.length = 0;
    await checkAll('after all crashes, through a fresh mount', files);
  } finally {
    await cluster.stop();
    rmSync(work, { recursive: true, force: true });
  }
  return result;
}

/** One cycle: workload, kill -9 of the server, fsck, restart, recovery of the same mount. */
async function runCycle(
  cluster: Cluster,
  base: string,
  r: Random,
  options: MetaCrashOptions,
  result: MetaCrashResult,
  trail: string[],
): Promise<TrackedFile[]> {
  const executor = new Executor({ root: cluster.mountpoint, requestTimeoutMs: 60_000 });
  const files: TrackedFile[] = [];
  let stop = false;
  let restarted = false;
  // The cycle's directory is made durably before the kill timer starts: the server is up.
  const setUp = async (line: string): Promise<boolean> => (await executor.request(line)).startsWith('ok');
  const ready =
    (await setUp(`!base ${base}`)) &&
    (await setUp(`0 open ${DIR_SLOT} .. r+directory 0`)) &&
    (await setUp(`0 fsync ${DIR_SLOT}`)) &&
    (await setUp(`0 close ${DIR_SLOT}`)) &&
    (await setUp(`0 open ${DIR_SLOT} . r+directory 0`));
  if (!ready) {
    await executor.close();
    throw new Error(`could not set up ${base} on the mount with the metadata server up`);
  }
  const workload = runWorkload(executor, base, files, r, result, trail, {
    stopped: () => stop,
    restarted: () => restarted,
  });
  // A workload that throws (a hung file system) must not leave an unhandled rejection behind.
  let workloadError: unknown;
  const workloadDone = workload.catch((error: unknown) => {
    workloadError = error;
  });
  try {
    await new Promise((resolve) => setTimeout(resolve, 20 + r.int(options.maxRunMs ?? 1500)));
    const server = cluster.server;
    if (server) await kill(server, 'SIGKILL');
    note(trail, 'server killed');
    result.crashesInjected++;
    for (const problem of await checkMetadata(cluster.engineUrl, cluster.storageUrl)) {
      result.problems.push(
        `seed ${options.seed} ${base}: fsck of the engine the killed server left: ${problem}`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, r.int(options.maxDownMs ?? 3000)));
    await cluster.startServer();
    note(trail, 'server restarted');
    restarted = true;
    const deadline = Date.now() + RECOVER_TIMEOUT_MS;
    const acksBefore = result.fsyncsAfterRestart;
    while (result.fsyncsAfterRestart - acksBefore < ACKS_TO_RECOVER && workloadError === undefined) {
      if (Date.now() > deadline) {
        result.problems.push(
          `seed ${options.seed} ${base}: the mount acknowledged fewer than ${ACKS_TO_RECOVER} fsyncs within ${RECOVER_TIMEOUT_MS} ms of the server's restart`,
        );
        break;
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  } finally {
    stop = true;
    await workloadDone;
    await executor.close();
  }
  if (workloadError !== undefined) {
    result.problems.push(`seed ${options.seed} ${base}: workload: ${String(workloadError)}`);
  }
  return files;
}

/** Creates files durably, then writes, truncates, fsyncs and closes at random until stopped. */
async function runWorkload(
  executor: Executor,
  base: string,
  files: TrackedFile[],
  r: Random,
  result: MetaCrashResult,
  trail: string[],
  phase: { stopped(): boolean; restarted(): boolean },
): Promise<void> {
  const ok = async (line: string): Promise<boolean> => {
    const answer = await executor.request(line);
    if (answer.startsWith('ok')) return true;
    note(trail, `${line} -> ${answer}`);
    result.operationsFailed++;
    return false;
  };
  const acked = (file: TrackedFile): void => {
    file.model.ack();
    result.fsyncsAcknowledged++;
    if (phase.restarted()) result.fsyncsAfterRestart++;
  };
  const freeSlots = Array.from({ length: DIR_SLOT }, (_, i) => i);
  while (!phase.stopped()) {
    const live = files.filter((f) => f.live);
    if (live.length < LIVE_FILES && files.length < MAX_FILES_PER_CYCLE && freeSlots.length > 0) {
      const file: TrackedFile = {
        path: `${base}/f${files.length}`,
        model: new FileModel(),
        slot: freeSlots.pop() ?? 0,
        live: true,
      };
      files.push(file);
      const name = file.path.slice(base.length + 1);
      // The name is durable once the directory is synced too.
      file.live =
        (await ok(`0 open ${file.slot} ${name} rw+creat+excl 0644`)) &&
        (await ok(`0 fsync ${file.slot}`)) &&
        (await ok(`0 fsync ${DIR_SLOT}`));
      if (file.live) acked(file);
      else await retire(executor, file, freeSlots);
      continue;
    }
    if (live.length === 0) {
      // Every slot used up while the server is away: wait for the cycle to end.
      await new Promise((resolve) => setTimeout(resolve, 50));
      continue;
    }
    const file = r.pick(live);
    const model = file.model;
    const roll = r.next();
    let done: boolean;
    if (roll < 0.65) {
      const offset = r.chance(0.7) ? model.current.length : r.int(MAX_FILE_BYTES - 70_000);
      const length = r.range(1, 65_536);
      const seed = r.int(1e9);
      model.write(offset, fillPattern(length, seed));
      result.writesIssued++;
      done = await ok(`0 write ${file.slot} ${offset} ${length} ${seed}`);
    } else if (roll < 0.7) {
      const size = r.int(model.current.length + 1);
      model.truncate(size);
      done = await ok(`0 ftrunc ${file.slot} ${size}`);
    } else if (roll < 0.93) {
      done = await ok(`0 fsync ${file.slot}`);
      if (done) acked(file);
    } else {
      // close() returns only once the data is durable (docs/cli.md, Durability): an acknowledgement too.
      done = await ok(`0 close ${file.slot}`);
      if (done) acked(file);
      done = done && (await ok(`0 open ${file.slot} ${file.path.slice(base.length + 1)} rw 0`));
      if (!done) {
        file.live = false;
        freeSlots.push(file.slot);
        continue;
      }
    }
    if (!done) await retire(executor, file, freeSlots);
  }
}

/** Freezes a file after a failure: its model stays as it is, its slot is closed and reused. */
async function retire(executor: Executor, file: TrackedFile, freeSlots: number[]): Promise<void> {
  file.live = false;
  // Whatever close says, the frozen model already allows every write as landed or lost.
  await executor.request(`0 close ${file.slot}`);
  freeSlots.push(file.slot);
}

/** Failed operations and the server's kill and restart of the current cycle, for problem reports. */
function note(trail: string[], what: string): void {
  trail.push(`${new Date().toISOString().slice(11, 23)} ${what}`);
  if (trail.length > 40) trail.splice(0, trail.length - 40);
}

/**
 * What the mount shows around a missing file, and whether it is still missing once the
 * kernel's entry timeout (1 s by default) has run out: tells a stale cached name from a
 * name the metadata service lost.
 */
async function explainMissing(cluster: Cluster, path: string, trail: readonly string[]): Promise<string> {
  const { mountpoint } = cluster;
  const list = (dir: string): string => {
    try {
      return readdirSync(join(mountpoint, dir)).sort().join(' ');
    } catch (error) {
      return (error as NodeJS.ErrnoException).code ?? String(error);
    }
  };
  const dir = path.slice(0, path.lastIndexOf('/'));
  const before = `root lists [${list('.')}], ${dir} lists [${list(dir)}]`;
  await new Promise((resolve) => setTimeout(resolve, 2_000));
  const later = readOrNull(join(mountpoint, path)) === null ? 'still missing' : 'present';
  const mount = cluster.detachedWhy() ?? 'mount attached';
  return ` (${before}; 2 s later: ${later}, ${mount}; failed operations and events of the cycle: ${trail.join(' | ')})`;
}
