// The engine thread of a metadata server started with an engine worker: owns the MetaService
// (so SQLite statements, commits and checkpoints never block the thread serving sockets) and
// runs the calls the serving thread posts, in batches, answering in batches.
import { readlinkSync } from 'node:fs';
import { setPriority } from 'node:os';
import { parentPort, workerData } from 'node:worker_threads';
import { isFsError } from '../../common/index.js';
import { encodeValue } from '../../rpc/index.js';
import { directRunOf, packedReplyOf, runNumberedCall } from '../call-outcomes.js';
import type { NameRemoval } from '../api.js';
import { openMetaService, type MetaService } from '../index.js';
import { startEngineTask, type EngineTask } from './engine-task.js';
import { engineStatsOf } from './engine-stats.js';
import { wireResultOf } from './methods.js';
import type {
  EngineWorkerOptions,
  WorkerReply,
  WorkerReplyBatch,
  WorkerRequest,
  WorkerTaskMessage,
  WorkerEngineStatsMessage,
} from './worker-service.js';

const ENGINE_STATS_INTERVAL_MS = 1_000;

const options = workerData as EngineWorkerOptions;
const packReplies = options.packReplies === true;
/** Changes that answer a NameRemoval (the other changes' replies are packed when recorded). */
const NAME_REMOVALS = new Set(['unlink', 'rmdir', 'rename']);
const port = parentPort;
if (!port) throw new Error('worker-main.js runs as a worker thread only');
if (options.nice) lowerThreadPriority(options.nice);

/**
 * Makes this thread yield to the serving thread when both wait for a CPU: the serving thread's
 * loop delay is what clients feel, while a commit a little later only grows the next batch.
 * Linux applies setpriority to a thread id alone; elsewhere (or without /proc) nothing changes.
 */
function lowerThreadPriority(nice: number): void {
  try {
    const tid = Number(readlinkSync('/proc/thread-self').split('/').pop());
    if (Number.isInteger(tid) && tid > 0) setPriority(tid, nice);
  } catch {
    // not Linux: every thread keeps the process's priority
  }
}

let service: MetaService;
let opened: MetaService | undefined;
let secret: string;
let task: EngineTask | undefined;
// The opener takes the first message for the ready one: the task's reports wait until it is sent.
let earlyTaskReports: unknown[] | null = [];
const reportTask = (message: unknown): void => {
  if (earlyTaskReports) earlyTaskReports.push(message);
  else port.postMessage({ task: message } satisfies WorkerTaskMessage);
};
try {
  service = opened = await openMetaService({ ...options, background: true });
  secret = await service.volumeSecret();
  if (options.task) task = await startEngineTask(service, options.task, reportTask);
} catch (error) {
  await opened?.close().catch(() => undefined);
  // Tell the opener why, errno included (an uncaught error would reach it as a bare Error).
  port.postMessage({
    failed: isFsError(error)
      ? { errno: error.errno, message: error.message }
      : { errno: 0, message: error instanceof Error ? error.message : String(error) },
  });
  process.exit(1);
}
let pending: WorkerReply[] = [];
/** Packed replies of this batch, sent as one transferred buffer (one copy, no clone per reply). */
let packedParts: Buffer[] = [];
let packedBytes = 0;
// Every recorded change reaches its engine write synchronously (creates once an inode number is
// in hand), which takes the call key without AsyncLocalStorage.
const direct = directRunOf(service);

function reply(message: WorkerReply): void {
  if (pending.length === 0) setImmediate(flush);
  pending.push(message);
}

function replyPacked(id: number, packed: Buffer, removedInos?: number[]): void {
  reply([id, true, removedInos, packedBytes, packed.length]);
  packedParts.push(packed);
  packedBytes += packed.length;
}

function flush(): void {
  const batch: WorkerReplyBatch = [pending, null];
  pending = [];
  if (packedParts.length === 0) {
    port?.postMessage(batch);
    return;
  }
  const bytes = new Uint8Array(packedBytes);
  let at = 0;
  for (const part of packedParts) {
    bytes.set(part, at);
    at += part.length;
  }
  packedParts = [];
  packedBytes = 0;
  batch[1] = bytes;
  port?.postMessage(batch, [bytes.buffer]);
}

port.on('message', (batch: WorkerRequest[] | 'close') => {
  if (batch === 'close') {
    // The task first: its pass may be between an engine read and the write that follows it.
    void (task?.stop() ?? Promise.resolve())
      .catch(() => undefined)
      .then(() => service.close())
      .then(() => port.postMessage('closed'));
    return;
  }
  for (const [id, method, args, numbered] of batch) {
    // Structured cloning turns Buffers into plain Uint8Arrays: make xattr values Buffers again.
    if (method === 'setxattr' && args[3] instanceof Uint8Array) {
      const bytes = args[3];
      args[3] = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    }
    const fn = (service as unknown as Record<string, (...callArgs: unknown[]) => Promise<unknown>>)[method];
    let result: Promise<unknown>;
    try {
      result = numbered
        ? runNumberedCall(service.engine, numbered, () => fn.apply(service, args), direct)
        : fn.apply(service, args);
    } catch (error) {
      result = Promise.reject(error);
    }
    result.then(
      (value) => {
        // A recorded change's reply is packed already (its stored outcome): hand over those bytes
        // instead of cloning the object here and packing it again on the serving thread.
        const packed = numbered ? packedReplyOf(value) : undefined;
        if (packed) replyPacked(id, packed);
        else if (packReplies && !numbered && typeof value === 'object' && value !== null)
          // A read's reply packed here crosses as bytes: a readdir of 1,000 entries cloned to the
          // serving thread, then packed there, held that thread ~1 ms per call and a batch of
          // them for tens of ms.
          replyPacked(id, encodeValue(wireResultOf(method, value)));
        else if (packReplies && NAME_REMOVALS.has(method) && typeof value === 'object' && value !== null)
          // The invalidation pusher on the serving thread needs only the inode numbers.
          replyPacked(id, encodeValue(value), (value as NameRemoval).inos);
        else reply([id, true, value]);
      },
      (error: unknown) =>
        reply(
          isFsError(error)
            ? [id, false, error.errno, error.message]
            : [id, false, -1, error instanceof Error ? (error.stack ?? error.message) : String(error)],
        ),
    );
  }
});

// The serving thread skips its own engine's changes on the change feed (invalidations.ts).
const originId = (service.engine as { originId?: unknown }).originId;
port.postMessage({
  ready: true,
  secret,
  volume: await service.volume(),
  originId: typeof originId === 'string' ? originId : undefined,
});
for (const message of earlyTaskReports) port.postMessage({ task: message } satisfies WorkerTaskMessage);
earlyTaskReports = null;
// The engine's counters for --metrics: a snapshot a second, not a message per call.
if (options.engineStats) {
  setInterval(() => {
    const engineStats = engineStatsOf(service.engine);
    if (engineStats) port.postMessage({ engineStats } satisfies WorkerEngineStatsMessage);
  }, ENGINE_STATS_INTERVAL_MS).unref();
}
