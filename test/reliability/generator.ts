// Seeded generator of random but valid operation sequences for the
// differential tester. Operations are executor request lines (executor.c), so
// a sequence is also its own replay script. The namespace is deliberately
// small (18 paths, up to three levels) so names collide often and the
// ENOENT / EEXIST / ENOTDIR / ENOTEMPTY / EISDIR paths run as much as success.
import type { Identity } from './executor.js';

/** A small, fast, seedable PRNG (mulberry32): the same seed gives the same sequence everywhere. */
export class Random {
  private state: number;
  constructor(seed: number) {
    this.state = seed >>> 0;
  }
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  int(maxExclusive: number): number {
    return Math.floor(this.next() * maxExclusive);
  }
  range(min: number, maxInclusive: number): number {
    return min + this.int(maxInclusive - min + 1);
  }
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)];
  }
  chance(probability: number): boolean {
    return this.next() < probability;
  }
}

export const PATHS: readonly string[] = [
  'a',
  'b',
  'c',
  'd',
  ...['a', 'b', 'c', 'd'].flatMap((top) => ['x', 'y', 'z'].map((leaf) => `${top}/${leaf}`)),
  'a/x/p',
  'a/x/q',
];

// Set-id modes writable by others too, so non-owners' writes and truncates meet them
// (S_ISGID is cleared only with group execute: 02767 keeps it).
const MODES = [
  0o644, 0o600, 0o755, 0o700, 0o777, 0o444, 0o000, 0o640, 0o1777, 0o2775, 0o4755, 0o1700, 0o6777, 0o2767,
  0o4666,
];
const DIR_MODES = [0o755, 0o777, 0o700, 0o1777, 0o2775, 0o555, 0o000, 0o711];
// trusted.* is root's alone: EPERM to set for others, hidden from their reads.
const XATTR_NAMES = ['user.a', 'user.b', 'user.c', 'trusted.t'];
const SLOT_COUNT = 6;
const BLOCK_BOUNDARY_BYTES = 4 * 1024 * 1024;

export interface GeneratorOptions {
  /** Non-root identities (index 1..n in the executor); empty for root-only runs. */
  users: readonly Identity[];
  /** Punch holes only when both sides support it (probed before the run). */
  punchHole: boolean;
  /** Allow offsets around 4 MiB (block boundaries): bigger files, slower tree checks. */
  largeOffsets: boolean;
  /**
   * Areas left out while a target has a known, reported mismatch there (each
   * one kept visible as a todo replay in test/reliability/known/), so random
   * runs keep exploring past it.
   */
  avoid?: readonly Avoid[];
  /** Tag some operations to report ctime/mtime changes (`2t ...`); default true. */
  trackTimes?: boolean;
}

/**
 * `rdonly-trunc`: O_TRUNC only with a writable open; `supplementary-chown`: chown only to
 * primary groups; `long-names`: no names of 255/256 bytes; `acls`: no setacl/rmacl;
 * `sgid-without-gexec`: no S_ISGID file modes without group execute (02767).
 */
export type Avoid = 'rdonly-trunc' | 'supplementary-chown' | 'long-names' | 'acls' | 'sgid-without-gexec';

/** What the generator remembers between operations: which slots it opened (not whether that worked). */
interface State {
  opened: number[];
}

type Op = (r: Random, o: GeneratorOptions, s: State) => string;

/** Names of 255 bytes (the limit) and 256 (ENAMETOOLONG), as executor `@N` components. */
const LONG_NAMES: readonly string[] = ['@255', '@256', 'a/@255', 'a/@256'];
/** Spellings the kernel resolves itself (rmdir "." is EINVAL, "a/.." names the base). */
const DOT_PATHS: readonly string[] = ['.', 'a/.', 'a/..', 'a/x/..'];
// `reg`: mknod(S_IFREG), which reaches a FUSE file system as MKNOD rather than CREATE.
const NODE_TYPES: readonly string[] = ['fifo', 'fifo', 'sock', 'char', 'block', 'reg'];

function fileMode(r: Random, o: GeneratorOptions): number {
  const mode = r.pick(MODES);
  return mode === 0o2767 && o.avoid?.includes('sgid-without-gexec') ? 0o2777 : mode;
}

/** Mostly short values; sometimes empty, a page, the 64 KiB limit, or one byte over (E2BIG). */
function xattrLength(r: Random): number {
  const roll = r.next();
  if (roll < 0.1) return 0;
  if (roll < 0.95) return r.range(1, 200);
  return r.pick([4096, 65536, 65537]);
}

/** Set by generate() from its options (the operation table passes no options to path()). */
let longNames = true;

function path(r: Random): string {
  const roll = r.next();
  if (roll < 0.015 && longNames) return r.pick(LONG_NAMES);
  if (roll < 0.02) return r.pick(DOT_PATHS);
  return r.pick(PATHS);
}

/**
 * A POSIX ACL in the executor's text form (executor-acl.h): owner, named users, owning
 * group, named groups, mask (needed with named entries; left out now and then: EINVAL),
 * other. Named ids are the test users and their groups, sorted as the kernel requires.
 */
function aclSpec(r: Random, o: GeneratorOptions): string {
  const perm = (): number => r.int(8);
  const some = (ids: number[]): number[] =>
    [...new Set(ids)].filter(() => r.chance(0.35)).sort((a, b) => a - b);
  const users = some(o.users.map((u) => u.uid));
  const groups = some(o.users.flatMap((u) => [u.gid, ...u.groups]));
  const entries = [`u::${perm()}`, ...users.map((id) => `u:${id}:${perm()}`), `g::${perm()}`];
  entries.push(...groups.map((id) => `g:${id}:${perm()}`));
  if (users.length + groups.length > 0 && !r.chance(0.05)) entries.push(`m::${perm()}`);
  entries.push(`o::${perm()}`);
  return entries.join(',');
}

/** A symlink target: mostly a namespace path, sometimes nowhere or the link itself (ELOOP). */
function linkTarget(r: Random, link: string): string {
  const roll = r.next();
  if (roll < 0.15) return 'nowhere';
  if (roll < 0.25) return link.split('/').pop() ?? link;
  return r.pick(PATHS);
}

function offset(r: Random, o: GeneratorOptions): number {
  const roll = r.next();
  if (roll < 0.65) return r.int(8192);
  if (roll < 0.9) return r.int(65536);
  if (roll < 0.95 || !o.largeOffsets) return r.pick([4095, 4096, 4097, 131071, 131072]);
  return BLOCK_BOUNDARY_BYTES + r.range(-300, 300);
}

function length(r: Random): number {
  const roll = r.next();
  if (roll < 0.1) return 0;
  if (roll < 0.75) return r.range(1, 4096);
  return r.range(4097, 70000);
}

function uidOf(r: Random, o: GeneratorOptions): number {
  return r.pick([-1, 0, ...o.users.map((u) => u.uid)]);
}

function gidOf(r: Random, o: GeneratorOptions): number {
  const supplementary = !o.avoid?.includes('supplementary-chown');
  return r.pick([-1, 0, ...o.users.flatMap((u) => (supplementary ? [u.gid, ...u.groups] : [u.gid]))]);
}

function openFlags(r: Random, o: GeneratorOptions): string {
  const parts = [r.pick(['r', 'w', 'rw', 'rw'])];
  if (r.chance(0.75)) parts.push('creat');
  if (r.chance(0.15)) parts.push('excl');
  if (r.chance(0.15) && !(parts[0] === 'r' && o.avoid?.includes('rdonly-trunc'))) parts.push('trunc');
  if (r.chance(0.2)) parts.push('append');
  if (r.chance(0.03)) parts.push('directory');
  // O_TMPFILE wants a directory and write access; elsewhere it fails as on any file system.
  else if (parts[0] !== 'r' && r.chance(0.04)) parts.push('tmpfile');
  if (r.chance(0.05)) parts.push('nofollow');
  return parts.join('+');
}

function time(r: Random): string {
  const roll = r.next();
  if (roll < 0.15) return '0 now';
  if (roll < 0.3) return '0 omit';
  // Explicit times stay before 2001 so a later stat tells "set by utimes" from "touched since".
  return `${r.int(1_000_000_000)} ${r.int(1_000_000_000)}`;
}

/** A handle slot for I/O: mostly one opened recently, so reads and writes meet open files. */
function slot(r: Random, s: State): number {
  if (s.opened.length > 0 && r.chance(0.9)) return r.pick(s.opened.slice(-3));
  return r.int(SLOT_COUNT);
}

function openSlot(r: Random, s: State): number {
  const chosen = r.int(SLOT_COUNT);
  s.opened = [...s.opened.filter((x) => x !== chosen), chosen];
  return chosen;
}

function closeSlot(r: Random, s: State): number {
  const chosen = slot(r, s);
  s.opened = s.opened.filter((x) => x !== chosen);
  return chosen;
}
// Octal with a leading 0: the executor parses numbers C-style (strtoll base 0).
const octal = (mode: number): string => `0${mode.toString(8)}`;

/** Weighted operation table: namespace operations dominate so the tree keeps changing shape. */
const OPS: readonly (readonly [number, Op])[] = [
  [
    10,
    (r, o, s) =>
      `open ${openSlot(r, s)} ${r.chance(0.4) ? r.pick(PATHS.slice(0, 4)) : path(r)} ${openFlags(r, o)} ${octal(fileMode(r, o))}`,
  ],
  [3, (r, _o, s) => `close ${closeSlot(r, s)}`],
  [1, (r, _o, s) => `flink ${slot(r, s)} ${path(r)}`],
  [
    2,
    (r, o, s) => `copyrange ${slot(r, s)} ${slot(r, s)} ${offset(r, o)} ${offset(r, o)} ${r.range(0, 70000)}`,
  ],
  [2, (r, o, s) => `mmapwrite ${slot(r, s)} ${offset(r, o)} ${r.range(1, 9000)} ${r.int(1e6)}`],
  [1, (r) => `umask 0${r.pick(['0', '22', '77', '27', '2'])}`],
  [9, (r, o, s) => `write ${slot(r, s)} ${r.chance(0.25) ? '-' : offset(r, o)} ${length(r)} ${r.int(1e6)}`],
  [5, (r, o, s) => `read ${slot(r, s)} ${r.chance(0.2) ? '-' : offset(r, o)} ${r.range(0, 20000)}`],
  [2, (r, o, s) => `ftrunc ${slot(r, s)} ${offset(r, o)}`],
  [2, (r, o) => `trunc ${path(r)} ${offset(r, o)}`],
  [
    2,
    (r, o, s) =>
      `falloc ${slot(r, s)} ${r.pick(o.punchHole ? ['0', 'keep', 'punch', 'punch'] : ['0', 'keep'])} ` +
      `${offset(r, o)} ${r.range(1, 20000)}`,
  ],
  [2, (r, _o, s) => `${r.pick(['fsync', 'fdatasync'])} ${slot(r, s)}`],
  [2, (r, _o, s) => `fstat ${slot(r, s)}`],
  [5, (r) => `stat ${r.chance(0.05) ? '.' : path(r)}`],
  [5, (r) => `mkdir ${path(r)} ${octal(r.pick(DIR_MODES))}`],
  [4, (r) => `rmdir ${path(r)}`],
  [5, (r) => `unlink ${path(r)}`],
  [3, (r) => `link ${path(r)} ${path(r)}`],
  [
    3,
    (r) => {
      const link = path(r);
      return `symlink ${linkTarget(r, link)} ${link}`;
    },
  ],
  [3, (r, o) => `mknod ${path(r)} ${r.pick(NODE_TYPES)} ${octal(fileMode(r, o))}`],
  [1, (r) => `deep ${r.pick(PATHS.slice(0, 4))} ${r.range(1, 14)}`],
  [2, (r) => `statf ${path(r)}`],
  [2, (r) => `readlink ${path(r)}`],
  [6, (r) => `rename ${path(r)} ${path(r)} ${r.pick(['0', '0', '0', 'noreplace', 'exchange'])}`],
  [3, (r, o) => `chmod ${path(r)} ${octal(r.chance(0.6) ? fileMode(r, o) : r.pick(DIR_MODES))}`],
  [2, (r, o) => `chown ${path(r)} ${uidOf(r, o)} ${gidOf(r, o)}`],
  [1, (r, o) => `chownf ${path(r)} ${uidOf(r, o)} ${gidOf(r, o)}`],
  [2, (r) => `utimes ${path(r)} ${time(r)} ${time(r)}`],
  [1, (r) => `lutimes ${path(r)} ${time(r)} ${time(r)}`],
  [
    3,
    (r) =>
      `setxattr ${path(r)} ${r.pick(XATTR_NAMES)} ${xattrLength(r)} ` +
      `${r.int(1e6)} ${r.pick(['0', '0', 'create', 'replace'])}`,
  ],
  [
    1,
    (r) =>
      `lsetxattr ${path(r)} ${r.pick(XATTR_NAMES)} ${r.range(1, 50)} ${r.int(1e6)} ${r.pick(['0', 'create'])}`,
  ],
  [
    2,
    (r) => `getxattr ${path(r)} ${r.pick(XATTR_NAMES)}${r.chance(0.3) ? ` ${r.pick([0, 1, 50, 199])}` : ''}`,
  ],
  [1, (r) => `listsize ${path(r)} ${r.pick([0, 1, 7, 14, 100])}`],
  [
    3,
    (r, o) =>
      o.avoid?.includes('acls')
        ? `stat ${path(r)}`
        : `setacl ${path(r)} ${r.chance(0.7) ? 'access' : 'default'} ${aclSpec(r, o)}`,
  ],
  [
    1,
    (r, o) =>
      o.avoid?.includes('acls')
        ? `stat ${path(r)}`
        : `rmacl ${path(r)} ${r.chance(0.6) ? 'access' : 'default'}`,
  ],
  [1, (r) => `listxattr ${path(r)}`],
  [1, (r) => `removexattr ${path(r)} ${r.pick(XATTR_NAMES)}`],
  [3, (r) => `readdir ${r.chance(0.2) ? '.' : path(r)}`],
  [2, (r) => `access ${path(r)} ${r.pick([0, 1, 2, 4, 6, 7])}`],
];
const TOTAL_WEIGHT = OPS.reduce((sum, [weight]) => sum + weight, 0);

/** The executor request line for one random operation, prefixed with who runs it. */
export function generateOp(r: Random, o: GeneratorOptions, s: State): string {
  // Non-root identities act three times in four, so permission rules dominate.
  const who = o.users.length > 0 && r.chance(0.75) ? r.range(1, o.users.length) : 0;
  // A third of the operations also report which ctimes and mtimes they changed.
  const times = o.trackTimes !== false && r.chance(0.35) ? 't' : '';
  let roll = r.int(TOTAL_WEIGHT);
  for (const [weight, op] of OPS) {
    if (roll < weight) return `${who}${times} ${op(r, o, s)}`;
    roll -= weight;
  }
  throw new Error('unreachable: weights do not add up');
}

/** `count` operations from `seed`: the same arguments always give the same sequence. */
export function generate(seed: number, count: number, o: GeneratorOptions): string[] {
  const r = new Random(seed);
  const state: State = { opened: [] };
  longNames = !o.avoid?.includes('long-names');
  const ops: string[] = [];
  for (let i = 0; i < count; i++) ops.push(generateOp(r, o, state));
  return ops;
}
