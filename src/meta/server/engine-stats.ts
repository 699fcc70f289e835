import type { LatencyHistograms } from '../../common/index.js';

/**
 * What a metadata engine counted, as a plain snapshot that can cross to another thread: the
 * changes it ran, the transactions it committed them in (SQLite groups many changes in one
 * commit), how long those commits took, and the WAL flushes clients' sync() asked for.
 */
export interface EngineStats {
  changes: number;
  commits: number;
  syncs: number;
  /** Commit durations: LatencyHistograms bucket counts and sum of one series. */
  commitBucketCounts: Float64Array;
  commitSumSeconds: number;
  /** PostgreSQL: commit groups offered the set-based path, and those that fell back to member by member. */
  setGroups: number;
  setFallbacks: number;
}

/** The counters the SQLite and PostgreSQL engines keep (src/meta/engines/STORE/engine.ts). */
interface CountingEngine {
  counts: { writes: number; commits: number; syncs: number };
  commitLatency: LatencyHistograms;
  /** PostgreSQL's group committer (src/meta/engines/postgres/group-commit.ts), when it has one. */
  committer?: { setGroups: number; setFallbacks: number };
}

function isCountingEngine(engine: object): engine is CountingEngine {
  return 'counts' in engine && 'commitLatency' in engine;
}

/** A snapshot of `engine`'s counters, or undefined for an engine that keeps none (a test double). */
export function engineStatsOf(engine: object): EngineStats | undefined {
  if (!isCountingEngine(engine)) return undefined;
  const { counts, commitLatency, committer } = engine;
  return {
    changes: counts.writes,
    commits: counts.commits,
    syncs: counts.syncs,
    commitBucketCounts: commitLatency.bucketCounts.slice(),
    commitSumSeconds: commitLatency.sumsSeconds[0],
    setGroups: committer?.setGroups ?? 0,
    setFallbacks: committer?.setFallbacks ?? 0,
  };
}
