import { registerGcMetrics, registerMountMetrics, type GcTotals, type MountStats } from './mount-metrics.js';
import { registerEngineMetrics, type EngineCounts } from './engine-metrics.js';
import { MetricsRegistry } from './registry.js';
import { registerMetaServerMetrics, type RpcServerCounts } from './rpc-metrics.js';
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

  /** A metadata server's engine counters (changes, commits, commit latency), read at each scrape. */
  addMetaEngine(read: () => EngineCounts | undefined): void {
    registerEngineMetrics(this.registry, read);
  }

  close(): Promise<void> {
    return this.server.close();
  }
}
