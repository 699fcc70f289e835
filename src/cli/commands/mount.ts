import { spawn } from 'node:child_process';
import { closeSync, openSync, readFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import type { Command } from 'commander';
import type { SettingName } from '../../config/index.js';
import { ProcessMetrics } from '../../metrics/index.js';
import { mountRemote } from '../../volume/index.js';
import {
  addSettingOptions,
  configFromOptions,
  parseHostPort,
  parseInstantUs,
  parseVolumeAddress,
} from '../options.js';
import { catchStopSignals, runUntilSignal, stderrLog } from '../run.js';

const settings: SettingName[] = [
  'memoryBytes',
  'cacheDir',
  'cacheSizeBytes',
  'attrTimeoutMs',
  'entryTimeoutMs',
  'uploadsInFlight',
  'storeRetryMs',
  'metaRetryMs',
  'heartbeatIntervalMs',
  'compactSlicesThreshold',
  'lockRetryMaxMs',
  'ioUring',
  'fuseSpinUs',
];

/** The background child tells its parent "the mount is up" on this fd, then closes it. */
const READY_FD_ENV = 'STRATA_READY_FD';

export function registerMount(program: Command): void {
  const command = program
    .command('mount')
    .description('mount a volume served by `strata meta serve`, in the foreground (or --background)')
    .argument(
      '<META_ADDR/VOLUME>',
      'metadata server and volume, e.g. 127.0.0.1:7070/myvol; several servers of the volume as a list: 10.0.0.1:7070,10.0.0.2:7070/myvol',
    )
    .argument('<MOUNTPOINT>', 'an existing empty directory')
    .option('--secret-file <PATH>', 'the secret `strata format` wrote (or env STRATA_SECRET)')
    .option(
      '--as-of <TIME>',
      'mount the volume as it was at TIME, read-only (time travel): an ISO 8601 time such as ' +
        '2026-11-26T10:00:00Z, @SECONDS since the epoch, or a duration ago such as "2h ago"; ' +
        "it must lie inside the volume's history window (its retention)",
    )
    .option('--metrics <HOST:PORT>', 'serve Prometheus metrics at http://HOST:PORT/metrics (default: off)')
    .option('--background', 'detach once the mount is ready; logs go to --log-file')
    .option('--log-file <PATH>', 'log file of a --background mount (default: $TMPDIR/strata-mount-NAME.log)');
  addSettingOptions(command, settings).action(
    async (address: string, mountpoint: string, options: Record<string, unknown>) => {
      const { config } = configFromOptions(options, settings);
      const { metaAddress, volumeName } = parseVolumeAddress(address);
      const mountPath = resolve(mountpoint);
      const asOfUs = typeof options.asOf === 'string' ? parseInstantUs(options.asOf) : undefined;
      const metricsAt =
        typeof options.metrics === 'string' ? parseHostPort(options.metrics, '--metrics') : undefined;
      if (options.background === true) {
        const logFile =
          typeof options.logFile === 'string'
            ? resolve(options.logFile)
            : join(tmpdir(), `strata-mount-${basename(mountPath)}.log`);
        await detach(logFile, asOfUs);
        return;
      }
      const signals = catchStopSignals(stderrLog);
      // The background child serves the metrics: it is the process that mounts.
      const metrics = metricsAt ? await ProcessMetrics.start(metricsAt) : undefined;
      try {
        const volume = await mountRemote({
          metaAddress,
          volumeName,
          mountpoint: mountPath,
          secretFile: typeof options.secretFile === 'string' ? options.secretFile : undefined,
          config,
          log: stderrLog,
          asOfUs,
        });
        metrics?.addMount(volume.stats);
        const past =
          asOfUs === undefined
            ? ''
            : ` as of ${new Date(Math.floor(asOfUs / 1000)).toISOString()}, read-only`;
        stderrLog(
          `volume "${volumeName}" from ${metaAddress} mounted at ${volume.mountpoint}${past}${metrics ? `, metrics on http://${metrics.address}/metrics` : ''}`,
        );
        signalReady();
        await runUntilSignal(volume, stderrLog, signals);
      } finally {
        signals.release();
        await metrics?.close();
      }
    },
  );
}

/**
 * Re-runs this command without --background and returns once the child reports the mount is up.
 * An --as-of instant is handed over as parsed: "2h ago" read again later would be another instant.
 */
async function detach(logFile: string, asOfUs: number | undefined): Promise<void> {
  const args: string[] = [];
  const given = process.argv.slice(1);
  for (let i = 0; i < given.length; i++) {
    const arg = given[i]!;
    if (arg === '--background') continue;
    if (asOfUs !== undefined && (arg === '--as-of' || arg.startsWith('--as-of='))) {
      if (arg === '--as-of') i++;
      args.push('--as-of', `@${asOfUs / 1e6}`);
      continue;
    }
    args.push(arg);
  }
  const log = openSync(logFile, 'a');
  const child = spawn(process.execPath, args, {
    detached: true,
    stdio: ['ignore', log, log, 'pipe'],
    env: { ...process.env, [READY_FD_ENV]: '3' },
  });
  const readyPipe = child.stdio[3];
  if (readyPipe === null || readyPipe === undefined) throw new Error('could not create the readiness pipe');
  const outcome = await new Promise<'ready' | number>((done) => {
    let text = '';
    readyPipe.on('data', (chunk: Buffer) => {
      text += chunk.toString();
      if (text.includes('ready')) done('ready');
    });
    child.once('exit', (code) => done(code ?? 1));
  });
  if (outcome !== 'ready') {
    const tail = readFileSync(logFile, 'utf8').trim().split('\n').slice(-1)[0] ?? '';
    throw new Error(`the mount process exited with code ${outcome} before the mount was ready: ${tail}`);
  }
  readyPipe.destroy();
  child.unref();
  process.stdout.write(`mounted in the background (pid ${child.pid}); log: ${logFile}\n`);
}

function signalReady(): void {
  const fd = Number(process.env[READY_FD_ENV]);
  if (!Number.isInteger(fd) || fd <= 2) return;
  delete process.env[READY_FD_ENV];
  try {
    // A pipe from the parent: write and close, so the parent can exit and we keep running.
    writeSync(fd, 'ready\n');
    closeSync(fd);
  } catch {
    // The parent gave up waiting; the mount is up regardless.
  }
}
