import { errnoName, type LatencyHistograms } from '../common/index.js';
import type { LabelledHistogram, LabelledValue, MetricsRegistry } from './registry.js';

/**
 * Calls by method as the RPC layer counts them (the shape of src/rpc's RpcCallStats, restated
 * here because this folder sits below it): a latency histogram per method, errors by errno.
 */
export interface CallCounts {
  /** Method names by series number. */
  readonly methodNames: readonly string[];
  readonly latency: LatencyHistograms;
  errorCounts(): Iterable<{ method: string; errno: number; count: number }>;
}

/** What a metadata server's serving loop counts besides its calls (RpcServerStats). */
export interface RpcServerCounts extends CallCounts {
  readonly connectionsOpened: number;
  readonly connectionsClosed: number;
  readonly connectionsRejected: number;
  readonly receivedBytes: number;
  readonly sentBytes: number;
  readonly inFlightCalls: number;
  readonly pushesSent: number;
}

/**
 * Registers `PREFIX_calls_total`, `PREFIX_call_errors_total` and `PREFIX_call_duration_seconds`
 * (docs/cli.md, "Metrics"). Methods never called are left out.
 */
export function registerCallMetrics(
  metrics: MetricsRegistry,
  prefix: string,
  read: () => CallCounts | undefined,
  durationHelp: string,
): void {
  metrics.labelledCounter(`${prefix}_calls_total`, 'calls answered, by method', ['method'], () => {
    const out: LabelledValue<'method'>[] = [];
    const counts = read();
    if (counts === undefined) return out;
    const { methodNames, latency } = counts;
    for (let series = 0; series < methodNames.length; series++) {
      const calls = latency.count(series);
      if (calls > 0) out.push({ labels: { method: methodNames[series] }, value: calls });
    }
    return out;
  });
  metrics.labelledCounter(
    `${prefix}_call_errors_total`,
    'calls answered with an error, by method and errno (ENOENT of a lookup included)',
    ['method', 'errno'],
    () => {
      const out: LabelledValue<'method' | 'errno'>[] = [];
      for (const { method, errno, count } of read()?.errorCounts() ?? []) {
        out.push({ labels: { method, errno: errno === 0 ? 'unknown' : errnoName(errno) }, value: count });
      }
      return out;
    },
  );
  metrics.latencyHistogram(`${prefix}_call_duration_seconds`, durationHelp, ['method'], () => {
    const out: LabelledHistogram<'method'>[] = [];
    const counts = read();
    if (counts === undefined) return out;
    const { methodNames, latency } = counts;
    for (let series = 0; series < methodNames.length; series++) {
      if (latency.count(series) > 0) {
        out.push({ labels: { method: methodNames[series] }, histograms: latency, series });
      }
    }
    return out;
  });
}

/** Registers a metadata server's RPC metrics (docs/cli.md, "Metrics"); read at every scrape. */
export function registerMetaServerMetrics(
  metrics: MetricsRegistry,
  counts: RpcServerCounts,
  options: { engineThread: boolean },
): void {
  registerCallMetrics(
    metrics,
    'strata_meta_rpc',
    () => counts,
    'server-side call latency by method, from the request frame decoded to the reply written' +
      (options.engineThread
        ? ' (calls the engine thread answers include the round trip to it; waiting behind a connection bound included)'
        : ' (waiting behind a connection bound included)'),
  );
  metrics.gauge(
    'strata_meta_rpc_connections',
    'client connections open now (authenticated or still in their handshake)',
    () => counts.connectionsOpened - counts.connectionsClosed,
  );
  metrics.counter(
    'strata_meta_rpc_connections_total',
    'client connections accepted since start',
    () => counts.connectionsOpened,
  );
  metrics.counter(
    'strata_meta_rpc_rejected_connections_total',
    'connections refused: failed authentication, a bad handshake or a broken stream',
    () => counts.connectionsRejected,
  );
  metrics.counter(
    'strata_meta_rpc_received_bytes_total',
    'bytes read from clients',
    () => counts.receivedBytes,
  );
  metrics.counter('strata_meta_rpc_sent_bytes_total', 'bytes written to clients', () => counts.sentBytes);
  metrics.gauge(
    'strata_meta_rpc_calls_in_flight',
    'calls started and not answered yet',
    () => counts.inFlightCalls,
  );
  metrics.counter(
    'strata_meta_invalidation_pushes_total',
    'cache invalidations pushed to clients, one per client connection reached',
    () => counts.pushesSent,
  );
}
