import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { isFsError, type Ino } from '../../../src/common/index.js';
import type { MetaService } from '../../../src/meta/index.js';
import { ROOT, root, withVolume, type EngineFixture } from './fixture.js';
import { checkTree } from './check.js';

/**
 * Differential test: random create/mkdir/link/unlink/rmdir/rename sequences run against the
 * service and against a tiny in-memory reference model; every outcome (success or errno)
 * and the final tree (names, types, which names share an inode, link counts) must match.
 */

interface MNode {
  id: number;
  dir: boolean;
  children: Map<string, MNode>;
  parent?: MNode;
}

class Model {
  private nextId = 1;
  readonly root: MNode = this.node(true);

  node(dir: boolean): MNode {
    return { id: this.nextId++, dir, children: new Map() };
  }

  resolve(path: string[]): MNode {
    let at = this.root;
    for (const name of path) {
      if (!at.dir) throw 'ENOTDIR';
      const next = at.children.get(name);
      if (!next) throw 'ENOENT';
      at = next;
    }
    return at;
  }

  dirAt(path: string[]): MNode {
    const n = this.resolve(path);
    if (!n.dir) throw 'ENOTDIR';
    return n;
  }

  create(path: string[], name: string, dir: boolean): void {
    const p = this.dirAt(path);
    if (p.children.has(name)) throw 'EEXIST';
    const n = this.node(dir);
    if (dir) n.parent = p;
    p.children.set(name, n);
  }

  link(src: string[], path: string[], name: string): void {
    const s = this.resolve(src);
    const p = this.resolve(path);
    if (s.dir) throw 'EPERM';
    if (!p.dir) throw 'ENOTDIR';
    if (p.children.has(name)) throw 'EEXIST';
    p.children.set(name, s);
  }

  unlink(path: string[], name: string): void {
    const p = this.dirAt(path);
    const n = p.children.get(name);
    if (!n) throw 'ENOENT';
    if (n.dir) throw 'EISDIR';
    p.children.delete(name);
  }

  rmdir(path: string[], name: string): void {
    const p = this.dirAt(path);
    const n = p.children.get(name);
    if (!n) throw 'ENOENT';
    if (!n.dir) throw 'ENOTDIR';
    if (n.children.size > 0) throw 'ENOTEMPTY';
    p.children.delete(name);
  }

  rename(from: string[], name: string, to: string[], newName: string): void {
    const sp = this.resolve(from);
    const dp = this.resolve(to);
    if (!sp.dir) throw 'ENOTDIR';
    const s = sp.children.get(name);
    if (!s) throw 'ENOENT';
    if (!dp.dir) throw 'ENOTDIR';
    const d = dp.children.get(newName);
    if (d === s) return;
    if (d && s.dir && !d.dir) throw 'ENOTDIR';
    if (d && !s.dir && d.dir) throw 'EISDIR';
    if (s.dir && sp !== dp) {
      for (let at: MNode | undefined = dp; at; at = at.parent) if (at === s) throw 'EINVAL';
    }
    if (d && d.dir && d.children.size > 0) throw 'ENOTEMPTY';
    sp.children.delete(name);
    dp.children.set(newName, s);
    if (s.dir) s.parent = dp;
  }

  /** path -> [isDir, id] for every name. */
  listing(): Map<string, [boolean, number]> {
    const out = new Map<string, [boolean, number]>();
    const walk = (n: MNode, prefix: string) => {
      for (const [name, c] of n.children) {
        out.set(`${prefix}/${name}`, [c.dir, c.id]);
        if (c.dir) walk(c, `${prefix}/${name}`);
      }
    };
    walk(this.root, '');
    return out;
  }
}

type Op =
  | { kind: 'create' | 'mkdir' | 'unlink' | 'rmdir'; path: string[]; name: string }
  | { kind: 'link'; src: string[]; path: string[]; name: string }
  | { kind: 'rename'; path: string[]; name: string; to: string[]; newName: string };

// Few names and shallow paths, so operations collide often (that is where the rules are).
const nameArb = fc.constantFrom('a', 'b', 'c');
const pathArb = fc.oneof(
  { weight: 2, arbitrary: fc.constant<string[]>([]) },
  { weight: 3, arbitrary: fc.array(fc.constantFrom('a', 'b'), { minLength: 1, maxLength: 1 }) },
  { weight: 2, arbitrary: fc.array(fc.constantFrom('a', 'b'), { minLength: 2, maxLength: 2 }) },
);
const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('mkdir' as const), path: pathArb, name: nameArb }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('create' as const), path: pathArb, name: nameArb }) },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constantFrom('unlink' as const, 'rmdir' as const),
      path: pathArb,
      name: nameArb,
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('link' as const),
      src: fc.array(nameArb, { minLength: 1, maxLength: 3 }),
      path: pathArb,
      name: nameArb,
    }),
  },
  {
    weight: 5,
    arbitrary: fc.record({
      kind: fc.constant('rename' as const),
      path: pathArb,
      name: nameArb,
      to: pathArb,
      newName: nameArb,
    }),
  },
);

async function resolve(svc: MetaService, path: string[]): Promise<Ino> {
  let at = ROOT;
  for (const name of path) at = (await svc.lookup(root, at, name)).ino;
  return at;
}

async function apply(svc: MetaService, op: Op): Promise<void> {
  switch (op.kind) {
    case 'create':
      await svc.mknod(root, await resolve(svc, op.path), op.name, 0o100644, 0, 0);
      return;
    case 'mkdir':
      await svc.mkdir(root, await resolve(svc, op.path), op.name, 0o755, 0);
      return;
    case 'unlink':
      await svc.unlink(root, await resolve(svc, op.path), op.name);
      return;
    case 'rmdir':
      await svc.rmdir(root, await resolve(svc, op.path), op.name);
      return;
    case 'link': {
      const src = await resolve(svc, op.src);
      await svc.link(root, src, await resolve(svc, op.path), op.name);
      return;
    }
    case 'rename': {
      const from = await resolve(svc, op.path);
      const to = await resolve(svc, op.to);
      await svc.rename(root, from, op.name, to, op.newName, 0);
      return;
    }
  }
}

function applyModel(model: Model, op: Op): void {
  switch (op.kind) {
    case 'create':
    case 'mkdir':
      return model.create(op.path, op.name, op.kind === 'mkdir');
    case 'unlink':
      return model.unlink(op.path, op.name);
    case 'rmdir':
      return model.rmdir(op.path, op.name);
    case 'link': {
      model.resolve(op.src);
      return model.link(op.src, op.path, op.name);
    }
    case 'rename':
      return model.rename(op.path, op.name, op.to, op.newName);
  }
}

/** Always run first: reaches every rename and link outcome the coverage check below asks for. */
const COVERAGE_EXAMPLE: Op[] = [
  { kind: 'mkdir', path: [], name: 'a' },
  { kind: 'mkdir', path: [], name: 'b' },
  { kind: 'create', path: ['a'], name: 'c' },
  { kind: 'link', src: ['a', 'c'], path: [], name: 'c' },
  { kind: 'rename', path: [], name: 'b', to: [], newName: 'a' }, // ENOTEMPTY
  { kind: 'rename', path: [], name: 'a', to: ['a'], newName: 'b' }, // EINVAL
  { kind: 'rename', path: [], name: 'c', to: [], newName: 'b' }, // EISDIR
  { kind: 'rename', path: [], name: 'b', to: [], newName: 'c' }, // ENOTDIR
  { kind: 'rename', path: ['a'], name: 'c', to: ['b'], newName: 'a' },
];

const outcome = async (run: () => Promise<void> | void): Promise<string> => {
  try {
    await run();
    return 'ok';
  } catch (error) {
    if (typeof error === 'string') return error;
    if (isFsError(error)) return error.code;
    throw error;
  }
};

export function modelTests(fx: EngineFixture): void {
  describe(`${fx.name}: reference model`, () => {
    it('random namespace operations agree with the reference model (outcomes, tree, hard links, nlink)', async () => {
      const seed = Number(process.env.STRATA_TEST_SEED ?? Date.now() % 2 ** 31);
      const numRuns = process.env.STRATA_TEST_PROFILE === 'long' ? 500 : 60;
      console.log(`reference model: seed ${seed} (rerun with STRATA_TEST_SEED=${seed})`);
      // Which outcomes the runs reached: a rule never exercised is a rule never tested.
      const reached = new Map<string, number>();
      await fc.assert(
        fc.asyncProperty(fc.array(opArb, { minLength: 1, maxLength: 60, size: 'max' }), async (ops) =>
          withVolume(fx, async ({ svc }) => {
            const model = new Model();
            for (const [i, op] of ops.entries()) {
              const expected = await outcome(() => applyModel(model, op));
              const actual = await outcome(() => apply(svc, op));
              reached.set(`${op.kind}:${expected}`, (reached.get(`${op.kind}:${expected}`) ?? 0) + 1);
              assert.equal(actual, expected, `step ${i}: ${JSON.stringify(op)}`);
            }
            const entries = await checkTree(svc);
            const want = model.listing();
            assert.deepEqual(entries.map((e) => e.path).sort(), [...want.keys()].sort());
            // the same model node <-> the same inode number, both ways
            const inoOf = new Map<number, number>();
            const idOf = new Map<number, number>();
            for (const e of entries) {
              const [isDir, id] = want.get(e.path)!;
              assert.equal(e.isDir, isDir, `type of ${e.path}`);
              assert.equal(
                inoOf.get(id) ?? e.ino,
                e.ino,
                `${e.path} should share an inode with its hard links`,
              );
              assert.equal(idOf.get(e.ino) ?? id, id, `${e.path} shares an inode it should not`);
              inoOf.set(id, e.ino);
              idOf.set(e.ino, id);
            }
          }),
        ),
        { seed, numRuns, examples: [[COVERAGE_EXAMPLE]] },
      );
      console.log(
        `reference model outcomes: ${[...reached]
          .map(([k, n]) => `${k}=${n}`)
          .sort()
          .join(' ')}`,
      );
      for (const needed of [
        'rename:ENOTEMPTY',
        'rename:EINVAL',
        'rename:EISDIR',
        'rename:ENOTDIR',
        'link:ok',
      ]) {
        assert.ok(reached.has(needed), `the generator never produced ${needed}`);
      }
    });
  });
}
