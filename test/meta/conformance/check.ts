import assert from 'node:assert/strict';
import type { Ino } from '../../../src/common/index.js';
import type { MetaApi } from '../../../src/meta/index.js';
import { ROOT, root } from './fixture.js';

const S_IFMT = 0o170000;
const S_IFDIR = 0o040000;

export interface TreeEntry {
  path: string;
  ino: Ino;
  isDir: boolean;
}

/**
 * fsck through the API: walks the tree from the root and checks that every entry points at a
 * live inode of the entry's type, that directories have one name, ".." pointing at their
 * parent and nlink = 2 + subdirectories, that files have nlink = number of names, and that
 * statfs counts exactly the inodes reachable. Returns every path.
 */
export async function checkTree(svc: MetaApi): Promise<TreeEntry[]> {
  const out: TreeEntry[] = [];
  const names = new Map<Ino, number>();
  const subdirs = new Map<Ino, number>();
  const queue: { ino: Ino; path: string; parent: Ino }[] = [{ ino: ROOT, path: '', parent: ROOT }];
  const seenDirs = new Set<Ino>();
  while (queue.length > 0) {
    const d = queue.shift()!;
    assert.ok(!seenDirs.has(d.ino), `directory ${d.ino} reachable twice (at ${d.path})`);
    seenDirs.add(d.ino);
    let cursor = 0;
    let subdirCount = 0;
    for (;;) {
      const page = await svc.readdir(root, d.ino, cursor, 256, true);
      if (page.length === 0) break;
      for (const e of page) {
        cursor = e.cursor;
        if (e.name === '.') {
          assert.equal(e.ino, d.ino);
          continue;
        }
        if (e.name === '..') {
          assert.equal(e.ino, d.parent, `".." of ${d.path || '/'} is ${e.ino}, expected ${d.parent}`);
          continue;
        }
        const attr = e.attr!;
        assert.ok(attr, `entry ${d.path}/${e.name} has no attributes`);
        assert.equal(
          attr.mode & S_IFMT,
          e.type,
          `type of ${d.path}/${e.name} differs between entry and inode`,
        );
        const path = `${d.path}/${e.name}`;
        const isDir = (attr.mode & S_IFMT) === S_IFDIR;
        out.push({ path, ino: e.ino, isDir });
        names.set(e.ino, (names.get(e.ino) ?? 0) + 1);
        if (isDir) {
          subdirCount++;
          queue.push({ ino: e.ino, path, parent: d.ino });
        }
      }
    }
    subdirs.set(d.ino, subdirCount);
  }
  for (const [ino, count] of subdirs) {
    const attr = await svc.getattr(ino);
    assert.equal(attr.nlink, 2 + count, `directory ${ino} has nlink ${attr.nlink}, expected ${2 + count}`);
    if (ino !== ROOT) assert.equal(names.get(ino), 1, `directory ${ino} has ${names.get(ino)} names`);
  }
  for (const [ino, count] of names) {
    if (subdirs.has(ino)) continue;
    const attr = await svc.getattr(ino);
    assert.equal(attr.nlink, count, `inode ${ino} has nlink ${attr.nlink} but ${count} names`);
  }
  const statfs = await svc.statfs();
  assert.equal(statfs.inodesUsed, names.size + 1, 'statfs inode count differs from the reachable inodes');
  return out;
}
