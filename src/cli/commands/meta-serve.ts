import { isMainThread } from 'node:worker_threads';
import type { Command } from 'commander';
import { parseDurationMs, runOnServingThread } from '../../common/index.js';
import { engineScheme, openMetaService } from '../../meta/index.js';
import { startMetaServerProcess } from '../../meta/server/index.js';
import { addGcPass, emptyGcTotals, ProcessMetrics, type GcTotals } from '../../metrics/index.js';
import { backgroundGcEnv } from '../../ops/index.js';
import { claimEngine, serverGcTask, startServiceGc } from '../../volume/index.js';
import { ServingThreadExit, UsageError, checkEngineUrl, parseHostPort } from '../options.js';
import { stderrLog } from '../run.js';

export function registerMetaServe(program: Command, argv: readonly string[]): void {
  const meta = program.command('meta').description('metadata service commands');
  meta
    .command('serve')
    .description(
      'serve the volume of a metadata engine over RPC (clients authenticate with its secret), in the foreground; SIGINT/SIGTERM stop it',
    )
    .requiredOption(
      '--engine <URL>',
      'metadata engine, e.g. sqlite:/var/lib/strata/meta.db or postgres://...',
    )
    .requiredOption('--listen <HOST:PORT>', 'where clients connect, e.g. 127.0.0.1:7070')
    .option('--tls-cert <PATH>', 'serve TLS with this certificate (PEM); needs --tls-key')
    .option('--tls-key <PATH>', 'the private key of --tls-cert (PEM)')
    .option(
      '--durable-commits',
      'make every commit durable on its own (SQLite synchronous=FULL); by default commits survive a crash of the server and clients fsync makes them survive a power loss',
    )
    .option(
      '--engine-thread-nice <N>',
      'niceness 0-19 of the engine thread alone, so the serving thread runs first when both wait for a CPU (default 5)',
    )
    .option(
      '--session-timeout <DURATION>',
      'end the session of a mount not heard from for this long, releasing its locks (default 60s; at least 3 heartbeats of its mounts)',
    )
    .option('--metrics <HOST:PORT>', 'serve Prometheus metrics at http://HOST:PORT/metrics (default: off)')
    .option('--no-engine-thread', 'run the engine on the serving thread (for comparisons)')
    .option('--no-local-reads', 'send short reads to the engine thread too (for comparisons)')
    .action(async (options: Record<string, unknown>) => {
      if (isMainThread) {
        // The whole command runs again on a serving thread, whose small young generation keeps
        // the loop's garbage-collection pauses short under load (SERVING_YOUNG_GENERATION_MB).
        const code = await runOnServingThread(SERVING_ENTRY, argv);
        if (code !== 0) throw new ServingThreadExit(code);
        return;
      }
      const { host, port } = parseHostPort(String(options.listen), '--listen');
      const metricsAt =
        typeof options.metrics === 'string' ? parseHostPort(options.metrics, '--metrics') : undefined;
      if (Boolean(options.tlsCert) !== Boolean(options.tlsKey)) {
        throw new UsageError('--tls-cert and --tls-key go together: give both or neither');
      }
      const nice = options.engineThreadNice === undefined ? undefined : String(options.engineThreadNice);
      if (nice !== undefined && !/^(1?[0-9])$/.test(nice)) {
        throw new UsageError(
          `--engine-thread-nice takes a whole number 0-19 (higher: the engine thread yields more), not "${nice}"`,
        );
      }
      let sessionTimeoutMs: number | undefined;
      if (options.sessionTimeout !== undefined) {
        try {
          sessionTimeoutMs = parseDurationMs(String(options.sessionTimeout), '--session-timeout');
        } catch (error) {
          throw new UsageError((error as Error).message);
        }
        if (sessionTimeoutMs < 1000) {
          throw new UsageError(
            `--session-timeout must be at least 1s (mounts heartbeat every 10s by default), not "${String(options.sessionTimeout)}"`,
          );
        }
      }
      // Started first, so a port in use fails before the engine opens; the server's RPC
      // counters and the GC's are added once they exist.
      const metrics = metricsAt ? await ProcessMetrics.start(metricsAt) : undefined;
      const engineUrl = checkEngineUrl(String(options.engine));
      const advice = 'Stop it first, or mount the volume it serves (strata up --listen, then strata mount)';
      const claim = await claimEngine(engineUrl, advice).catch(async (error: unknown) => {
        await metrics?.close();
        throw error;
      });
      try {
        const gcTotals = emptyGcTotals();
        // SQLite takes one writer: the collector runs through the server's engine, on its thread.
        const sqliteGc = engineScheme(engineUrl) === 'sqlite' ? serverGcTask(gcTotals, stderrLog) : undefined;
        // The same server process as the benchmarks measure: engine on its own thread, short
        // reads answered on the serving thread, cache invalidations pushed to clients.
        const server = await startMetaServerProcess({
          engineUrl,
          listen: `${host.includes(':') ? `[${host}]` : host}:${port}`,
          tlsCertFile: options.tlsCert === undefined ? undefined : String(options.tlsCert),
          tlsKeyFile: options.tlsKey === undefined ? undefined : String(options.tlsKey),
          history: true,
          durable: options.durableCommits === true ? true : undefined,
          engineThread: options.engineThread !== false,
          engineThreadNice: nice === undefined ? undefined : Number(nice),
          localReads: options.localReads !== false,
          sessionTimeoutMs,
          countTraffic: metricsAt !== undefined,
          engineTask: sqliteGc,
        });
        const gc = sqliteGc
          ? undefined
          : await startPostgresGc(engineUrl, gcTotals).catch(async (error: unknown) => {
              await server.stop();
              throw error;
            });
        if (sqliteGc || gc) metrics?.addGc(gcTotals);
        if (metrics && server.stats) {
          metrics.addMetaServer(server.stats, { engineThread: options.engineThread !== false });
          metrics.addMetaEngine(server.engineStats);
        }
        if (metrics) stderrLog(`metrics on http://${metrics.address}/metrics`);
        const signal = await new Promise<string>((resolve) => {
          process.once('SIGINT', () => resolve('SIGINT'));
          process.once('SIGTERM', () => resolve('SIGTERM'));
        });
        stderrLog(`received ${signal}: stopping the metadata service`);
        await gc?.stop();
        await server.stop();
      } finally {
        await claim.release();
        await metrics?.close();
      }
    });
}

const SERVING_ENTRY = new URL('../serving-entry.js', import.meta.url);

/**
 * The server collects garbage in the background (src/ops/gc-background.ts). PostgreSQL takes
 * several writers, so there the collector has an engine of its own. A SQLite volume takes one
 * writer, the server's engine: there the collector runs as an engine task beside the calls the
 * server serves (src/volume/server-gc.ts), and `strata gc` is refused while the server runs.
 */
async function startPostgresGc(
  engineUrl: string,
  totals: GcTotals,
): Promise<{ stop(): Promise<void> } | undefined> {
  if (engineScheme(engineUrl) !== 'postgres') return undefined;
  const service = await openMetaService({ engineUrl, background: false });
  try {
    const collector = await startServiceGc(service, {
      timing: backgroundGcEnv(),
      log: stderrLog,
      onPass: (report) => addGcPass(totals, report),
    });
    if (collector === undefined) {
      await service.close();
      return undefined;
    }
    return {
      stop: async () => {
        await collector.stop();
        await service.close();
      },
    };
  } catch (error) {
    await service.close();
    throw error;
  }
}
