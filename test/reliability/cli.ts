// Command line for the differential tester, against any directory:
//
//   node DIST/test/reliability/cli.js run --target /mnt/strata [--seed N] [--ops N] [--users]
//        [--large] [--reference DIR] [--script-out FILE] [--json-out FILE]
//   node DIST/test/reliability/cli.js replay --target /mnt/strata [--reference DIR] FILE
//
// Without --reference a private tmpfs is mounted (and unmounted) as the reference.
// Exit status: 0 no difference, 1 difference found (script printed), 2 usage or setup error.
import { readFileSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { DifferentialPair, describeMismatch, runDifferential } from './differential.js';
import { TEST_USERS } from './executor.js';
import { parseScript } from './script.js';
import { mountTmpfs, type TempMount } from './tmpfs.js';

const USAGE = `usage:
  cli.js run --target DIR [--reference DIR] [--seed N] [--ops N] [--users] [--large]
             [--script-out FILE] [--json-out FILE] [--shrink-seconds N]
  cli.js replay --target DIR [--reference DIR] SCRIPT`;

async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      target: { type: 'string' },
      reference: { type: 'string' },
      seed: { type: 'string' },
      ops: { type: 'string' },
      users: { type: 'boolean', default: false },
      large: { type: 'boolean', default: false },
      'script-out': { type: 'string' },
      'json-out': { type: 'string' },
      'shrink-seconds': { type: 'string' },
    },
  });
  const [command, ...rest] = positionals;
  if (!values.target || (command !== 'run' && command !== 'replay')) {
    console.error(USAGE);
    return 2;
  }
  let reference: TempMount | undefined;
  const referenceRoot = values.reference ?? (reference = mountTmpfs('ref')).path;
  try {
    if (command === 'replay') {
      if (rest.length !== 1) {
        console.error(USAGE);
        return 2;
      }
      const script = parseScript(readFileSync(rest[0], 'utf8'));
      const pair = new DifferentialPair({ targetRoot: values.target, referenceRoot, users: script.users });
      try {
        const mismatch = await pair.run(script.ops, 1);
        console.log(mismatch ? `FAILS: ${describeMismatch(mismatch)}` : 'passes: no difference');
        return mismatch ? 1 : 0;
      } finally {
        await pair.close();
      }
    }
    const seed = Number(values.seed ?? Date.now() % 1_000_000);
    const opCount = Number(values.ops ?? 10_000);
    const startedMs = Date.now();
    const result = await runDifferential({
      targetRoot: values.target,
      referenceRoot,
      users: values.users ? TEST_USERS : [],
      seed,
      opCount,
      largeOffsets: values.large,
      shrinkBudgetMs: Number(values['shrink-seconds'] ?? 120) * 1000,
    });
    const summary = {
      target: values.target,
      seed,
      users: values.users,
      opsRun: result.opsRun,
      sequences: result.sequences,
      elapsedMs: Date.now() - startedMs,
      failure: result.failure
        ? {
            seed: result.failure.seed,
            shrunkOps: result.failure.shrunk.length,
            script: result.failure.script,
          }
        : null,
    };
    if (values['json-out']) writeFileSync(values['json-out'], `${JSON.stringify(summary)}\n`);
    if (result.failure) {
      if (values['script-out']) writeFileSync(values['script-out'], result.failure.script);
      console.log(`DIFFERENCE after ${result.opsRun} operations (seed ${seed}); shortest sequence found:`);
      console.log(result.failure.script);
      return 1;
    }
    console.log(`no difference in ${result.opsRun} operations (seed ${seed}, ${result.sequences} sequences)`);
    return 0;
  } finally {
    reference?.dispose();
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(error instanceof Error ? error.message : error);
    process.exit(2);
  },
);
