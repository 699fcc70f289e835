import { fsError, type SliceId, type SliceRef } from '../common/index.js';
import type { Engine, SessionRow, WriteTx } from './engine.js';
import { COUNTER_RECLAIM_FLOOR, COUNTER_SLICE_HI } from './volume-keys.js';

/**
 * The reclaim floor: what makes deleting leaked blocks (blocks of slices no commit ever
 * recorded; src/ops/gc-scan.ts) safe.
 *
 * Slice ids come from one allocator, in increasing order. Every mount reports with its heartbeat
 * the lowest id it may still commit (its *slice floor*: the least id it took and has not
 * committed or given up; 0 when it holds none, for which the session stores the allocator's next
 * id, the mount taking new ids only after that heartbeat's answer: src/data SliceIdPool). Before
 * a pass deletes anything, it raises the volume's reclaim floor F to the least of every session's
 * floor and the allocator's next id (never lowering it), in one transaction, durably. From then
 * on:
 * - every id a live session may still commit is >= F, so its blocks are not touched;
 * - a commit that brings in an id below F the metadata has never seen (no reference, no row in
 *   the deleted slice log) is refused with EIO: its blocks may be gone. That is a mount whose
 *   session expired (a partition, a paused VM) coming back: its program gets an error, never a
 *   file with a hole;
 * - a session that reports no floor (a mount older than floors, or one that just opened) stops
 *   the pass: the pass names it instead of guessing.
 *
 * The commit reads F under a shared lock and the pass raises it under an exclusive one
 * (WriteTx.lockReclaimFloor), so a commit either ends before F moves (and the pass, which reads
 * slice states after, sees its references) or reads the new F.
 */

/** Why a slice was refused: said to the program's log and to whoever reads the mount's log. */
export const RECLAIMED_SLICE_HINT = 'below the reclaim floor';

/**
 * Refuses the commit if it brings in a slice id below the reclaim floor that the metadata has
 * never seen. Run it first in the transaction (before row locks: the pass waits for it).
 */
export async function refuseReclaimedSlices(
  tx: WriteTx,
  slices: readonly SliceRef[],
  where: string,
): Promise<void> {
  let lowest = Number.POSITIVE_INFINITY;
  for (const s of slices) if (s.id !== 0 && s.id < lowest) lowest = s.id;
  if (lowest === Number.POSITIVE_INFINITY) return;
  const floor = await tx.lockReclaimFloor(false);
  if (lowest >= floor) return;
  const below = new Set<SliceId>();
  for (const s of slices) if (s.id !== 0 && s.id < floor) below.add(s.id);
  for (const state of await tx.getSliceStates([...below])) {
    // Known slices (referenced now, or deleted and kept for history) were never reclaimed.
    if (state.refs > 0 || state.lastDeletedUs !== undefined) continue;
    throw fsError.EIO(
      `${where}: slice ${state.id} is ${RECLAIMED_SLICE_HINT} ${floor} and was never committed: ` +
        'its blocks were reclaimed as leaked (strata gc --reclaim-leaked) because the mount that wrote ' +
        'it was away longer than its session timeout. The data written since the last successful ' +
        'fsync or close of that file is lost: write it again',
    );
  }
}

/**
 * What a session's row keeps of the floor its mount reported: NOTHING_HELD (0: it holds no
 * slice id, and takes new ones only after this heartbeat is answered) becomes the allocator's
 * next id now, below every id it can get later.
 */
export async function sessionSliceFloor(tx: WriteTx, reported: SliceId): Promise<number> {
  return reported === 0 ? allocatorNextId(tx) : reported;
}

/** The id allocateSliceIds hands out next (it raises the counter to the last id it gave). */
async function allocatorNextId(tx: WriteTx): Promise<number> {
  return (await tx.getCounter(COUNTER_SLICE_HI)) + 1;
}

export type RaiseResult =
  | { floor: number; previousFloor: number; blockedBy?: undefined }
  | { floor: number; previousFloor: number; blockedBy: SessionRow };

/**
 * Raises the reclaim floor as far as every live session allows, durably, and returns it; or
 * returns the first session that reports no floor (then nothing changes).
 */
export function raiseReclaimFloor(engine: Engine): Promise<RaiseResult> {
  return engine.write(async (tx) => {
    const previousFloor = await tx.lockReclaimFloor(true);
    const sessions = await tx.listSessions();
    const blockedBy = sessions.find((s) => s.sliceFloor === undefined);
    if (blockedBy !== undefined) return { floor: previousFloor, previousFloor, blockedBy };
    let floor = await allocatorNextId(tx);
    for (const s of sessions) floor = Math.min(floor, s.sliceFloor!);
    floor = Math.max(floor, previousFloor);
    if (floor > previousFloor) await tx.addCounter(COUNTER_RECLAIM_FLOOR, floor - previousFloor);
    return { floor, previousFloor };
  });
}

/** What a person needs to find the session that stops reclaiming. */
export function describeBlockingSession(session: SessionRow): string {
  const { info } = session;
  return (
    `session ${session.sessionId} of ${info.hostname}:${info.mountpoint} (pid ${info.pid}, version ` +
    `${info.version}, last heartbeat ${new Date(Math.floor(session.heartbeatUs / 1000)).toISOString()}) ` +
    'reports no slice floor: it is a mount older than slice floors, or one that has just started. ' +
    'Upgrade or unmount that mount (or wait for its next heartbeat), then run the reclaim again'
  );
}
