/** What the VFS needs to know about its mount; the composition root fills it from the config. */
export interface VfsOptions {
  /** How long the kernel may cache attributes. */
  attrTimeoutMs: number;
  /** How long the kernel may cache name lookups (and negative lookups). */
  entryTimeoutMs: number;
  /**
   * Other mounts may change the volume (a metadata server serves it to them): an unlock here
   * then commits what was written under the lock, and a lock taken here makes what they wrote
   * before releasing it visible (VfsHandles.revalidateLocked).
   * A lone embedded mount is the only writer and skips that work (the default).
   */
  sharedWithOtherMounts?: boolean;
  /** Longest pause between retries of a blocking (SETLKW) lock request. */
  lockRetryMaxMs: number;
  /** How often the session heartbeat runs. */
  heartbeatIntervalMs: number;
  /** A chunk with at least this many slices is compacted after a commit; 0 disables compaction. */
  compactSlicesThreshold: number;
  /** Where this mount is, for the session record (`strata status`). */
  mountpoint: string;
  /** Reported to the metadata service with the session. */
  version: string;
  /** Where to report problems nobody else will see (a failed heartbeat or background compaction). */
  log: (message: string) => void;
}
