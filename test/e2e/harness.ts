import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';

/**
 * The repository root: the nearest directory holding package.json and bin/strata.js above
 * this file, or above the working directory when the build lives outside the repo
 * (STRATA_DIST_DIR=/tmp/dist-NAME; the test runner runs from the repo root).
 */
export function repoRoot(): string {
  for (const start of [dirname(fileURLToPath(import.meta.url)), process.cwd()]) {
    for (let dir = start; ; dir = dirname(dir)) {
      if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'bin', 'strata.js'))) return dir;
      if (dirname(dir) === dir) break;
    }
  }
  throw new Error('cannot find the repository root (package.json, bin/strata.js); run from the repo');
}

/** The build output the tests run from: the CLI must run from the same one. */
export function distDir(): string {
  // .../DIST/test/e2e/harness.js -> DIST
  return dirname(dirname(dirname(fileURLToPath(import.meta.url))));
}

export const isLongProfile = process.env.STRATA_TEST_PROFILE === 'long';

export function strataEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return { ...process.env, STRATA_DIST_DIR: distDir(), ...extra };
}

/** Runs `strata ARGS` to completion. */
export function strata(
  args: string[],
  env: Record<string, string> = {},
): { status: number; stdout: string; stderr: string } {
  const result = spawnSync(process.execPath, [join(repoRoot(), 'bin', 'strata.js'), ...args], {
    env: strataEnv(env),
    cwd: repoRoot(),
    encoding: 'utf8',
    timeout: 60_000,
  });
  return { status: result.status ?? -1, stdout: result.stdout, stderr: result.stderr };
}

/**
 * `strata format` of volume `name` on `engine`, its objects in the local directory
 * `objectsDir`, the secret written to `secretFile` when given. Returns format's output; a
 * failed format throws with its stderr.
 */
export function formatVolume(engine: string, objectsDir: string, name: string, secretFile?: string): string {
  const args = ['format', '--engine', engine, '--storage', `file:${objectsDir}`, '--name', name];
  if (secretFile !== undefined) args.push('--secret-file', secretFile);
  const formatted = strata(args);
  if (formatted.status !== 0) throw new Error(`strata ${args.join(' ')} failed: ${formatted.stderr}`);
  return formatted.stdout;
}

export function isMounted(mountpoint: string): boolean {
  return readFileSync('/proc/mounts', 'utf8')
    .split('\n')
    .some((line) => line.split(' ')[1] === mountpoint);
}

/** A temporary directory under /tmp/strata-vfs-*, removed by `cleanup`. */
/** A fresh directory under $TMPDIR (default /tmp): a benchmark can run on a file system of its choice. */
export function tempDir(label: string): string {
  return mkdtempSync(join(tmpdir(), `strata-vfs-${label}-`));
}

/**
 * Where a test keeps its reference directory on tmpfs (/dev/shm), named after its `tempDir`: the
 * same steps run there and on the mount are compared. The test creates it and passes it to
 * `cleanup` with its other directories.
 */
export function tmpfsTwinOf(root: string): string {
  return join('/dev/shm', basename(root));
}

/** A long-running strata process (up, mount, meta serve) whose output is kept for failure messages. */
export class StrataProcess {
  readonly child: ChildProcess;
  output = '';
  exited: Promise<number | null>;
  exitCode: number | null | undefined = undefined;

  /** `nodeFlags` go to node before the script (e.g. --cpu-prof for a benchmark's profile). */
  constructor(args: string[], env: Record<string, string> = {}, nodeFlags: readonly string[] = []) {
    this.child = spawn(process.execPath, [...nodeFlags, join(repoRoot(), 'bin', 'strata.js'), ...args], {
      env: strataEnv(env),
      // The native fdpoll addon is found from the working directory when the build is outside the repo.
      cwd: repoRoot(),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const keep = (chunk: Buffer): void => {
      this.output = (this.output + chunk.toString()).slice(-20_000);
    };
    this.child.stdout?.on('data', keep);
    this.child.stderr?.on('data', keep);
    this.exited = new Promise((resolve) =>
      this.child.once('exit', (code) => {
        this.exitCode = code;
        resolve(code);
      }),
    );
  }

  get pid(): number {
    return this.child.pid ?? -1;
  }

  /** Waits until `ready()` holds, failing early with the process's output if it exits. */
  async waitFor(ready: () => boolean, what: string, timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!ready()) {
      if (this.exitCode !== undefined) {
        throw new Error(`strata exited with ${this.exitCode} before ${what}:\n${this.output}`);
      }
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}:\n${this.output}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  /** SIGTERM and wait; SIGKILL if it does not stop in time. Returns the exit code. */
  async stop(timeoutMs = 60_000): Promise<number | null> {
    if (this.exitCode !== undefined) return this.exitCode;
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), timeoutMs);
    try {
      return await this.exited;
    } finally {
      clearTimeout(timer);
    }
  }

  kill(): void {
    if (this.exitCode === undefined) this.child.kill('SIGKILL');
  }
}

/**
 * STRATA_E2E_STORAGE=s3://BUCKET?endpoint=... runs the end-to-end tests on that object store:
 * each data dir gets its own prefix (stable across restarts of the same volume).
 */
export function e2eStorageArgs(dataDir: string, extraArgs: string[]): string[] {
  const base = process.env.STRATA_E2E_STORAGE;
  if (!base || extraArgs.includes('--storage')) return [];
  const q = base.indexOf('?');
  const head = (q < 0 ? base : base.slice(0, q)).replace(/\/+$/, '');
  // The whole path: data dirs are unique temp dirs, while their base names ("data") repeat.
  const volumePrefix = dataDir.replace(/[^A-Za-z0-9._-]+/g, '-').replace(/^-+/, '');
  return ['--storage', `${head}/e2e/${volumePrefix}${q < 0 ? '' : base.slice(q)}`];
}

/**
 * Two mounts of one volume: `strata up DATA_DIR MNT_A --listen` and a `strata mount` of its
 * volume on MNT_B, both with `args`, each live before this resolves. Each process goes into
 * `procs` as it starts, so the caller's cleanup stops it even if a later start fails; stop the
 * client (procs[1]) before the mount that serves it.
 */
export async function startServedPair(
  dataDir: string,
  mntA: string,
  mntB: string,
  args: string[],
  procs: StrataProcess[],
): Promise<void> {
  const port = await freePort();
  const up = new StrataProcess(['up', dataDir, mntA, '--listen', `127.0.0.1:${port}`, ...args]);
  procs.push(up);
  await up.waitFor(() => isMounted(mntA) && up.output.includes('metadata served on'), 'strata up to serve');
  await startMount(
    `127.0.0.1:${port}/strata`,
    mntB,
    ['--secret-file', join(dataDir, 'meta.db.secret'), ...args],
    procs,
  );
}

/** `strata up DATA MNT` until the mount is live. */
export async function startUp(
  dataDir: string,
  mountpoint: string,
  extraArgs: string[] = [],
): Promise<StrataProcess> {
  mkdirSync(mountpoint, { recursive: true });
  const proc = new StrataProcess([
    'up',
    dataDir,
    mountpoint,
    ...extraArgs,
    ...e2eStorageArgs(dataDir, extraArgs),
  ]);
  try {
    // "mounted at" is logged once the kernel's INIT is answered: before that, calls on the
    // mount block in the kernel instead of failing.
    await proc.waitFor(
      () => isMounted(mountpoint) && proc.output.includes(`mounted at ${mountpoint}`),
      `${mountpoint} to be mounted`,
    );
  } catch (err) {
    proc.kill();
    throw err;
  }
  return proc;
}

/**
 * `strata mount VOLUME_ADDRESS MNT ARGS` (VOLUME_ADDRESS: `HOST:PORT[,HOST:PORT...]/VOLUME`; ARGS
 * usually start with `--secret-file F`) until the mount is live. Given `procs`, the process goes
 * into it before the wait, so the caller's cleanup stops it even if the wait fails; without,
 * a failed wait kills it.
 */
export async function startMount(
  volumeAddress: string,
  mountpoint: string,
  args: string[],
  procs?: StrataProcess[],
): Promise<StrataProcess> {
  mkdirSync(mountpoint, { recursive: true });
  const proc = new StrataProcess(['mount', volumeAddress, mountpoint, ...args]);
  procs?.push(proc);
  try {
    await proc.waitFor(
      () => isMounted(mountpoint) && proc.output.includes(`mounted at ${mountpoint}`),
      `${mountpoint} to be mounted`,
    );
  } catch (err) {
    if (procs === undefined) proc.kill();
    throw err;
  }
  return proc;
}

/**
 * Always-run cleanup: kill what is still running, lazily unmount what is still mounted,
 * remove temp dirs. Never throws, so it cannot hide the test's own failure.
 */
export async function cleanup(
  procs: (StrataProcess | undefined)[],
  mountpoints: string[],
  dirs: string[],
): Promise<void> {
  for (const proc of procs) {
    if (proc === undefined) continue;
    try {
      await proc.stop(20_000);
    } catch {
      proc.kill();
    }
  }
  for (const mnt of mountpoints) {
    if (isMounted(mnt)) spawnSync('umount', ['-l', mnt]);
  }
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
}

/** Runs a shell command (bash -euo pipefail), throwing with its output when it fails. */
export function sh(script: string, cwd?: string, timeoutMs = 600_000): string {
  const result = spawnSync('bash', ['-euo', 'pipefail', '-c', script], {
    cwd,
    encoding: 'utf8',
    timeout: timeoutMs,
    maxBuffer: 64 * 1024 * 1024,
  });
  if (result.status !== 0) {
    throw new Error(
      `command failed (${result.status ?? result.signal}): ${script}\n${result.stdout}\n${result.stderr}`,
    );
  }
  return result.stdout;
}

/** Polls `ready` every `pollMs` until it holds; fails after `timeoutMs` naming `what`. */
export async function waitUntil(
  ready: () => boolean | Promise<boolean>,
  what: string,
  timeoutMs = 60_000,
  pollMs = 20,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await ready())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, pollMs));
  }
}

/** Block objects in a file object store (`OBJECTS/chunks/FFF/...`, temporary files left out), and their bytes. */
export function storedObjects(objectsDir: string): { objects: number; bytes: number } {
  const chunks = join(objectsDir, 'chunks');
  let objects = 0;
  let bytes = 0;
  for (const fan of readdirSync(chunks)) {
    for (const name of readdirSync(join(chunks, fan))) {
      if (name.startsWith('.')) continue;
      // A GC pass running meanwhile may delete it between the listing and the stat: it is gone.
      const info = statSync(join(chunks, fan, name), { throwIfNoEntry: false });
      if (info === undefined) continue;
      objects++;
      bytes += info.size;
    }
  }
  return { objects, bytes };
}

/** A TCP port on 127.0.0.1 that was free a moment ago (for servers given a fixed --listen). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address !== null ? address.port : 0));
    });
  });
}

/**
 * Creates database `name` in STRATA_PG_TEST_URL's cluster and returns its URL, the engine URL of a
 * volume kept there. The caller drops it (adminQuery DROP DATABASE ... WITH (FORCE)) when done.
 */
export async function createPgDatabase(name: string): Promise<string> {
  const base = process.env.STRATA_PG_TEST_URL;
  if (!base) throw new Error('STRATA_PG_TEST_URL is not set: run eval "$(scripts/postgres/start.sh)" first');
  await adminQuery(`CREATE DATABASE ${pg.escapeIdentifier(name)}`);
  const url = new URL(base);
  url.pathname = `/${name}`;
  return url.toString();
}

/** `strata meta serve` of `engine` on a free 127.0.0.1 port, once it listens. */
export async function serveMeta(
  engine: string,
  extraArgs: string[] = [],
): Promise<{ address: string; proc: StrataProcess }> {
  const address = `127.0.0.1:${await freePort()}`;
  const proc = new StrataProcess(['meta', 'serve', '--engine', engine, '--listen', address, ...extraArgs]);
  try {
    await proc.waitFor(() => proc.output.includes('listening'), 'the metadata server to listen');
  } catch (err) {
    proc.kill();
    throw err;
  }
  return { address, proc };
}

/** Runs `sql` on the `postgres` database of STRATA_PG_TEST_URL's cluster; nothing without it. */
export async function adminQuery(sql: string): Promise<void> {
  const base = process.env.STRATA_PG_TEST_URL;
  if (!base) return;
  const url = new URL(base);
  url.pathname = '/postgres';
  const client = new pg.Client({ connectionString: url.toString() });
  client.on('error', () => undefined);
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}
