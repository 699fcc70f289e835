import type { Ino } from '../common/index.js';
import type { InodeAttr, Timespec } from './api.js';
import type { InodeRow } from './engine.js';

// st_mode bits (<sys/stat.h>); named here so the rules below read as the standard does.
export const S_IFMT = 0o170000;
export const S_IFSOCK = 0o140000;
export const S_IFLNK = 0o120000;
export const S_IFREG = 0o100000;
export const S_IFBLK = 0o060000;
export const S_IFDIR = 0o040000;
export const S_IFCHR = 0o020000;
export const S_IFIFO = 0o010000;
export const S_ISUID = 0o4000;
export const S_ISGID = 0o2000;
export const S_ISVTX = 0o1000;
export const S_IXGRP = 0o010;

export const isDir = (mode: number): boolean => (mode & S_IFMT) === S_IFDIR;
export const isReg = (mode: number): boolean => (mode & S_IFMT) === S_IFREG;
export const isLnk = (mode: number): boolean => (mode & S_IFMT) === S_IFLNK;

export function timespecFromUs(us: number): Timespec {
  const sec = Math.floor(us / 1_000_000);
  return { sec, nsec: (us - sec * 1_000_000) * 1000 };
}

export function toAttr(row: InodeRow): InodeAttr {
  return {
    ino: row.ino,
    mode: row.mode,
    uid: row.uid,
    gid: row.gid,
    nlink: row.nlink,
    sizeBytes: row.sizeBytes,
    rdev: row.rdev,
    atime: { sec: row.atimeSec, nsec: row.atimeNsec },
    mtime: { sec: row.mtimeSec, nsec: row.mtimeNsec },
    ctime: { sec: row.ctimeSec, nsec: row.ctimeNsec },
    generation: row.generation,
    allocatedBytes: row.allocatedBytes,
  };
}

export function setMtime(row: InodeRow, t: Timespec): void {
  row.mtimeSec = t.sec;
  row.mtimeNsec = t.nsec;
}

export function setCtime(row: InodeRow, t: Timespec): void {
  row.ctimeSec = t.sec;
  row.ctimeNsec = t.nsec;
}

/**
 * The first of `candidates` after the row's current ctime, or that ctime plus one
 * microsecond: ctime never goes back and moves with every change (the VFS orders
 * attribute replies by it).
 */
export function laterCtime(row: InodeRow, ...candidates: Timespec[]): Timespec {
  for (const t of candidates) {
    if (t.sec > row.ctimeSec || (t.sec === row.ctimeSec && t.nsec > row.ctimeNsec)) return t;
  }
  const nsec = row.ctimeNsec + 1000;
  return nsec >= 1_000_000_000
    ? { sec: row.ctimeSec + 1, nsec: nsec - 1_000_000_000 }
    : { sec: row.ctimeSec, nsec };
}

export function setAtime(row: InodeRow, t: Timespec): void {
  row.atimeSec = t.sec;
  row.atimeNsec = t.nsec;
}

/** A fresh inode with all three times set to `now`. */
export function newInodeRow(
  ino: Ino,
  mode: number,
  uid: number,
  gid: number,
  now: Timespec,
  fields: Partial<InodeRow> = {},
): InodeRow {
  return {
    ino,
    mode,
    uid,
    gid,
    nlink: 1,
    sizeBytes: 0,
    rdev: 0,
    atimeSec: now.sec,
    atimeNsec: now.nsec,
    mtimeSec: now.sec,
    mtimeNsec: now.nsec,
    ctimeSec: now.sec,
    ctimeNsec: now.nsec,
    generation: 1,
    parent: 0 as Ino,
    target: null,
    allocatedBytes: 0,
    ...fields,
  };
}
