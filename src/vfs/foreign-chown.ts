import { readFileSync } from 'node:fs';
import type { Caller, InodeAttr } from '../meta/api.js';
import { S_IFDIR, S_IFMT } from './attr.js';

const S_ISUID = 0o4000;
const S_ISGID = 0o2000;
const S_IXGRP = 0o0010;

/** chown-family system call numbers per architecture (asm/unistd_64.h; arm64 has the generic table). */
const CHOWN_SYSCALLS: Partial<Record<NodeJS.Architecture, readonly number[]>> = {
  x64: [92, 93, 94, 260], // chown, fchown, lchown, fchownat
  arm64: [54, 55], // fchownat, fchown
};

/**
 * Why an empty SETATTR on `attr` by `caller` (not root) must fail with EPERM, or undefined.
 *
 * chown(-1, -1) by someone other than the owner fails on Linux when it would clear set-id
 * bits (the kill becomes a mode change only the owner may make). With HANDLE_KILLPRIV_V2 the
 * kernel leaves that to the file system but sends the same empty SETATTR as
 * file_remove_privs() before a fallocate, which must succeed; only the system call the caller
 * is in tells the two apart, so it is read from /proc, and only in this rare case.
 */
export function foreignChownRefusal(caller: Caller, attr: InodeAttr): string | undefined {
  if (attr.uid === caller.uid || (attr.mode & S_IFMT) === S_IFDIR) return undefined;
  const inGroup = attr.gid === caller.gid || (caller.groups ?? []).includes(attr.gid);
  const killsSetgid = (attr.mode & S_ISGID) !== 0 && ((attr.mode & S_IXGRP) !== 0 || !inGroup);
  if ((attr.mode & S_ISUID) === 0 && !killsSetgid) return undefined;
  if (isInChown(caller.pid) !== true) return undefined;
  return `uid ${caller.uid} may not chown inode ${attr.ino} of uid ${attr.uid}: it would clear set-id bits, which only the owner or root may change`;
}

/**
 * Whether thread `tid` (a FUSE request's pid is the calling thread) is blocked inside a
 * chown-family system call: the first field of /proc/TID/syscall is the call in progress.
 * Undefined when that cannot be told (another architecture, the thread gone, no access).
 */
function isInChown(tid: number): boolean | undefined {
  const numbers = CHOWN_SYSCALLS[process.arch];
  if (numbers === undefined || tid <= 0) return undefined;
  let text: string;
  try {
    text = readFileSync(`/proc/${tid}/syscall`, 'utf8');
  } catch {
    return undefined;
  }
  const nr = Number.parseInt(text, 10);
  return Number.isNaN(nr) ? undefined : numbers.includes(nr);
}
