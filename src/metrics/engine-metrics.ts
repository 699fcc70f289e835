import { LatencyHistograms } from '../common/index.js';
import type { MetricsRegistry } from './registry.js';

/**
 * A metadata engine's counters as the server hands them over (the shape of src/meta/server's
 * EngineStats, restated here because this folder sits below it): a snapshot, at most a second
 * old when the engine runs on its own thread.
 */
export interface EngineCounts {
  changes: number;
  commits: number;
  syncs: number;
  /** LatencyHistograms bucket counts of one series (LATENCY_BUCKETS_SECONDS, then +Inf). */
  commitBucketCounts: Float64Array;
  commitSumSeconds: number;
  setGroups: number;
  setFallbacks: number;
}

/** Registers the engine metrics of `strata meta serve` (docs/cli.md, "Metrics"); absent: zeros. */
export function registerEngineMetrics(metrics: MetricsRegistry, read: () => EngineCounts | undefined): void {
  metrics.counter(
    'strata_meta_engine_changes_total',
    'changes (write transactions of one call) the engine ran, failed ones included',
    () => read()?.changes ?? 0,
  );
  metrics.counter(
    'strata_meta_engine_commits_total',
    'write transactions committed (SQLite: one commits the changes that arrived together)',
    () => read()?.commits ?? 0,
  );
  metrics.counter(
    'strata_meta_engine_syncs_total',
    "WAL flushes to disk asked for by clients' sync() (fsync of a file on a mount)",
    () => read()?.syncs ?? 0,
  );
  metrics.counter(
    'strata_meta_engine_set_groups_total',
    'PostgreSQL commit groups offered the set-based path (one statement per kind of change for the whole group)',
    () => read()?.setGroups ?? 0,
  );
  metrics.counter(
    'strata_meta_engine_set_fallbacks_total',
    'of those, groups that fell back to member by member (a stale cached row, a name taken, a deadlock)',
    () => read()?.setFallbacks ?? 0,
  );
  const commits = new LatencyHistograms(1);
  metrics.latencyHistogram(
    'strata_meta_engine_commit_duration_seconds',
    "time of one commit on the engine's thread: writing the batch's rows back and COMMIT",
    [],
    () => {
      const counts = read();
      if (counts === undefined) return [];
      commits.bucketCounts.set(counts.commitBucketCounts);
      commits.sumsSeconds[0] = counts.commitSumSeconds;
      return [{ labels: {}, histograms: commits, series: 0 }];
    },
  );
}
