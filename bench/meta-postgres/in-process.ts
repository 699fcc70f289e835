// The PostgreSQL engine without the RPC layer: 16 lanes of creates (then renames), each lane in
// its own directory, straight on the metadata service in this process, for each engine URL
// variant given, taking turns. Reports ops/s and CPU per operation of this process (node) and of
// every process of the PostgreSQL cluster, and WAL flushes per operation (pg_stat_wal, cluster-wide): the
// figures the RPC benchmark (run.ts) cannot separate on a small shared machine.
// Usage: node dist/bench/meta-postgres/in-process.js [--seconds 3] [--rounds 2] [--lanes 16] [--dirs N]
//          [--variant ''] [--variant 'group_commit=off'] ... [--url postgres://...]
// --dirs N: the lanes share N directories (lane l in directory l mod N; default one per lane),
// e.g. --dirs 1 for many writers creating in one directory.
// Each variant is a query string appended to $STRATA_PG_TEST_URL, or to --url (a fresh database per run).
import pg from 'pg';
import { ROOT_INO, type Ino } from '../../src/common/index.js';
import { formatVolume, openMetaService, type Caller } from '../../src/meta/index.js';
import { parseFlags } from '../common/args.js';
import { freshDatabase } from './database.js';
import { clusterPids, cpuUs } from './proc-cpu.js';

const USAGE = `Usage: node dist/bench/meta-postgres/in-process.js [--seconds 3] [--rounds 2] [--lanes 16] [--dirs N]
         [--variant ''] [--variant 'group_commit=off'] ... [--url postgres://...]
--dirs N: the lanes share N directories (lane l in directory l mod N; default one per lane),
e.g. --dirs 1 for many writers creating in one directory.
Each variant is a query string appended to $STRATA_PG_TEST_URL, or to --url (a fresh database per run).`;

const root: Caller = { uid: 0, gid: 0, pid: 1 };
const S_IFREG = 0o100000;
async function walSyncs(admin: pg.Client): Promise<number> {
  const { rows } = await admin.query<{ n: string }>('SELECT wal_sync AS n FROM pg_stat_wal');
  return Number(rows[0].n);
}

interface Figures {
  opsPerSec: number;
  nodeUsPerOp: number;
  pgUsPerOp: number;
  walSyncsPerOp: number;
}

async function measure(
  admin: pg.Client,
  seconds: number,
  lanes: number,
  op: (lane: number, n: number) => Promise<unknown>,
): Promise<Figures> {
  const pgBefore = await clusterPids(admin);
  const pgCpuBefore = cpuUs(pgBefore);
  const walBefore = await walSyncs(admin);
  const nodeBefore = process.cpuUsage();
  const startMs = performance.now();
  const endMs = startMs + seconds * 1000;
  let done = 0;
  await Promise.all(
    Array.from({ length: lanes }, async (_, lane) => {
      for (let n = 0; performance.now() < endMs; n++) {
        await op(lane, n);
        done++;
      }
    }),
  );
  const elapsedMs = performance.now() - startMs;
  const node = process.cpuUsage(nodeBefore);
  // Backends started during the run count from their start.
  const pgCpu = cpuUs(new Set([...pgBefore, ...(await clusterPids(admin))])) - pgCpuBefore;
  const wal = (await walSyncs(admin)) - walBefore;
  return {
    opsPerSec: (done / elapsedMs) * 1000,
    nodeUsPerOp: (node.user + node.system) / done,
    pgUsPerOp: pgCpu / done,
    walSyncsPerOp: wal / done,
  };
}

async function runVariant(
  admin: pg.Client,
  baseUrl: string,
  variant: string,
  seconds: number,
  lanes: number,
  dirCount: number,
): Promise<{ create: Figures; rename: Figures }> {
  const url = await freshDatabase(admin, baseUrl, 'strata_bench_inproc', variant);
  await formatVolume(url, { name: 'bench' });
  const service = await openMetaService({ engineUrl: url, background: false });
  try {
    const dirs: Ino[] = [];
    for (let dir = 0; dir < dirCount; dir++)
      dirs.push((await service.mkdir(root, ROOT_INO, `dir${dir}`, 0o755, 0)).ino);
    for (let lane = dirCount; lane < lanes; lane++) dirs.push(dirs[lane % dirCount]);
    const created = new Array<number>(lanes).fill(0);
    // Names carry the lane: lanes sharing a directory never collide.
    const create = await measure(admin, seconds, lanes, (lane) =>
      service.mknod(root, dirs[lane], `c${lane}.${created[lane]++}`, S_IFREG | 0o644, 0, 0),
    );
    const rename = await measure(admin, seconds, lanes, (lane, n) => {
      const from = `c${lane}.${n % created[lane]}`;
      return n % 2 === 0
        ? service.rename(root, dirs[lane], from, dirs[lane], `${from}.r`, 0)
        : service.rename(
            root,
            dirs[lane],
            `c${lane}.${(n - 1) % created[lane]}.r`,
            dirs[lane],
            `c${lane}.${(n - 1) % created[lane]}`,
            0,
          );
    });
    return { create, rename };
  } finally {
    await service.close();
  }
}

const { values } = parseFlags(USAGE, {
  options: {
    seconds: { type: 'string', default: '3' },
    rounds: { type: 'string', default: '2' },
    lanes: { type: 'string', default: '16' },
    dirs: { type: 'string' },
    variant: { type: 'string', multiple: true, default: [''] },
    url: { type: 'string', default: process.env.STRATA_PG_TEST_URL },
  },
});
if (!values.url) {
  console.error('no PostgreSQL: run eval "$(scripts/postgres/start.sh)" first, or pass --url postgres://...');
  process.exit(2);
}
const adminUrl = new URL(values.url);
adminUrl.pathname = '/postgres';
const admin = new pg.Client({ connectionString: adminUrl.toString() });
await admin.connect();
try {
  const fmt = (f: Figures) =>
    `${Math.round(f.opsPerSec).toLocaleString('en-US').padStart(6)}/s node ${f.nodeUsPerOp.toFixed(0).padStart(4)} µs ` +
    `pg ${f.pgUsPerOp.toFixed(0).padStart(4)} µs wal ${f.walSyncsPerOp.toFixed(2)}`;
  for (let round = 1; round <= Number(values.rounds); round++) {
    for (const variant of values.variant) {
      const { create, rename } = await runVariant(
        admin,
        values.url,
        variant,
        Number(values.seconds),
        Number(values.lanes),
        Number(values.dirs ?? values.lanes),
      );
      console.log(`round ${round} [${variant || 'default'}] create ${fmt(create)} | rename ${fmt(rename)}`);
    }
  }
  await admin.query('DROP DATABASE IF EXISTS strata_bench_inproc WITH (FORCE)');
} finally {
  await admin.end();
}
