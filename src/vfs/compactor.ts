import { Errno, isFsError, type Ino, type SliceRef } from '../common/index.js';
import type { DataPath } from '../data/index.js';
import type { MetaApi } from '../meta/api.js';
import type { VfsOptions } from './options.js';

/**
 * Chunks whose commit count is kept. Every file this mount writes leaves a count (most never
 * reach the threshold), and the kernel's FORGET of a deleted file does not reach here: without
 * a bound a mount kept up for weeks kept one entry per file it ever wrote. The least recently
 * committed count is dropped; that chunk starts counting again, and reads still queue
 * fragmented chunks through consider().
 */
const MAX_TRACKED_CHUNKS = 4096;

/**
 * Background compaction of fragmented chunks: random writes and many small appends leave
 * a chunk with a long slice list, which slows every read of it. One chunk at a time, so
 * compaction never competes much with the application for upload bandwidth or memory.
 * Races with new commits are settled by the metadata service (replaceChunkSlices only
 * succeeds if the slice list is unchanged), so a lost race just wastes one upload.
 */
export class Compactor {
  private readonly queue = new Map<string, { ino: Ino; chunkIndex: number }>();
  /** Commits per chunk since it was last looked at. */
  private readonly commits = new Map<string, number>();
  private running: Promise<void> | null = null;
  private stopped = false;
  /** Called after a chunk was compacted, so open files drop their cached slice list. */
  onCompacted: (ino: Ino, chunkIndex: number) => void = () => undefined;

  constructor(
    private readonly meta: MetaApi,
    private readonly data: DataPath,
    private readonly options: VfsOptions,
  ) {}

  private get threshold(): number {
    return this.options.compactSlicesThreshold;
  }

  /** A slice list was read: queue the chunk if it is fragmented. */
  consider(ino: Ino, chunkIndex: number, slices: SliceRef[]): void {
    if (this.threshold === 0 || slices.length < this.threshold) return;
    if (this.data.shouldCompact(slices)) this.enqueue(ino, chunkIndex);
  }

  /** This mount committed a slice to the chunk: look at it again after enough commits. */
  noteCommit(ino: Ino, chunkIndex: number): void {
    if (this.threshold === 0) return;
    const key = `${ino}:${chunkIndex}`;
    const count = (this.commits.get(key) ?? 0) + 1;
    this.commits.delete(key); // re-inserted last: the Map's order is the eviction order
    if (count < this.threshold) {
      this.commits.set(key, count);
      if (this.commits.size > MAX_TRACKED_CHUNKS)
        this.commits.delete(this.commits.keys().next().value as string);
      return;
    }
    this.enqueue(ino, chunkIndex);
  }

  /** Chunks with a commit count kept (bounded by MAX_TRACKED_CHUNKS). */
  get trackedChunks(): number {
    return this.commits.size;
  }

  private enqueue(ino: Ino, chunkIndex: number): void {
    if (this.stopped) return;
    this.queue.set(`${ino}:${chunkIndex}`, { ino, chunkIndex });
    this.running ??= this.drain().finally(() => {
      this.running = null;
    });
  }

  private async drain(): Promise<void> {
    while (!this.stopped && this.queue.size > 0) {
      const [key, job] = this.queue.entries().next().value as [string, { ino: Ino; chunkIndex: number }];
      this.queue.delete(key);
      try {
        await this.compact(job.ino, job.chunkIndex);
      } catch (err) {
        // The file was removed before its turn came: nothing left to compact.
        if (isFsError(err) && err.errno === Errno.ENOENT) continue;
        this.options.log(
          `compaction of inode ${job.ino} chunk ${job.chunkIndex} failed: ${(err as Error).message}; it will be retried after more writes`,
        );
      }
    }
  }

  private async compact(ino: Ino, chunkIndex: number): Promise<void> {
    const slices = (await this.meta.readSlices(ino, chunkIndex, chunkIndex)).get(chunkIndex) ?? [];
    if (slices.length < 2 || !this.data.shouldCompact(slices)) return;
    const merged = await this.data.compactChunk(slices, chunkIndex);
    const replaced = await this.meta.replaceChunkSlices(
      ino,
      chunkIndex,
      slices.map((s) => s.id),
      merged,
    );
    if (replaced) this.onCompacted(ino, chunkIndex);
  }

  /** Finishes the chunk in progress and drops the rest of the queue (unmount). */
  async stop(): Promise<void> {
    this.stopped = true;
    this.queue.clear();
    await this.running;
  }
}
