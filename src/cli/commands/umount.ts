import { spawnSync } from 'node:child_process';
import { resolve } from 'node:path';
import type { Command } from 'commander';

export function registerUmount(program: Command): void {
  program
    .command('umount')
    .description('unmount a StrataFS mount (the mount process flushes, then exits)')
    .argument('<MOUNTPOINT>', 'where the volume is mounted')
    .option('-l, --lazy', 'detach now even if busy or the mount process is dead (umount -l)')
    .action((mountpoint: string, options: { lazy?: boolean }) => {
      const path = resolve(mountpoint);
      // -c: no stat of the mount point first, which a mount whose server is gone answers late.
      const args = options.lazy ? ['-c', '-l', path] : ['-c', path];
      const result = spawnSync('umount', args, { encoding: 'utf8' });
      if (result.error)
        throw new Error(`cannot run umount: ${result.error.message}; is util-linux installed?`);
      if (result.status !== 0) {
        const why = (result.stderr || result.stdout).trim().split('\n')[0] ?? '';
        const hint = /busy/.test(why)
          ? 'close the files using it (see `fuser -m`) or use --lazy'
          : /not mounted|no mount point/.test(why)
            ? 'check the path with `grep fuse /proc/mounts`'
            : 'if the mount process died, use --lazy';
        throw new Error(`umount ${path} failed: ${why}; ${hint}`);
      }
    });
}
