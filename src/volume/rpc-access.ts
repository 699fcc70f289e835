import { connectMeta, type MetaClient, type MetaInvalidation } from '../meta/client/index.js';
import { DEFAULT_CALL_TIMEOUT_MS, RpcCallStats, type RpcServerStats } from '../rpc/index.js';
import { META_METHODS, startMetaServer } from '../meta/server/index.js';
import type { MetaApi } from '../meta/index.js';
import type { LocalMeta } from './meta-access.js';

/** Serves an in-process metadata service over RPC, authenticated with the volume's secret. */
export async function serveLocalMeta(
  local: LocalMeta,
  listen: { host: string; port: number },
  log: (message: string) => void,
): Promise<LocalMetaServer> {
  const host = listen.host.includes(':') ? `[${listen.host}]` : listen.host;
  const server = await startMetaServer({
    service: local.service,
    listen: `${host}:${listen.port}`,
    secret: await local.service.volumeSecret(),
    // Counted always (a few increments a call; nothing without RPC clients): --metrics of
    // `strata up` is decided in the CLI, after the server started.
    countTraffic: true,
    onEvent: (event) => {
      if (event.type === 'internal-error') {
        log(
          `metadata server: internal error in ${event.method}: ${(event.error as Error).stack ?? String(event.error)}`,
        );
      } else if (event.type === 'rejected') {
        log(`metadata server: rejected a client from ${event.remote}: ${event.reason}`);
      }
    },
  });
  return {
    address: server.address,
    stats: server.stats,
    meta: noticingChanges(local.meta, (method, args, reply) => server.noteLocalChange(method, args, reply)),
    onInvalidation: (listener) => server.onLocalInvalidation(listener),
    close: () => server.close(),
  };
}

export interface LocalMetaServer {
  address: string;
  /** The RPC clients' traffic (calls, errors, latency, connections), for --metrics. */
  stats: RpcServerStats | null;
  /** The service for a mount in this process: its changes are pushed to the RPC clients. */
  meta: MetaApi;
  /** What the RPC clients change, for that mount's kernel caches. */
  onInvalidation(listener: (invalidation: MetaInvalidation) => void): void;
  close(): Promise<void>;
}

/** `meta`, calling `note` with each call that succeeded and its reply (the server ignores the reads). */
function noticingChanges(
  meta: MetaApi,
  note: (method: string, args: unknown[], reply: unknown) => void,
): MetaApi {
  const wrapped = new Map<PropertyKey, unknown>();
  return new Proxy(meta, {
    get(target, property) {
      const value: unknown = Reflect.get(target, property, target);
      if (typeof value !== 'function') return value;
      let wrapper = wrapped.get(property);
      if (wrapper === undefined) {
        const method = String(property);
        const fn = value as (...args: unknown[]) => unknown;
        wrapper = (...args: unknown[]): unknown => {
          const result = fn.apply(target, args);
          if (!(result instanceof Promise)) return result;
          return result.then((reply: unknown) => {
            note(method, args, reply);
            return reply;
          });
        };
        wrapped.set(property, wrapper);
      }
      return wrapper;
    },
  });
}

/** Connects to `strata meta serve` and checks that it serves the volume asked for. */
export async function connectRemoteMeta(
  address: string,
  volumeName: string,
  secret: string,
  _log: (message: string) => void,
  retryForMs = 0,
): Promise<{ meta: MetaClient; callStats: RpcCallStats; close(): Promise<void> }> {
  // A mount keeps its kernel caches coherent with what other clients change. It waits out a
  // server restart or failover for `retryForMs` (calls get at least that long before they time out).
  // Its calls are timed by method for --metrics (strata_meta_client_*): two clock reads a call.
  const callStats = new RpcCallStats(Object.keys(META_METHODS));
  const client = await connectMeta({
    stats: callStats,
    address,
    secret,
    invalidations: true,
    retryForMs,
    timeoutMs: Math.max(DEFAULT_CALL_TIMEOUT_MS, retryForMs),
  });
  try {
    const volume = await client.volume();
    if (volume.name !== volumeName) {
      throw new Error(
        `${address} serves volume "${volume.name}", not "${volumeName}"; mount ${address}/${volume.name}`,
      );
    }
  } catch (err) {
    await client.close();
    throw err;
  }
  return { meta: client, callStats, close: () => client.close() };
}
