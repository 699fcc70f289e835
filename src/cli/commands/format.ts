import type { Command } from 'commander';
import type { SettingName } from '../../config/index.js';
import { formatNewVolume } from '../../volume/index.js';
import {
  addSettingOptions,
  checkEngineUrl,
  checkStorageUrl,
  configFromOptions,
  UsageError,
} from '../options.js';

const settings: SettingName[] = ['blockSizeBytes', 'retentionMs'];

export function registerFormat(program: Command): void {
  const command = program
    .command('format')
    .description('create a volume in a metadata engine; prints where the client secret was written')
    .requiredOption(
      '--engine <URL>',
      'metadata engine, e.g. sqlite:/var/lib/strata/meta.db or postgres://...',
    )
    .requiredOption(
      '--storage <URL>',
      'object store, e.g. file:/var/lib/strata/objects or s3://bucket/prefix',
    )
    .requiredOption('--name <VOLUME>', 'volume name (letters, digits, ".", "_", "-")')
    .option(
      '--secret-file <PATH>',
      'where to write the secret clients authenticate with (default: next to a sqlite engine)',
    );
  addSettingOptions(command, settings).action(async (options: Record<string, unknown>) => {
    const { config } = configFromOptions(options, settings);
    const name = String(options.name);
    if (!/^[A-Za-z0-9._-]{1,64}$/.test(name)) {
      throw new UsageError(`invalid --name "${name}": use 1-64 letters, digits, ".", "_" or "-"`);
    }
    const result = await formatNewVolume({
      engineUrl: checkEngineUrl(String(options.engine)),
      storageUrl: checkStorageUrl(String(options.storage)),
      name,
      blockSizeBytes: config.blockSizeBytes,
      retentionMs: config.retentionMs,
      secretFile: typeof options.secretFile === 'string' ? options.secretFile : undefined,
    });
    process.stdout.write(
      `formatted volume "${name}" (uuid ${result.uuid}) in ${result.engineDescription}\n` +
        `client secret: ${result.secretFile} (mode 0600; give it to clients with --secret-file or STRATA_SECRET)\n`,
    );
  });
}
