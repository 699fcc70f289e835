// Replays of mismatches found by the differential tester and reported, one
// file each: test/reliability/known/ holds those not fixed yet (run as todo:
// reported, never silently skipped), test/reliability/regressions/ those fixed
// (run as tests: they must keep passing). File names start with the target:
// `strata-` (a strata up mount) or `memfs-` (MemFs over FUSE).
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { mountInChild, type ChildMount } from '../fuse/mount-helper.js';
import { DifferentialPair, describeMismatch } from './differential.js';
import { repoRoot } from './executor.js';
import { parseScript } from './script.js';
import { startStrata, strataUnavailable, type StrataMount } from './strata-mount.js';
import { mountTmpfs, type TempMount } from './tmpfs.js';

interface Replay {
  file: string;
  kind: 'strata' | 'memfs';
  fixed: boolean;
}

function replays(): Replay[] {
  const found: Replay[] = [];
  for (const [folder, fixed] of [
    ['known', false],
    ['regressions', true],
  ] as const) {
    const dir = join(repoRoot(), 'test', 'reliability', folder);
    if (!existsSync(dir)) continue;
    for (const name of readdirSync(dir).sort()) {
      const kind = name.startsWith('strata-') ? 'strata' : name.startsWith('memfs-') ? 'memfs' : undefined;
      if (!kind || !name.endsWith('.txt'))
        throw new Error(`${folder}/${name}: name it strata-*.txt or memfs-*.txt`);
      found.push({ file: join(dir, name), kind, fixed });
    }
  }
  return found;
}

describe('replays of reported mismatches', () => {
  let reference: TempMount | undefined;
  let strata: StrataMount | undefined;
  let memfs: ChildMount | undefined;
  after(async () => {
    await strata?.stop();
    await memfs?.cleanup();
    reference?.dispose();
  });

  const targetFor = async (kind: Replay['kind']): Promise<string> => {
    reference ??= mountTmpfs('ref');
    if (kind === 'strata') return (strata ??= await startStrata()).mountpoint;
    return (memfs ??= await mountInChild([])).mountpoint;
  };

  for (const replay of replays()) {
    const script = parseScript(readFileSync(replay.file, 'utf8'));
    const name = `${replay.file.split('/').slice(-2).join('/')}: ${script.comment?.[0] ?? ''}`;
    const skip = replay.kind === 'strata' ? strataUnavailable() : undefined;
    const run = replay.fixed ? test : test.todo;
    run(name, { skip }, async () => {
      const target = await targetFor(replay.kind);
      assert.ok(reference);
      const pair = new DifferentialPair({
        targetRoot: target,
        referenceRoot: reference.path,
        users: script.users,
      });
      try {
        const mismatch = await pair.run(script.ops, 1);
        assert.equal(mismatch, null, mismatch ? describeMismatch(mismatch) : '');
      } finally {
        await pair.close();
      }
    });
  }
});
