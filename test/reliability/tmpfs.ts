// Throwaway tmpfs mounts: the reference side of every differential run, and
// the stand-in target for the tester's own sanity checks.
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';

export interface TempMount {
  path: string;
  /** Unmounts (lazily if busy) and removes the directory; safe to call twice. */
  dispose(): void;
}

/** `type` ramfs: a memory file system without O_DIRECT (and without a size limit). */
export function mountTmpfs(
  label: string,
  sizeBytes = 512 * 1024 * 1024,
  type: 'tmpfs' | 'ramfs' = 'tmpfs',
): TempMount {
  const path = mkdtempSync(`/tmp/strata-rel-${label}-`);
  // Other identities of multi-user runs must be able to reach the mount.
  chmodSync(path, 0o755);
  // nosuid,nodev as every StrataFS mount (src/fuse/mount.ts): opening a device node
  // must fail alike (EACCES) on both sides.
  execFileSync('mount', [
    '-t',
    type,
    '-o',
    `size=${sizeBytes},mode=0755,nosuid,nodev`,
    `strata-rel-${label}`,
    path,
  ]);
  let mounted = true;
  return {
    path,
    dispose(): void {
      if (mounted) {
        try {
          execFileSync('umount', [path], { stdio: 'pipe' });
        } catch {
          execFileSync('umount', ['-l', path], { stdio: 'pipe' });
        }
        mounted = false;
      }
      rmSync(path, { recursive: true, force: true });
    },
  };
}

/** The test profile: `long` scales the work up for `npm run test:long`. */
export function longProfile(): boolean {
  return process.env.STRATA_TEST_PROFILE === 'long';
}
