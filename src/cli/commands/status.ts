import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import { formatBytes } from '../../common/index.js';
import { describeConfig, settingNames } from '../../config/index.js';
import { redactUrl, volumeStatus } from '../../volume/index.js';
import { checkEngineUrl, configFromOptions, UsageError } from '../options.js';

export function registerStatus(program: Command): void {
  program
    .command('status')
    .description(
      'show StrataFS mounts on this host, the effective client settings, and a volume with its sessions (never secrets)',
    )
    .option('--engine <URL>', 'metadata engine to inspect, e.g. sqlite:/var/lib/strata/meta.db')
    .option('--data-dir <DIR>', 'inspect the embedded volume of `strata up DIR` (its engine is DIR/meta.db)')
    .option('--config <FILE>', 'JSON settings file, to show the configuration a mount would use')
    .action(async (options: Record<string, unknown>) => {
      if (typeof options.engine === 'string' && typeof options.dataDir === 'string') {
        throw new UsageError('give either --engine or --data-dir, not both');
      }
      const out: string[] = [];
      const mounts = readFileSync('/proc/mounts', 'utf8')
        .split('\n')
        .filter((line) => line.split(' ')[2]?.startsWith('fuse.stratafs'));
      out.push(`mounts on this host: ${mounts.length === 0 ? 'none' : ''}`);
      for (const line of mounts) {
        const [source, target] = line.split(' ');
        out.push(`  ${source} on ${target}`);
      }
      out.push('', 'settings (a new mount from this environment):');
      for (const line of describeConfig(configFromOptions(options, settingNames))) out.push(`  ${line}`);
      const engineUrl =
        typeof options.engine === 'string'
          ? checkEngineUrl(options.engine)
          : typeof options.dataDir === 'string'
            ? `sqlite:${join(resolve(options.dataDir), 'meta.db')}`
            : undefined;
      if (engineUrl !== undefined) {
        const status = await volumeStatus(engineUrl);
        const v = status.volume;
        out.push(
          '',
          `volume "${v.name}" (uuid ${v.uuid}) in ${redactUrl(engineUrl)}`,
          `  storage          ${redactUrl(v.storageUrl)}`,
          `  block size       ${formatBytes(v.blockSizeBytes)}, chunk size ${formatBytes(v.chunkSizeBytes)}`,
          `  history          ${v.historyRetentionMs / 86_400_000} days`,
          `  created          ${new Date(v.createdUs / 1000).toISOString()}`,
          `  used             ${formatBytes(status.statfs.usedBytes)} in ${status.statfs.inodesUsed} inodes`,
          `  sessions         ${status.sessions.length}`,
        );
        for (const s of status.sessions) {
          out.push(
            `    ${s.sessionId}  ${s.hostname}:${s.mountpoint} pid ${s.pid} v${s.version}, last heartbeat ${new Date(s.heartbeatUs / 1000).toISOString()}`,
          );
        }
      }
      process.stdout.write(`${out.join('\n')}\n`);
    });
}
