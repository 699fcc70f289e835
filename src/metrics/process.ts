import { registerGcMetrics, registerMountMetrics, type GcTotals, type MountStats } from './mount-metrics.js';
import { MetricsRegistry } from './registry.js';
import {
  registerCallMetrics,
  registerMetaServerMetrics,
  type CallCounts,
  type RpcServerCounts,
} from './rpc-metrics.js';
import { startMetricsServer, type MetricsServer } from './server.js';

/**
 * The `--metrics HOST:PORT` of a daemon: its registry and the HTTP server that exposes it.
 * Started before the daemon's work, so a port in use fails the command before it mounts;
 * what the daemon counts is added once it exists.
 */
export class ProcessMetrics {
  private constructor(
    readonly registry: MetricsRegistry,
    private readonly server: MetricsServer,
  ) {}

  static async start(listen: { host: string; port: number }): Promise<ProcessMetrics> {
    const registry = new MetricsRegistry();
    return new ProcessMetrics(registry, await startMetricsServer(registry, listen));
  }

  /** HOST:PORT the /metrics endpoint is served on. */
  get address(): string {
    return this.server.address;
  }

  addMount(read: () => MountStats): void {
    registerMountMetrics(this.registry, read);
  }

  addGc(totals: GcTotals): void {
    registerGcMetrics(this.registry, totals);
  }

  /** A metadata server's RPC traffic; `engineThread` says whether its latency includes the thread hop. */
  addMetaServer(counts: RpcServerCounts, options: { engineThread: boolean }): void {
    registerMetaServerMetrics(this.registry, counts, options);
  }

  /** A mount's metadata calls, timed in the client from sent to answered (retries included). */
  addMetaClient(counts: CallCounts): void {
    registerCallMetrics(
      this.registry,
      'strata_meta_client',
      counts,
      'metadata call latency by method as the mount sees it, from the call to its answer (retries and waits for a connection included)',
    );
  }

  close(): Promise<void> {
    return this.server.close();
  }
}
