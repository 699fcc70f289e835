import { readFileSync, readlinkSync } from 'node:fs';

let cached: string | undefined;

/**
 * Names the set of processes whose pids this process can vouch for: this boot of this machine
 * and this pid namespace. A hostname alone is not enough: containers sharing the host's name
 * (host networking) have pid namespaces of their own, where another process's pid looks gone.
 * Empty when /proc cannot tell, which matches nothing.
 */
export function processScope(): string {
  if (cached !== undefined) return cached;
  try {
    const bootId = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
    cached = `${bootId}/${readlinkSync('/proc/self/ns/pid')}`;
  } catch {
    cached = '';
  }
  return cached;
}
