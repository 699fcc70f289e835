import { asIno } from '../../common/index.js';
import type { DentryRow, InodeRow, SessionRow } from '../engine.js';

/**
 * The column names both SQL engines store rows under, and their decoding into the engine
 * contract's rows: one schema vocabulary, so the engines differ only in how they talk to
 * their database.
 */

export interface InodeRecord {
  ino: number;
  mode: number;
  uid: number;
  gid: number;
  nlink: number;
  size: number;
  rdev: number;
  atime_s: number;
  atime_ns: number;
  mtime_s: number;
  mtime_ns: number;
  ctime_s: number;
  ctime_ns: number;
  gen: number;
  parent: number;
  target: string | null;
  alloc: number;
}

export interface DentryRecord {
  parent: number;
  name: string;
  ino: number;
  type: number;
  cursor: number;
}

export interface SessionRecord {
  id: string;
  info: string;
  started_us: number;
  heartbeat_us: number;
  slice_floor: number | null;
}

export function toInode(r: InodeRecord): InodeRow {
  return {
    ino: asIno(r.ino),
    mode: r.mode,
    uid: r.uid,
    gid: r.gid,
    nlink: r.nlink,
    sizeBytes: r.size,
    rdev: r.rdev,
    atimeSec: r.atime_s,
    atimeNsec: r.atime_ns,
    mtimeSec: r.mtime_s,
    mtimeNsec: r.mtime_ns,
    ctimeSec: r.ctime_s,
    ctimeNsec: r.ctime_ns,
    generation: r.gen,
    parent: asIno(r.parent),
    target: r.target,
    allocatedBytes: Number(r.alloc),
  };
}

export function toDentry(r: DentryRecord): DentryRow {
  return { parent: asIno(r.parent), name: r.name, ino: asIno(r.ino), type: r.type, cursor: r.cursor };
}

export function toSession(r: SessionRecord): SessionRow {
  return {
    sessionId: r.id,
    info: JSON.parse(r.info) as SessionRow['info'],
    startedUs: r.started_us,
    heartbeatUs: r.heartbeat_us,
    ...(r.slice_floor === null ? {} : { sliceFloor: Number(r.slice_floor) }),
  };
}
