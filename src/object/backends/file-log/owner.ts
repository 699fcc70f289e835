import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';

/**
 * Who appends to a log segment: the segment's name starts with its owner, and only the owner
 * appends to it. A name reads `<boot>_<pid>_<start>_<nonce>`: the boot id, process id and
 * process start time (clock ticks since boot, /proc/PID/stat field 22) say whether the owning
 * process still runs; the nonce keeps two stores opened by one process apart. Node has no
 * flock(2), and this check asks the kernel the same question an flock would answer: a process
 * that died (even by SIGKILL) no longer matches, and a recycled pid has another start time.
 */
export interface LogOwner {
  readonly id: string;
}

function bootId(): string {
  try {
    return readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim().replace(/-/g, '').slice(0, 12);
  } catch {
    return 'noboot';
  }
}

/** Field 22 of /proc/PID/stat (the command name, field 2, may hold spaces: count after ')'). */
function processStartTicks(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return fields[19] ?? null;
  } catch {
    return null;
  }
}

const thisBoot = bootId();

export function newLogOwner(): LogOwner {
  const start = processStartTicks(process.pid) ?? '0';
  return { id: `${thisBoot}_${process.pid}_${start}_${randomBytes(4).toString('hex')}` };
}

const OWNER_PATTERN = /^([0-9a-z]+)_(\d+)_(\d+)_[0-9a-f]+$/;

/** Whether the process that owns `ownerId` still runs. An unreadable id counts as alive. */
export function isLogOwnerAlive(ownerId: string): boolean {
  const match = OWNER_PATTERN.exec(ownerId);
  if (!match) return true;
  const [, boot, pid, start] = match;
  if (boot !== thisBoot) return false;
  return processStartTicks(Number(pid)) === start;
}
