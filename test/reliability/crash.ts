// Crash injection: a write/fsync workload on a `strata up` mount, the mount
// process (which also runs the embedded metadata service) killed with SIGKILL
// at a random moment, then restarted on the same data directory. After each
// restart: every file whose fsync was acknowledged exists, holds at least
// everything acknowledged, and no byte of any file is one that was never
// written (each byte is the acknowledged one, a later write's, or a zero of a
// hole or extension); and strata fsck finds the stopped volume's metadata and
// objects consistent.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { openEngine } from '../../src/meta/index.js';
import '../../src/meta/engines/sqlite/register.js';
import { openObjectStore } from '../../src/object/index.js';
import { fsck } from '../../src/ops/index.js';
import { Executor } from './executor.js';
import { Random } from './generator.js';
import { startStrata, type StrataMount } from './strata-mount.js';

const FILE_COUNT = 4;
const MAX_FILE_BYTES = 256 * 1024;

/** The executor's content pattern (executor.c fillPattern), reproduced to build the model. */
export function fillPattern(length: number, seed: number): Uint8Array {
  const out = new Uint8Array(length);
  let x = (Math.imul(seed >>> 0, 2654435761) + 0x9e3779b9) >>> 0;
  if (x === 0) x = 1;
  for (let i = 0; i < length; i++) {
    x = (x ^ (x << 13)) >>> 0;
    x = (x ^ (x >>> 17)) >>> 0;
    x = (x ^ (x << 5)) >>> 0;
    out[i] = x >>> 24;
  }
  return out;
}

/** What one file may hold after a crash: the acknowledged image plus what came after it. */
export class FileModel {
  /** Content if every write issued so far landed. */
  current = new Uint8Array(0);
  /** Content at the last acknowledged fsync (null: never acknowledged). */
  acked: Uint8Array | null = null;
  /** Writes issued since that fsync, each possibly landed or lost. */
  pending: { offset: number; bytes: Uint8Array }[] = [];
  /** Smallest size a truncate issued since the fsync may have left. */
  minPendingSize = Infinity;

  write(offset: number, bytes: Uint8Array): void {
    const end = offset + bytes.length;
    if (end > this.current.length) {
      const grown = new Uint8Array(end);
      grown.set(this.current);
      this.current = grown;
    }
    this.current.set(bytes, offset);
    this.pending.push({ offset, bytes });
  }

  truncate(size: number): void {
    const next = new Uint8Array(size);
    next.set(this.current.subarray(0, Math.min(size, this.current.length)));
    this.current = next;
    this.minPendingSize = Math.min(this.minPendingSize, size);
  }

  ack(): void {
    this.acked = this.current.slice();
    this.pending = [];
    this.minPendingSize = Infinity;
  }

  /** Why `actual` cannot be a state of this file after a crash, or undefined if it can. */
  check(actual: Uint8Array | null): string | undefined {
    if (actual === null) return this.acked ? 'file with an acknowledged fsync is missing' : undefined;
    const acked = this.acked ?? new Uint8Array(0);
    const minSize = Math.min(acked.length, this.minPendingSize);
    const maxSize = Math.max(acked.length, ...this.pending.map((w) => w.offset + w.bytes.length));
    if (actual.length < minSize) return `size ${actual.length} < acknowledged ${minSize}`;
    if (actual.length > maxSize) return `size ${actual.length} > anything written (${maxSize})`;
    for (let p = 0; p < actual.length; p++) {
      const value = actual[p];
      if (p < acked.length && value === acked[p]) continue;
      // Zeros: a hole, an extension, or a truncate then re-extension.
      if (value === 0 && (p >= acked.length || this.minPendingSize <= p)) continue;
      if (
        this.pending.some(
          (w) => p >= w.offset && p < w.offset + w.bytes.length && w.bytes[p - w.offset] === value,
        )
      ) {
        continue;
      }
      const was = p < acked.length ? acked[p] : 'nothing';
      return `byte ${p} is ${value}: acknowledged ${was}, and no later write put it there`;
    }
    return undefined;
  }
}

export interface CrashOptions {
  seed: number;
  crashes: number;
  /** The longest the workload runs before the kill. */
  maxRunMs?: number;
}

export interface CrashResult {
  crashesInjected: number;
  fsyncsAcknowledged: number;
  writesIssued: number;
  problems: string[];
}

/** Runs `crashes` kill -9 / restart cycles on one volume and checks every file after each. */
export async function runCrashLoop(options: CrashOptions): Promise<CrashResult> {
  const r = new Random(options.seed);
  const result: CrashResult = { crashesInjected: 0, fsyncsAcknowledged: 0, writesIssued: 0, problems: [] };
  // Our own directory: a mount started without one removes its data when stopped.
  const work = mkdtempSync('/tmp/strata-rel-crash-');
  const dataDir = join(work, 'data');
  const mountpoint = join(work, 'mnt');
  let mount: StrataMount = await startStrata({ dataDir, mountpoint });
  try {
    for (let cycle = 0; cycle < options.crashes && result.problems.length === 0; cycle++) {
      const base = `crash-${cycle}`;
      const files = Array.from({ length: FILE_COUNT }, () => new FileModel());
      const executor = new Executor({ root: mountpoint, requestTimeoutMs: 30_000 });
      let killed = false;
      const killAfterMs = 20 + r.int(options.maxRunMs ?? 1500);
      const timer = setTimeout(() => {
        killed = true;
        mount.child.kill('SIGKILL');
      }, killAfterMs);
      try {
        await workload(executor, base, files, r, result, () => killed);
      } finally {
        clearTimeout(timer);
        if (!killed) {
          killed = true;
          mount.child.kill('SIGKILL');
        }
        await new Promise<void>((resolve) =>
          mount.child.exitCode !== null || mount.child.signalCode !== null
            ? resolve()
            : mount.child.once('exit', () => resolve()),
        );
        await executor.close();
        await mount.stop();
      }
      result.crashesInjected++;
      const engineUrl = `sqlite:${join(dataDir, 'meta.db')}`;
      for (const p of await checkMetadata(engineUrl, `file:${join(dataDir, 'objects')}`)) {
        result.problems.push(`seed ${options.seed} crash ${cycle}: fsck: ${p}`);
      }
      mount = await startStrata({ dataDir, mountpoint });
      for (let i = 0; i < FILE_COUNT; i++) {
        const problem = files[i].check(readOrNull(join(mountpoint, base, `f${i}`)));
        if (problem)
          result.problems.push(`seed ${options.seed} crash ${cycle} file ${base}/f${i}: ${problem}`);
      }
    }
  } finally {
    await mount.stop();
    rmSync(work, { recursive: true, force: true });
  }
  return result;
}

/** strata fsck (check only) on a volume no server runs on: the metadata must be consistent after a crash. */
export async function checkMetadata(engineUrl: string, storageUrl: string): Promise<string[]> {
  const engine = await openEngine(engineUrl);
  try {
    const store = await openObjectStore(storageUrl, { retry: false });
    const report = await fsck({ engine, store });
    return report.problems.map((p) => `${p.code}: ${p.message}`);
  } finally {
    await engine.close();
  }
}

export function readOrNull(path: string): Uint8Array | null {
  try {
    return readFileSync(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw error;
  }
}

/** Creates the files durably, then writes, truncates and fsyncs at random until the kill. */
async function workload(
  executor: Executor,
  base: string,
  files: FileModel[],
  r: Random,
  result: CrashResult,
  killed: () => boolean,
): Promise<void> {
  const ok = async (line: string): Promise<boolean> => {
    try {
      return (await executor.request(line)).startsWith('ok');
    } catch (error) {
      // A kill before the executor even opened the mount ends it: that is the crash, not a bug.
      if (killed()) return false;
      throw error;
    }
  };
  if (!(await ok(`!base ${base}`))) return;
  for (let i = 0; i < FILE_COUNT; i++) {
    if (!(await ok(`0 open ${i} f${i} rw+creat+excl 0644`))) return;
    if (!(await ok(`0 fsync ${i}`))) return;
    files[i].ack();
  }
  // Names are durable only once their directory is synced: the files' and the base's own.
  for (const [slot, dir] of [
    [7, '.'],
    [6, '..'],
  ] as const) {
    if (!(await ok(`0 open ${slot} ${dir} r+directory 0`)) || !(await ok(`0 fsync ${slot}`))) return;
  }
  while (!killed()) {
    const i = r.int(FILE_COUNT);
    const roll = r.next();
    if (roll < 0.7) {
      const offset = r.chance(0.7) ? files[i].current.length : r.int(MAX_FILE_BYTES - 70_000);
      const length = r.range(1, 65_536);
      const seed = r.int(1e9);
      files[i].write(offset, fillPattern(length, seed));
      result.writesIssued++;
      if (!(await ok(`0 write ${i} ${offset} ${length} ${seed}`))) return;
    } else if (roll < 0.75) {
      const size = r.int(files[i].current.length + 1);
      files[i].truncate(size);
      if (!(await ok(`0 ftrunc ${i} ${size}`))) return;
    } else {
      if (!(await ok(`0 fsync ${i}`))) return;
      files[i].ack();
      result.fsyncsAcknowledged++;
    }
  }
}
