// The Node side of the C executor (executor.c): compiles it once per source
// version, runs one long-lived process per directory under test, and turns its
// line protocol into promises.
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

/** A user the executor can act as: index 0 is always root; these follow it. */
export interface Identity {
  uid: number;
  gid: number;
  groups: number[];
}

/** The non-root identities of multi-user runs: two users sharing a group, one outsider. */
export const TEST_USERS: readonly Identity[] = [
  { uid: 2001, gid: 2001, groups: [2100] },
  { uid: 2002, gid: 2002, groups: [2100] },
  { uid: 2003, gid: 2003, groups: [] },
];

export function formatIdentity(id: Identity): string {
  return `${id.uid}:${id.gid}${id.groups.length > 0 ? `:${id.groups.join(',')}` : ''}`;
}

export function parseIdentity(text: string): Identity {
  const match = /^(\d+):(\d+)(?::([\d,]+))?$/.exec(text);
  if (!match) throw new Error(`identity "${text}" is not UID:GID[:G1,G2]`);
  const groups = match[3] ? match[3].split(',').map(Number) : [];
  return { uid: Number(match[1]), gid: Number(match[2]), groups };
}

/**
 * The repository root: the nearest directory above this file holding
 * package.json (works from dist/); a build outside the repo (/tmp/dist-rel)
 * falls back to the working directory, which the test runner sets to the repo.
 */
export function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, 'package.json'))) return dir;
    const parent = dirname(dir);
    if (parent === dir) return process.cwd();
    dir = parent;
  }
}

const CACHE_DIR = '/tmp/strata-rel-executor';

/** Compiles test/reliability/NAME.c with gcc (cached by source hash) and returns the binary's path. */
export function buildHelper(name: string): string {
  const source = join(repoRoot(), 'test', 'reliability', `${name}.c`);
  if (!existsSync(source)) {
    throw new Error(`helper source ${source} not found: run from the repository root`);
  }
  // Headers beside it (NAME-*.h, included by the source) are part of the build.
  const hasher = createHash('sha256').update(readFileSync(source));
  const folder = dirname(source);
  for (const header of readdirSync(folder)
    .filter((f) => f.startsWith(`${name}-`) && f.endsWith('.h'))
    .sort()) {
    hasher.update(header).update(readFileSync(join(folder, header)));
  }
  const hash = hasher.digest('hex').slice(0, 16);
  const binary = join(CACHE_DIR, `${name}-${hash}`);
  if (existsSync(binary)) return binary;
  mkdirSync(CACHE_DIR, { recursive: true });
  // Compile to a private name and rename: concurrent test files may race here.
  const partial = `${binary}.${process.pid}`;
  const result = spawnSync('gcc', ['-O2', '-Wall', '-o', partial, source], { encoding: 'utf8' });
  if (result.status !== 0) {
    throw new Error(`gcc failed to build ${source} (is gcc installed?):\n${result.stderr}`);
  }
  renameSync(partial, binary);
  return binary;
}

export interface ExecutorOptions {
  /** Directory the executor works under (each run makes a fresh base directory in it). */
  root: string;
  users?: readonly Identity[];
  /** A deliberate bug (executor.c --plant), to prove the tester notices misbehaviour. */
  plant?: string;
  /** A request not answered within this long means a hung file system. */
  requestTimeoutMs?: number;
  /** Report the mtime class in stat results (default true). */
  compareMtime?: boolean;
  /** Leave S_ISUID/S_ISGID of non-directories out of stat results (default false). */
  maskFileSetid?: boolean;
}

/** One executor process bound to one directory; requests are answered in order. */
export class Executor {
  private readonly child: ChildProcessWithoutNullStreams;
  private readonly waiting: { resolve: (line: string) => void; reject: (e: Error) => void }[] = [];
  private stderr = '';
  private exited: Error | undefined;
  private readonly requestTimeoutMs: number;

  constructor(readonly options: ExecutorOptions) {
    const args = [options.root];
    for (const user of options.users ?? []) args.push('--user', formatIdentity(user));
    if (options.plant) args.push('--plant', options.plant);
    if (options.compareMtime === false) args.push('--no-mtime');
    if (options.maskFileSetid) args.push('--mask-file-setid');
    this.requestTimeoutMs = options.requestTimeoutMs ?? 60_000;
    this.child = spawn(buildHelper('executor'), args, { stdio: ['pipe', 'pipe', 'pipe'] });
    this.child.stderr.setEncoding('utf8');
    this.child.stderr.on('data', (chunk: string) => {
      this.stderr = (this.stderr + chunk).slice(-4096);
    });
    createInterface({ input: this.child.stdout }).on('line', (line) => {
      this.waiting.shift()?.resolve(line);
    });
    this.child.on('exit', (code, signal) => {
      this.exited = new Error(
        `executor for ${options.root} exited (code ${code}, signal ${signal}): ${this.stderr.trim()}`,
      );
      for (const w of this.waiting.splice(0)) w.reject(this.exited);
    });
  }

  /** Sends one request line and resolves with the reply line. */
  request(line: string): Promise<string> {
    if (this.exited) return Promise.reject(this.exited);
    return new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => {
        // Replies would now pair with the wrong requests: this executor is done.
        this.exited = new Error(
          `no reply in ${this.requestTimeoutMs} ms from the executor on ${this.options.root} ` +
            `to "${line}": the file system under test looks hung`,
        );
        this.child.kill('SIGKILL');
        reject(this.exited);
      }, this.requestTimeoutMs);
      this.waiting.push({
        resolve: (reply) => {
          clearTimeout(timer);
          resolve(reply);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
      this.child.stdin.write(`${line}\n`);
    });
  }

  /** Ends the process: closing stdin lets it exit; SIGKILL if it does not. */
  async close(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const done = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    this.child.stdin.end();
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 5000);
    await done;
    clearTimeout(timer);
  }
}
