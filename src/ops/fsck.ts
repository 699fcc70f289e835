import { PassThrough } from 'node:stream';
import { createInterface } from 'node:readline';
import type { Ino, SliceRef } from '../common/index.js';
import { blockAt, blockKey } from '../data/index.js';
import {
  COUNTER_USED_BYTES,
  alignedBytes,
  fileCoveredBytes,
  dumpMeta,
  type Engine,
  type InodeRow,
} from '../meta/index.js';
import type { ObjectStore } from '../object/index.js';

/**
 * `strata fsck`: checks a volume's metadata invariants and that every block its files
 * refer to exists in the object store, and reports each problem with what to do about it.
 * With `repair`, fixes what is safe to fix from the metadata alone (link counts, directory
 * parent pointers, allocated bytes, usage counters); lost data is never "repaired" by guessing.
 *
 * It reads the volume through the metadata dump (one consistent read of the namespace
 * reachable from the root), so it holds the namespace in memory: fine for millions of
 * files, not for billions. Unreachable inodes do not appear in the dump; they show up as a
 * difference in the inode counter. Run it with the volume unmounted: `repair` refuses
 * while any client session is registered.
 */

const S_IFMT = 0o170000;
const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const COUNTER_INODES = 'inodes_used';
/** Object existence checks in flight at once. */
const HEAD_CONCURRENCY = 16;

export type FsckCode =
  | 'dangling-entry'
  | 'entry-type'
  | 'link-count'
  | 'directory-parent'
  | 'allocated-bytes'
  | 'missing-object'
  | 'counter';

export interface FsckProblem {
  code: FsckCode;
  ino?: number;
  /** What is wrong, for people. */
  message: string;
  /** What to do about it (or what `repair` did). */
  suggestion: string;
  /** Whether `repair` can fix it safely. */
  repairable: boolean;
  repaired: boolean;
}

export interface FsckReport {
  inodes: number;
  dentries: number;
  blocksChecked: number;
  problems: FsckProblem[];
}

export interface FsckOptions {
  engine: Engine;
  store: ObjectStore;
  repair?: boolean;
  /** Skip the object store (metadata-only check: much faster on a remote store). */
  skipObjects?: boolean;
}

interface InodeRecord {
  row: InodeRow;
  chunks: Array<[number, SliceRef[]]>;
}

interface DentryRecord {
  parent: number;
  name: string;
  ino: number;
  type: number;
}

interface Namespace {
  inodes: Map<number, InodeRecord>;
  dentries: DentryRecord[];
  counters: Map<string, number>;
}

async function readNamespace(engine: Engine): Promise<Namespace> {
  const stream = new PassThrough();
  const ns: Namespace = { inodes: new Map(), dentries: [], counters: new Map() };
  const parsing = (async () => {
    let ended = false;
    for await (const line of createInterface({ input: stream })) {
      const record = JSON.parse(line) as { t: string } & Record<string, unknown>;
      if (record.t === 'inode') {
        const inode = record as unknown as { row: InodeRow; chunks: Array<[number, SliceRef[]]> };
        ns.inodes.set(inode.row.ino as number, { row: inode.row, chunks: inode.chunks });
      } else if (record.t === 'dentry') {
        ns.dentries.push(record as unknown as DentryRecord);
      } else if (record.t === 'counter') {
        ns.counters.set(String(record.name), Number(record.value));
      } else if (record.t === 'end') {
        ended = true;
      }
    }
    if (!ended) throw new Error('the metadata dump ended early; fsck cannot judge a partial namespace');
  })();
  const dumping = dumpMeta(engine, stream).finally(() => stream.end());
  await Promise.all([dumping, parsing]);
  return ns;
}

const isDir = (mode: number): boolean => (mode & S_IFMT) === S_IFDIR;

/** Checks the volume behind `engine` and `store`; with `repair`, fixes what is safe. */
export async function fsck(options: FsckOptions): Promise<FsckReport> {
  const ns = await readNamespace(options.engine);
  const problems: FsckProblem[] = [];
  const problem = (p: Omit<FsckProblem, 'repaired'>): FsckProblem => {
    const full = { ...p, repaired: false };
    problems.push(full);
    return full;
  };

  // Expected link counts and parents, from the entries.
  const links = new Map<number, number>();
  const subdirs = new Map<number, number>();
  const parentOf = new Map<number, number>();
  for (const d of ns.dentries) {
    const target = ns.inodes.get(d.ino);
    if (!target) {
      problem({
        code: 'dangling-entry',
        ino: d.ino,
        message: `entry "${d.name}" in directory ${d.parent} names inode ${d.ino}, which does not exist`,
        suggestion: `remove the entry (rm) or restore the directory as of a time before the damage`,
        repairable: false,
      });
      continue;
    }
    if ((target.row.mode & S_IFMT) !== d.type) {
      problem({
        code: 'entry-type',
        ino: d.ino,
        message: `entry "${d.name}" in directory ${d.parent} says type ${d.type.toString(8)}, inode ${d.ino} is ${(target.row.mode & S_IFMT).toString(8)}`,
        suggestion:
          'report it: the metadata service wrote an inconsistent entry; copy the data out and recreate the file',
        repairable: false,
      });
    }
    links.set(d.ino, (links.get(d.ino) ?? 0) + 1);
    if (isDir(target.row.mode)) {
      subdirs.set(d.parent, (subdirs.get(d.parent) ?? 0) + 1);
      parentOf.set(d.ino, d.parent);
    }
  }

  const fixes: InodeRow[] = [];
  let usedBytes = 0;
  for (const { row, chunks } of ns.inodes.values()) {
    const ino = row.ino as number;
    let expectedAllocated = 0;
    if ((row.mode & S_IFMT) === S_IFREG) {
      expectedAllocated = fileCoveredBytes(chunks);
      usedBytes += alignedBytes(expectedAllocated);
    }
    const dir = isDir(row.mode);
    const expectedLinks = dir ? 2 + (subdirs.get(ino) ?? 0) : (links.get(ino) ?? 0);
    const expectedParent = dir ? (parentOf.get(ino) ?? ino) : (row.parent as number);
    const allocated = row.allocatedBytes as number | undefined;
    if (row.nlink === expectedLinks && row.parent === expectedParent && allocated === expectedAllocated)
      continue;
    const fixed: InodeRow = {
      ...row,
      nlink: expectedLinks,
      parent: expectedParent as Ino,
      allocatedBytes: expectedAllocated,
    };
    if (allocated !== expectedAllocated) {
      problem({
        code: 'allocated-bytes',
        ino,
        message: `inode ${ino} records ${allocated ?? 'no'} allocated bytes but its chunks cover ${expectedAllocated} with data`,
        suggestion: `strata fsck --repair sets it to ${expectedAllocated} (st_blocks, du and statfs count it)`,
        repairable: true,
      });
    }
    if (row.nlink !== expectedLinks) {
      problem({
        code: 'link-count',
        ino,
        message: `inode ${ino} has nlink ${row.nlink} but ${expectedLinks} ${dir ? '(2 + subdirectories)' : 'entries name it'}`,
        suggestion: `strata fsck --repair sets nlink to ${expectedLinks}`,
        repairable: true,
      });
    }
    if (row.parent !== expectedParent) {
      problem({
        code: 'directory-parent',
        ino,
        message: `directory ${ino} records parent ${row.parent as number} but lives in ${expectedParent}`,
        suggestion: `strata fsck --repair sets its parent to ${expectedParent} (".." follows it)`,
        repairable: true,
      });
    }
    fixes.push(fixed);
  }

  const counterDeltas: Array<[string, number]> = [];
  for (const [name, expected] of [
    [COUNTER_INODES, ns.inodes.size],
    [COUNTER_USED_BYTES, usedBytes],
  ] as const) {
    const actual = ns.counters.get(name);
    if (actual === undefined || actual === expected) continue;
    problem({
      code: 'counter',
      message: `counter ${name} is ${actual}, the namespace reachable from the root adds up to ${expected}`,
      suggestion:
        name === COUNTER_INODES && actual > expected
          ? `${actual - expected} inode(s) are unreachable (e.g. open at a crash); strata fsck --repair resets the counter`
          : `strata fsck --repair sets it to ${expected}`,
      repairable: true,
    });
    counterDeltas.push([name, expected - actual]);
  }

  const blocksChecked = options.skipObjects ? 0 : await checkObjects(ns, options.store, problem);

  if (options.repair && (fixes.length > 0 || counterDeltas.length > 0)) {
    await options.engine.write(async (tx) => {
      const sessions = await tx.listSessions();
      if (sessions.length > 0) {
        throw new Error(
          `fsck --repair needs the volume unmounted, but ${sessions.length} client session(s) are registered; unmount every client (or wait for their sessions to expire) and retry`,
        );
      }
      for (const row of fixes) await tx.putInode(row);
      for (const [name, delta] of counterDeltas) await tx.addCounter(name, delta);
    });
    for (const p of problems) if (p.repairable) p.repaired = true;
  }
  return { inodes: ns.inodes.size, dentries: ns.dentries.length, blocksChecked, problems };
}

/** Heads every block any slice of any file refers to; each missing one is a problem. */
async function checkObjects(
  ns: Namespace,
  store: ObjectStore,
  problem: (p: Omit<FsckProblem, 'repaired'>) => FsckProblem,
): Promise<number> {
  const wanted = new Map<string, number>(); // key -> an inode that needs it
  for (const { row, chunks } of ns.inodes.values()) {
    for (const [, slices] of chunks) {
      for (const slice of slices) {
        if ((slice.id as number) === 0 || slice.lengthBytes <= 0) continue;
        const end = slice.sliceOffsetBytes + slice.lengthBytes;
        for (let offset = slice.sliceOffsetBytes; offset < end;) {
          const block = blockAt(slice, offset);
          wanted.set(blockKey(block), row.ino as number);
          offset = (block.blockIndex + 1) * slice.blockSizeBytes;
        }
      }
    }
  }
  const keys = [...wanted.keys()];
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < keys.length) {
      const key = keys[next++];
      if ((await store.head(key)) !== null) continue;
      const ino = wanted.get(key);
      problem({
        code: 'missing-object',
        ino,
        message: `block ${key} of inode ${ino} is missing from the object store`,
        suggestion: `the bytes it held read as an error: restore the file as of an earlier time if a version without this block exists, otherwise copy out what is readable and delete the file`,
        repairable: false,
      });
    }
  };
  await Promise.all(Array.from({ length: HEAD_CONCURRENCY }, worker));
  return keys.length;
}
