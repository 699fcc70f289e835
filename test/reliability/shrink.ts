// Delta debugging (ddmin) over operation sequences: finds a short sequence
// that still shows the same kind of disagreement, so a failure found after
// thousands of random operations reads as a handful of lines.
import type { Mismatch } from './differential.js';

export interface ShrinkResult {
  ops: readonly string[];
  /** The mismatch the shrunk sequence shows; null if the failure did not reproduce at all. */
  mismatch: Mismatch | null;
  /** Sequences run while shrinking. */
  runs: number;
}

/** The kind of failure, kept while shrinking so it cannot drift to a different bug. */
function signature(m: Mismatch): string {
  const verb = m.op.split(' ')[1] ?? m.op;
  return `${m.kind}:${verb}`;
}

/**
 * Shrinks `ops` (which must fail under `test`) to a 1-minimal failing sequence
 * where time allows: removing any single operation makes the failure vanish.
 */
export async function shrink(
  ops: readonly string[],
  test: (candidate: readonly string[]) => Promise<Mismatch | null>,
  options: { budgetMs: number },
): Promise<ShrinkResult> {
  const deadline = Date.now() + options.budgetMs;
  let runs = 1;
  // Rerun as the shrinker will (tree checked after every operation) to learn
  // the failure's exact shape and position.
  let best = await test(ops);
  if (!best) return { ops, mismatch: null, runs };
  const wanted = signature(best);
  let current = ops.slice(0, best.index + 1);

  const attempt = async (candidate: readonly string[]): Promise<boolean> => {
    runs++;
    const m = await test(candidate);
    if (!m || signature(m) !== wanted) return false;
    best = m;
    current = candidate.slice(0, m.index + 1);
    return true;
  };

  let granularity = 2;
  while (current.length >= 2 && Date.now() < deadline) {
    const chunkSize = Math.ceil(current.length / granularity);
    let reduced = false;
    for (let start = 0; start < current.length && Date.now() < deadline; start += chunkSize) {
      const complement = [...current.slice(0, start), ...current.slice(start + chunkSize)];
      if (complement.length > 0 && (await attempt(complement))) {
        granularity = Math.max(granularity - 1, 2);
        reduced = true;
        break;
      }
    }
    if (!reduced) {
      if (granularity >= current.length) break;
      granularity = Math.min(granularity * 2, current.length);
    }
  }
  return { ops: current, mismatch: best, runs };
}
