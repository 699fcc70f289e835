import { randomUUID } from 'node:crypto';
import { asIno, fsError, processScope, type Ino, type SliceId } from '../common/index.js';
import type { AsOf, Caller, SessionInfo, Timespec, VolumeSettings } from './api.js';
import { outsideNumberedCall } from './call-outcomes.js';
import { isDir, timespecFromUs } from './attrs.js';
import type { Clock, Engine, InodeRow, ReadTx, WriteTx } from './engine.js';
import * as ns from './namespace.js';
import { OpContext } from './op-context.js';
import { sessionSliceFloor } from './reclaim-floor.js';
import { COUNTER_INO_HI } from './volume-keys.js';

export interface MetaServiceOptions {
  clock: Clock;
  /** A session without a heartbeat for this long is expired: locks released, orphans reclaimed. */
  sessionTimeoutMs?: number;
  /** Inode numbers reserved per trip to the engine (a crash skips at most this many). */
  inoBatch?: number;
  /** Run session expiry and history pruning on timers (off in tests that drive them). */
  background?: boolean;
  pruneIntervalMs?: number;
  pruneBatchRows?: number;
}

/**
 * What every call of the metadata service (see MetaService) builds on: the clock and the
 * history window, one engine transaction per change, inode-number reservation, and the client
 * sessions whose end releases their locks and open files.
 */
export abstract class MetaServiceCore {
  private inoNext = 0;
  private inoEnd = 0;
  private inoRefill: Promise<void> | undefined;
  private readonly sessionTimeoutMs: number;
  private readonly timers: NodeJS.Timeout[] = [];
  private closed = false;

  constructor(
    readonly engine: Engine,
    protected readonly settings: VolumeSettings,
    private readonly options: MetaServiceOptions,
  ) {
    this.sessionTimeoutMs = options.sessionTimeoutMs ?? 60_000;
    if (options.background) {
      const expiry = setInterval(
        () => void this.expireSessions().catch(() => undefined),
        this.sessionTimeoutMs / 4,
      );
      const prune = setInterval(
        () => void this.pruneHistory().catch(() => undefined),
        options.pruneIntervalMs ?? 10_000,
      );
      expiry.unref();
      prune.unref();
      this.timers.push(expiry, prune);
    }
  }

  private nowUs(): number {
    return this.options.clock.nowUs();
  }

  private now(): Timespec {
    return timespecFromUs(this.nowUs());
  }

  protected checkAsOf(asOf?: AsOf): number | undefined {
    const t = asOf?.asOfUs;
    if (t === undefined) return undefined;
    const oldest = this.nowUs() - this.settings.historyRetentionMs * 1000;
    if (!Number.isSafeInteger(t) || t < oldest) {
      throw fsError.EINVAL(
        `as-of instant ${t} µs is outside the history window (retention ${this.settings.historyRetentionMs} ms, oldest ${oldest} µs)`,
      );
    }
    return t;
  }

  protected change<T>(caller: Caller, fn: (ctx: OpContext) => Promise<T>): Promise<T> {
    return this.engine.write(async (tx) => {
      const ctx = new OpContext(tx, caller, this.now());
      const result = await fn(ctx);
      await ctx.flush();
      return result;
    });
  }

  /**
   * Resolves once an inode number is in hand, so that a create started right after reaches its
   * engine write with no await in between: the engine thread hands call keys over synchronously
   * (call-outcomes.ts, server/worker-main.ts).
   */
  inosInHand(): Promise<void> | undefined {
    return this.inoNext < this.inoEnd ? undefined : this.refillInos();
  }

  protected takeIno(): Ino | undefined {
    return this.inoNext < this.inoEnd ? asIno(this.inoNext++) : undefined;
  }

  protected async allocIno(): Promise<Ino> {
    for (;;) {
      const ino = this.takeIno();
      if (ino !== undefined) return ino;
      await this.refillInos();
    }
  }

  private async refillInos(): Promise<void> {
    while (this.inoNext >= this.inoEnd) {
      // Reserve a range durably before handing any of it out: a crash loses the rest of the
      // range, never re-issues a number.
      this.inoRefill ??= outsideNumberedCall(async () => {
        const batch = this.options.inoBatch ?? 1024;
        const hi = await this.engine.write((tx) => tx.addCounter(COUNTER_INO_HI, batch));
        this.inoNext = hi - batch + 1;
        this.inoEnd = hi + 1;
      }).finally(() => (this.inoRefill = undefined));
      await this.inoRefill;
    }
  }

  // --- sessions ---

  async openSession(info: SessionInfo): Promise<{ sessionId: string; volume: VolumeSettings }> {
    await this.endSessionsOfDeadMounts(info);
    const sessionId = randomUUID();
    const nowUs = this.nowUs();
    await this.engine.write((tx) => tx.putSession({ sessionId, info, startedUs: nowUs, heartbeatUs: nowUs }));
    return { sessionId, volume: { ...this.settings } };
  }

  /**
   * A mount killed without closing its session (kill -9, OOM) keeps its locks until the session
   * times out, and a database reopened on the remount meanwhile finds them held (SQLite WAL:
   * "locking protocol"; PostgreSQL waits). A new session at the same mountpoint, from the same
   * boot and pid namespace as this service, ends at once the earlier ones of that scope whose
   * process is gone. A pid this service cannot vouch for (another host or container, an older
   * client that does not say its scope, a live or reused pid) waits for the timeout as before.
   */
  private async endSessionsOfDeadMounts(info: SessionInfo): Promise<void> {
    const scope = processScope();
    if (scope === '' || info.processScope !== scope) return;
    const sessions = await this.engine.read((tx) => tx.listSessions());
    for (const s of sessions) {
      const old = s.info;
      if (old.processScope !== scope || old.mountpoint !== info.mountpoint || processExists(old.pid))
        continue;
      await this.change(rootCaller, async (ctx) => {
        if (await ctx.tx.getSession(s.sessionId)) await this.endSession(ctx, s.sessionId);
      });
    }
  }

  async heartbeat(sessionId: string, sliceFloor?: SliceId): Promise<void> {
    const nowUs = this.nowUs();
    await this.engine.write(async (tx) => {
      const row = await requireSession(tx, sessionId);
      // An older mount sends no floor: the row keeps none, and blocks reclaiming (reclaim-floor.ts).
      const floor = sliceFloor === undefined ? row.sliceFloor : await sessionSliceFloor(tx, sliceFloor);
      await tx.putSession({ ...row, heartbeatUs: nowUs, sliceFloor: floor });
    });
  }

  async closeSession(sessionId: string): Promise<void> {
    await this.change(rootCaller, async (ctx) => {
      await requireSession(ctx.tx, sessionId);
      await this.endSession(ctx, sessionId);
    });
  }

  /** Releases the session's locks and open files (reclaiming unlinked ones) and forgets it. */
  private async endSession(ctx: OpContext, sessionId: string): Promise<void> {
    await ctx.tx.deleteSessionLocks(sessionId);
    for (const ino of await ctx.tx.takeSessionOpens(sessionId)) await this.reclaimIfOrphan(ctx, ino);
    await ctx.tx.deleteSession(sessionId);
  }

  protected async reclaimIfOrphan(ctx: OpContext, ino: Ino): Promise<void> {
    const row = await ctx.tx.getInode(ino);
    if (row && row.nlink <= 0 && (await ctx.tx.openCount(ino)) === 0) {
      await ns.freeInode(ctx, await ctx.inode(ino));
    }
  }

  /** Ends every session whose last heartbeat is older than the timeout; returns their ids. */
  async expireSessions(): Promise<string[]> {
    const cutoffUs = this.nowUs() - this.sessionTimeoutMs * 1000;
    const sessions = await this.engine.read((tx) => tx.listSessions());
    const expired: string[] = [];
    for (const s of sessions) {
      if (s.heartbeatUs >= cutoffUs) continue;
      const ended = await this.change(rootCaller, async (ctx) => {
        const row = await ctx.tx.getSession(s.sessionId);
        if (!row || row.heartbeatUs >= cutoffUs) return false; // it came back meanwhile
        await this.endSession(ctx, s.sessionId);
        return true;
      });
      if (ended) expired.push(s.sessionId);
    }
    return expired;
  }

  /** Deletes history older than the retention window, in small batches. Returns rows deleted. */
  async pruneHistory(): Promise<number> {
    const beforeUs = this.nowUs() - this.settings.historyRetentionMs * 1000;
    const batch = this.options.pruneBatchRows ?? 2000;
    let total = 0;
    for (;;) {
      if (this.closed) return total;
      const n = await this.engine.pruneHistory(beforeUs, batch);
      total += n;
      if (n < batch) return total;
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const t of this.timers) clearInterval(t);
    await this.engine.close();
  }
}

export const rootCaller: Caller = { uid: 0, gid: 0, pid: 0 };

/** Whether a process with this pid exists on this host (EPERM: it does, someone else's). */
function processExists(pid: number): boolean {
  if (!Number.isSafeInteger(pid) || pid <= 0) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code !== 'ESRCH';
  }
}

export async function getInode(
  tx: Pick<ReadTx, 'getInode'>,
  ino: Ino,
  asOfUs: number | undefined,
): Promise<InodeRow> {
  const row = await tx.getInode(ino, asOfUs);
  if (!row) {
    throw fsError.ENOENT(
      asOfUs === undefined ? `inode ${ino} does not exist` : `inode ${ino} did not exist at ${asOfUs} µs`,
    );
  }
  return row;
}

export async function getDir(
  tx: Pick<ReadTx, 'getInode'>,
  ino: Ino,
  asOfUs: number | undefined,
): Promise<InodeRow> {
  const row = await getInode(tx, ino, asOfUs);
  if (!isDir(row.mode)) throw fsError.ENOTDIR(`inode ${ino} is not a directory`);
  return row;
}

export async function requireSession(tx: ReadTx | WriteTx, sessionId: string) {
  const row = await tx.getSession(sessionId);
  if (!row) throw fsError.ENOTCONN(`session ${sessionId} is unknown or expired; the client must remount`);
  return row;
}
