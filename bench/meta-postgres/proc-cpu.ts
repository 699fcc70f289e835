// CPU time of processes from /proc, for the PostgreSQL benchmarks: on a shared machine CPU per
// operation is the figure other people's load distorts least.
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import type pg from 'pg';

const CLOCK_TICKS_PER_SEC = 100;

/** Fields of /proc/PID/stat after the parenthesized command name (0 = state). */
function statFields(pid: number): string[] | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return undefined; // the process ended
  }
}

/**
 * CPU time (user + system, µs) of processes, including the CPU of their reaped children:
 * PostgreSQL backends that exit (pooled connections close when idle) end up in the postmaster's.
 */
export function cpuUs(pids: Iterable<number>): number {
  let ticks = 0;
  for (const pid of pids) {
    const fields = statFields(pid);
    // utime, stime, cutime, cstime are the 12th-15th fields after the command name.
    if (fields) ticks += Number(fields[11]) + Number(fields[12]) + Number(fields[13]) + Number(fields[14]);
  }
  return (ticks / CLOCK_TICKS_PER_SEC) * 1e6;
}

/**
 * The postmaster of the cluster `admin` is connected to and its children (backends, WAL writer,
 * checkpointer, ...): not the processes of any other cluster on the machine, such as the shared
 * test cluster other people's test runs use.
 */
export async function clusterPids(admin: pg.Client): Promise<number[]> {
  const { rows } = await admin.query<{ dir: string }>('SELECT current_setting($1) AS dir', [
    'data_directory',
  ]);
  const postmaster = Number(readFileSync(join(rows[0].dir, 'postmaster.pid'), 'utf8').split('\n')[0]);
  const pids = [postmaster];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    // The parent pid is the 2nd field after the command name.
    if (Number(statFields(Number(entry))?.[1]) === postmaster) pids.push(Number(entry));
  }
  return pids;
}
