// The soak harness: a volume (strata up + a second strata mount, or meta serve + two mounts)
// runs the mixed workload of soak-workload.ts in rounds until a deadline, while a sampler
// records every strata process's memory, descriptors, threads and timers and the sizes of the
// volume's files. The verdict is a trend fitted over the second half of the samples.
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import {
  adminQuery,
  createPgDatabase,
  freePort,
  isMounted,
  repoRoot,
  strata,
  StrataProcess,
} from '../e2e/harness.js';
import { takeSample, trends, trendTable, type Sample, type Trend, type Watched } from './soak-sampler.js';
import { PHASES, setUp, tearDown, verifyAll, type SoakState } from './soak-workload.js';

export interface SoakOptions {
  /** `up`: strata up (SQLite, file store) + a strata mount of it; `serve`: meta serve + two mounts. */
  setup: 'up' | 'serve';
  /** For `serve`: `sqlite` or `postgres` (STRATA_PG_TEST_URL). */
  engine?: 'sqlite' | 'postgres';
  /** Object store URL of the volume; default a `file:` directory in the work directory. */
  storage?: string;
  durationMs: number;
  sampleEveryMs: number;
  /** Where samples (JSON lines) and the report go; without it they stay in the work directory only when the run fails. */
  outDir?: string;
  log?: (line: string) => void;
}

export interface PhaseStats {
  rounds: number;
  ms: number;
  ops: number;
  bytes: number;
  /** Mean duration of the phase in the first and in the second half of the rounds. */
  firstHalfMs: number;
  secondHalfMs: number;
}

export interface SoakResult {
  rounds: number;
  samples: Sample[];
  trends: Trend[];
  phases: Record<string, PhaseStats>;
  failures: string[];
  report: string;
}

const CACHE_SIZE = '64M';
/** Short history retention, so pruning runs during the soak and the database can level off. */
const RETENTION = '1m';
const PROBE = (): string => join(repoRoot(), 'scripts', 'soak', 'probe.mjs');
const ROW_TABLES = ['session', 'lock', 'open_file', 'call_batch', 'deleted_slice', 'inode', 'dentry'];
/** src/meta/call-outcomes.ts CALL_OUTCOME_RETENTION_MS (not exported through the meta door). */
const CALL_OUTCOME_RETENTION_MS = 10 * 60_000;

function sqliteRows(dbPath: string): Record<string, number> {
  const rows: Record<string, number> = {};
  try {
    const db = new Database(dbPath, { readonly: true, fileMustExist: true });
    try {
      const tables = db
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table'")
        .pluck()
        .all() as string[];
      for (const table of tables.filter((t) => ROW_TABLES.includes(t) || t.endsWith('_hist'))) {
        rows[`rows.${table}`] = db.prepare(`SELECT count(*) FROM "${table}"`).pluck().get() as number;
      }
      // Call outcomes are kept 10 minutes by design; one older than that plus two prune
      // intervals is one the pruning missed.
      if (tables.includes('call_batch')) {
        const staleUs = (Date.now() - CALL_OUTCOME_RETENTION_MS - 60_000) * 1000;
        rows['rows.call_batch_stale'] = db
          .prepare('SELECT count(*) FROM call_batch WHERE at_us < ?')
          .pluck()
          .get(staleUs) as number;
      }
    } finally {
      db.close();
    }
  } catch {
    // busy or mid-checkpoint: this sample goes without row counts
  }
  return rows;
}

const PG_TABLES = [
  ...ROW_TABLES.filter((t) => t !== 'call_batch'),
  'call_outcome',
  'inode_hist',
  'dentry_hist',
  'chunk_hist',
  'xattr_hist',
];

/** The same counts from a PostgreSQL engine, and the database's size. */
async function postgresRows(client: pg.Client): Promise<Record<string, number>> {
  const rows: Record<string, number> = {};
  const count = async (sql: string, params: unknown[] = []): Promise<number> =>
    Number((await client.query<{ n: string }>(sql, params)).rows[0].n);
  for (const table of PG_TABLES) rows[`rows.${table}`] = await count(`SELECT count(*) AS n FROM "${table}"`);
  const staleUs = (Date.now() - CALL_OUTCOME_RETENTION_MS - 60_000) * 1000;
  rows['rows.call_outcome_stale'] = await count('SELECT count(*) AS n FROM call_outcome WHERE at_us < $1', [
    staleUs,
  ]);
  rows['meta.dbBytes'] = await count('SELECT pg_database_size(current_database()) AS n');
  return rows;
}

/** User + system CPU of a process so far, from /proc/PID/stat (clock ticks of 10 ms). */
function processCpuMs(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) * 10;
  } catch {
    return NaN;
  }
}

export async function runSoak(options: SoakOptions): Promise<SoakResult> {
  const log = options.log ?? ((line: string) => console.log(line));
  const work = join('/tmp', `strata-soak-${Date.now().toString(36)}`);
  const probeDir = join(work, 'probe');
  const dataDir = join(work, 'data');
  const mntA = join(work, 'a');
  const mntB = join(work, 'b');
  for (const dir of [probeDir, dataDir, mntA, mntB]) mkdirSync(dir, { recursive: true });
  const env = {
    NODE_OPTIONS: `--import=${PROBE()}`,
    STRATA_SOAK_PROBE_DIR: probeDir,
    STRATA_SOAK_PROBE_MS: String(Math.max(1000, Math.floor(options.sampleEveryMs / 2))),
  };
  const storage = options.storage ?? `file:${join(dataDir, 'objects')}`;
  const procs: StrataProcess[] = [];
  const watched: Watched[] = [];
  let pgDatabase: string | undefined;
  let pgClient: pg.Client | undefined;
  const samples: Sample[] = [];
  const phases: Record<string, PhaseStats> = {};
  const cpu: Record<string, { firstHalfMs: number; secondHalfMs: number }> = {};
  const roundMs: Record<string, number[]> = {};
  const roundCpuMs: Record<string, number[]> = {};
  const lastCpuMs: Record<string, number> = {};
  const failures: string[] = [];
  let rounds = 0;
  let dbPath: string | undefined;
  let state: SoakState | undefined;
  let sampler: NodeJS.Timeout | undefined;
  const waitMounted = async (proc: StrataProcess, mnt: string): Promise<void> =>
    proc.waitFor(() => isMounted(mnt) && proc.output.includes('mounted at'), `${mnt} to be mounted`, 60_000);
  try {
    const port = await freePort();
    const mountArgs = (mnt: string, cache: string): string[] => [
      mnt,
      '--cache-dir',
      join(work, cache),
      '--cache-size',
      CACHE_SIZE,
    ];
    let secretFile = join(dataDir, 'meta.db.secret');
    if (options.setup === 'up') {
      dbPath = join(dataDir, 'meta.db');
      const up = new StrataProcess(
        ['up', dataDir, ...mountArgs(mntA, 'cacheA'), '--listen', `127.0.0.1:${port}`, '--name', 'soak'],
        { ...env, STRATA_RETENTION: RETENTION },
      );
      procs.push(up);
      await waitMounted(up, mntA);
      await up.waitFor(() => up.output.includes('metadata served on'), 'strata up to serve');
      watched.push({ role: 'up', pid: up.pid });
    } else {
      let engine: string;
      if (options.engine === 'postgres') {
        pgDatabase = `strata_soak_${Date.now().toString(36)}`;
        engine = await createPgDatabase(pgDatabase);
        pgClient = new pg.Client({ connectionString: engine });
        await pgClient.connect();
        secretFile = join(work, 'secret');
      } else {
        dbPath = join(dataDir, 'meta.db');
        engine = `sqlite:${dbPath}`;
      }
      const args = [
        'format',
        '--engine',
        engine,
        '--storage',
        storage,
        '--name',
        'soak',
        '--retention',
        RETENTION,
      ];
      if (options.engine === 'postgres') args.push('--secret-file', secretFile);
      const formatted = strata(args);
      if (formatted.status !== 0) throw new Error(`strata format failed: ${formatted.stderr}`);
      const server = new StrataProcess(
        ['meta', 'serve', '--engine', engine, '--listen', `127.0.0.1:${port}`],
        env,
      );
      procs.push(server);
      await server.waitFor(() => server.output.includes('listening'), 'the metadata service to listen');
      watched.push({ role: 'serve', pid: server.pid });
      const mountA = new StrataProcess(
        ['mount', `127.0.0.1:${port}/soak`, ...mountArgs(mntA, 'cacheA'), '--secret-file', secretFile],
        env,
      );
      procs.push(mountA);
      await waitMounted(mountA, mntA);
      watched.push({ role: 'mountA', pid: mountA.pid });
    }
    const mountB = new StrataProcess(
      ['mount', `127.0.0.1:${port}/soak`, ...mountArgs(mntB, 'cacheB'), '--secret-file', secretFile],
      env,
    );
    procs.push(mountB);
    await waitMounted(mountB, mntB);
    watched.push({ role: 'mountB', pid: mountB.pid });

    const paths: Record<string, string> = {
      [`${watched[watched.length - 2].role}.cacheBytes`]: join(work, 'cacheA'),
      'mountB.cacheBytes': join(work, 'cacheB'),
    };
    if (storage.startsWith('file:')) paths['store.objectsBytes'] = storage.slice('file:'.length);
    if (dbPath) {
      paths['meta.walBytes'] = `${dbPath}-wal`;
      paths['meta.dbBytes'] = dbPath;
    }
    const sample = (): void => {
      const taken = takeSample(watched, paths, probeDir);
      taken.values['host.load1'] = loadavg()[0];
      if (dbPath) Object.assign(taken.values, sqliteRows(dbPath));
      samples.push(taken);
      // Filled in when the queries answer; a sample without them just lacks those measures.
      if (pgClient)
        postgresRows(pgClient).then(
          (rows) => Object.assign(taken.values, rows),
          () => undefined,
        );
    };
    state = await setUp(join(mntA, 'soak'), join(mntB, 'soak'));
    sample();
    for (const w of watched) lastCpuMs[w.role] = processCpuMs(w.pid);
    sampler = setInterval(sample, options.sampleEveryMs);
    const deadline = Date.now() + options.durationMs;
    const startedAt = Date.now();
    while (Date.now() < deadline) {
      state.round = rounds;
      for (const [name, phase] of PHASES) {
        const t0 = performance.now();
        const result = await phase(state);
        const ms = performance.now() - t0;
        const stats = (phases[name] ??= {
          rounds: 0,
          ms: 0,
          ops: 0,
          bytes: 0,
          firstHalfMs: 0,
          secondHalfMs: 0,
        });
        stats.rounds++;
        stats.ms += ms;
        stats.ops += result.ops;
        stats.bytes += result.bytes;
        (roundMs[name] ??= []).push(ms);
      }
      rounds++;
      // CPU per round of each strata process: a mount that slows down spends more on the same
      // round, whatever else the machine is doing (wall times move with the load).
      for (const w of watched) {
        const cpuMs = processCpuMs(w.pid);
        (roundCpuMs[w.role] ??= []).push(cpuMs - (lastCpuMs[w.role] ?? cpuMs));
        lastCpuMs[w.role] = cpuMs;
      }
      if (rounds % 5 === 0) {
        const last = samples[samples.length - 1]?.values ?? {};
        log(
          `soak: round ${rounds}, ${Math.round((Date.now() - startedAt) / 1000)} s; ` +
            watched
              .map(
                (w) =>
                  `${w.role} rss ${((last[`${w.role}.rssBytes`] ?? 0) / 2 ** 20).toFixed(0)} MiB heap ${((last[`${w.role}.heapUsedBytes`] ?? 0) / 2 ** 20).toFixed(1)} MiB fds ${last[`${w.role}.fds`]}`,
              )
              .join('; '),
        );
      }
    }
    clearInterval(sampler);
    sampler = undefined;
    sample();
    await verifyAll(state);
  } catch (error) {
    failures.push(
      `the workload failed in round ${rounds + 1}: ${error instanceof Error ? error.message : String(error)}`,
    );
  } finally {
    if (sampler) clearInterval(sampler);
    try {
      if (state) await tearDown(state);
    } catch {
      // the mount may be gone already; the failure above says why
    }
    for (const proc of procs.slice().reverse()) {
      try {
        await proc.stop(30_000);
      } catch {
        proc.kill();
      }
    }
    for (const mnt of [mntB, mntA]) if (isMounted(mnt)) strata(['umount', '--lazy', mnt]);
    await pgClient?.end().catch(() => undefined);
    if (pgDatabase) await adminQuery(`DROP DATABASE IF EXISTS ${pgDatabase} WITH (FORCE)`);
  }
  for (const [name, times] of Object.entries(roundMs)) {
    const half = Math.floor(times.length / 2);
    const mean = (xs: number[]): number => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : 0);
    phases[name].firstHalfMs = mean(times.slice(0, half));
    phases[name].secondHalfMs = mean(times.slice(half));
  }
  for (const [role, perRound] of Object.entries(roundCpuMs)) {
    const half = Math.floor(perRound.length / 2);
    const mean = (xs: number[]): number => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : 0);
    cpu[role] = { firstHalfMs: mean(perRound.slice(1, half)), secondHalfMs: mean(perRound.slice(half)) };
  }
  const found = trends(samples);
  for (const t of found.filter((t) => t.grows)) {
    failures.push(
      `${t.measure} grows without bound: +${t.growth.toFixed(0)} over the second half (r2 ${t.r2.toFixed(2)})`,
    );
  }
  for (const proc of procs) {
    if (proc.exitCode !== 0 && proc.exitCode !== undefined && proc.exitCode !== null) {
      failures.push(`a strata process exited with ${proc.exitCode}:\n${proc.output.slice(-2000)}`);
    }
  }
  const report = soakReport(options, rounds, samples, found, phases, cpu, failures);
  const outDir = options.outDir ?? work;
  mkdirSync(outDir, { recursive: true });
  writeFileSync(join(outDir, 'samples.jsonl'), samples.map((s) => JSON.stringify(s)).join('\n') + '\n');
  writeFileSync(join(outDir, 'report.md'), report);
  // Heap snapshots (STRATA_SOAK_PROBE_SNAPSHOTS=1, SIGUSR2) are what a run was repeated for.
  for (const name of readdirSync(probeDir).filter((n) => n.endsWith('.heapsnapshot'))) {
    renameSync(join(probeDir, name), join(outDir, name));
  }
  // Without --out, a passing run leaves nothing behind; a failing one keeps its report and
  // samples in the work directory (the volume and caches go either way: gigabytes).
  if (outDir !== work || failures.length === 0) rmSync(work, { recursive: true, force: true });
  else
    for (const dir of [dataDir, join(work, 'cacheA'), join(work, 'cacheB')])
      rmSync(dir, { recursive: true, force: true });
  return { rounds, samples, trends: found, phases, failures, report };
}

function soakReport(
  options: SoakOptions,
  rounds: number,
  samples: Sample[],
  found: Trend[],
  phases: Record<string, PhaseStats>,
  cpu: Record<string, { firstHalfMs: number; secondHalfMs: number }>,
  failures: string[],
): string {
  const seconds = samples.length > 1 ? (samples[samples.length - 1].atMs - samples[0].atMs) / 1000 : 0;
  const lines = [
    `Soak: setup ${options.setup}${options.engine ? ` (${options.engine})` : ''}, ${rounds} rounds in ${seconds.toFixed(0)} s, ` +
      `${samples.length} samples, started ${new Date(samples[0]?.atMs ?? Date.now()).toISOString()}`,
    '',
    '| phase | rounds | ops/s | MiB/s | mean ms, 1st half | mean ms, 2nd half |',
    '|---|---|---|---|---|---|',
  ];
  for (const [name, p] of Object.entries(phases)) {
    lines.push(
      `| ${name} | ${p.rounds} | ${(p.ops / (p.ms / 1000)).toFixed(0)} | ${(p.bytes / 2 ** 20 / (p.ms / 1000)).toFixed(1)} | ` +
        `${p.firstHalfMs.toFixed(0)} | ${p.secondHalfMs.toFixed(0)} |`,
    );
  }
  lines.push('', '| process | CPU ms per round, 1st half | 2nd half |', '|---|---|---|');
  for (const [role, c] of Object.entries(cpu)) {
    lines.push(`| ${role} | ${c.firstHalfMs.toFixed(0)} | ${c.secondHalfMs.toFixed(0)} |`);
  }
  lines.push('', trendTable(samples, found), '');
  lines.push(
    failures.length === 0 ? 'No failures.' : `Failures:\n${failures.map((f) => `- ${f}`).join('\n')}`,
  );
  return lines.join('\n') + '\n';
}
