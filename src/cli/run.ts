import type { MountedVolume } from '../volume/index.js';

/** SIGINT/SIGTERM caught from the start of a foreground command (catchStopSignals). */
export interface StopSignals {
  /** Resolves with why the command should stop (`received SIGINT`). */
  readonly received: Promise<string>;
  /** The mount is up: a signal now stops it (runUntilSignal), no longer waits for it. */
  mounted(): void;
  release(): void;
}

/**
 * Catches SIGINT and SIGTERM before a foreground command mounts: a signal that came after the
 * mount appeared and before runUntilSignal listened used to be lost (a shell's background job
 * ignores SIGINT: the mount kept running) or to kill the process (an interactive Ctrl-C: a dead
 * mount, ENOTCONN). Now a signal while mounting stops the mount as soon as it is up; a second
 * one exits at once, as Ctrl-C did before, for a start that hangs (an unreachable store).
 */
export function catchStopSignals(log: (message: string) => void): StopSignals {
  let resolveReceived: (why: string) => void = () => undefined;
  const received = new Promise<string>((resolve) => (resolveReceived = resolve));
  let first: NodeJS.Signals | undefined;
  let isMounted = false;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (first === undefined) {
      first = signal;
      if (!isMounted) log(`received ${signal} while mounting: unmounting as soon as the mount is up`);
      resolveReceived(`received ${signal}`);
    } else if (!isMounted) {
      log(`received ${signal} again while mounting: exiting now`);
      process.exit(130);
    }
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  return {
    received,
    mounted: () => (isMounted = true),
    release() {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    },
  };
}

/**
 * Keeps a foreground mount running until SIGINT/SIGTERM (then flushes, unmounts and
 * returns, so the process exits 0) or until the mount goes away on its own (`umount`).
 * `signals` are caught from before the mount (catchStopSignals); this releases them.
 */
export async function runUntilSignal(
  volume: MountedVolume,
  log: (message: string) => void,
  signals: StopSignals,
): Promise<void> {
  signals.mounted();
  const why = await Promise.race([signals.received, volume.ended.then(() => 'the mount ended')]);
  signals.release();
  // A second signal while flushing must not kill the process with data still unwritten.
  const impatient = (): void => log('still flushing; send SIGKILL to abandon unwritten data');
  process.on('SIGINT', impatient);
  process.on('SIGTERM', impatient);
  log(`${why}: flushing and unmounting ${volume.mountpoint}`);
  try {
    await volume.stop();
  } finally {
    process.off('SIGINT', impatient);
    process.off('SIGTERM', impatient);
  }
  log('stopped cleanly');
}

/** One log line on stderr with a timestamp; the mount's only chatter. */
export function stderrLog(message: string): void {
  process.stderr.write(`${new Date().toISOString()} strata: ${message}\n`);
}
