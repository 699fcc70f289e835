// The differential tester: runs the same operation sequence in lockstep on a
// target directory (any mount) and a reference directory (tmpfs), comparing
// every reply and, periodically, the whole tree. A target is just a path.
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { Executor, type Identity } from './executor.js';
import { generate, type Avoid, type GeneratorOptions } from './generator.js';
import { formatScript } from './script.js';
import { shrink } from './shrink.js';

export interface Mismatch {
  /** Index of the operation after which the sides disagreed. */
  index: number;
  op: string;
  /** `result`: the operation's replies differ; `tree`: the trees differ after it. */
  kind: 'result' | 'tree';
  target: string;
  reference: string;
}

export interface PairOptions {
  targetRoot: string;
  referenceRoot: string;
  users?: readonly Identity[];
  /** Plant a deliberate bug in the target's executor (self-tests of the tester). */
  plant?: string;
  requestTimeoutMs?: number;
  /** Compare the mtime class (explicit vs touched since); off only for a target with a known mtime issue. */
  compareMtime?: boolean;
  /** Ignore S_ISUID/S_ISGID of files; only for a target with a known set-id clearing issue. */
  maskFileSetid?: boolean;
}

let runCounter = 0;

/** Two executors, one per side, that run sequences in lockstep. */
export class DifferentialPair {
  readonly target: Executor;
  readonly reference: Executor;

  constructor(readonly options: PairOptions) {
    const common = {
      users: options.users ?? [],
      requestTimeoutMs: options.requestTimeoutMs,
      compareMtime: options.compareMtime,
      maskFileSetid: options.maskFileSetid,
    };
    this.target = new Executor({ ...common, root: options.targetRoot, plant: options.plant });
    this.reference = new Executor({ ...common, root: options.referenceRoot });
  }

  /** Whether both sides can punch holes; if either cannot, the generator leaves punching out. */
  async punchHoleSupported(): Promise<boolean> {
    const [t, r] = await Promise.all([
      this.target.request('!probe-punch'),
      this.reference.request('!probe-punch'),
    ]);
    return t === 'ok' && r === 'ok';
  }

  /**
   * Runs `ops` from an empty, fresh base directory on both sides and returns the
   * first disagreement, or null. The trees are compared every `snapshotEvery`
   * operations and at the end.
   */
  async run(ops: readonly string[], snapshotEvery: number): Promise<Mismatch | null> {
    const base = `run-${process.pid}-${++runCounter}`;
    try {
      const setup = await this.both(`!base ${base}`);
      if (setup[0] !== 'ok' || setup[1] !== 'ok') {
        throw new Error(`cannot create base directory ${base}: target ${setup[0]}, reference ${setup[1]}`);
      }
      for (let i = 0; i < ops.length; i++) {
        const [t, r] = await this.both(ops[i]);
        if (t !== r) return { index: i, op: ops[i], kind: 'result', target: t, reference: r };
        if ((i + 1) % snapshotEvery === 0 || i === ops.length - 1) {
          const [tt, rt] = await this.both('!tree');
          if (tt !== rt) return { index: i, op: ops[i], kind: 'tree', target: tt, reference: rt };
        }
      }
      return null;
    } finally {
      rmSync(join(this.options.targetRoot, base), { recursive: true, force: true });
      rmSync(join(this.options.referenceRoot, base), { recursive: true, force: true });
    }
  }

  private both(line: string): Promise<[string, string]> {
    return Promise.all([this.target.request(line), this.reference.request(line)]);
  }

  async close(): Promise<void> {
    await Promise.all([this.target.close(), this.reference.close()]);
  }
}

/** The entries of two tree snapshots that differ, one per line, for people. */
export function treeDiff(target: string, reference: string): string {
  const entries = (tree: string): Set<string> =>
    new Set(
      tree
        .replace(/^ok/, '')
        .split(';')
        .map((e) => e.trim())
        .filter((e) => e.length > 0),
    );
  const t = entries(target);
  const r = entries(reference);
  const lines: string[] = [];
  for (const e of t) if (!r.has(e)) lines.push(`  target only:    ${e}`);
  for (const e of r) if (!t.has(e)) lines.push(`  reference only: ${e}`);
  return lines.join('\n');
}

export function describeMismatch(m: Mismatch): string {
  if (m.kind === 'result') {
    return `operation ${m.index} "${m.op}": target replied "${m.target}", reference (tmpfs) "${m.reference}"`;
  }
  return `trees differ after operation ${m.index} "${m.op}":\n${treeDiff(m.target, m.reference)}`;
}

export interface DifferentialOptions extends PairOptions {
  seed: number;
  opCount: number;
  /** Operations per sequence: each sequence starts from an empty base directory. */
  sequenceLength?: number;
  snapshotEvery?: number;
  largeOffsets?: boolean;
  /** Areas the generator leaves out (known, reported mismatches of the target). */
  avoid?: readonly Avoid[];
  /** Force hole punching off (a known, reported mismatch); default: on when both sides support it. */
  punchHole?: boolean;
  /** Time allowed for shrinking a failure to a short sequence. */
  shrinkBudgetMs?: number;
}

export interface DifferentialResult {
  opsRun: number;
  sequences: number;
  punchHole: boolean;
  failure?: {
    seed: number;
    mismatch: Mismatch;
    shrunk: readonly string[];
    shrunkMismatch: Mismatch;
    shrinkRuns: number;
    /** A replayable script (script.ts) holding the shortest failing sequence found. */
    script: string;
  };
}

/**
 * Generates and runs sequences from `seed` until `opCount` operations have run
 * or the sides disagree; a disagreement is shrunk to a short replayable script.
 * Sequence k uses seed `seed + k`, so any failing sequence reruns on its own.
 */
export async function runDifferential(options: DifferentialOptions): Promise<DifferentialResult> {
  const sequenceLength = options.sequenceLength ?? 400;
  const snapshotEvery = options.snapshotEvery ?? 20;
  const pair = new DifferentialPair(options);
  try {
    const punchHole = (options.punchHole ?? true) && (await pair.punchHoleSupported());
    const generatorOptions: GeneratorOptions = {
      users: options.users ?? [],
      punchHole,
      largeOffsets: options.largeOffsets ?? false,
      avoid: options.avoid,
    };
    let opsRun = 0;
    let sequences = 0;
    while (opsRun < options.opCount) {
      const seed = options.seed + sequences;
      const ops = generate(seed, Math.min(sequenceLength, options.opCount - opsRun), generatorOptions);
      sequences++;
      const mismatch = await pair.run(ops, snapshotEvery);
      if (!mismatch) {
        opsRun += ops.length;
        continue;
      }
      opsRun += mismatch.index + 1;
      const shrunk = await shrink(ops.slice(0, mismatch.index + 1), (candidate) => pair.run(candidate, 1), {
        budgetMs: options.shrinkBudgetMs ?? 60_000,
      });
      // A failure that does not come back on a rerun is still reported, as the whole prefix.
      const shrunkMismatch = shrunk.mismatch ?? mismatch;
      const script = formatScript({
        ops: shrunk.ops,
        users: options.users ?? [],
        plant: options.plant,
        comment: [
          `seed ${seed}, sequence of ${ops.length} operations, shrunk in ${shrunk.runs} runs`,
          ...(shrunk.mismatch ? [] : ['NOT REPRODUCIBLE on rerun: the whole failing prefix follows']),
          ...describeMismatch(shrunkMismatch).split('\n'),
        ],
      });
      return {
        opsRun,
        sequences,
        punchHole,
        failure: { seed, mismatch, shrunk: shrunk.ops, shrunkMismatch, shrinkRuns: shrunk.runs, script },
      };
    }
    return { opsRun, sequences, punchHole };
  } finally {
    await pair.close();
  }
}
