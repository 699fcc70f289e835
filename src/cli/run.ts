import type { MountedVolume } from '../volume/index.js';

/**
 * Keeps a foreground mount running until SIGINT/SIGTERM (then flushes, unmounts and
 * returns, so the process exits 0) or until the mount goes away on its own (`umount`).
 */
export async function runUntilSignal(volume: MountedVolume, log: (message: string) => void): Promise<void> {
  let onSignal: (signal: NodeJS.Signals) => void = () => undefined;
  const signalled = new Promise<string>((resolve) => {
    onSignal = (signal) => resolve(`received ${signal}`);
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  });
  const why = await Promise.race([signalled, volume.ended.then(() => 'the mount ended')]);
  process.off('SIGINT', onSignal);
  process.off('SIGTERM', onSignal);
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
