import { resolve } from 'node:path';
import type { Command } from 'commander';
import type { SettingName } from '../../config/index.js';
import { ProcessMetrics } from '../../metrics/index.js';
import { startEmbedded } from '../../volume/index.js';
import { addSettingOptions, checkStorageUrl, configFromOptions, parseHostPort } from '../options.js';
import { catchStopSignals, runUntilSignal, stderrLog } from '../run.js';

const settings: SettingName[] = [
  'memoryBytes',
  'cacheDir',
  'cacheSizeBytes',
  'blockSizeBytes',
  'retentionMs',
  'attrTimeoutMs',
  'entryTimeoutMs',
  'uploadsInFlight',
  'storeRetryMs',
  'compactSlicesThreshold',
  'heartbeatIntervalMs',
  'lockRetryMaxMs',
  'ioUring',
  'fuseSpinUs',
];

export function registerUp(program: Command): void {
  const command = program
    .command('up')
    .description(
      'run an embedded volume: create it on first run (SQLite metadata and objects under DATA_DIR), serve its metadata in-process and mount it, in the foreground',
    )
    .argument('<DATA_DIR>', 'where the volume lives (created if missing)')
    .argument('<MOUNTPOINT>', 'an existing empty directory')
    .option('--storage <URL>', 'object store URL (default file:DATA_DIR/objects), e.g. s3://bucket/prefix')
    .option('--listen <HOST:PORT>', 'also serve the metadata over RPC so other clients can mount it')
    .option('--name <NAME>', 'volume name on first run', 'strata')
    .option('--metrics <HOST:PORT>', 'serve Prometheus metrics at http://HOST:PORT/metrics (default: off)');
  addSettingOptions(command, settings).action(
    async (dataDir: string, mountpoint: string, options: Record<string, unknown>) => {
      const { config } = configFromOptions(options, settings);
      const storageUrl = typeof options.storage === 'string' ? checkStorageUrl(options.storage) : undefined;
      const listen =
        typeof options.listen === 'string' ? parseHostPort(options.listen, '--listen') : undefined;
      const metricsAt =
        typeof options.metrics === 'string' ? parseHostPort(options.metrics, '--metrics') : undefined;
      const signals = catchStopSignals(stderrLog);
      const metrics = metricsAt ? await ProcessMetrics.start(metricsAt) : undefined;
      try {
        const volume = await startEmbedded({
          dataDir: resolve(dataDir),
          mountpoint: resolve(mountpoint),
          storageUrl,
          listen,
          volumeName: String(options.name),
          config,
          log: stderrLog,
        });
        metrics?.addMount(volume.stats);
        if (volume.gcTotals) metrics?.addGc(volume.gcTotals);
        if (volume.metaServerStats) metrics?.addMetaServer(volume.metaServerStats, { engineThread: false });
        stderrLog(
          `volume "${volume.volume.name}" mounted at ${volume.mountpoint}${volume.metaAddress ? `, metadata served on ${volume.metaAddress}` : ''}${metrics ? `, metrics on http://${metrics.address}/metrics` : ''}; Ctrl-C to unmount`,
        );
        await runUntilSignal(volume, stderrLog, signals);
      } finally {
        signals.release();
        await metrics?.close();
      }
    },
  );
}
