import type { LockRange } from './api.js';
import type { LockRow } from './engine.js';

export type HeldRange = Pick<LockRow, 'type' | 'start' | 'end' | 'pid'>;

const overlaps = (a: { start: number; end: number }, b: { start: number; end: number }): boolean =>
  a.start <= b.end && b.start <= a.end;

/** The first lock held by someone else that `wanted` conflicts with (two reads never conflict). */
export function findConflict(
  locks: LockRow[],
  sessionId: string,
  owner: string,
  flock: boolean,
  wanted: LockRange,
): LockRow | undefined {
  if (wanted.type === 'unlock') return undefined;
  return locks.find(
    (l) =>
      l.flock === flock &&
      !(l.sessionId === sessionId && l.owner === owner) &&
      (l.type === 'write' || wanted.type === 'write') &&
      overlaps(l, wanted),
  );
}

/**
 * An owner's POSIX ranges after applying `change` (fcntl F_SETLK semantics): the changed
 * span replaces whatever the owner held there, splitting ranges it cuts, and adjacent or
 * overlapping ranges of the same type merge.
 */
export function applyPosixChange(held: HeldRange[], change: LockRange): HeldRange[] {
  const out: HeldRange[] = [];
  for (const r of held) {
    if (!overlaps(r, change)) {
      out.push(r);
      continue;
    }
    if (r.start < change.start) out.push({ ...r, end: change.start - 1 });
    if (r.end > change.end) out.push({ ...r, start: change.end + 1 });
  }
  if (change.type !== 'unlock')
    out.push({ type: change.type, start: change.start, end: change.end, pid: change.pid });
  out.sort((a, b) => a.start - b.start);
  const merged: HeldRange[] = [];
  for (const r of out) {
    const last = merged[merged.length - 1];
    if (last && last.type === r.type && last.end !== Number.MAX_SAFE_INTEGER && last.end + 1 >= r.start) {
      last.end = Math.max(last.end, r.end);
    } else {
      merged.push({ ...r });
    }
  }
  return merged;
}
