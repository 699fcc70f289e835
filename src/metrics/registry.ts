import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';

/** One sample of a labelled metric: its label values and its value. */
export interface LabelledValue<L extends string> {
  labels: Record<L, string>;
  value: number;
}

/**
 * The metrics of one process: prom-client's default process metrics (CPU, resident memory,
 * heap, event-loop lag, open descriptors) plus metrics read from the process's own counters
 * at scrape time. Nothing here runs between scrapes: every value comes from a `read` callback
 * over stats the code keeps anyway, so the hot paths pay nothing for being observed.
 */
export class MetricsRegistry {
  readonly registry = new Registry();

  constructor() {
    collectDefaultMetrics({ register: this.registry });
  }

  /** A monotonic count read at each scrape (name ends in `_total`). */
  counter(name: string, help: string, read: () => number): void {
    checkName(name, 'counter');
    new Counter({
      name,
      help,
      registers: [this.registry],
      collect() {
        this.reset();
        this.inc(read());
      },
    });
  }

  /** A family of monotonic counts by low-cardinality labels, read at each scrape. */
  labelledCounter<L extends string>(
    name: string,
    help: string,
    labelNames: readonly L[],
    read: () => Iterable<LabelledValue<L>>,
  ): void {
    checkName(name, 'counter');
    new Counter<L>({
      name,
      help,
      labelNames,
      registers: [this.registry],
      collect() {
        this.reset();
        for (const { labels, value } of read()) this.inc(labels, value);
      },
    });
  }

  /** A level (in use now, a limit) read at each scrape. */
  gauge(name: string, help: string, read: () => number): void {
    checkName(name, 'gauge');
    new Gauge({
      name,
      help,
      registers: [this.registry],
      collect() {
        this.set(read());
      },
    });
  }

  /** The Prometheus text exposition of every metric, and its content type. */
  async text(): Promise<{ body: string; contentType: string }> {
    return { body: await this.registry.metrics(), contentType: this.registry.contentType };
  }
}

/** Keeps the naming rule (strata_ prefix, `_total` on counters only) from drifting. */
function checkName(name: string, kind: 'counter' | 'gauge'): void {
  if (!/^strata_[a-z0-9_]+$/.test(name)) throw new Error(`metric ${name}: names are strata_[a-z0-9_]+`);
  if ((kind === 'counter') !== name.endsWith('_total')) {
    throw new Error(`metric ${name}: counters end in _total, gauges do not`);
  }
}
