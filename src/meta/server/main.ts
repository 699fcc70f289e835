import { readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { isMainThread, workerData } from 'node:worker_threads';
import { fsError, isFsError, runOnServingThread, takeRelayedEvents } from '../../common/index.js';
import { openMetaService, type MetaApi } from '../index.js';
import { startEngineTask, type EngineTaskSpec } from './engine-task.js';
import { engineStatsOf, type EngineStats } from './engine-stats.js';
import { startMetaServer, type MetaServer } from './server.js';
import { withLocalReads } from './local-reads.js';
import { openThreadedMetaService } from './worker-service.js';

export interface MetaServerProcessOptions {
  /** e.g. `sqlite:/var/lib/strata/vol.db` */
  engineUrl: string;
  /** `HOST:PORT` or a Unix socket path. */
  listen: string;
  /** A file holding the secret clients must prove; default: the volume's own secret. */
  secretFile?: string;
  tlsCertFile?: string;
  tlsKeyFile?: string;
  /** Benchmarks only: keep no history. */
  history: boolean;
  /**
   * Every commit durable on its own (`--durable-commits`: SQLite synchronous=FULL) or not
   * (`--no-durable`: PostgreSQL synchronous_commit off); default: the engine's own (SQLite:
   * commits survive a process crash, clients' sync() makes them survive a power loss).
   */
  durable: boolean | undefined;
  /**
   * Run the service on its own thread (the default), so engine statements, commits and
   * checkpoints never delay the sockets: under load it cut the serving thread's event-loop
   * p99 about tenfold for writes (bench/RESULTS.md, Metadata RPC).
   */
  engineThread: boolean;
  /** With the engine thread: answer short reads on the serving thread (local-reads.ts). */
  localReads: boolean;
  /** Niceness of the engine thread (EngineWorkerOptions.nice); default DEFAULT_ENGINE_THREAD_NICE. */
  engineThreadNice?: number;
  /** A mount without a heartbeat this long loses its session (default 60 s, MetaServiceOptions). */
  sessionTimeoutMs?: number;
  /** How long one turn of the serving loop keeps starting calls (RpcServerOptions.turnBudgetMs). */
  turnBudgetMs?: number;
  /** Count the RPC traffic for metrics (MetaServerOptions.countTraffic); returned as `stats`. */
  countTraffic?: boolean;
  /** Work run through the server's own engine, on whichever thread owns it (engine-task.ts). */
  engineTask?: EngineTaskSpec;
}

/**
 * Under 16 connections of creates, nice 5 halved the serving thread's wait for a CPU (per
 * wake-up 285-456 -> 174-205 µs) and its loop p99 went 8.4-9.3 -> 6.4-6.8 ms, at the same create
 * rate (bench/RESULTS.md, Metadata RPC, session 4). The engine thread still takes every CPU
 * nobody else wants; it only yields first.
 */
export const DEFAULT_ENGINE_THREAD_NICE = 5;

export const DEFAULT_META_LISTEN = '127.0.0.1:7070';

const USAGE =
  'usage: meta-server --engine sqlite:PATH [--listen HOST:PORT|SOCKET] [--secret-file PATH] ' +
  '[--tls-cert PATH --tls-key PATH] [--no-engine-thread] [--engine-thread-nice N] [--turn-budget-ms MS] [--no-local-reads] [--no-history] [--durable-commits | --no-durable]';

export function parseMetaServerArgs(argv: string[]): MetaServerProcessOptions {
  const { values } = parseArgs({
    args: argv,
    options: {
      engine: { type: 'string' },
      listen: { type: 'string', default: DEFAULT_META_LISTEN },
      'secret-file': { type: 'string' },
      'tls-cert': { type: 'string' },
      'tls-key': { type: 'string' },
      'no-history': { type: 'boolean', default: false },
      'no-durable': { type: 'boolean', default: false },
      'durable-commits': { type: 'boolean', default: false },
      'no-engine-thread': { type: 'boolean', default: false },
      'no-local-reads': { type: 'boolean', default: false },
      'engine-thread-nice': { type: 'string' },
      'turn-budget-ms': { type: 'string' },
    },
    strict: true,
  });
  if (!values.engine)
    throw fsError.EINVAL(`--engine is required (e.g. --engine sqlite:/var/lib/strata/vol.db); ${USAGE}`);
  if (Boolean(values['tls-cert']) !== Boolean(values['tls-key'])) {
    throw fsError.EINVAL('--tls-cert and --tls-key go together');
  }
  if (values['durable-commits'] && values['no-durable']) {
    throw fsError.EINVAL('--durable-commits and --no-durable contradict each other; pass one');
  }
  const nice = values['engine-thread-nice'];
  if (nice !== undefined && !/^([0-9]|1[0-9])$/.test(nice)) {
    throw fsError.EINVAL(
      `--engine-thread-nice takes 0-19 (higher: the engine thread yields more), not "${nice}"`,
    );
  }
  const turnBudget = values['turn-budget-ms'];
  if (turnBudget !== undefined && !(Number(turnBudget) > 0)) {
    throw fsError.EINVAL(`--turn-budget-ms takes a positive number of milliseconds, not "${turnBudget}"`);
  }
  return {
    engineUrl: values.engine,
    listen: values.listen,
    secretFile: values['secret-file'],
    tlsCertFile: values['tls-cert'],
    tlsKeyFile: values['tls-key'],
    history: !values['no-history'],
    durable: values['durable-commits'] ? true : values['no-durable'] ? false : undefined,
    engineThread: !values['no-engine-thread'],
    localReads: !values['no-local-reads'],
    engineThreadNice: nice === undefined ? undefined : Number(nice),
    turnBudgetMs: turnBudget === undefined ? undefined : Number(turnBudget),
  };
}

/**
 * Runs a metadata server as a process (what `strata meta serve` runs): opens the engine, serves
 * it until SIGTERM/SIGINT, then closes the server and the engine cleanly. Prints one line with
 * the address once clients may connect.
 */
export async function runMetaServerProcess(
  argv: string[],
): Promise<{ address: string; stop(): Promise<void> }> {
  return startMetaServerProcess(parseMetaServerArgs(argv));
}

/** The same with options already parsed (`strata meta serve` parses its own flags). */
export async function startMetaServerProcess(options: MetaServerProcessOptions): Promise<{
  address: string;
  stats: MetaServer['stats'];
  /** The engine's counters (with countTraffic; undefined for an engine that keeps none). */
  engineStats: () => EngineStats | undefined;
  stop(): Promise<void>;
}> {
  const engine = {
    engineUrl: options.engineUrl,
    history: options.history,
    durable: options.durable,
    sessionTimeoutMs: options.sessionTimeoutMs,
  };
  let service: MetaApi;
  let closeService: () => Promise<void>;
  let volumeSecret: string;
  let engineStats: () => EngineStats | undefined = () => undefined;
  if (options.engineThread) {
    const threaded = await openThreadedMetaService({
      ...engine,
      nice: options.engineThreadNice ?? DEFAULT_ENGINE_THREAD_NICE,
      engineStats: options.countTraffic,
      task: options.engineTask && { moduleUrl: options.engineTask.moduleUrl, data: options.engineTask.data },
      onTaskMessage: options.engineTask?.onMessage,
      // Changes' results only become RESULT frames here: they stay the bytes they were stored as.
      encodedReplies: true,
      // A server whose engine is gone must not linger answering EIO: exit, let the supervisor restart it.
      onFailure: (error) => {
        process.stderr.write(`metadata server: ${error.message}; exiting\n`);
        process.exit(1);
      },
    });
    const local = options.localReads
      ? await withLocalReads(threaded, options.engineUrl, threaded.settings).catch(async (error: unknown) => {
          await threaded.close();
          throw error;
        })
      : undefined;
    const closeAll = async (): Promise<void> => {
      await local?.close();
      await threaded.close();
    };
    [service, closeService, volumeSecret] = [local?.api ?? threaded, closeAll, threaded.secret];
    engineStats = () => threaded.engineStats();
  } else {
    const local = await openMetaService({ ...engine, background: true });
    const spec = options.engineTask;
    const task = spec
      ? await startEngineTask(local, spec, (message) => spec.onMessage(message)).catch(
          async (error: unknown) => {
            await local.close();
            throw error;
          },
        )
      : undefined;
    const closeAll = async (): Promise<void> => {
      await task?.stop().catch(() => undefined);
      await local.close();
    };
    [service, closeService, volumeSecret] = [local, closeAll, await local.volumeSecret()];
    engineStats = () => engineStatsOf(local.engine);
  }
  let server;
  try {
    const secret = options.secretFile ? readFileSync(options.secretFile, 'utf8').trim() : volumeSecret;
    const tls =
      options.tlsCertFile && options.tlsKeyFile
        ? { cert: readFileSync(options.tlsCertFile), key: readFileSync(options.tlsKeyFile) }
        : undefined;
    server = await startMetaServer({
      service,
      listen: options.listen,
      secret,
      tls,
      turnBudgetMs: options.turnBudgetMs,
      countTraffic: options.countTraffic,
      onEvent: (event) => {
        if (event.type === 'internal-error') {
          const error = event.error as Error;
          process.stderr.write(
            `metadata server: internal error in ${event.method}: ${error.stack ?? String(error)}\n`,
          );
        }
      },
    });
  } catch (error) {
    await closeService();
    throw error;
  }
  const volume = await service.volume();
  process.stdout.write(
    `metadata server for volume "${volume.name}" listening on ${server.address}` +
      `${options.tlsCertFile ? ' (TLS)' : ''}${options.engineThread ? ' (engine thread)' : ''}\n`,
  );
  let stopping: Promise<void> | null = null;
  const running = server;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      process.off('SIGTERM', onSignal);
      process.off('SIGINT', onSignal);
      await running.close();
      await closeService();
    })();
    return stopping;
  };
  const onSignal = (): void => {
    void stop();
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  return { address: server.address, stats: server.stats, engineStats, stop };
}

// Run directly: `node dist/src/meta/server/main.js --engine sqlite:PATH --listen HOST:PORT`, on a
// serving thread as `strata meta serve` runs (SERVING_YOUNG_GENERATION_MB).
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  if (isMainThread) {
    process.exit(await runOnServingThread(new URL(import.meta.url), process.argv.slice(2)));
  } else {
    takeRelayedEvents();
    runMetaServerProcess(workerData as string[]).catch((error: unknown) => {
      process.stderr.write(
        `metadata server: ${isFsError(error) || error instanceof Error ? error.message : String(error)}\n`,
      );
      process.exit(1);
    });
  }
}
