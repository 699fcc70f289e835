import { readFileSync } from 'node:fs';
import type { RequestContext } from '../fuse/index.js';
import type { Caller } from '../meta/api.js';

/** How long a process's supplementary groups are trusted after reading them. */
const GROUPS_TTL_MS = 1000;
const MAX_CACHED_PIDS = 4096;

interface CachedGroups {
  uid: number;
  gid: number;
  groups: number[] | undefined;
  expiresMs: number;
}

/**
 * The identity the metadata service checks permissions against. FUSE reports only the
 * caller's uid, gid and pid; the supplementary groups come from /proc/PID/status, so that
 * a user who may write a directory through a secondary group is not refused by the
 * metadata service after the kernel allowed it. Root skips the lookup (it bypasses the
 * checks), and each pid's groups are cached for a second, but only while the pid keeps the
 * uid and gid it had when they were read: a process that switches users (a server with
 * saved root privileges, su, newgrp) gets its new groups at once.
 */
export class CallerResolver {
  private readonly cache = new Map<number, CachedGroups>();

  of(ctx: RequestContext): Caller {
    if (ctx.uid === 0) return { uid: 0, gid: ctx.gid, pid: ctx.pid };
    return { uid: ctx.uid, gid: ctx.gid, pid: ctx.pid, groups: this.groupsOf(ctx) };
  }

  private groupsOf(ctx: RequestContext): number[] | undefined {
    const now = Date.now();
    const hit = this.cache.get(ctx.pid);
    if (hit !== undefined && hit.expiresMs > now && hit.uid === ctx.uid && hit.gid === ctx.gid) {
      return hit.groups;
    }
    const groups = readGroups(ctx.pid);
    if (this.cache.size >= MAX_CACHED_PIDS) this.cache.clear();
    this.cache.set(ctx.pid, { uid: ctx.uid, gid: ctx.gid, groups, expiresMs: now + GROUPS_TTL_MS });
    return groups;
  }
}

function readGroups(pid: number): number[] | undefined {
  let status: string;
  try {
    status = readFileSync(`/proc/${pid}/status`, 'utf8');
  } catch {
    // The process already exited (or pid 0 for kernel-internal requests): no extra groups.
    return undefined;
  }
  return groupsOfStatus(status);
}

/**
 * The supplementary groups in a /proc/PID/status text. A process without any has an empty
 * `Groups:` line: the match must stop at its end (a `\s*` there ran on into the next line and
 * read `NStgid:` and the pid as groups).
 */
export function groupsOfStatus(status: string): number[] | undefined {
  const match = /^Groups:[ \t]*(.*)$/m.exec(status);
  if (!match) return undefined;
  return match[1]
    .trim()
    .split(/\s+/)
    .filter((g) => g !== '')
    .map(Number);
}
