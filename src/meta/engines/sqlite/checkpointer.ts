import { statSync } from 'node:fs';
import { Worker } from 'node:worker_threads';

export type CheckpointReply =
  { ok: true; framesInWal: number; framesCheckpointed: number } | { ok: false; message: string };

/** What the checkpointer asks of its engine's writer. */
export interface CheckpointedWriter {
  /**
   * Resolves once no write transaction is open and none will start until `release` is called
   * (writes queue meanwhile; the thread itself is never blocked).
   */
  holdWrites(): Promise<() => void>;
}

/** After the checkpoint thread failed, commits go without one this long (SQLite's own bounds the log). */
const THREAD_RETRY_MS = 5_000;

/**
 * The log's size is looked at no more often than this. A stat after every commit cost ~8 µs of
 * the writer's thread per serial change (bench/RESULTS.md, Mounted volume, session 14); a commit
 * seldom adds more than a few pages, so the trigger is overshot by little.
 */
const SIZE_CHECK_INTERVAL_MS = 2;

/**
 * Runs WAL checkpoints on a thread of its own, over its own connection. SQLite's automatic
 * checkpoint runs inside the commit that crosses its threshold: it copies the log into the
 * database and fsyncs both while the writer's thread (the engine thread, or the FUSE thread
 * with `strata up`) waits, 5-30 ms on this machine.
 *
 * Here, once a commit leaves the log over `triggerBytes`, the thread copies it with a PASSIVE
 * checkpoint while writes go on. The log only starts over from its beginning when a write
 * transaction begins with every frame copied, which a busy writer never lets happen (the log
 * grew without bound in FACTS.md's trial); so a second, short checkpoint then copies what
 * arrived meanwhile while new write transactions wait in the engine's queue, and the next one
 * restarts the log. SQLite's own checkpoint stays on at a higher threshold as the bound, should
 * this thread fail.
 */
export class WalCheckpointer {
  /** Checkpoints run and failed (tests, benchmarks). */
  readonly counts = { runs: 0, failures: 0 };
  private worker: Worker | null = null;
  private running = false;
  private closed = false;
  private readonly walPath: string;
  private answer: ((reply: CheckpointReply) => void) | null = null;
  /**
   * Set when the thread failed: no new one before then. A process out of descriptors could not
   * start one, and trying again after every commit kept a dozen failing threads (and their
   * descriptors) alive at once, starving the commits' own log flushes.
   */
  private retryAtMs = 0;
  private nextSizeCheckMs = 0;

  constructor(
    private readonly dbPath: string,
    private readonly triggerBytes: number,
    private readonly writer: CheckpointedWriter,
  ) {
    this.walPath = `${dbPath}-wal`;
  }

  /** Called after each commit: starts a checkpoint when the log has grown past the trigger. */
  afterCommit(): void {
    if (this.running || this.closed) return;
    const nowMs = performance.now();
    if (nowMs < this.nextSizeCheckMs) return;
    this.nextSizeCheckMs = nowMs + SIZE_CHECK_INTERVAL_MS;
    if (Date.now() < this.retryAtMs) return;
    let walBytes: number;
    try {
      walBytes = statSync(this.walPath).size;
    } catch {
      return; // no log file: nothing to copy
    }
    if (walBytes < this.triggerBytes) return;
    this.running = true;
    void this.run().finally(() => (this.running = false));
  }

  private async run(): Promise<void> {
    if (!(await this.checkpoint()).ok || this.closed) return;
    const release = await this.writer.holdWrites();
    try {
      await this.checkpoint();
    } finally {
      release();
    }
  }

  private checkpoint(): Promise<CheckpointReply> {
    const worker = this.thread();
    // Writes may be waiting on the answer: keep the process alive until it comes.
    worker.ref();
    return new Promise((resolve) => {
      this.answer = (reply) => {
        this.answer = null;
        worker.unref();
        if (reply.ok) this.counts.runs++;
        else this.counts.failures++;
        resolve(reply);
      };
      worker.postMessage('checkpoint');
    });
  }

  private thread(): Worker {
    if (this.worker) return this.worker;
    const worker = new Worker(new URL('./checkpointer-main.js', import.meta.url), {
      workerData: { path: this.dbPath },
    });
    // Idle, it is never the reason a process stays alive; close() ends it properly.
    worker.unref();
    worker.on('message', (reply: CheckpointReply | 'closed') => {
      if (reply !== 'closed') this.answer?.(reply);
    });
    worker.on('error', (error) => {
      // SQLite's automatic checkpoint still bounds the log; a new thread is tried a while later.
      this.worker = null;
      this.retryAtMs = Date.now() + THREAD_RETRY_MS;
      this.answer?.({ ok: false, message: error.message });
    });
    this.worker = worker;
    return worker;
  }

  /** Waits for a running checkpoint, then closes the thread's connection and ends it. */
  async close(): Promise<void> {
    this.closed = true;
    while (this.running) await new Promise((resolve) => setTimeout(resolve, 1));
    const worker = this.worker;
    this.worker = null;
    if (!worker) return;
    const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
    worker.ref();
    worker.postMessage('close');
    await exited;
  }
}
