// A StrataFS mount whose object store fails at a set rate (serve-faulty.ts in
// a child process), for checking that applications see no error and no
// corruption while the retry policy absorbs the faults.
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { distDir, isMounted } from './strata-mount.js';

export interface FaultyMount {
  mountpoint: string;
  /** Unmounts, ends the child, and returns the faults it injected (undefined if it died). */
  stop(): Promise<FaultCounts | undefined>;
}

export interface FaultCounts {
  requests: number;
  errors: number;
  truncated: number;
}

export async function startFaultyMount(options: {
  seed: number;
  errorRate: number;
  truncateRate: number;
}): Promise<FaultyMount> {
  const work = mkdtempSync('/tmp/strata-rel-faults-');
  const dataDir = join(work, 'data');
  const mountpoint = join(work, 'mnt');
  mkdirSync(mountpoint);
  const script = join(distDir(), 'test', 'reliability', 'serve-faulty.js');
  const args = [
    script,
    dataDir,
    mountpoint,
    String(options.seed),
    String(options.errorRate),
    String(options.truncateRate),
  ];
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr = (stderr + chunk).slice(-4096)));
  // 'close', not 'exit': the statistics line may still be in the pipe when the process exits.
  const exited = new Promise<void>((resolve) => child.once('close', () => resolve()));
  const cleanup = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
      await exited;
      clearTimeout(timer);
    }
    if (isMounted(mountpoint)) spawn('umount', ['-l', mountpoint]);
    for (let i = 0; i < 50 && isMounted(mountpoint); i++) await new Promise((r) => setTimeout(r, 100));
    rmSync(work, { recursive: true, force: true });
  };
  const deadline = Date.now() + 30_000;
  while (!stdout.includes('ready\n')) {
    if (child.exitCode !== null || Date.now() > deadline) {
      await cleanup();
      throw new Error(`the faulty-store mount did not start: ${stderr.trim()}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    mountpoint,
    async stop(): Promise<FaultCounts | undefined> {
      await cleanup();
      const last = stdout.trim().split('\n').pop() ?? '';
      return last.startsWith('{') ? (JSON.parse(last) as FaultCounts) : undefined;
    },
  };
}
