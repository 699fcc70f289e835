import { hostname } from 'node:os';
import { Errno, fsError, isFsError, processScope, type Ino } from '../common/index.js';
import type { AttrReply, Entry } from '../fuse/index.js';
import type { InodeAttr, MetaApi, VolumeSettings } from '../meta/api.js';
import { toFuseAttr } from './attr.js';
import { CallerResolver } from './caller.js';
import type { VfsOptions } from './options.js';
import { SpecialNodes } from './special-nodes.js';
import { OpenFiles } from './open-files.js';
import type { DataPath } from '../data/index.js';
import { RECLAIMED_SLICE_HINT } from '../meta/index.js';

/** How long an unmount waits for the metadata service to close its session. */
const CLOSE_SESSION_WAIT_MS = 5_000;

/**
 * What every part of the VFS (see Vfs) shares: the mount's session with the metadata service,
 * the per-inode state of open files, directories and special nodes, and the entry and
 * attribute replies built from the service's attributes.
 */
export abstract class VfsSession {
  private sessionIdValue: string | null = null;
  private volumeSettings: VolumeSettings | null = null;
  private heartbeatTimer: NodeJS.Timeout | null = null;
  /** A heartbeat still retrying (the service unreachable) is not joined by the next ones. */
  private beating = false;
  private renewing: Promise<string> | null = null;
  private stopped = false;
  protected readonly openFiles: OpenFiles;
  protected readonly specialNodes = new SpecialNodes();
  protected readonly callers = new CallerResolver();

  constructor(
    protected readonly meta: MetaApi,
    private readonly data: DataPath,
    protected readonly options: VfsOptions,
  ) {
    this.openFiles = new OpenFiles(releasingSlices(meta, data, options.log), data, options);
  }

  /**
   * The metadata server says other mounts changed these inodes (`all`: it cannot tell which).
   * Files open here stop trusting where their data lived: a program that takes a lock after the
   * other mount's write and reads through a descriptor it kept open (SQLite) must see the write.
   */
  changedElsewhere(inos: readonly Ino[], all: boolean): void {
    if (all) this.openFiles.changedElsewhereAll();
    else for (const ino of inos) this.openFiles.changedElsewhere(ino);
  }

  /** Registers this mount with the metadata service and starts the heartbeat. */
  async start(): Promise<VolumeSettings> {
    const { sessionId, volume } = await this.openSession();
    this.sessionIdValue = sessionId;
    this.volumeSettings = volume;
    this.openFiles.setVolume(volume);
    // The floor at once: until the session reports one, it holds up reclaiming leaked blocks.
    await this.beat(sessionId).catch((err: unknown) => {
      this.options.log(`session heartbeat failed: ${(err as Error).message}; will retry`);
    });
    this.heartbeatTimer = setInterval(() => {
      const current = this.sessionIdValue;
      if (current === null || this.beating) return;
      this.beating = true;
      this.beat(current)
        .catch((err: unknown) => {
          if (this.sessionEnded(err)) {
            this.renewSession(current).catch(() => undefined);
            return;
          }
          this.options.log(`session heartbeat failed: ${(err as Error).message}; will retry`);
        })
        .finally(() => (this.beating = false));
    }, this.options.heartbeatIntervalMs);
    this.heartbeatTimer.unref();
    return volume;
  }

  /** Renews the session and reports this mount's slice floor (src/meta/reclaim-floor.ts). */
  private beat(sessionId: string): Promise<void> {
    return this.data.reportSliceFloor((floor) => this.meta.heartbeat(sessionId, floor));
  }

  private openSession(): Promise<{ sessionId: string; volume: VolumeSettings }> {
    return this.meta.openSession({
      hostname: hostname(),
      mountpoint: this.options.mountpoint,
      pid: process.pid,
      version: this.options.version,
      processScope: processScope(),
    });
  }

  /**
   * Whether `err` says the service no longer knows this mount's session: it ended it after
   * a heartbeat gap longer than its session timeout (a partition, a stopped process), and
   * released its locks and open-file registrations. The RPC client reports a closed
   * connection with ENOTCONN only once the mount is stopping, when no renewal is wanted.
   */
  protected sessionEnded(err: unknown): boolean {
    return !this.stopped && isFsError(err) && err.errno === Errno.ENOTCONN;
  }

  /**
   * Runs a call that names the session. If the service ended the session, this mount opens
   * a new one (once, however many calls notice) and the call runs again under it.
   */
  protected async withSession<T>(call: (sessionId: string) => Promise<T>): Promise<T> {
    const sessionId = this.sessionId;
    try {
      return await call(sessionId);
    } catch (err) {
      if (!this.sessionEnded(err)) throw err;
      return call(await this.renewSession(sessionId));
    }
  }

  /** Opens a new session in place of `ended`, unless that was done already; returns the current id. */
  protected renewSession(ended: string): Promise<string> {
    if (this.sessionIdValue !== ended) return Promise.resolve(this.sessionId);
    this.renewing ??= (async () => {
      try {
        const { sessionId } = await this.openSession();
        this.sessionIdValue = sessionId;
        // Slices this mount wrote while away may be reclaimed already: their commit gets EIO.
        await this.beat(sessionId).catch(() => undefined);
        const lost = await this.sessionRenewed(sessionId);
        this.options.log(
          `the metadata service ended this mount's session ${ended} (no heartbeat within its session timeout: ` +
            `a network partition or a paused process); opened session ${sessionId}. ` +
            (lost > 0
              ? `Locks held here were released by the service: I/O through the ${lost} descriptor(s) that held them now fails with EIO; reopen the files and take the locks again`
              : 'No locks were held'),
        );
        return sessionId;
      } catch (err) {
        this.options.log(`could not open a new metadata session: ${(err as Error).message}; will retry`);
        throw err;
      } finally {
        this.renewing = null;
      }
    })();
    return this.renewing;
  }

  /**
   * Restores what the new session must know (the open files this mount registered) and
   * marks what was lost with the old one (the locks). Returns how many descriptors lost locks.
   */
  protected abstract sessionRenewed(sessionId: string): Promise<number>;

  /** Commits everything still pending and closes the session. Safe to call more than once. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.heartbeatTimer) clearInterval(this.heartbeatTimer);
    this.heartbeatTimer = null;
    await this.openFiles.flushAll();
    const sessionId = this.sessionIdValue;
    this.sessionIdValue = null;
    if (sessionId === null) return;
    const closing = this.meta.closeSession(sessionId).catch((err: unknown) => {
      // Ended by the service already (a heartbeat gap): nothing is left to close.
      if (!isFsError(err) || err.errno !== Errno.ENOTCONN) throw err;
    });
    // Everything is committed by now. A service that does not answer (stopped before this
    // mount) ends the session itself after its session timeout, releasing the locks: an
    // unmount need not wait out the whole metadata retry budget for it.
    let waited: NodeJS.Timeout | undefined;
    const gaveUp = new Promise<'gave up'>((resolve) => {
      waited = setTimeout(() => resolve('gave up'), CLOSE_SESSION_WAIT_MS);
    });
    try {
      if ((await Promise.race([closing, gaveUp])) === 'gave up') {
        closing.catch(() => undefined);
        this.options.log(
          `could not close session ${sessionId}: the metadata service did not answer within ` +
            `${CLOSE_SESSION_WAIT_MS / 1000} s; it ends the session itself after its session timeout`,
        );
      }
    } finally {
      clearTimeout(waited);
    }
  }

  get volume(): VolumeSettings {
    if (this.volumeSettings === null) throw fsError.EIO('the VFS was used before start()');
    return this.volumeSettings;
  }

  protected get sessionId(): string {
    if (this.sessionIdValue === null) throw fsError.ENOTCONN('the mount has no metadata session');
    return this.sessionIdValue;
  }

  async destroy(): Promise<void> {
    await this.openFiles.flushAll();
  }

  protected entry(attr: InodeAttr): Entry {
    this.specialNodes.note(attr);
    return {
      attr: toFuseAttr(this.openFiles.withPending(attr)),
      generation: attr.generation,
      entryTimeoutMs: this.options.entryTimeoutMs,
      attrTimeoutMs: this.options.attrTimeoutMs,
    };
  }

  protected attrReply(attr: InodeAttr): AttrReply {
    this.specialNodes.note(attr);
    return {
      attr: toFuseAttr(this.openFiles.withPending(attr)),
      attrTimeoutMs: this.options.attrTimeoutMs,
    };
  }
}

/**
 * The metadata calls of open files and the compactor, telling the data path when the slices it
 * handed out are committed (or never will be), so this mount's slice floor moves up. A commit
 * that failed otherwise keeps them held: the file retries it with its next flush.
 */
function releasingSlices(meta: MetaApi, data: DataPath, log: (message: string) => void): MetaApi {
  const commitWrites: MetaApi['commitWrites'] = async (caller, ino, writes, minSizeBytes, mtime) => {
    try {
      const attr = await meta.commitWrites(caller, ino, writes, minSizeBytes, mtime);
      data.releaseSlices(writes.map((w) => w.slice.id));
      return attr;
    } catch (err) {
      if (isFsError(err) && err.message.includes(RECLAIMED_SLICE_HINT)) {
        // The program gets EIO from its fsync or close; whoever reads the mount's log, why.
        log(err.message);
        data.releaseSlices(writes.map((w) => w.slice.id));
      }
      throw err;
    }
  };
  // A lost race or a failure leaves the new slice to nobody: compaction starts over from scratch.
  const replaceChunkSlices: MetaApi['replaceChunkSlices'] = (ino, chunkIndex, expectedIds, merged) =>
    meta
      .replaceChunkSlices(ino, chunkIndex, expectedIds, merged)
      .finally(() => data.releaseSlices(merged.map((s) => s.id)));
  return new Proxy(meta, {
    get(target, property, receiver) {
      if (property === 'commitWrites') return commitWrites;
      if (property === 'replaceChunkSlices') return replaceChunkSlices;
      return Reflect.get(target, property, receiver) as unknown;
    },
  });
}
