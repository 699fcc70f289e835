import { byteaArray, int4Array, int8Array, textArray } from './binary-array.js';
import { SET_APPLY_OPS } from './schema-set-apply.js';
import { SQL, type Statement } from './sql.js';

/**
 * Typed batches for group commit: a transaction's writes and checks as op codes plus the
 * numbers, texts and byte strings they consume, in order, for `strata_apply3` (migration 9; a
 * set-based path in front of `strata_apply2` of migration 8; 5 before),
 * which runs for each op the same SQL as the prepared statement of the same name. Sent as
 * array parameters of one prepared call, so PostgreSQL parses and plans nothing per change
 * (the SQL-text batches of `strata_try` cost it a parse, literal coercion and a portal per
 * statement).
 *
 * A layout lists the kind of each of a statement's parameters, in parameter order: `n` a number
 * (a safe integer), `t` a text or null, `b` a byte string. strata_apply reads them at the same
 * positions, so a layout here and its op there change together (in a new migration).
 */
const INODE = 'nnnnnnnnnnnnnnntn'; // inodeValues(): 15 numbers, the symlink target, allocated bytes

const OPS: ReadonlyMap<string, { code: number; layout: string }> = new Map(
  (
    [
      [SQL.expectInode, 1, INODE],
      [SQL.updateCheckedInode, 2, `${INODE}${INODE.slice(1)}nn`],
      [SQL.expectDentry, 3, 'ntnnn'],
      [SQL.expectNoDentry, 4, 'nt'],
      [SQL.expectXattr, 5, 'ntb'],
      [SQL.expectNoXattr, 6, 'nt'],
      [SQL.insertInode, 7, `${INODE}n`],
      [SQL.updateInode, 8, `${INODE}nn`],
      [SQL.putInode, 9, `${INODE}nn`],
      [SQL.deleteInode, 10, 'nnn'],
      [SQL.insertDentry, 11, 'ntnnnn'],
      [SQL.putDentry, 12, 'ntnnnnn'],
      [SQL.deleteDentry, 13, 'ntnn'],
      [SQL.putXattr, 14, 'ntbnn'],
      [SQL.deleteXattr, 15, 'ntnn'],
      [SQL.putChunk, 16, 'nnbnn'],
      [SQL.deleteChunk, 17, 'nnnn'],
      [SQL.addShardedCounter, 18, 'tnn'],
      [SQL.putCallOutcome, 19, 'tnbn'],
      [SQL.recordDeletedSlice, 20, 'nnn'],
    ] as const
  ).map(([statement, code, layout]) => [statement.name, { code, layout }]),
);

/** A statement of a transaction's batch and its parameters. */
export interface BatchOp {
  statement: Statement;
  values: readonly unknown[];
}

/** One transaction's batch, typed: what `GroupCommitter.commitTyped` sends. */
export interface TypedBatch {
  ops: number[];
  nums: number[];
  texts: (string | null)[];
  blobs: Buffer[];
}

/**
 * The batch as typed arrays, or undefined when one of its statements has no op in strata_apply
 * (or a value of an unexpected kind): such a batch goes as SQL text (strata_try) instead.
 */
export function encodeBatch(batch: readonly BatchOp[]): TypedBatch | undefined {
  const typed: TypedBatch = { ops: [], nums: [], texts: [], blobs: [] };
  for (const { statement, values } of batch) {
    const op = OPS.get(statement.name);
    if (op === undefined || values.length !== op.layout.length) return undefined;
    typed.ops.push(op.code);
    for (let i = 0; i < values.length; i++) {
      const value = values[i];
      const kind = op.layout.charCodeAt(i);
      if (kind === 0x6e /* n */) {
        if (typeof value !== 'number' || !Number.isSafeInteger(value)) return undefined;
        typed.nums.push(value);
      } else if (kind === 0x74 /* t */) {
        if (value !== null && typeof value !== 'string') return undefined;
        typed.texts.push(value);
      } else {
        if (!Buffer.isBuffer(value)) return undefined;
        typed.blobs.push(value);
      }
    }
  }
  return typed;
}

/** The call that applies a group's typed batches (one implicit transaction). */
export const APPLY_GROUP: Statement = {
  name: 'strata_apply_group3',
  text:
    'SELECT member, state, constraint_name, message FROM strata_apply3(' +
    '$1::int[], $2::bigint[], $3::text[], $4::bytea[], $5::int[], $6::int[], $7::int[], $8::int[], ' +
    '$9::int[], $10::int[], $11::int[], $12::int[])',
};

/** How many numbers, texts and byte strings each op code consumes. */
const SIZES: ReadonlyMap<number, readonly [number, number, number]> = new Map(
  [...OPS.values()].map(({ code, layout }) => {
    const count = (kind: string) => [...layout].filter((c) => c === kind).length;
    return [code, [count('n'), count('t'), count('b')] as const];
  }),
);
/** How many numbers each op code consumes, indexed by code. */
const NUMS_OF_OP: readonly number[] = [...SIZES].reduce<number[]>((byCode, [code, [nums]]) => {
  byCode[code] = nums;
  return byCode;
}, []);
const INODE_OPS = new Set([1, 2, 7, 8, 9, 10]);
const DENTRY_OPS = new Set([3, 4, 11, 12, 13]);
const XATTR_OPS = new Set([5, 6, 14, 15]);
/** Ops that only check a row (and lock it): expect_inode, expect_dentry, expect_no_dentry, expect_xattr, expect_no_xattr. */
const CHECK_OPS = new Set([1, 3, 4, 5, 6]);
const CALL_OUTCOME_OP = 19;
const SHARDED_COUNTER_OP = 18;

/**
 * The parameters of APPLY_GROUP for the batches of a group, in member order (1-based), as
 * binary arrays (binary-array.ts). When the group may take strata_apply3's set-based path (two
 * members or more, only ops that path knows, no row touched twice: schema-set-apply.ts), also
 * where each op's values start and how many ops of each code there are; else NULLs, and the
 * group runs member by member. `counterShard`: see pinCounterShard.
 */
export function groupParameters(batches: readonly TypedBatch[], counterShard?: number): unknown[] {
  const all: TypedBatch = { ops: [], nums: [], texts: [], blobs: [] };
  const ends: number[][] = [[], [], [], []];
  for (const batch of batches) {
    for (const op of batch.ops) all.ops.push(op);
    for (const num of batch.nums) all.nums.push(num);
    for (const text of batch.texts) all.texts.push(text);
    for (const blob of batch.blobs) all.blobs.push(blob);
    ends[0].push(all.ops.length);
    ends[1].push(all.nums.length);
    ends[2].push(all.texts.length);
    ends[3].push(all.blobs.length);
  }
  if (counterShard !== undefined) pinCounterShard(all, counterShard);
  const set = batches.length > 1 ? setPath(all, ends[0]) : undefined;
  return [
    int4Array(all.ops),
    int8Array(all.nums),
    textArray(all.texts),
    byteaArray(all.blobs),
    ...ends.map(int4Array),
    ...(set
      ? [int4Array(set.opn), int4Array(set.opt), int4Array(set.opb), int4Array(set.counts)]
      : NO_SET_PATH),
  ];
}

/**
 * Points every sharded-counter op of a group at one shard. Each transaction picked a shard at
 * random so that transactions committing one by one rarely wait for each other; a group carries
 * dozens of them, so its random shards covered most of the 64 rows and every other group in
 * flight (this server's second one, other servers') waited for its commit on one of them, or
 * deadlocked with it. The sum of a counter's shards is its value: which shard a delta goes to
 * does not matter.
 */
function pinCounterShard(group: TypedBatch, shard: number): void {
  let n = 0;
  for (const code of group.ops) {
    if (code === SHARDED_COUNTER_OP) group.nums[n] = shard;
    n += NUMS_OF_OP[code];
  }
}

const NO_SET_PATH = [null, null, null, null] as const;

/** Where each op's values start (1-based) and how many ops of each code: the set-based path's arguments. */
interface SetPath {
  opn: number[];
  opt: number[];
  opb: number[];
  counts: number[];
}

/** The index in groupParameters' result of opn: null when the group runs member by member. */
export const SET_PATH_PARAMETER = 8;

/**
 * opn, opt, opb and counts for the set-based path, or undefined when the group cannot take it: an op
 * that path does not know, or a row that two members touch, or that one member writes twice
 * (the path runs every check before every write, and each kind of write once for the group;
 * a member's checks of a row it then writes come before the write in its own batch too).
 */
function setPath(group: TypedBatch, opEnds: readonly number[]): SetPath | undefined {
  const opn: number[] = [];
  const opt: number[] = [];
  const opb: number[] = [];
  const counts: number[] = new Array<number>(SIZES.size).fill(0);
  /** Row key -> the member touching it, negative once that member wrote it. */
  const rows = new Map<string, number>();
  let n = 0;
  let t = 0;
  let b = 0;
  let member = 1;
  for (let index = 0; index < group.ops.length; index++) {
    while (index >= opEnds[member - 1]) member++;
    const code = group.ops[index];
    if (!SET_APPLY_OPS.has(code)) return undefined;
    let row: string | undefined;
    if (INODE_OPS.has(code)) row = `i${group.nums[n]}`;
    else if (DENTRY_OPS.has(code)) row = `d${group.nums[n]}/${group.texts[t]}`;
    else if (XATTR_OPS.has(code)) row = `x${group.nums[n]}/${group.texts[t]}`;
    else if (code === CALL_OUTCOME_OP) row = `o${group.texts[t]}/${group.nums[n]}`;
    else if (code !== SHARDED_COUNTER_OP) return undefined;
    if (row !== undefined) {
      const owner = rows.get(row);
      if (owner !== undefined && (owner === -member || Math.abs(owner) !== member)) return undefined;
      rows.set(row, CHECK_OPS.has(code) ? member : -member);
    }
    opn.push(n + 1);
    opt.push(t + 1);
    opb.push(b + 1);
    counts[code - 1]++;
    const [nums, texts, blobs] = SIZES.get(code)!;
    n += nums;
    t += texts;
    b += blobs;
  }
  return { opn, opt, opb, counts };
}

/** A failed member of a group, as strata_apply reports it. */
export interface ApplyFailure {
  member: number;
  state: string;
  constraint_name: string | null;
  message: string;
}
