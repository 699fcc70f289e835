import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  mount,
  type FileSystem,
  type FuseSession,
  type MountOptions,
  type RequestContext,
} from '../../src/fuse/index.js';

// Mounting for tests, with cleanup that cannot be skipped: every helper returns a
// `cleanup()` that lazily unmounts, kills any child and removes the directory, and is
// safe to call twice. Use it in `finally` or an `after` hook.
//
// Programs that touch an in-process mount MUST be run asynchronously (`run` below):
// a synchronous spawn would block the event loop that answers their FUSE requests.

/** The caller of requests a test makes on a file system directly: root, never interrupted. */
export const rootContext: RequestContext = {
  uid: 0,
  gid: 0,
  pid: 0,
  umask: 0,
  unique: 0n,
  signal: new AbortController().signal,
};

export interface CommandResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a program without blocking the event loop; never rejects (look at `code`). */
export function run(
  command: string,
  args: string[],
  options: { input?: string; timeoutMs?: number; env?: NodeJS.ProcessEnv } = {},
): Promise<CommandResult> {
  return new Promise((resolve) => {
    const child = spawn(command, args, { stdio: ['pipe', 'pipe', 'pipe'], env: options.env ?? process.env });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 60_000);
    child.on('error', (error) => {
      clearTimeout(timer);
      resolve({ code: -1, stdout, stderr: `${stderr}${error.message}` });
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({
        code: code ?? (signal ? 128 : -1),
        stdout,
        stderr: signal ? `${stderr}killed by ${signal}` : stderr,
      });
    });
    // A program that exits without reading its stdin makes this write fail with EPIPE: not our concern.
    child.stdin.on('error', () => undefined);
    child.stdin.end(options.input ?? '');
  });
}

/** Runs a shell command line; rejects with its output when it fails. */
export async function sh(script: string, timeoutMs?: number): Promise<string> {
  const result = await run('sh', ['-c', script], { timeoutMs });
  if (result.code !== 0)
    throw new Error(`"${script}" failed (${result.code}): ${result.stderr}${result.stdout}`);
  return result.stdout;
}

export function isMounted(mountpoint: string): boolean {
  return readFileSync('/proc/mounts', 'utf8')
    .split('\n')
    .some((line) => line.split(' ')[1] === mountpoint);
}

export function makeMountDir(): string {
  return mkdtempSync('/tmp/strata-fuse-');
}

/** Lazy-unmounts (if still mounted) and removes the directory. */
export async function unmountAndRemove(mountpoint: string): Promise<void> {
  for (let i = 0; i < 5 && isMounted(mountpoint); i++)
    await run('umount', ['-l', mountpoint], { timeoutMs: 10_000 });
  rmSync(mountpoint, { recursive: true, force: true });
}

export interface InProcessMount {
  mountpoint: string;
  session: FuseSession;
  cleanup(): Promise<void>;
}

/** Mounts `fs` in this process on a fresh /tmp/strata-fuse-* directory. */
export async function mountInProcess(fs: FileSystem, options: MountOptions = {}): Promise<InProcessMount> {
  const mountpoint = makeMountDir();
  let session: FuseSession;
  try {
    session = await mount({ mountpoint, fs, options: { unmountOnSignals: false, ...options } });
  } catch (error) {
    await unmountAndRemove(mountpoint);
    throw error;
  }
  let cleaned = false;
  return {
    mountpoint,
    session,
    async cleanup() {
      if (cleaned) return;
      cleaned = true;
      try {
        if (!session.isClosed) await session.unmount();
      } catch {
        // fall through to the lazy unmount below
      } finally {
        session.close();
        await unmountAndRemove(mountpoint);
      }
    },
  };
}

export interface ChildMount {
  mountpoint: string;
  child: ChildProcess;
  /** Kills the server (SIGKILL unless it already exited) and unmounts lazily. */
  cleanup(): Promise<void>;
}

/** The compiled `serve-memfs.js` next to this file (works from dist/ and /tmp builds). */
const serverScript = join(dirname(fileURLToPath(import.meta.url)), 'serve-memfs.js');

/**
 * Mounts a MemFs served by a child Node process (so tests can kill it, or run programs
 * with synchronous spawns). Resolves once the child reports the mount is ready.
 */
export async function mountInChild(args: string[] = [], mountpoint = makeMountDir()): Promise<ChildMount> {
  const child = spawn(process.execPath, [serverScript, mountpoint, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const cleanup = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await new Promise((resolve) => child.once('close', resolve));
    }
    await unmountAndRemove(mountpoint);
  };
  try {
    await new Promise<void>((resolve, reject) => {
      let stdout = '';
      const timer = setTimeout(
        () => reject(new Error(`mount server did not get ready in 20 s: ${stderr}`)),
        20_000,
      );
      child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
        stdout += chunk;
        if (stdout.includes('ready\n')) {
          clearTimeout(timer);
          resolve();
        }
      });
      child.once('close', (code) => {
        clearTimeout(timer);
        reject(new Error(`mount server exited with ${code} before it was ready: ${stderr}`));
      });
    });
  } catch (error) {
    await cleanup();
    throw error;
  }
  return { mountpoint, child, cleanup };
}
