import type tls from 'node:tls';
import {
  startRpcServer,
  type ReplayOptions,
  type RpcSecret,
  type RpcServer,
  type RpcServerEvent,
  type CallInfo,
  RpcServerStats,
} from '../../rpc/index.js';
import type { MetaApi } from '../api.js';
import { directRunOf, forwardNumberedCall, runNumberedCall } from '../call-outcomes.js';
import { MetaService } from '../service.js';
import { INVALIDATION_TOPIC, decodeInvalidation, type MetaInvalidation } from '../invalidation.js';
import { InvalidationPusher, followOtherServers } from './invalidations.js';
import { META_METHOD_NAMES, dispatchMetaCall } from './methods.js';

export interface MetaServerOptions {
  /** Any MetaApi implementation (the MetaService over an engine, or a test double). */
  service: MetaApi;
  /** `HOST:PORT` or a Unix socket path. */
  listen: string;
  /** The volume's secret: clients must prove they hold it. */
  secret: RpcSecret;
  /** Serve TLS (TCP only). */
  tls?: tls.TlsOptions;
  maxFrameBytes?: number;
  maxInFlightPerConnection?: number;
  /** RpcServerOptions.turnBudgetMs: how long one turn of the serving loop keeps starting calls. */
  turnBudgetMs?: number;
  /** How long results of mutating calls stay replayable for retries (default 5 min, 200,000 calls). */
  replay?: ReplayOptions;
  /** Connection events and internal errors, e.g. to log them. */
  onEvent?: (event: RpcServerEvent) => void;
  /** Called after each call with its duration and errno (0 on success), e.g. for metrics. */
  onCall?: (method: string, durationMs: number, errno: number) => void;
  /**
   * Count the RPC traffic in `MetaServer.stats` (calls, latency and errors by method,
   * connections, bytes, pushes), for metrics. Default false: the serving loop counts nothing.
   */
  countTraffic?: boolean;
  /**
   * Push cache invalidations to clients (default true): what each change made stale, from this
   * server's calls and, on PostgreSQL, from the other servers' change feed (invalidations.ts).
   */
  invalidations?: boolean;
}

export interface MetaServer {
  /** The address clients should use (with the real port when listening on port 0). */
  readonly address: string;
  readonly connectionCount: number;
  /** What the serving loop counted, when started with `countTraffic` (null otherwise). */
  readonly stats: RpcServerStats | null;
  /**
   * A change made in this process without RPC (the `strata up` mount calling its service
   * directly), with its result: its invalidations are pushed to every subscribed client.
   */
  noteLocalChange(method: string, args: unknown[], result?: unknown): void;
  /** Invalidations from the clients' changes (and other servers'), for a mount in this process. */
  onLocalInvalidation(listener: (invalidation: MetaInvalidation) => void): void;
  /** Stops listening and drops the connections; the service stays open (its owner closes it). */
  close(): Promise<void>;
}

/** The client id under which this process's own changes are batched (no RPC client has it). */
const LOCAL_CLIENT = '\u0000local';

/**
 * Serves a MetaApi over the RPC layer. Arguments are checked against the method table before
 * the service sees them; numbered (mutating) calls are applied at most once across retries.
 */
export async function startMetaServer(options: MetaServerOptions): Promise<MetaServer> {
  const { service, onCall } = options;
  // One series per method, numbered as in META_METHOD_NAMES: the RPC layer's number for a call
  // is also its place in the method table.
  const stats = options.countTraffic === true ? new RpcServerStats(META_METHOD_NAMES) : null;
  const dispatch = onCall
    ? (method: string, args: unknown[]): Promise<unknown> => timedCall(service, method, args, onCall)
    : (method: string, args: unknown[], call: CallInfo): Promise<unknown> =>
        dispatchMetaCall(service, method, args, call.methodIndex);
  // A service in this process is asked for a stored outcome here; a threaded one gets the call's
  // number with the call (worker-service.ts) and looks on its own thread.
  const engine = service instanceof MetaService ? service.engine : undefined;
  const direct = service instanceof MetaService ? directRunOf(service) : undefined;
  // Any other service (the engine thread, local-reads.ts in front of it) passes each change on
  // before its first await: the key goes with it synchronously (forwardNumberedCall).
  const forwards = !(service instanceof MetaService);
  let pusher: InvalidationPusher | null = null;
  const localListeners: ((invalidation: MetaInvalidation) => void)[] = [];
  // Not an async function: under creates its frame and awaits were the serving thread's largest
  // allocation per call (and garbage collection its longest pauses).
  const numbered = (method: string, args: unknown[], call: CallInfo, seq: number): Promise<unknown> => {
    const key = { clientId: call.clientId, seq, isRetry: call.isRetry, method };
    const run = (): Promise<unknown> => dispatch(method, args, call);
    const result = forwards ? forwardNumberedCall(key, run) : runNumberedCall(engine, key, run, direct);
    const notify = pusher;
    if (notify === null) return result;
    return result.then((value) => {
      notify.noteCall(call.clientId, method, args, value);
      return value;
    });
  };
  // Reads (unnumbered) change nothing: straight to the service.
  const handler = (method: string, args: unknown[], call: CallInfo): Promise<unknown> =>
    call.seq === undefined ? dispatch(method, args, call) : numbered(method, args, call, call.seq);
  const rpc: RpcServer = await startRpcServer({
    listen: options.listen,
    secret: options.secret,
    tls: options.tls,
    handler,
    maxFrameBytes: options.maxFrameBytes,
    maxInFlightPerConnection: options.maxInFlightPerConnection,
    turnBudgetMs: options.turnBudgetMs,
    replay: options.replay ?? {},
    onEvent: options.onEvent,
    stats: stats ?? undefined,
  });
  let stopFollowing: (() => Promise<void>) | undefined;
  if (options.invalidations !== false) {
    const active = new InvalidationPusher((topic, value, except) => {
      rpc.push(topic, value, except);
      if (except === LOCAL_CLIENT || localListeners.length === 0 || topic !== INVALIDATION_TOPIC) return;
      const invalidation = decodeInvalidation(value);
      if (invalidation) for (const listener of localListeners) listener(invalidation);
    });
    try {
      stopFollowing = await followOtherServers(service, (change) => active.noteRemote(change));
    } catch (error) {
      await rpc.close();
      throw error;
    }
    pusher = active;
  }
  return {
    address: rpc.address,
    get connectionCount() {
      return rpc.connectionCount;
    },
    stats,
    noteLocalChange: (method, args, result) => pusher?.noteCall(LOCAL_CLIENT, method, args, result),
    onLocalInvalidation: (listener) => {
      localListeners.push(listener);
    },
    close: async () => {
      await stopFollowing?.();
      await rpc.close();
    },
  };
}

async function timedCall(
  service: MetaApi,
  method: string,
  args: unknown[],
  onCall: (method: string, durationMs: number, errno: number) => void,
): Promise<unknown> {
  const startMs = performance.now();
  try {
    const result = await dispatchMetaCall(service, method, args);
    onCall(method, performance.now() - startMs, 0);
    return result;
  } catch (error) {
    const errno = (error as { errno?: unknown }).errno;
    onCall(method, performance.now() - startMs, typeof errno === 'number' ? errno : -1);
    throw error;
  }
}
