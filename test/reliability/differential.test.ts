// The differential tester tested: silent on two identical file systems, loud
// (with a short replay script) on a file system with a planted bug.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { DifferentialPair, runDifferential, type Mismatch } from './differential.js';
import { generate } from './generator.js';
import { formatScript, parseScript } from './script.js';
import { longProfile, mountTmpfs, type TempMount } from './tmpfs.js';

const SANITY_OPS = longProfile() ? 100_000 : 3_000;
const SEED = Number(process.env.STRATA_REL_SEED ?? 0x5eed);

describe('differential tester', () => {
  let target: TempMount;
  let reference: TempMount;
  before(() => {
    target = mountTmpfs('target');
    reference = mountTmpfs('ref');
  });
  after(() => {
    target?.dispose();
    reference?.dispose();
  });

  test('the same seed generates the same operations', () => {
    const options = { users: [], punchHole: true, largeOffsets: true };
    assert.deepEqual(generate(42, 200, options), generate(42, 200, options));
    assert.notDeepEqual(generate(42, 200, options), generate(43, 200, options));
  });

  test('finds no difference between two tmpfs mounts', async () => {
    const result = await runDifferential({
      targetRoot: target.path,
      referenceRoot: reference.path,
      seed: SEED,
      opCount: SANITY_OPS,
      largeOffsets: true,
    });
    assert.equal(result.failure, undefined, result.failure?.script);
    assert.equal(result.opsRun, SANITY_OPS);
    assert.ok(result.punchHole, 'tmpfs punches holes, so the generator must use them');
  });

  // Each planted bug is a real deviation in behaviour (not in reporting), and
  // the verb the shrunk script must contain to show it.
  const plants: [string, RegExp][] = [
    ['append-ignored', /\bopen \d+ \S+ \S*append/],
    ['exchange-as-rename', /\brename \S+ \S+ exchange\b/],
    ['short-truncate', /\b(f?trunc)\b/],
  ];
  for (const [plant, needed] of plants) {
    test(`finds and shrinks a planted bug: ${plant}`, async () => {
      const result = await runDifferential({
        targetRoot: target.path,
        referenceRoot: reference.path,
        plant,
        seed: SEED,
        opCount: 20_000,
        shrinkBudgetMs: 30_000,
      });
      const failure = result.failure;
      assert.ok(failure, `planted bug ${plant} went unnoticed for ${result.opsRun} operations`);
      assert.ok(failure.shrunk.length <= 12, `shrunk to ${failure.shrunk.length} ops:\n${failure.script}`);
      assert.ok(failure.shrunk.length < failure.mismatch.index + 1 || failure.mismatch.index < 12);
      assert.match(failure.shrunk.join('\n'), needed, failure.script);

      // The printed script replays the failure on its own, and only with the bug.
      const script = parseScript(failure.script);
      assert.equal(script.plant, plant);
      for (const withBug of [true, false]) {
        const pair: DifferentialPair = new DifferentialPair({
          targetRoot: target.path,
          referenceRoot: reference.path,
          plant: withBug ? script.plant : undefined,
        });
        try {
          const mismatch: Mismatch | null = await pair.run(script.ops, 1);
          if (withBug) assert.ok(mismatch, `replay did not fail:\n${failure.script}`);
          else assert.equal(mismatch, null, `replay without the bug failed:\n${failure.script}`);
        } finally {
          await pair.close();
        }
      }
    });
  }

  test('a script survives formatting and parsing', () => {
    const users = [{ uid: 2001, gid: 2001, groups: [2100, 2101] }];
    const text = formatScript({ ops: ['0 mkdir a 0755', '1 stat a'], users, plant: 'x', comment: ['why'] });
    assert.deepEqual(parseScript(text), {
      ops: ['0 mkdir a 0755', '1 stat a'],
      users,
      plant: 'x',
      comment: ['StrataFS differential replay script', 'why'],
    });
  });
});
