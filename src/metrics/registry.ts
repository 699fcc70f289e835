import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { LATENCY_BUCKETS_SECONDS, type LatencyHistograms } from '../common/index.js';

/** One sample of a labelled metric: its label values and its value. */
export interface LabelledValue<L extends string> {
  labels: Record<L, string>;
  value: number;
}

/** One series of a labelled latency histogram: its label values and where its counts are kept. */
export interface LabelledHistogram<L extends string> {
  labels: Record<L, string>;
  histograms: LatencyHistograms;
  series: number;
}

/**
 * The metrics of one process: prom-client's default process metrics (CPU, resident memory,
 * heap, event-loop lag, open descriptors) plus metrics read from the process's own counters
 * at scrape time. Nothing here runs between scrapes: every value comes from a `read` callback
 * over stats the code keeps anyway, so the hot paths pay nothing for being observed.
 */
export class MetricsRegistry {
  readonly registry = new Registry();
  private readonly scrapeListeners: (() => void)[] = [];

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

  /**
   * A family of latency histograms (buckets LATENCY_BUCKETS_SECONDS) by low-cardinality labels,
   * read at each scrape from LatencyHistograms the code fills (name ends in `_seconds`).
   */
  latencyHistogram<L extends string>(
    name: string,
    help: string,
    labelNames: readonly L[],
    read: () => Iterable<LabelledHistogram<L>>,
  ): void {
    checkName(name, 'histogram');
    new SnapshotHistogram<L>(
      { name, help, labelNames, buckets: [...LATENCY_BUCKETS_SECONDS], registers: [this.registry] },
      read,
    );
  }

  /** Runs `listener` as each scrape begins, before any metric is read (to take one snapshot for all). */
  onScrape(listener: () => void): void {
    this.scrapeListeners.push(listener);
  }

  /** The Prometheus text exposition of every metric, and its content type. */
  async text(): Promise<{ body: string; contentType: string }> {
    for (const listener of this.scrapeListeners) listener();
    return { body: await this.registry.metrics(), contentType: this.registry.contentType };
  }
}

/** Keeps the naming rule (strata_ prefix, `_total` on counters only) from drifting. */
function checkName(name: string, kind: 'counter' | 'gauge' | 'histogram'): void {
  if (!/^strata_[a-z0-9_]+$/.test(name)) throw new Error(`metric ${name}: names are strata_[a-z0-9_]+`);
  if (kind === 'histogram') {
    if (!name.endsWith('_seconds')) throw new Error(`metric ${name}: latency histograms end in _seconds`);
    return;
  }
  if ((kind === 'counter') !== name.endsWith('_total')) {
    throw new Error(`metric ${name}: counters end in _total, gauges do not`);
  }
}

type HistogramSample<L extends string> = Awaited<ReturnType<Histogram<L>['get']>>['values'][number];

/**
 * A prom-client Histogram whose buckets are not observed through it but read at scrape time
 * from LatencyHistograms: the hot paths fill typed arrays (no label hashing per observation)
 * and prom-client still writes the exposition.
 */
class SnapshotHistogram<L extends string> extends Histogram<L> {
  private readonly metricName: string;
  private readonly metricHelp: string;

  constructor(
    configuration: ConstructorParameters<typeof Histogram<L>>[0],
    private readonly read: () => Iterable<LabelledHistogram<L>>,
  ) {
    super(configuration);
    this.metricName = configuration.name;
    this.metricHelp = configuration.help;
  }

  override get(): ReturnType<Histogram<L>['get']> {
    const values: HistogramSample<L>[] = [];
    const name = this.metricName;
    const bucketName = `${name}_bucket`;
    for (const { labels, histograms, series } of this.read()) {
      const cumulative = histograms.cumulativeCounts(series);
      for (let i = 0; i < cumulative.length; i++) {
        const le = i < LATENCY_BUCKETS_SECONDS.length ? LATENCY_BUCKETS_SECONDS[i] : '+Inf';
        values.push({ labels: { ...labels, le }, value: cumulative[i], metricName: bucketName });
      }
      values.push({ labels, value: histograms.sumsSeconds[series], metricName: `${name}_sum` });
      values.push({ labels, value: cumulative[cumulative.length - 1], metricName: `${name}_count` });
    }
    // prom-client's typings give `type` as a numeric enum it does not export at run time, and
    // ask for a collect function; the registry reads the string type and the values only.
    const metric = { name, help: this.metricHelp, type: 'histogram', aggregator: 'sum', values };
    return Promise.resolve(metric as unknown as Awaited<ReturnType<Histogram<L>['get']>>);
  }

  /** The registry prefers this to get() when present (Histogram has it): same values. */
  getForPromString(): ReturnType<Histogram<L>['get']> {
    return this.get();
  }
}
