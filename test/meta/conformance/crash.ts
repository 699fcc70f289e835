import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { formatVolume, openMetaService } from '../../../src/meta/index.js';
import { checkTree } from './check.js';
import { parseName, replaceTarget } from './crash-plan.js';
import { ROOT, names, root, withVolume, type EngineFixture } from './fixture.js';

const CHILD = fileURLToPath(new URL('./crash-child.js', import.meta.url));
const ACKS_BEFORE_KILL = process.env.STRATA_TEST_PROFILE === 'long' ? 20_000 : 3000;

interface Acks {
  created: Set<string>;
  renamed: Set<string>;
  replaced: Set<string>;
}

/** Runs the child until it has acknowledged `count` operations, then kills it with SIGKILL. */
async function runAndKill(url: string, count: number): Promise<Acks> {
  const acks: Acks = { created: new Set(), renamed: new Set(), replaced: new Set() };
  const child = spawn(process.execPath, [CHILD, url], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  try {
    await new Promise<void>((resolve, reject) => {
      let buffered = '';
      let seen = 0;
      const timer = setTimeout(
        () => reject(new Error(`child acknowledged only ${seen} ops in 60 s`)),
        60_000,
      );
      child.on('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`child exited early (${code}): ${stderr}`));
      });
      child.stdout.on('data', (d: Buffer) => {
        buffered += d.toString();
        const lines = buffered.split('\n');
        buffered = lines.pop()!;
        for (const line of lines) {
          const [kind, name] = line.split(' ');
          if (kind === 'c') acks.created.add(name);
          else if (kind === 'r') acks.renamed.add(name);
          else if (kind === 'x') acks.replaced.add(name);
          else continue;
          if (++seen >= count) {
            clearTimeout(timer);
            child.removeAllListeners('exit');
            child.kill('SIGKILL');
            resolve();
            return;
          }
        }
      });
    });
  } finally {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await new Promise<void>((resolve) =>
      child.exitCode !== null || child.signalCode !== null ? resolve() : child.once('close', () => resolve()),
    );
  }
  return acks;
}

export function crashTests(fx: EngineFixture): void {
  describe(`${fx.name}: crash consistency`, () => {
    it('after kill -9 during creates and renames the engine is consistent and keeps every acknowledged op', async () => {
      const url = await fx.newUrl();
      try {
        await formatVolume(url, { name: 'crash' });
        const acks = await runAndKill(url, ACKS_BEFORE_KILL);
        assert.ok(acks.created.size > 100, `only ${acks.created.size} creates acknowledged`);
        const svc = await openMetaService({ engineUrl: url, background: false });
        try {
          const entries = await checkTree(svc);
          const where = new Map<string, string>();
          for (const e of entries) {
            const [, dir, name] = e.path.split('/');
            if (name) where.set(name, dir);
          }
          // The child runs on after the acknowledgements we read, so any later step of a
          // name's plan may have committed too: only "at least this far" can be asserted.
          for (const name of acks.created) {
            const at = where.get(name);
            const { k, i } = parseName(name);
            const target = replaceTarget(k, i);
            if (target && at === undefined) {
              assert.equal(where.get(target), 'b', `${name} replaced ${target}, which must then exist in b`);
              continue;
            }
            assert.ok(!acks.replaced.has(name), `${name} was renamed over ${target} but still exists`);
            if (acks.renamed.has(name)) {
              assert.equal(at, 'b', `acknowledged rename of ${name} into b is missing (found in ${at})`);
            } else {
              assert.ok(at === 'a' || at === 'b', `acknowledged create of ${name} is missing`);
            }
          }
        } finally {
          await svc.close();
        }
      } finally {
        await fx.dropUrl(url);
      }
    });

    it('sync() resolves for concurrent callers amid writes, and what it covered is there after a restart', async () => {
      await withVolume(fx, async (v) => {
        const created = Array.from({ length: 40 }, (_, i) => `s${i}`);
        await Promise.all(
          created.map(async (name) => {
            await v.svc.mknod(root, ROOT, name, 0o100644, 0, 0);
            await v.svc.sync();
          }),
        );
        await Promise.all([v.svc.sync(), v.svc.sync(), v.svc.unlink(root, ROOT, 's0')]);
        await v.svc.sync();
        const svc = await v.reopen();
        assert.deepEqual(await names(svc, ROOT), created.slice(1).sort());
      });
    });
  });
}
