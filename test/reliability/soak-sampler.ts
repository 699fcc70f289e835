// The soak harness's instruments: every few seconds, the resources of each strata process
// (from /proc and from scripts/soak/probe.mjs running inside it) and the sizes of the
// volume's files; and the verdict, a linear trend fitted over the second half of a run.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';

/** One strata process the sampler watches, by the role it plays in the run. */
export interface Watched {
  role: string;
  pid: number;
}

/** Files and directories whose size is sampled: name -> path (a missing path counts 0). */
export type WatchedPaths = Record<string, string>;

export interface Sample {
  atMs: number;
  /** `ROLE.measure` (e.g. `up.rssBytes`, `mountB.fds`) or a path name -> value. */
  values: Record<string, number>;
}

interface ProbeSample {
  atMs: number;
  heapUsedBytes: number;
  externalBytes: number;
  arrayBuffersBytes: number;
  resources: Record<string, number>;
}

/** Sums a directory tree's file sizes (du -sb, which does not stall this process's loop). */
export function treeBytes(path: string): number {
  if (!existsSync(path)) return 0;
  if (!statSync(path).isDirectory()) return statSync(path).size;
  const du = spawnSync('du', ['-sb', path], { encoding: 'utf8', timeout: 60_000 });
  return Number(du.stdout.split('\t')[0]) || 0;
}

function procStatus(pid: number): { rssBytes: number; threads: number } | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/status`, 'utf8');
    const field = (name: string): number =>
      Number(new RegExp(`^${name}:\\s+(\\d+)`, 'm').exec(text)?.[1] ?? NaN);
    return { rssBytes: field('VmRSS') * 1024, threads: field('Threads') };
  } catch {
    return undefined;
  }
}

function readProbe(probeDir: string, pid: number): ProbeSample | undefined {
  try {
    return JSON.parse(readFileSync(join(probeDir, `${pid}.json`), 'utf8')) as ProbeSample;
  } catch {
    return undefined;
  }
}

/** Takes one sample of every watched process and path. */
export function takeSample(processes: Watched[], paths: WatchedPaths, probeDir: string): Sample {
  const values: Record<string, number> = {};
  for (const { role, pid } of processes) {
    const status = procStatus(pid);
    if (status === undefined) continue;
    values[`${role}.rssBytes`] = status.rssBytes;
    values[`${role}.threads`] = status.threads;
    try {
      values[`${role}.fds`] = readdirSync(`/proc/${pid}/fd`).length;
    } catch {
      // the process ended between the two reads
    }
    const probe = readProbe(probeDir, pid);
    if (probe !== undefined) {
      values[`${role}.heapUsedBytes`] = probe.heapUsedBytes;
      values[`${role}.externalBytes`] = probe.externalBytes;
      values[`${role}.arrayBuffersBytes`] = probe.arrayBuffersBytes;
      values[`${role}.handles`] = Object.values(probe.resources).reduce((a, b) => a + b, 0);
      values[`${role}.timers`] = probe.resources.Timeout ?? 0;
    }
  }
  for (const [name, path] of Object.entries(paths)) values[name] = treeBytes(path);
  return { atMs: Date.now(), values };
}

export interface Trend {
  measure: string;
  /** Value at the first sample of the second half, and the fitted growth over that half. */
  startValue: number;
  growth: number;
  /** How well a line explains the second half (0..1): noise scores low, a steady leak high. */
  r2: number;
  perHour: number;
  grows: boolean;
}

/**
 * How much growth over the second half counts as unbounded, per measure: an absolute floor
 * (a few descriptors, or megabytes, come and go with the workload) and a fraction of the level.
 * Measures not listed are reported but never fail the run (object store: no GC yet; the
 * metadata database: the workload's git history and growing directory legitimately grow it).
 */
export const GROWTH_LIMITS: { suffix: string; floor: number; fraction: number }[] = [
  { suffix: '.fds', floor: 8, fraction: 0.1 },
  { suffix: '.threads', floor: 3, fraction: 0.1 },
  { suffix: '.timers', floor: 8, fraction: 0.2 },
  { suffix: '.handles', floor: 16, fraction: 0.2 },
  { suffix: '.heapUsedBytes', floor: 8 << 20, fraction: 0.15 },
  { suffix: '.externalBytes', floor: 32 << 20, fraction: 0.25 },
  { suffix: '.arrayBuffersBytes', floor: 32 << 20, fraction: 0.25 },
  { suffix: '.rssBytes', floor: 64 << 20, fraction: 0.25 },
  { suffix: 'walBytes', floor: 16 << 20, fraction: 0.5 },
  { suffix: 'cacheBytes', floor: 16 << 20, fraction: 0.25 },
  ...['session', 'lock', 'open_file', 'call_batch_stale', 'call_outcome_stale'].map((table) => ({
    suffix: `rows.${table}`,
    floor: 50,
    fraction: 0.2,
  })),
  // History is kept for the retention window (1 minute in the soak), then pruned.
  { suffix: '_hist', floor: 5000, fraction: 0.5 },
];

/**
 * Fits a line to each measure over the second half of the samples. A measure grows without
 * bound when the line rises by more than its limit and explains the points (r2 >= 0.5); a
 * cache that filled in the first half is flat in the second, and noise scores a low r2.
 */
export function trends(samples: Sample[]): Trend[] {
  const half = samples.slice(Math.floor(samples.length / 2));
  const measures = new Set(half.flatMap((s) => Object.keys(s.values)));
  const result: Trend[] = [];
  for (const measure of [...measures].sort()) {
    const points = half
      .filter((s) => measure in s.values)
      .map((s) => ({ x: (s.atMs - half[0].atMs) / 3_600_000, y: s.values[measure] }));
    if (points.length < 4) continue;
    const n = points.length;
    const meanX = points.reduce((a, p) => a + p.x, 0) / n;
    const meanY = points.reduce((a, p) => a + p.y, 0) / n;
    let sxy = 0;
    let sxx = 0;
    let syy = 0;
    for (const p of points) {
      sxy += (p.x - meanX) * (p.y - meanY);
      sxx += (p.x - meanX) ** 2;
      syy += (p.y - meanY) ** 2;
    }
    const perHour = sxx > 0 ? sxy / sxx : 0;
    const r2 = sxx > 0 && syy > 0 ? (sxy * sxy) / (sxx * syy) : 0;
    const growth = perHour * (points[n - 1].x - points[0].x);
    const limit = GROWTH_LIMITS.find((l) => measure.endsWith(l.suffix));
    const startValue = points[0].y;
    const grows =
      limit !== undefined &&
      growth > limit.floor &&
      growth > limit.fraction * Math.max(startValue, meanY) &&
      r2 >= 0.5;
    result.push({ measure, startValue, growth, r2, perHour, grows });
  }
  return result;
}

function human(measure: string, value: number): string {
  if (!measure.endsWith('Bytes')) return value.toFixed(Number.isInteger(value) ? 0 : 1);
  return `${(value / (1 << 20)).toFixed(1)} MiB`;
}

/** A table of each measure: first sample, start and end of the second half, fitted growth. */
export function trendTable(samples: Sample[], found: Trend[]): string {
  const lines = ['| measure | first | 2nd half start | last | fitted growth, 2nd half | r2 | verdict |'];
  lines.push('|---|---|---|---|---|---|---|');
  const first = samples[0]?.values ?? {};
  const last = samples[samples.length - 1]?.values ?? {};
  for (const t of found) {
    lines.push(
      `| ${t.measure} | ${human(t.measure, first[t.measure] ?? NaN)} | ${human(t.measure, t.startValue)} | ` +
        `${human(t.measure, last[t.measure] ?? NaN)} | ${human(t.measure, t.growth)} | ${t.r2.toFixed(2)} | ` +
        `${t.grows ? 'GROWS' : GROWTH_LIMITS.some((l) => t.measure.endsWith(l.suffix)) ? 'bounded' : 'reported'} |`,
    );
  }
  return lines.join('\n');
}
