// Metadata RPC benchmark on the PostgreSQL engine with 1, 2 and 3 metadata servers sharing one
// database: ops/s for getattr, create and rename over 16 client connections per server (the
// server's PostgreSQL pool also 16), 16 calls in flight per connection as bench/meta-rpc keeps
// (--calls-per-connection; each call in flight is a lane with its own directory).
// Flags: USAGE below (or --help). See docs/postgres.md.
import { fork, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { ROOT_INO, type Ino } from '../../src/common/index.js';
import { connectMeta, type MetaClient } from '../../src/meta/client/index.js';
import { formatVolume, openMetaService, type Caller } from '../../src/meta/index.js';
import { flagError, parseFlags } from '../common/args.js';
import { freshDatabase } from './database.js';
import { CpuQuota } from './cpu-quota.js';
import { clusterPids, cpuUs } from './proc-cpu.js';

const USAGE = `Usage: eval "$(scripts/postgres/start.sh)"; node dist/bench/meta-postgres/run.js [--seconds N] [--servers 1,2,3]
         [--variant ''] [--variant 'typed_batches=off'] (engine URL parameters to compare, taking turns)
         [--server-flags=] [--server-flags=--no-engine-thread] (server flags to compare, likewise)
         [--ops getattr,create,rename] (phases to run; also lookup, of the getattr files by name)
         [--calls-per-connection 16] (calls in flight on each of the 16 connections)
         [--server-cpu 0.5] (each server limited to half a CPU by a cgroup, as on a machine of
         its own: where one server and PostgreSQL fill this machine's CPUs, only a fixed share
         per server shows whether throughput grows with servers; needs root)
         [--url postgres://...] (default $STRATA_PG_TEST_URL) [--no-sqlite-baseline]
See docs/postgres.md.`;

const root: Caller = { uid: 0, gid: 0, pid: 1 };
const S_IFREG = 0o100000;
// The real server entry with IPC probes, shared with bench/meta-rpc.
const SERVER_JS = fileURLToPath(new URL('../meta-rpc/server.js', import.meta.url));
const CONNECTIONS_PER_SERVER = 16;
const GETATTR_FILES = 1000;
const BASE_PORT = 17170;

class ServerProcess {
  private quota: CpuQuota | undefined;

  private constructor(private readonly child: ChildProcess) {}

  get pid(): number {
    return this.child.pid ?? 0;
  }

  static async start(engineUrl: string, listen: string, flags: readonly string[]): Promise<ServerProcess> {
    const child = fork(SERVER_JS, ['--engine', engineUrl, '--listen', listen, ...flags], {
      stdio: ['ignore', 'pipe', 'inherit', 'ipc'],
    });
    await new Promise<void>((resolve, reject) => {
      let output = '';
      child.stdout?.on('data', (chunk: Buffer) => {
        output += chunk.toString();
        if (output.includes('listening on')) resolve();
      });
      child.once('exit', (code) => reject(new Error(`server exited (${code}): ${output}`)));
    });
    return new ServerProcess(child);
  }

  limitCpu(cpus: number, index: number): void {
    this.quota = CpuQuota.limit(this.pid, `strata-bench-${process.pid}-${index}`, cpus);
  }

  stop(): Promise<void> {
    return this.end(() => this.child.send('stop'));
  }

  kill(): Promise<void> {
    return this.end(() => this.child.kill('SIGKILL'));
  }

  /** Asks the process to end (`how`) unless it has, waits for it, then drops its cgroup. */
  private async end(how: () => void): Promise<void> {
    if (this.child.exitCode === null) {
      const exited = once(this.child, 'exit');
      how();
      await exited;
    }
    this.quota?.remove();
  }
}

/** Runs `op` on every lane back to back for `seconds`; returns ops/s over all lanes. */
async function drive(
  lanes: number,
  seconds: number,
  op: (lane: number, n: number) => Promise<unknown>,
): Promise<number> {
  let done = 0;
  const startMs = performance.now();
  const endMs = startMs + seconds * 1000;
  await Promise.all(
    Array.from({ length: lanes }, async (_, lane) => {
      for (let n = 0; performance.now() < endMs; n++) {
        await op(lane, n);
        done++;
      }
    }),
  );
  return (done / (performance.now() - startMs)) * 1000;
}

interface Row {
  label: string;
  servers: number;
  op: string;
  opsPerSec: number;
  /** CPU of the metadata server processes per operation, µs. */
  serverCpuUs: number;
  /** CPU of all PostgreSQL processes per operation, µs (0 for SQLite). */
  dbCpuUs: number;
}

async function runConfig(
  admin: pg.Client,
  engineUrl: string,
  servers: number,
  seconds: number,
  label: string,
  serverFlags: readonly string[],
  ops: ReadonlySet<string>,
  callsPerConnection: number,
  serverCpus: number | undefined,
): Promise<Row[]> {
  await formatVolume(engineUrl, { name: 'bench' });
  const setup = await openMetaService({ engineUrl, background: false });
  const secret = await setup.volumeSecret();
  const lanes = servers * CONNECTIONS_PER_SERVER * callsPerConnection;
  // Each lane creates and renames in its own directory: one directory's row serializes the
  // changes inside it (its mtime and link count change with each), so a shared directory
  // measures that row, not the servers.
  const laneDirs: Ino[] = [];
  for (let lane = 0; lane < lanes; lane++)
    laneDirs.push((await setup.mkdir(root, ROOT_INO, `lane${lane}`, 0o755, 0)).ino);
  const statDir = await setup.mkdir(root, ROOT_INO, 'stat', 0o755, 0);
  const statInos: Ino[] = [];
  for (let n = 0; n < GETATTR_FILES; n++)
    statInos.push((await setup.mknod(root, statDir.ino, `f${n}`, S_IFREG | 0o644, 0, 0)).ino);
  await setup.close();

  const processes: ServerProcess[] = [];
  const clients: MetaClient[] = [];
  try {
    for (let s = 0; s < servers; s++) {
      const listen = `127.0.0.1:${BASE_PORT + s}`;
      const server = await ServerProcess.start(engineUrl, listen, serverFlags);
      processes.push(server);
      if (serverCpus !== undefined) server.limitCpu(serverCpus, s);
      for (let c = 0; c < CONNECTIONS_PER_SERVER; c++) {
        clients.push(await connectMeta({ address: listen, secret, timeoutMs: 120_000 }));
      }
    }
    // Lane l uses connection l mod (connections): a server's connections carry its lanes evenly.
    const clientOf = (lane: number): MetaClient => clients[lane % clients.length];
    const rows: Row[] = [];
    const phase = async (op: string, fn: (lane: number, n: number) => Promise<unknown>, opsPerCall = 1) => {
      const serverPids = processes.map((p) => p.pid);
      const dbPids = await clusterPids(admin);
      const serverBefore = cpuUs(serverPids);
      const dbBefore = cpuUs(dbPids);
      const startMs = performance.now();
      const opsPerSec = (await drive(lanes, seconds, fn)) * opsPerCall;
      const count = (opsPerSec * (performance.now() - startMs)) / 1000;
      const dbAfter = cpuUs(new Set([...dbPids, ...(await clusterPids(admin))]));
      const row: Row = {
        label,
        servers,
        op,
        opsPerSec,
        serverCpuUs: (cpuUs(serverPids) - serverBefore) / count,
        // Backends started during the phase (new pooled connections) count from their start.
        dbCpuUs: (dbAfter - dbBefore) / count,
      };
      rows.push(row);
      console.log(
        `${label} | ${op.padEnd(8)} | ${Math.round(opsPerSec).toLocaleString('en-US').padStart(7)} ops/s | ` +
          `server CPU ${row.serverCpuUs.toFixed(0)} µs/op | PostgreSQL CPU ${row.dbCpuUs.toFixed(0)} µs/op`,
      );
    };
    const created = new Array<number>(lanes).fill(0);
    if (ops.has('lookup'))
      await phase('lookup', (lane, n) =>
        clientOf(lane).lookup(root, statDir.ino, `f${(lane * 7919 + n) % GETATTR_FILES}`),
      );
    if (ops.has('getattr'))
      await phase('getattr', (lane, n) =>
        clientOf(lane).getattr(statInos[(lane * 7919 + n) % statInos.length]),
      );
    if (ops.has('create') || ops.has('rename'))
      await phase('create', (lane) =>
        clientOf(lane).mknod(root, laneDirs[lane], `c${created[lane]++}`, S_IFREG | 0o644, 0, 0),
      );
    if (ops.has('rename'))
      await phase(
        'rename',
        (lane, n) => {
          const from = n % created[lane];
          return clientOf(lane)
            .rename(root, laneDirs[lane], `c${from}`, laneDirs[lane], `c${from}.r`, 0)
            .then(() =>
              clientOf(lane).rename(root, laneDirs[lane], `c${from}.r`, laneDirs[lane], `c${from}`, 0),
            );
        },
        2, // each call of this lane function is two renames
      );
    return rows;
  } finally {
    await Promise.all(clients.map((client) => client.close()));
    await Promise.all(processes.map((p) => p.stop().catch(() => p.kill())));
  }
}

const { values } = parseFlags(USAGE, {
  allowNegative: true, // --no-sqlite-baseline
  options: {
    seconds: { type: 'string', default: '5' },
    servers: { type: 'string', default: '1,2,3' },
    url: { type: 'string', default: process.env.STRATA_PG_TEST_URL },
    // Engine URL parameters to compare, taking turns (e.g. --variant '' --variant 'typed_batches=off').
    variant: { type: 'string', multiple: true, default: [''] },
    // Metadata server flags to compare, each a space-separated list, crossed with the variants.
    'server-flags': { type: 'string', multiple: true, default: [''] },
    // Phases to run (rename runs create first: it renames the files created).
    ops: { type: 'string', default: 'getattr,create,rename' },
    // The same workload on one SQLite server, run in the same invocation: on a shared, noisy
    // machine the ratio to it says more than the absolute figures.
    'sqlite-baseline': { type: 'boolean', default: true },
    'calls-per-connection': { type: 'string', default: '16' },
    'server-cpu': { type: 'string' },
  },
});
if (!values.url) {
  console.error('no PostgreSQL: run eval "$(scripts/postgres/start.sh)" first, or pass --url postgres://...');
  process.exit(2);
}
const seconds = Number(values.seconds);
const ops = new Set(values.ops.split(','));
const callsPerConnection = Number(values['calls-per-connection']);
if (!Number.isInteger(callsPerConnection) || callsPerConnection < 1)
  flagError(
    `--calls-per-connection must be a whole number of at least 1, not "${values['calls-per-connection']}"`,
  );
const serverCpus = values['server-cpu'] === undefined ? undefined : Number(values['server-cpu']);
if (serverCpus !== undefined && !(serverCpus > 0))
  flagError(`--server-cpu takes a share of CPUs above 0 (0.5 = half of one), not "${values['server-cpu']}"`);
const all: Row[] = [];
const adminUrl = new URL(values.url);
adminUrl.pathname = '/postgres';
// Engine settings off, where the server is (host=/socket/dir, port) kept.
for (const key of [...adminUrl.searchParams.keys()])
  if (key !== 'host' && key !== 'port') adminUrl.searchParams.delete(key);
const admin = new pg.Client({ connectionString: adminUrl.toString() });
await admin.connect();
try {
  for (const servers of values.servers.split(',').map(Number)) {
    for (const variant of values.variant) {
      for (const flagList of values['server-flags']) {
        const flags = flagList.split(' ').filter((flag) => flag !== '');
        const params = `pool_size=${CONNECTIONS_PER_SERVER}&${variant}`;
        const url = await freshDatabase(admin, values.url, `strata_bench_${servers}`, params);
        const details = [variant, ...flags].filter((part) => part !== '').join(' ');
        const label = `postgres, ${servers} server${servers > 1 ? 's' : ''}${details ? ` (${details})` : ''}`;
        all.push(
          ...(await runConfig(
            admin,
            url,
            servers,
            seconds,
            label,
            flags,
            ops,
            callsPerConnection,
            serverCpus,
          )),
        );
      }
    }
  }
  if (values['sqlite-baseline']) {
    const dir = mkdtempSync(join(tmpdir(), 'strata-pg-bench-'));
    try {
      all.push(
        ...(await runConfig(
          admin,
          `sqlite:${join(dir, 'meta.db')}`,
          1,
          seconds,
          'sqlite, 1 server',
          [],
          ops,
          callsPerConnection,
          serverCpus,
        )),
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
} finally {
  await admin.end();
}

const labels = [...new Set(all.map((r) => r.label))];
console.log(`\n| op | ${labels.join(' | ')} |`);
console.log(`|---|${labels.map(() => '---').join('|')}|`);
for (const op of ['lookup', 'getattr', 'create', 'rename']) {
  const cells = labels.map((label) => {
    const row = all.find((r) => r.label === label && r.op === op);
    if (!row) return '';
    const cpu =
      row.dbCpuUs > 0
        ? `${row.serverCpuUs.toFixed(0)} + ${row.dbCpuUs.toFixed(0)}`
        : row.serverCpuUs.toFixed(0);
    return `${Math.round(row.opsPerSec).toLocaleString('en-US')} (${cpu} µs)`;
  });
  console.log(`| ${op} | ${cells.join(' | ')} |`);
}
console.log(
  `\nops/s (CPU per op: metadata servers + PostgreSQL processes); ${seconds} s per measurement, ` +
    `${CONNECTIONS_PER_SERVER} connections per server, ${callsPerConnection} call${callsPerConnection > 1 ? 's' : ''} in flight on each` +
    (serverCpus === undefined ? '' : `; each server limited to ${serverCpus} CPU`),
);
