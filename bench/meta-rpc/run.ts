// Metadata RPC benchmark: ops/s over RPC against a metadata server process on a SQLite volume.
// Usage: node dist/bench/meta-rpc/run.js [--seconds N] [--listen HOST:PORT] [--no-engine-thread] [--no-local-reads]
//          [--engine-thread-nice N] [--turn-budget-ms MS] [--server-node-args=--max-semi-space-size=64]
//          [--ops create,getattr] [--connections 16] [--history on|off] [--repeats N] [--allocations]
// See bench/meta-rpc/README.md.
import { fork, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Errno, FsError, ROOT_INO, type Ino } from '../../src/common/index.js';
import { formatVolume, openMetaService, type Caller } from '../../src/meta/index.js';
import { connectMeta, type MetaClient } from '../../src/meta/client/index.js';
import type { AllocationSite } from '../common/allocation-sampler.js';
import { parseFlags } from '../common/args.js';

const USAGE = `Usage: node dist/bench/meta-rpc/run.js [--seconds N] [--listen HOST:PORT] [--no-engine-thread] [--no-local-reads]
         [--engine-thread-nice N] [--turn-budget-ms MS] [--server-node-args=--max-semi-space-size=64]
         [--ops create,getattr] [--connections 16] [--history on|off] [--repeats N] [--allocations]
See bench/meta-rpc/README.md.`;

const root: Caller = { uid: 0, gid: 0, pid: 1 };
const S_IFREG = 0o100000;
const SERVER_JS = fileURLToPath(new URL('./server.js', import.meta.url));
const READDIR_ENTRIES = 1_000;

interface ServerStats {
  /** Server CPU time (user + system) since the last reset. */
  cpuUs: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  peakRssBytes: number;
  /** The serving thread's time on a CPU, and waiting in the run queue for one (schedstat). */
  servingRunMs: number;
  servingWaitMs: number;
  /** Times the serving thread got a CPU (each after a wait in the run queue, often zero). */
  servingSlices: number;
  /** The serving thread's GC pauses: how many, their sum and the longest. */
  gcCount: number;
  gcTotalMs: number;
  gcMaxMs: number;
  /** With --allocations: the serving thread's sampled allocation, in all and by call site. */
  allocatedBytes?: number;
  allocationSites?: AllocationSite[];
}

class ServerProcess {
  private constructor(private readonly child: ChildProcess) {}

  static async start(engineUrl: string, listen: string, history: boolean): Promise<ServerProcess> {
    const args = ['--engine', engineUrl, '--listen', listen, ...(history ? [] : ['--no-history'])];
    if (!engineThread) args.push('--no-engine-thread');
    if (!localReads) args.push('--no-local-reads');
    if (engineThreadNice !== undefined) args.push('--engine-thread-nice', engineThreadNice);
    if (turnBudgetMs !== undefined) args.push('--turn-budget-ms', turnBudgetMs);
    const child = fork(SERVER_JS, args, {
      stdio: ['ignore', 'pipe', 'inherit', 'ipc'],
      execArgv: [...process.execArgv, ...serverNodeArgs],
      env: values.allocations ? { ...process.env, STRATA_BENCH_ALLOCATIONS: '1' } : process.env,
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

  async ask(message: 'reset' | 'report'): Promise<ServerStats> {
    const reply = once(this.child, 'message');
    this.child.send(message);
    return (await reply)[0] as ServerStats;
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null) return;
    const exited = once(this.child, 'exit');
    this.child.send('stop');
    await exited;
  }
}

/** Keeps `depth` calls in flight on every client until `next` says stop; returns calls done. */
async function drive(
  clients: MetaClient[],
  depth: number,
  seconds: number,
  op: (client: MetaClient, n: number) => Promise<unknown> | null,
): Promise<{ ops: number; elapsedMs: number }> {
  let issued = 0;
  let done = 0;
  const startMs = performance.now();
  const endMs = startMs + seconds * 1000;
  const lane = async (client: MetaClient): Promise<void> => {
    while (performance.now() < endMs) {
      const call = op(client, issued++);
      if (call === null) return;
      await call;
      done++;
    }
  };
  const lanes: Promise<void>[] = [];
  for (const client of clients) for (let i = 0; i < depth; i++) lanes.push(lane(client));
  await Promise.all(lanes);
  return { ops: done, elapsedMs: performance.now() - startMs };
}

const foundMissing = (): never => {
  throw new Error('lookup-missing found a name that was never created');
};
const isMissing = (error: unknown): void => {
  if (!(error instanceof FsError) || error.errno !== Errno.ENOENT) throw error;
};

interface Row {
  history: boolean;
  connections: number;
  op: string;
  opsPerSec: number;
  p99Ms: number;
  /** Server CPU per call: the capacity measure that a busy shared machine distorts least. */
  serverCpuUsPerOp: number;
}

async function runConfig(
  engineUrl: string,
  history: boolean,
  connections: number,
  seconds: number,
  rows: Row[],
  listen: string,
): Promise<number> {
  const server = await ServerProcess.start(engineUrl, listen, history);
  const service = await openMetaService({ engineUrl, background: false });
  const secret = await service.volumeSecret();
  await service.close();
  const clients = await Promise.all(
    Array.from({ length: connections }, () =>
      connectMeta({ address: listen, secret, timeoutMs: 60_000, maxInFlightPerConnection: 1024 }),
    ),
  );
  const depth = connections === 1 ? 64 : 16;
  try {
    const setup = clients[0];
    const tag = `h${Number(history)}c${connections}`;
    // A directory of exactly READDIR_ENTRIES files, also the target set of getattr and lookup.
    const big = await setup.mkdir(root, ROOT_INO, `big-${tag}`, 0o755, 0);
    const inos: Ino[] = [];
    await drive([setup], 64, 3600, (client, n) => {
      if (n >= READDIR_ENTRIES) return null;
      return client.mknod(root, big.ino, `f${n}`, S_IFREG | 0o644, 0, 0).then((attr) => inos.push(attr.ino));
    });
    const work = await setup.mkdir(root, ROOT_INO, `work-${tag}`, 0o755, 0);
    let created = 0;
    let renamed = 0;
    let unlinked = 0;
    const renames = !onlyOps || onlyOps.has('rename');
    const phases: [string, (client: MetaClient, n: number) => Promise<unknown> | null][] = [
      ['getattr', (client, n) => client.getattr(inos[n % inos.length])],
      ['lookup', (client, n) => client.lookup(root, big.ino, `f${n % READDIR_ENTRIES}`)],
      // Names that are not there: what compilers and interpreters probing paths send most.
      [
        'lookup-missing',
        (client, n) => client.lookup(root, big.ino, `m${n % READDIR_ENTRIES}`).then(foundMissing, isMissing),
      ],
      ['create', (client) => client.mknod(root, work.ino, `c${created++}`, S_IFREG | 0o644, 0, 0)],
      [
        'rename',
        (client) =>
          renamed < created
            ? client.rename(root, work.ino, `c${renamed}`, work.ino, `r${renamed++}`, 0)
            : null,
      ],
      [
        'unlink',
        // Without a rename phase, the names create made (else unlink had nothing and read 0 ops/s).
        (client) =>
          renames
            ? unlinked < renamed
              ? client.unlink(root, work.ino, `r${unlinked++}`)
              : null
            : unlinked < created
              ? client.unlink(root, work.ino, `c${unlinked++}`)
              : null,
      ],
      ['readdir(1,000)', (client) => client.readdir(root, big.ino, 0, READDIR_ENTRIES + 2, false)],
    ];
    // Repeats run the whole phase list again (rename and unlink then use the next create's names).
    for (let repeat = 0; repeat < repeats; repeat++)
      for (const [name, op] of phases) {
        // rename and unlink work on the names create made: keep them only with create.
        if (onlyOps && !onlyOps.has(name.replace(/\(.*/, ''))) continue;
        await server.ask('reset');
        const { ops, elapsedMs } = await drive(clients, name.startsWith('readdir') ? 2 : depth, seconds, op);
        const stats = await server.ask('report');
        const row = {
          history,
          connections,
          op: name,
          opsPerSec: (ops / elapsedMs) * 1000,
          p99Ms: stats.p99Ms,
          serverCpuUsPerOp: stats.cpuUs / ops,
        };
        rows.push(row);
        console.log(
          `history ${history ? 'on ' : 'off'} | ${String(connections).padStart(2)} conn | ${name.padEnd(15)} | ${Math.round(row.opsPerSec).toLocaleString('en-US').padStart(8)} ops/s | loop p99 ${stats.p99Ms.toFixed(2)} ms | server CPU ${row.serverCpuUsPerOp.toFixed(1)} µs/op | serving thread ran ${Math.round(stats.servingRunMs)} ms, waited ${Math.round(stats.servingWaitMs)} ms for a CPU (${((stats.servingWaitMs * 1000) / Math.max(1, stats.servingSlices)).toFixed(0)} µs per wake-up) | loop p50 ${stats.p50Ms.toFixed(1)}, max ${stats.maxMs.toFixed(1)} ms | GC ${stats.gcCount}x ${Math.round(stats.gcTotalMs)} ms, longest ${stats.gcMaxMs.toFixed(1)} ms`,
        );
        if (stats.allocatedBytes !== undefined) {
          const perOp = (bytes: number): string => `${Math.round(bytes / ops).toLocaleString('en-US')} B/op`;
          console.log(`  serving thread allocated ${perOp(stats.allocatedBytes)}; by site:`);
          for (const { site, bytes } of stats.allocationSites ?? [])
            console.log(`    ${perOp(bytes).padStart(10)}  ${site}`);
        }
      }
    return (await server.ask('report')).peakRssBytes;
  } finally {
    await Promise.all(clients.map((client) => client.close()));
    await server.stop();
  }
}

const median = (values: number[]): number => {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  return sorted.length % 2 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
};

/** With --repeats: per row, the median and the range of its readings (the machine is noisy). */
function repeatsTable(rows: Row[]): string {
  const lines = [
    '| history | op | conns | readings | ops/s median (min-max) | loop p99 ms median (min-max) | server CPU µs/op median (min-max) |',
    '|---|---|---|---|---|---|---|',
  ];
  const groups = new Map<string, Row[]>();
  for (const row of rows) {
    const key = `${row.history ? 'on' : 'off'} | ${row.op} | ${row.connections}`;
    groups.set(key, [...(groups.get(key) ?? []), row]);
  }
  const span = (values: number[], digits: number, thousands: boolean): string => {
    const show = (value: number): string =>
      thousands ? Math.round(value).toLocaleString('en-US') : value.toFixed(digits);
    return `${show(median(values))} (${show(Math.min(...values))}-${show(Math.max(...values))})`;
  };
  for (const [key, group] of groups) {
    lines.push(
      `| ${key} | ${group.length} | ${span(
        group.map((row) => row.opsPerSec),
        0,
        true,
      )} | ${span(
        group.map((row) => row.p99Ms),
        1,
        false,
      )} | ${span(
        group.map((row) => row.serverCpuUsPerOp),
        1,
        false,
      )} |`,
    );
  }
  return lines.join('\n');
}

/** The results as a markdown table, ops/s with history on and off side by side. */
function markdownTable(rows: Row[], seconds: number): string {
  const lines = [
    `| op | conns | ops/s history on | ops/s history off | history cost | loop p99 ms (on / off) | server CPU µs/op (on / off) | ops/s per server core, history on |`,
    '|---|---|---|---|---|---|---|---|',
  ];
  for (const on of rows.filter((row) => row.history)) {
    const off = rows.find((row) => !row.history && row.op === on.op && row.connections === on.connections);
    const cost = off ? `${Math.round((1 - on.opsPerSec / off.opsPerSec) * 100)}%` : '';
    lines.push(
      `| ${on.op} | ${on.connections} | ${Math.round(on.opsPerSec).toLocaleString('en-US')} | ${off ? Math.round(off.opsPerSec).toLocaleString('en-US') : ''} | ${cost} | ${on.p99Ms.toFixed(1)} / ${off?.p99Ms.toFixed(1) ?? ''} | ${on.serverCpuUsPerOp.toFixed(1)} / ${off?.serverCpuUsPerOp.toFixed(1) ?? ''} | ${Math.round(1e6 / on.serverCpuUsPerOp).toLocaleString('en-US')} |`,
    );
  }
  lines.push('', `(${seconds} s per measurement)`);
  return lines.join('\n');
}

const { values } = parseFlags(USAGE, {
  options: {
    seconds: { type: 'string', default: '3' },
    listen: { type: 'string', default: '127.0.0.1:17070' },
    'no-engine-thread': { type: 'boolean', default: false },
    'no-local-reads': { type: 'boolean', default: false },
    'engine-thread-nice': { type: 'string' },
    'turn-budget-ms': { type: 'string' },
    'server-node-args': { type: 'string', default: '' },
    allocations: { type: 'boolean', default: false },
    ops: { type: 'string', default: '' },
    connections: { type: 'string', default: '1,16' },
    history: { type: 'string', default: 'on,off' },
    repeats: { type: 'string', default: '1' },
  },
});
const onlyOps = values.ops ? new Set(values.ops.split(',')) : undefined;
const seconds = Number(values.seconds);
const repeats = Math.max(1, Math.floor(Number(values.repeats)) || 1);
const engineThread = !values['no-engine-thread'];
const localReads = !values['no-local-reads'];
const engineThreadNice = values['engine-thread-nice'];
const turnBudgetMs = values['turn-budget-ms'];
/** Node/V8 flags for the server process only (`--server-node-args=--max-semi-space-size=64`), not the clients. */
const serverNodeArgs = values['server-node-args'].split(' ').filter(Boolean);
const dir = mkdtempSync(join(tmpdir(), 'strata-rpc-bench-'));
const rows: Row[] = [];
let peakRssBytes = 0;
try {
  for (const history of values.history.split(',').map((h) => h === 'on')) {
    const engineUrl = `sqlite:${join(dir, `meta-${history ? 'history' : 'nohistory'}.db`)}`;
    await formatVolume(engineUrl, { name: 'bench' });
    for (const connections of values.connections.split(',').map(Number)) {
      const rss = await runConfig(engineUrl, history, connections, seconds, rows, values.listen);
      peakRssBytes = Math.max(peakRssBytes, rss);
    }
  }
  console.log(`server peak RSS ${(peakRssBytes / 2 ** 20).toFixed(0)} MiB`);
  console.log(repeats > 1 ? repeatsTable(rows) : markdownTable(rows, seconds));
} finally {
  rmSync(dir, { recursive: true, force: true });
}
