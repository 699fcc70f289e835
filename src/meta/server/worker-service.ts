import { Worker } from 'node:worker_threads';
import { Errno, FsError } from '../../common/index.js';
import { EncodedValue, adoptEncodedValue } from '../../rpc/index.js';
import type { MetaApi, VolumeSettings } from '../api.js';
import { currentCallKey, type CallKey } from '../call-outcomes.js';
import type { EngineTaskSpec } from './engine-task.js';
import type { EngineStats } from './engine-stats.js';
import { META_METHODS } from './methods.js';

/** What the engine thread needs to open the service. */
export interface EngineWorkerOptions {
  engineUrl: string;
  history?: boolean;
  durable?: boolean;
  /** Inode numbers reserved per refill (MetaServiceOptions.inoBatch; small in tests). */
  inoBatch?: number;
  /**
   * Scheduling niceness of the engine thread (Linux, that thread only; 0: as the serving thread).
   * Higher lets the serving thread run first when both wait for a CPU (worker-main.ts).
   */
  nice?: number;
  /** MetaServiceOptions.sessionTimeoutMs: a mount silent this long loses its session. */
  sessionTimeoutMs?: number;
  /** Work run on the engine thread beside the calls (engine-task.ts); stopped before the engine closes. */
  task?: Pick<EngineTaskSpec, 'moduleUrl' | 'data'>;
  /** Send the engine's counters to the serving thread once a second (for metrics). */
  engineStats?: boolean;
  /** Pack the replies of reads and name removals on the engine thread (ThreadedServiceOptions.encodedReplies). */
  packReplies?: boolean;
}

export interface ThreadedServiceOptions extends EngineWorkerOptions {
  /** The engine thread died (not by close()): every call now fails with EIO. */
  onFailure?: (error: Error) => void;
  /**
   * Recorded changes resolve to an `EncodedValue` (their stored msgpack bytes, undecoded)
   * instead of the result object. Only for an owner whose results go nowhere but into RPC
   * RESULT frames (the metadata server process); anyone reading a result needs the default.
   */
  encodedReplies?: boolean;
  /** Hears the messages of `task` (EngineTaskSpec.onMessage). */
  onTaskMessage?: (message: unknown) => void;
}

/** [id, method, args, the numbered call it belongs to] */
export type WorkerRequest = [number, string, unknown[], CallKey | undefined];
/**
 * [id, true, value], [id, true, removedInos, offset, length] (the value msgpack-encoded at that
 * place in the batch's bytes: a recorded change's stored outcome or, with `packReplies`, a read's
 * or a name removal's reply; removedInos: a name removal's `inos`, else undefined) or
 * [id, false, errno (-1: not an FsError), message]
 */
export type WorkerReply =
  | [number, true, unknown]
  | [number, true, number[] | undefined, number, number]
  | [number, false, number, string];

/**
 * A name removal's reply (unlink, rmdir, rename) known by its bytes, with the inode numbers the
 * invalidation pusher reads from it (NameRemoval.inos) kept decoded beside them.
 */
export class EncodedNameRemoval extends EncodedValue {
  constructor(
    bytes: Buffer,
    readonly inos: number[],
  ) {
    super(bytes);
  }
}
/** The replies of one engine-thread turn and the packed values they point into. */
export type WorkerReplyBatch = [WorkerReply[], Uint8Array | null];
/** A message of the engine thread's task (EngineWorkerOptions.task). */
export interface WorkerTaskMessage {
  task: unknown;
}
export interface WorkerEngineStatsMessage {
  engineStats: EngineStats;
}
type WorkerMessage = WorkerReplyBatch | WorkerTaskMessage | WorkerEngineStatsMessage | 'closed';

/** A MetaApi whose service runs on its own thread; the owner closes it. */
export interface ThreadedMetaService extends MetaApi {
  readonly secret: string;
  readonly settings: VolumeSettings;
  readonly engineUrl: string;
  /** The engine's id on the change feed (PostgreSQL), if it has one. */
  readonly originId: string | undefined;
  /** The same secret, shaped as MetaService offers it (what an RPC server in front needs). */
  volumeSecret(): Promise<string>;
  /** The engine's counters as of the last snapshot (`engineStats` option; at most 1 s old). */
  engineStats(): EngineStats | undefined;
  close(): Promise<void>;
}

/** Replies settled per serving-thread turn (see settleFrom). */
const REPLIES_PER_TURN = 64;

/**
 * The engine thread's young generation, in MiB (V8's default grows it to 48). Its objects live
 * for one call or one batch, so a small nursery only scavenges more often: meta-rpc, 16
 * connections, history on, two readings each at load 1.7: server peak RSS 268 vs 317 MiB, at
 * 56.1 vs 56.4 µs of server CPU per create and the same rates for every other row.
 */
const ENGINE_THREAD_YOUNG_GENERATION_MB = 8;

interface Waiter {
  resolve(value: unknown): void;
  reject(error: Error): void;
}

/**
 * Opens the metadata service on a worker thread and returns a MetaApi that forwards each call
 * to it. Calls made in the same tick cross the thread boundary as one message, both ways, so
 * the per-call cost of the hop stays small under load while the serving thread never blocks
 * on SQLite.
 */
export async function openThreadedMetaService(options: ThreadedServiceOptions): Promise<ThreadedMetaService> {
  const { onFailure, encodedReplies = false, onTaskMessage, ...workerOptions } = options;
  const worker = new Worker(new URL('./worker-main.js', import.meta.url), {
    workerData: { ...workerOptions, packReplies: encodedReplies } satisfies EngineWorkerOptions,
    resourceLimits: { maxYoungGenerationSizeMb: ENGINE_THREAD_YOUNG_GENERATION_MB },
  });
  let closing = false;
  const waiting = new Map<number, Waiter>();
  let nextId = 1;
  let outgoing: WorkerRequest[] = [];
  let failure: Error | null = null;

  type Hello = {
    secret: string;
    volume: VolumeSettings;
    originId?: string;
    failed?: { errno: number; message: string };
  };
  const ready = new Promise<Hello>((resolve, reject) => {
    worker.once('error', reject);
    worker.once('message', (message: Hello) => {
      worker.off('error', reject);
      const { failed } = message;
      if (failed)
        reject(failed.errno > 0 ? new FsError(failed.errno, failed.message) : new Error(failed.message));
      else resolve(message);
    });
  });
  const { secret, volume, originId } = await ready;

  const failAll = (error: Error): void => {
    if (failure) return;
    failure = error;
    if (!closing) onFailure?.(error);
    for (const waiter of waiting.values()) waiter.reject(error);
    waiting.clear();
  };
  worker.on('error', (error) =>
    failAll(new FsError(Errno.EIO, `metadata engine thread failed: ${error.message}`)),
  );
  worker.on('exit', (code) =>
    failAll(new FsError(Errno.EIO, `metadata engine thread exited (code ${code})`)),
  );
  const settle = (message: WorkerReply, packed: Uint8Array | null): void => {
    const waiter = waiting.get(message[0]);
    if (!waiter) return;
    waiting.delete(message[0]);
    if (message[1]) {
      if (message.length === 5 && packed) {
        // The RESULT frame reuses these bytes (rpc codec); callers in this thread get the value.
        const bytes = Buffer.from(packed.buffer, packed.byteOffset + message[3], message[4]);
        const removedInos = message[2] as number[] | undefined;
        waiter.resolve(
          !encodedReplies
            ? adoptEncodedValue(bytes)
            : removedInos
              ? new EncodedNameRemoval(bytes, removedInos)
              : new EncodedValue(bytes),
        );
        return;
      }
      const value = message[2];
      // Structured cloning delivers Buffers as plain Uint8Arrays (getxattr).
      waiter.resolve(
        value instanceof Uint8Array && !Buffer.isBuffer(value)
          ? Buffer.from(value.buffer, value.byteOffset, value.byteLength)
          : value,
      );
    } else if (message[2] === -1) {
      waiter.reject(new Error(message[3]));
    } else {
      waiter.reject(new FsError(message[2], message[3]));
    }
  };
  // Each settled call runs its continuation (reply frame, socket write) in the same turn: a
  // batch of several commits' replies settled at once held the serving thread for milliseconds.
  // At most REPLIES_PER_TURN per turn, the rest after the I/O that waits meanwhile.
  const settleFrom = (replies: WorkerReply[], packed: Uint8Array | null, first: number): void => {
    const end = Math.min(replies.length, first + REPLIES_PER_TURN);
    for (let i = first; i < end; i++) settle(replies[i], packed);
    if (end < replies.length) setImmediate(() => settleFrom(replies, packed, end));
  };
  let engineStats: EngineStats | undefined;
  worker.on('message', (batch: WorkerMessage) => {
    if (batch === 'closed') return;
    if (!Array.isArray(batch)) {
      if ('engineStats' in batch) engineStats = batch.engineStats;
      else onTaskMessage?.(batch.task);
      return;
    }
    settleFrom(batch[0], batch[1], 0);
  });

  const flush = (): void => {
    const batch = outgoing;
    outgoing = [];
    worker.postMessage(batch);
  };
  const call = (method: string, args: unknown[]): Promise<unknown> => {
    if (failure) return Promise.reject(failure);
    const id = nextId++;
    // One message per event-loop turn, not per microtask checkpoint (one per socket read): the
    // calls that all connections delivered in this turn cross together, and reach the engine
    // as one group commit instead of several small ones.
    if (outgoing.length === 0) setImmediate(flush);
    outgoing.push([id, method, args, currentCallKey()]);
    return new Promise((resolve, reject) => waiting.set(id, { resolve, reject }));
  };

  const service = {
    secret,
    settings: volume,
    engineUrl: options.engineUrl,
    originId,
    volumeSecret: async () => secret,
    engineStats: () => engineStats,
    close: async (): Promise<void> => {
      if (failure) return;
      closing = true;
      const closed = new Promise<void>((resolve) =>
        worker.on('message', (message: unknown) => message === 'closed' && resolve()),
      );
      worker.postMessage('close');
      await closed;
      await worker.terminate();
    },
  } as Record<string, unknown>;
  for (const method of Object.keys(META_METHODS)) {
    service[method] = (...args: unknown[]) => call(method, args);
  }
  return service as unknown as ThreadedMetaService;
}
