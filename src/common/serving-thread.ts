import { constants } from 'node:os';
import { Worker, isMainThread, parentPort } from 'node:worker_threads';

/**
 * Young generation of a serving thread in MiB: V8 gives a third of it to each semi-space, so 6
 * makes 2 MiB semi-spaces where Node's main thread grows them to 16 MiB. A scavenge copies what
 * survives, and under 16 connections of creates a steady share of a metadata server's
 * allocation outlives one: with 16 MiB semi-spaces scavenges averaged 5.4 ms (longest 11) and
 * made the loop delay's p99 (4-5.5 ms); with 2 MiB they averaged 1.6 ms and every p99 of the
 * metadata RPC benchmark stayed under 4 ms at the same call rates (bench/RESULTS.md, Metadata
 * RPC, session 12). The main thread's young generation is fixed when the process starts, so a
 * server that wants small semi-spaces serves from a worker thread.
 */
export const SERVING_YOUNG_GENERATION_MB = 6;

const RELAYED_SIGNALS = ['SIGINT', 'SIGTERM'] as const;

/** What the main thread passes on to the serving thread, and what comes back. */
type Relayed = { kind: 'signal'; signal: NodeJS.Signals } | { kind: 'ipc'; message: unknown };

/**
 * Runs the module `entry` on a worker thread with a young generation of `youngGenerationMb`, and
 * resolves with its exit code once it ends. The process stays what callers and supervisors know:
 * one pid that SIGKILL ends at once, stdout and stderr as before. SIGINT and SIGTERM, and messages
 * from a parent process (`fork`'s channel), are passed on; the entry calls `takeRelayedEvents`
 * to receive them as `process` events, so code written for a main thread runs unchanged. An
 * exception the entry leaves uncaught is printed and ends it with code 1.
 */
export function runOnServingThread(
  entry: URL,
  workerData: unknown,
  youngGenerationMb: number = SERVING_YOUNG_GENERATION_MB,
): Promise<number> {
  const worker = new Worker(entry, {
    workerData,
    resourceLimits: { maxYoungGenerationSizeMb: youngGenerationMb },
  });
  const onSignal = (signal: NodeJS.Signals): void =>
    worker.postMessage({ kind: 'signal', signal } satisfies Relayed);
  const onParentMessage = (message: unknown): void =>
    worker.postMessage({ kind: 'ipc', message } satisfies Relayed);
  for (const signal of RELAYED_SIGNALS) process.on(signal, onSignal);
  if (process.send) process.on('message', onParentMessage);
  worker.on('message', (relayed: Relayed) => {
    if (relayed.kind === 'ipc') process.send?.(relayed.message);
  });
  let uncaught = false;
  worker.on('error', (error) => {
    uncaught = true;
    process.stderr.write(`${error.stack ?? String(error)}\n`);
  });
  return new Promise((resolve) => {
    worker.once('exit', (code) => {
      for (const signal of RELAYED_SIGNALS) process.off(signal, onSignal);
      process.off('message', onParentMessage);
      resolve(uncaught && code === 0 ? 1 : code);
    });
  });
}

/**
 * On a thread started by `runOnServingThread`: the signals and parent-process messages the main
 * thread passes on arrive as `process` events ('SIGTERM', 'message'), as on a main thread; a
 * signal with no listener here ends the process with 128 + its number. Nothing on the main
 * thread.
 */
export function takeRelayedEvents(): void {
  if (isMainThread || parentPort === null) return;
  const port = parentPort;
  port.on('message', (relayed: Relayed) => {
    if (relayed.kind === 'ipc') {
      process.emit('message', relayed.message, undefined);
    } else if (process.listenerCount(relayed.signal) > 0) {
      process.emit(relayed.signal, relayed.signal);
    } else {
      // Nobody here handles it (a server still starting): end the process, as the signal's
      // default action would have, with the exit code a shell gives a process it killed.
      process.exit(128 + constants.signals[relayed.signal]);
    }
  });
  // Listening must not keep the thread alive once its own work is done.
  port.unref();
}

/** Sends `message` to the parent process (`fork`'s channel), from the main or a serving thread. */
export function sendToParentProcess(message: unknown): void {
  if (isMainThread) process.send?.(message);
  else parentPort?.postMessage({ kind: 'ipc', message } satisfies Relayed);
}
