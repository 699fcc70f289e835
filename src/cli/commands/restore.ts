import type { Command } from 'commander';
import { restore, type RestoreReport } from '../../ops/index.js';
import { connectRemoteMeta, resolveClientSecret } from '../../volume/index.js';
import { parseInstantUs, parseVolumeAddress, UsageError } from '../options.js';
import { stderrLog } from '../run.js';

export function registerRestore(program: Command): void {
  program
    .command('restore')
    .description(
      'bring a file or directory tree back as it was at an instant of the volume history, by reference ' +
        '(no data is copied); a file is replaced in place atomically, a directory goes to a new path',
    )
    .argument(
      '<META_ADDR/VOLUME>',
      'metadata server and volume, as for `strata mount`, e.g. 127.0.0.1:7070/myvol',
    )
    .argument('<PATH>', 'absolute path inside the volume as it was then, e.g. /projects/report.txt')
    .requiredOption(
      '--as-of <TIME>',
      'the instant: an ISO 8601 time (2026-11-26T10:00:00Z), @SECONDS since the epoch or a duration ago ("2h ago"); ' +
        'inside the volume history window',
    )
    .option('--to <PATH>', 'where the restored copy goes (absolute, inside the volume); default PATH itself')
    .option('--secret-file <PATH>', 'the secret `strata format` wrote (or env STRATA_SECRET)')
    .action(async (address: string, path: string, options: Record<string, unknown>) => {
      const { metaAddress, volumeName } = parseVolumeAddress(address);
      const asOfUs = parseInstantUs(String(options.asOf));
      const to = typeof options.to === 'string' ? options.to : undefined;
      for (const [what, p] of [
        ['PATH', path],
        ['--to', to],
      ] as const) {
        if (p !== undefined && !p.startsWith('/')) {
          throw new UsageError(
            `${what} "${p}" must be absolute inside the volume, e.g. /projects/report.txt`,
          );
        }
      }
      const secret = resolveClientSecret(
        typeof options.secretFile === 'string' ? options.secretFile : undefined,
      );
      const remote = await connectRemoteMeta(metaAddress, volumeName, secret, stderrLog);
      try {
        let lastLogMs = 0;
        const report = await restore({
          meta: remote.meta,
          asOfUs,
          path,
          to,
          onProgress: (progress) => {
            if (performance.now() - lastLogMs < 1000) return;
            lastLogMs = performance.now();
            stderrLog(`restoring: ${describe(progress)}`);
          },
        });
        const when = new Date(Math.floor(asOfUs / 1000)).toISOString();
        process.stdout.write(`restored ${path} as of ${when} to ${to ?? path}: ${describe(report)}\n`);
      } finally {
        await remote.close();
      }
    });
}

function describe(r: RestoreReport): string {
  const parts = [`${r.files} file(s) (${r.bytes} bytes by reference)`, `${r.directories} director(ies)`];
  if (r.symlinks > 0) parts.push(`${r.symlinks} symlink(s)`);
  if (r.others > 0) parts.push(`${r.others} special file(s)`);
  if (r.hardLinks > 0) parts.push(`${r.hardLinks} hard link(s)`);
  return parts.join(', ');
}
