// The soak harness's workload: one round of a mixed, verifying workload on a mount (A) and,
// when there is one, a second mount of the same volume (B). Every phase checks what it
// wrote; state that lives across rounds (a file kept open, a git repository, a growing
// directory, files for concurrent readers) is checked against its model each round.
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import {
  mkdir,
  open,
  readdir,
  readFile,
  rename,
  rm,
  stat,
  unlink,
  writeFile,
  type FileHandle,
} from 'node:fs/promises';
import { join } from 'node:path';

export interface PhaseResult {
  ops: number;
  bytes: number;
}

/** Cross-round state; `a`/`b` are the same directory seen through mount A and mount B. */
export interface SoakState {
  a: string;
  b: string | undefined;
  round: number;
  openFile: FileHandle | undefined;
  openModel: Buffer;
  readers: { name: string; sha: string }[];
  renamed: Map<string, string>;
  gitCommits: number;
  growEntries: number;
}

const OPEN_FILE_BYTES = 8 << 20;
const LARGE_FILE_BYTES = 32 << 20;
const GROW_LIMIT = 3000;

const sha = (data: Buffer): string => createHash('sha256').update(data).digest('hex');
const pick = (n: number): number => Math.floor(Math.random() * n);

function check(ok: boolean, what: string): void {
  if (!ok) throw new Error(`soak round: ${what}`);
}

function run(cmd: string, args: string[], cwd?: string, input?: string): string {
  const result = spawnSync(cmd, args, { cwd, encoding: 'utf8', timeout: 300_000, input });
  if (result.status !== 0) {
    throw new Error(`${cmd} ${args.join(' ')} failed (${result.status ?? result.signal}): ${result.stderr}`);
  }
  return result.stdout;
}

/** Files, directories and the open file the rounds build on. */
export async function setUp(a: string, b: string | undefined): Promise<SoakState> {
  const state: SoakState = {
    a,
    b,
    round: 0,
    openFile: undefined,
    openModel: randomBytes(OPEN_FILE_BYTES),
    readers: [],
    renamed: new Map(),
    gitCommits: 0,
    growEntries: 0,
  };
  await mkdir(a);
  for (const dir of ['small', 'ren', 'grow', 'coh', 'read', 'git', 'mmap']) await mkdir(join(a, dir));
  await writeFile(join(a, 'open.bin'), state.openModel);
  state.openFile = await open(join(a, 'open.bin'), 'r+');
  for (let i = 0; i < 6; i++) {
    const data = randomBytes((1 + (i % 3)) << 20);
    await writeFile(join(a, 'read', `r${i}`), data);
    state.readers.push({ name: `read/r${i}`, sha: sha(data) });
  }
  run('git', ['init', '-q'], join(a, 'git'));
  run('git', ['config', 'user.email', 'soak@strata.test'], join(a, 'git'));
  run('git', ['config', 'user.name', 'soak'], join(a, 'git'));
  return state;
}

export async function tearDown(state: SoakState): Promise<void> {
  await state.openFile?.close();
  state.openFile = undefined;
}

/** Small files in many directories: create, write, read back, delete (and the directories). */
async function smallFiles(s: SoakState): Promise<PhaseResult> {
  const base = join(s.a, 'small', `r${s.round}`);
  let bytes = 0;
  const written = new Map<string, string>();
  for (let d = 0; d < 16; d++) {
    await mkdir(join(base, `d${d}`), { recursive: true });
    for (let f = 0; f < 16; f++) {
      const data = randomBytes(100 + pick(16 << 10));
      const path = join(base, `d${d}`, `f${f}`);
      await writeFile(path, data);
      written.set(path, sha(data));
      bytes += data.length;
    }
  }
  for (const [path, digest] of written) check(sha(await readFile(path)) === digest, `${path} reads back`);
  for (const path of written.keys()) await unlink(path);
  await rm(base, { recursive: true });
  check(!existsSync(base), `${base} removed`);
  return { ops: written.size * 3, bytes: bytes * 2 };
}

/** A large sequential write, read back by checksum, then deleted. */
async function largeSequential(s: SoakState): Promise<PhaseResult> {
  const path = join(s.a, 'large.bin');
  const block = randomBytes(1 << 20);
  const hash = createHash('sha256');
  const handle = await open(path, 'w');
  try {
    for (let i = 0; i < LARGE_FILE_BYTES >> 20; i++) {
      block.writeUInt32LE(i, 0); // each MiB differs, so a misplaced block cannot pass
      hash.update(block);
      await handle.write(block, 0, block.length, i << 20);
    }
  } finally {
    await handle.close();
  }
  const expected = hash.digest('hex');
  check(sha(await readFile(path)) === expected, 'large file reads back');
  if (s.b)
    check(sha(await readFile(join(s.b, 'large.bin'))) === expected, 'large file reads back on mount B');
  await unlink(path);
  return { ops: 1, bytes: LARGE_FILE_BYTES * (s.b ? 3 : 2) };
}

/** Random overwrites of a file kept open for the whole run, synced and checked. */
async function randomOverwrites(s: SoakState): Promise<PhaseResult> {
  const handle = s.openFile;
  if (!handle) throw new Error('soak: the open file is not open');
  let bytes = 0;
  for (let i = 0; i < 100; i++) {
    const length = 4096 + pick(60 << 10);
    const offset = pick(OPEN_FILE_BYTES - length);
    const data = randomBytes(length);
    await handle.write(data, 0, length, offset);
    data.copy(s.openModel, offset);
    bytes += length;
    if (i % 25 === 24) await handle.datasync();
  }
  await handle.sync();
  const back = Buffer.alloc(OPEN_FILE_BYTES);
  await handle.read(back, 0, OPEN_FILE_BYTES, 0);
  check(back.equals(s.openModel), 'the open file reads back through its descriptor');
  check(
    (await readFile(join(s.a, 'open.bin'))).equals(s.openModel),
    'the open file reads back on a new open',
  );
  if (s.b)
    check((await readFile(join(s.b, 'open.bin'))).equals(s.openModel), 'the open file, fsynced, on mount B');
  return { ops: 100, bytes };
}

/** Renames across four directories, some over existing names; contents follow their names. */
async function renameChurn(s: SoakState): Promise<PhaseResult> {
  const dirs = ['ren/0', 'ren/1', 'ren/2', 'ren/3'];
  for (const dir of dirs) await mkdir(join(s.a, dir), { recursive: true });
  let serial = s.round * 1000;
  while (s.renamed.size < 40) {
    const name = `${dirs[pick(4)]}/n${serial++}`;
    const content = `${name} ${randomBytes(8).toString('hex')}\n`;
    await writeFile(join(s.a, name), content);
    s.renamed.set(name, content);
  }
  for (let i = 0; i < 200; i++) {
    const names = [...s.renamed.keys()];
    const from = names[pick(names.length)];
    const to = Math.random() < 0.2 ? names[pick(names.length)] : `${dirs[pick(4)]}/n${serial++}`;
    if (to === from) continue;
    await rename(join(s.a, from), join(s.a, to));
    const content = s.renamed.get(from) ?? '';
    s.renamed.delete(from);
    s.renamed.set(to, content);
  }
  const listed = (
    await Promise.all(dirs.map(async (d) => (await readdir(join(s.a, d))).map((n) => `${d}/${n}`)))
  )
    .flat()
    .sort();
  check(
    JSON.stringify(listed) === JSON.stringify([...s.renamed.keys()].sort()),
    'renamed names list as modelled',
  );
  for (const [name, content] of s.renamed) {
    check((await readFile(join(s.a, name), 'utf8')) === content, `${name} keeps its content`);
  }
  return { ops: 200, bytes: 0 };
}

const XATTR_LOCK_SCRIPT = `
import errno, fcntl, os, sys
a, b = sys.argv[1], sys.argv[2]
with open(a, 'w') as f: f.write('x')
fd = os.open(a, os.O_RDWR)
model = {}
for i in range(300):
    name = 'user.k%d' % (i % 16)
    if i % 5 == 4 and name in model:
        os.removexattr(fd, name); del model[name]
    else:
        value = os.urandom(1 + i % 200); os.setxattr(fd, name, value); model[name] = value
        assert os.getxattr(fd, name) == value, name
assert sorted(os.listxattr(fd)) == sorted(model), (os.listxattr(fd), sorted(model))
fb = os.open(b, os.O_RDWR)
for i in range(100):
    fcntl.lockf(fd, fcntl.LOCK_EX, 4096, i * 4096); fcntl.lockf(fd, fcntl.LOCK_UN, 4096, i * 4096)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        fcntl.flock(fb, fcntl.LOCK_EX | fcntl.LOCK_NB); raise SystemExit('flock held through one name was granted through the other')
    except BlockingIOError:
        pass
    fcntl.flock(fd, fcntl.LOCK_UN)
    fcntl.flock(fb, fcntl.LOCK_EX | fcntl.LOCK_NB); fcntl.flock(fb, fcntl.LOCK_UN)
os.close(fb); os.close(fd)
print(300 + 600)
`;

/** xattr set/get/remove/list and lock/unlock cycles, flock conflicts checked across mounts. */
function xattrLockChurn(s: SoakState): PhaseResult {
  const name = `xl${s.round % 4}`;
  const out = run('python3', ['-c', XATTR_LOCK_SCRIPT, join(s.a, name), join(s.b ?? s.a, name)]);
  return { ops: Number(out.trim()), bytes: 0 };
}

/** A commit per round in a repository that grows; fsck now and then. */
function gitCommitLoop(s: SoakState): PhaseResult {
  const repo = join(s.a, 'git');
  spawnSync(
    'bash',
    [
      '-c',
      `echo round ${s.round} >> log.txt && head -c 3000 /dev/urandom | base64 > blob${s.round % 20}.txt`,
    ],
    {
      cwd: repo,
    },
  );
  run('git', ['add', '-A'], repo);
  run('git', ['commit', '-q', '-m', `round ${s.round}`], repo);
  s.gitCommits++;
  check(
    Number(run('git', ['rev-list', '--count', 'HEAD'], repo).trim()) === s.gitCommits,
    'git history complete',
  );
  check(run('git', ['status', '--porcelain'], repo) === '', 'git work tree clean after commit');
  if (s.round % 10 === 9) run('git', ['fsck', '--no-dangling', '--no-progress'], repo);
  return { ops: 1, bytes: 0 };
}

const MMAP_SCRIPT = `
import hashlib, mmap, os, random, sys
path, seed = sys.argv[1], int(sys.argv[2])
size = 4 << 20
rng = random.Random(seed)
fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
os.ftruncate(fd, size)
m = mmap.mmap(fd, size)
for _ in range(512):
    off = rng.randrange(0, size - 4096)
    m[off:off + 4096] = rng.randbytes(4096)
m.flush()
print(hashlib.sha256(m[:]).hexdigest())
m.close(); os.close(fd)
`;

/** An mmap writer: random pages through a shared mapping, msync, then read back. */
async function mmapWriter(s: SoakState): Promise<PhaseResult> {
  const path = join(s.a, 'mmap', `m${s.round % 3}`);
  const expected = run('python3', ['-c', MMAP_SCRIPT, path, String(s.round)]).trim();
  check(sha(await readFile(path)) === expected, 'mmap-written file reads back');
  if (s.b)
    check(sha(await readFile(join(s.b, 'mmap', `m${s.round % 3}`))) === expected, 'mmap file on mount B');
  return { ops: 512, bytes: 512 * 4096 };
}

/** Eight readers at once over files written at set-up, through both mounts. */
async function concurrentReaders(s: SoakState): Promise<PhaseResult> {
  const reads = Array.from({ length: 8 }, (_, i) => {
    const file = s.readers[(i + s.round) % s.readers.length];
    const root = s.b && i % 2 === 1 ? s.b : s.a;
    return readFile(join(root, file.name)).then((data) => {
      check(sha(data) === file.sha, `${file.name} (reader ${i})`);
      return data.length;
    });
  });
  const bytes = (await Promise.all(reads)).reduce((a, b) => a + b, 0);
  return { ops: 8, bytes };
}

/** Close-to-open between the mounts: closed on one, opened whole on the other; open/close + stat loops. */
async function coherence(s: SoakState): Promise<PhaseResult> {
  const other = s.b ?? s.a;
  let ops = 0;
  for (let i = 0; i < 20; i++) {
    const name = `coh/f${i % 5}`;
    const data = randomBytes(1 + pick(64 << 10));
    const [writer, reader] = i % 2 === 0 ? [s.a, other] : [other, s.a];
    await writeFile(join(writer, name), data);
    const handle = await open(join(reader, name), 'r');
    try {
      const size = (await handle.stat()).size;
      const back = await handle.readFile();
      check(back.equals(data), `${name} closed on one mount reads whole on the other`);
      check(size === data.length, `${name}: fstat after open shows the size closed on the other mount`);
    } finally {
      await handle.close();
    }
    ops += 3;
  }
  for (let i = 0; i < 200; i++) {
    const handle = await open(join(other, 'coh', `f${i % 5}`), 'r');
    await handle.close();
    await stat(join(other, 'coh', `f${i % 5}`));
    ops += 3;
  }
  return { ops, bytes: 0 };
}

/** A directory that grows by 100 names a round, listed whole on both mounts, emptied at a cap. */
async function growingDirectory(s: SoakState): Promise<PhaseResult> {
  const dir = join(s.a, 'grow');
  if (s.growEntries >= GROW_LIMIT) {
    for (const name of await readdir(dir)) await unlink(join(dir, name));
    s.growEntries = 0;
  }
  for (let i = 0; i < 100; i++) await writeFile(join(dir, `g${s.growEntries + i}`), '');
  s.growEntries += 100;
  const listed = await readdir(dir);
  check(listed.length === s.growEntries, `grow/ lists ${listed.length} names, wrote ${s.growEntries}`);
  if (s.b) {
    const onB = await readdir(join(s.b, 'grow'));
    check(onB.length === s.growEntries, `grow/ on mount B lists ${onB.length} names, wrote ${s.growEntries}`);
  }
  return { ops: 100 + (s.b ? 2 : 1) * listed.length, bytes: 0 };
}

/** Each phase of a round by name, in the order they run. */
export const PHASES: [string, (s: SoakState) => Promise<PhaseResult> | PhaseResult][] = [
  ['small', smallFiles],
  ['large', largeSequential],
  ['overwrite', randomOverwrites],
  ['rename', renameChurn],
  ['xattrlock', xattrLockChurn],
  ['git', gitCommitLoop],
  ['mmap', mmapWriter],
  ['readers', concurrentReaders],
  ['coherence', coherence],
  ['grow', growingDirectory],
];

/** The whole set of persistent data checked once more (end of run, or after a remount). */
export async function verifyAll(s: SoakState): Promise<void> {
  for (const file of s.readers)
    check(sha(await readFile(join(s.a, file.name))) === file.sha, `${file.name} at the end`);
  check((await readFile(join(s.a, 'open.bin'))).equals(s.openModel), 'open.bin at the end');
  for (const [name, content] of s.renamed)
    check((await readFile(join(s.a, name), 'utf8')) === content, `${name} at the end`);
  check((await readdir(join(s.a, 'grow'))).length === s.growEntries, 'grow/ at the end');
  run('git', ['fsck', '--no-dangling', '--no-progress'], join(s.a, 'git'));
}
