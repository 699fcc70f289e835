import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { chownSync, existsSync, mkdirSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { sh } from './harness.js';

/**
 * A private PostgreSQL cluster whose data directory is on a StrataFS mount, run as the
 * `postgres` user on a Unix socket in a temp dir (no TCP port: the shared test cluster on
 * 55432 is never touched). Helpers for the crash tests of databases.test.ts.
 */

/** The newest Debian PostgreSQL's bin directory, or undefined when none is installed. */
export function postgresBinDir(): string | undefined {
  const base = '/usr/lib/postgresql';
  if (!existsSync(base)) return undefined;
  const versions = readdirSync(base)
    .filter((name) => existsSync(join(base, name, 'bin', 'initdb')))
    .sort((a, b) => Number(b) - Number(a));
  return versions.length === 0 ? undefined : join(base, versions[0], 'bin');
}

/** Runs a program as the postgres user, throwing with its output when it fails. */
export function asPostgres(args: string[], timeoutMs = 120_000): { status: number; output: string } {
  const result = spawnSync('runuser', ['-u', 'postgres', '--', ...args], {
    encoding: 'utf8',
    timeout: timeoutMs,
    killSignal: 'SIGKILL',
    cwd: '/',
  });
  return { status: result.status ?? -1, output: `${result.stdout}${result.stderr}` };
}

function mustAsPostgres(args: string[], timeoutMs?: number): string {
  const result = asPostgres(args, timeoutMs);
  if (result.status !== 0) throw new Error(`${args.join(' ')} failed (${result.status}):\n${result.output}`);
  return result.output;
}

export class PgCluster {
  /** The postmaster of the last start, kept so a crash can be cleaned up without reading the mount. */
  postmasterPid: number | undefined;

  /**
   * A cluster (not yet initdb-ed) whose data directory is `MNT/pg/data`, owned by postgres, with
   * its socket and log in `ROOT/sock`. `port` only names the socket file: no TCP listener.
   */
  static onMount(bin: string, root: string, mnt: string, port: number): PgCluster {
    const uid = Number(sh('id -u postgres').trim());
    const gid = Number(sh('id -g postgres').trim());
    sh(`chmod 755 ${root}`);
    const socketDir = join(root, 'sock');
    mkdirSync(socketDir, { recursive: true });
    chownSync(socketDir, uid, gid);
    mkdirSync(join(mnt, 'pg'), { mode: 0o700 });
    chownSync(join(mnt, 'pg'), uid, gid);
    return new PgCluster(bin, join(mnt, 'pg', 'data'), socketDir, join(socketDir, 'server.log'), port);
  }

  constructor(
    readonly bin: string,
    readonly dataDir: string,
    readonly socketDir: string,
    readonly logFile: string,
    readonly port: number,
  ) {}

  /** initdb with data checksums, so a torn or stale page read after recovery fails loudly. */
  initdb(): void {
    mustAsPostgres([
      join(this.bin, 'initdb'),
      '-D',
      this.dataDir,
      '-A',
      'trust',
      '-U',
      'postgres',
      '--data-checksums',
      '--no-locale',
      '-E',
      'UTF8',
      '--no-sync',
    ]);
  }

  /** pg_ctl start, waiting until it accepts connections (crash recovery included). */
  start(): void {
    const options = `-p ${this.port} -k ${this.socketDir} -c listen_addresses= -c max_connections=20 -c shared_buffers=16MB`;
    const started = asPostgres([
      join(this.bin, 'pg_ctl'),
      '-D',
      this.dataDir,
      '-l',
      this.logFile,
      '-o',
      options,
      '-w',
      '-t',
      '120',
      'start',
    ]);
    if (started.status !== 0) throw new Error(`pg_ctl start failed:\n${started.output}\n${this.log()}`);
    this.postmasterPid = Number(readFileSync(join(this.dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
  }

  /** pg_ctl stop: `fast` is a clean shutdown, `immediate` the PostgreSQL crash (no checkpoint). */
  stop(mode: 'fast' | 'immediate'): void {
    mustAsPostgres([join(this.bin, 'pg_ctl'), '-D', this.dataDir, '-m', mode, '-w', '-t', '60', 'stop']);
    this.postmasterPid = undefined;
  }

  /**
   * After a crash of its backends (a PANIC on an I/O error), the postmaster recovers by itself
   * if it can still read the data directory, else it exits: waits for either, and starts it
   * again in the second case. Resolves once it accepts connections.
   */
  async recoverAfterPanic(timeoutMs = 60_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (this.postmasterPid === undefined || !existsSync(`/proc/${this.postmasterPid}`)) {
        this.start();
        return;
      }
      if (this.run('pg_isready', ['-d', 'postgres']).status === 0) return;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    throw new Error(`PostgreSQL neither recovered nor exited in ${timeoutMs} ms:\n${this.log()}`);
  }

  /**
   * For `after` hooks: an immediate stop while the mount still answers, then whatever is left of
   * the cluster's processes is reaped (a crashed mount leaves them failing on ENOTCONN).
   */
  async shutDown(mountAlive: boolean): Promise<void> {
    if (this.postmasterPid !== undefined && mountAlive) {
      try {
        this.stop('immediate');
      } catch {
        // reaped below
      }
    }
    await this.reapAfterMountLoss(5_000);
  }

  /** The server log so far, for failure messages. */
  log(): string {
    return existsSync(this.logFile) ? readFileSync(this.logFile, 'utf8').slice(-6000) : '';
  }

  /** Runs a program of the PostgreSQL bin directory against this cluster. */
  run(program: string, args: string[], timeoutMs?: number): { status: number; output: string } {
    return asPostgres(
      [join(this.bin, program), '-h', this.socketDir, '-p', String(this.port), '-U', 'postgres', ...args],
      timeoutMs,
    );
  }

  mustRun(program: string, args: string[], timeoutMs?: number): string {
    const result = this.run(program, args, timeoutMs);
    if (result.status !== 0) {
      throw new Error(
        `${program} ${args.join(' ')} failed (${result.status}):\n${result.output}\n${this.log()}`,
      );
    }
    return result.output;
  }

  /** One row per line, columns separated by |. */
  query(sql: string): string {
    return this.mustRun('psql', [
      '-X',
      '-A',
      '-t',
      '-v',
      'ON_ERROR_STOP=1',
      '-d',
      'postgres',
      '-c',
      sql,
    ]).trim();
  }

  client(): pg.Client {
    const client = new pg.Client({
      host: this.socketDir,
      port: this.port,
      user: 'postgres',
      database: 'postgres',
      // A backend stuck on a dead mount must not hang the test: the crash ends every query.
      query_timeout: 60_000,
    });
    client.on('error', () => undefined);
    return client;
  }

  /**
   * After the mount under it died: waits for the postmaster to give up (it PANICs on the
   * first ENOTCONN), then SIGKILLs whatever of this cluster is left. Processes are found by
   * their working directory (every PostgreSQL process chdirs to the data directory), which
   * readlink answers without touching the dead mount; call it before `umount -l`.
   */
  async reapAfterMountLoss(timeoutMs = 20_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.postmasterPid !== undefined && exists(this.postmasterPid) && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    const left = this.processes();
    for (const pid of left) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone already
      }
    }
    // A new postmaster refuses to start while the old pid exists, even as a zombie not yet reaped.
    while ([...left, this.postmasterPid ?? -1].some(exists) && Date.now() < deadline + 10_000) {
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    this.postmasterPid = undefined;
  }

  /** Processes whose working directory is this cluster's data directory. */
  processes(): number[] {
    const found: number[] = [];
    for (const name of readdirSync('/proc')) {
      if (!/^\d+$/.test(name)) continue;
      try {
        if (readlinkSync(`/proc/${name}/cwd`).startsWith(this.dataDir)) found.push(Number(name));
      } catch {
        // exited, or not ours to read
      }
    }
    return found;
  }
}

function exists(pid: number): boolean {
  return existsSync(`/proc/${pid}`);
}

/**
 * Clients that each insert rows one autocommit transaction at a time (synchronous_commit=on)
 * and remember every id whose INSERT returned: those commits were acknowledged, so they must
 * be there after any crash. Stops at the first error (the crash) or at `stop()`.
 */
export class AckedInserts {
  readonly acked: number[] = [];
  readonly errors: string[] = [];
  private running = true;
  private readonly loops: Promise<void>[] = [];

  constructor(
    private readonly cluster: PgCluster,
    clients: number,
    /** Ids start here: above every id of earlier runs. */
    firstId: number,
    private readonly table = 'acks',
  ) {
    for (let c = 0; c < clients; c++) this.loops.push(this.loop(firstId + c, clients));
  }

  private async loop(first: number, stride: number): Promise<void> {
    const client = this.cluster.client();
    try {
      await client.connect();
      await client.query('SET synchronous_commit = on');
      for (let id = first; this.running; id += stride) {
        await client.query(`INSERT INTO ${this.table}(id, pad) VALUES ($1, repeat('x', 300))`, [id]);
        this.acked.push(id);
      }
    } catch (err) {
      this.errors.push(err instanceof Error ? err.message : String(err));
    } finally {
      await client.end().catch(() => undefined);
    }
  }

  /** Resolves once `count` inserts were acknowledged; throws if every client has failed. */
  async waitFor(count: number, timeoutMs = 60_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.acked.length < count) {
      if (this.errors.length === this.loops.length)
        throw new Error(`inserts failed: ${this.errors.join('; ')}`);
      if (Date.now() > deadline) throw new Error(`only ${this.acked.length} of ${count} inserts in time`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  async stop(): Promise<void> {
    this.running = false;
    await Promise.all(this.loops);
  }

  /** Settles the loops after a crash ended them (each has failed or will within query_timeout). */
  async settled(): Promise<void> {
    await Promise.all(this.loops);
  }
}

/** Starts pgbench in the background; resolves with its output once it exits. */
export function pgbenchInBackground(cluster: PgCluster, args: string[]): Promise<string> {
  const child = spawn(
    'runuser',
    [
      '-u',
      'postgres',
      '--',
      join(cluster.bin, 'pgbench'),
      '-h',
      cluster.socketDir,
      '-p',
      String(cluster.port),
      '-U',
      'postgres',
      ...args,
      'postgres',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'], cwd: '/' },
  );
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
  return new Promise((resolve) =>
    child.once('exit', () => {
      clearTimeout(timer);
      resolve(output);
    }),
  );
}

/** Transactions pgbench reports as processed (each one's COMMIT returned), 0 if it printed none. */
export function pgbenchCommitted(output: string): number {
  const match = /number of transactions actually processed: (\d+)/.exec(output);
  return match ? Number(match[1]) : 0;
}

/** What a recovered cluster must hold: every acknowledged insert, pgbench's sums, sound pages and indexes. */
export function verifyRecovered(c: PgCluster, acked: number[], pgbenchReported: number, what: string): void {
  const present = new Set(c.query('SELECT id FROM acks').split('\n').filter(Boolean).map(Number));
  const lost = acked.filter((id) => !present.has(id));
  assert.deepEqual(
    lost.slice(0, 10),
    [],
    `${what}: ${lost.length} of ${acked.length} acknowledged inserts lost`,
  );
  // Each pgbench transaction adds its delta to one account, teller and branch and logs it in history.
  const sums = c.query(`SELECT (SELECT coalesce(sum(delta), 0) FROM pgbench_history),
      (SELECT sum(abalance) FROM pgbench_accounts), (SELECT sum(tbalance) FROM pgbench_tellers),
      (SELECT sum(bbalance) FROM pgbench_branches), (SELECT count(*) FROM pgbench_history)`);
  const [history, accounts, tellers, branches, transactions] = sums.split('|').map(Number);
  assert.deepEqual([accounts, tellers, branches], [history, history, history], `${what}: pgbench balances`);
  assert.ok(
    transactions >= pgbenchReported,
    `${what}: ${transactions} pgbench transactions kept, ${pgbenchReported} reported`,
  );
  // Reads every heap page (checksums) and checks every index against its table.
  c.mustRun('pg_amcheck', ['-d', 'postgres', '--install-missing', '--heapallindexed'], 120_000);
}
