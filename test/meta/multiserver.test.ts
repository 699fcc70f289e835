import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { ROOT_INO, asIno, isFsError, type Ino } from '../../src/common/index.js';
import { connectMeta, type MetaClient } from '../../src/meta/client/index.js';
import {
  formatVolume,
  openEngine,
  openMetaService,
  RENAME_NOREPLACE,
  type Caller,
} from '../../src/meta/index.js';
import { PostgresEngine } from '../../src/meta/engines/postgres/index.js';
import { createTestDatabase, PG_SKIP_REASON, type TestDatabase } from './postgres-fixture.js';

/**
 * Several metadata servers (separate `meta serve` processes, each with its own PostgreSQL
 * pool) serve one volume; two RPC clients per server hammer shared directories with create,
 * rename, link and unlink, plus contested mkdir and RENAME_NOREPLACE on the same names.
 * Afterwards: a consistency check of the whole database (link counts, reachability, no
 * dangling entries, usage counters) and the final tree must equal the one computed from the
 * operations that succeeded.
 *
 * Uncontested operations use names only their client makes, so each client's model is exact
 * whatever the interleaving; contested ones must have exactly one winner per name.
 */

const SERVERS = 3;
const CLIENTS_PER_SERVER = 2;
const DURATION_MS = Number(process.env.STRATA_MS_DURATION_MS) || 60_000;
const SHARED_DIRS = ['s0', 's1', 's2', 's3'];
const CONTESTED_NAMES = 12;
const MAX_LIVE_FILES = 40;
const caller: Caller = { uid: 0, gid: 0, pid: 1 };
const S_IFREG = 0o100000;
/** The metadata server entry (`strata meta serve` runs the same function). */
const SERVER_MAIN = fileURLToPath(new URL('../../src/meta/server/main.js', import.meta.url));

interface ClientReport {
  client: string;
  ops: Record<string, number>;
  /** Final names of this client's files: [dir, name, token]. */
  names: Array<[string, string, string]>;
  /** token -> inode number. */
  inos: Record<string, number>;
  /** Contested mkdir names this client won. */
  mkdirWins: string[];
  /** Contested rename targets this client won, with the token that moved there. */
  renameWins: Array<[string, string]>;
  errors: string[];
}

// ---------------------------------------------------------------- one client's workload

async function runClient(svc: MetaClient, id: string, durationMs: number): Promise<ClientReport> {
  const dirs = new Map<string, Ino>();
  for (const name of [...SHARED_DIRS, 'contest'])
    dirs.set(name, (await svc.lookup(caller, ROOT_INO, name)).ino);
  const deadline = Date.now() + durationMs;
  const report: ClientReport = {
    client: id,
    ops: {},
    names: [],
    inos: {},
    mkdirWins: [],
    renameWins: [],
    errors: [],
  };
  // "dir/name" -> this client's file there
  const live = new Map<string, { dir: string; name: string; token: string }>();
  let serial = 0;
  const pick = <T>(items: T[]): T => items[Math.floor(Math.random() * items.length)];
  const count = (op: string) => (report.ops[op] = (report.ops[op] ?? 0) + 1);
  const key = (dir: string, name: string) => `${dir}/${name}`;
  const isExists = (error: unknown) => isFsError(error) && error.code === 'EEXIST';

  while (Date.now() < deadline) {
    const roll = Math.random();
    const mine = [...live.values()];
    try {
      if (mine.length === 0 || (roll < 0.3 && mine.length < MAX_LIVE_FILES)) {
        const token = `${id}-${serial++}`;
        const dir = pick(SHARED_DIRS);
        const attr = await svc.mknod(caller, dirs.get(dir)!, token, S_IFREG | 0o644, 0, 0);
        report.inos[token] = attr.ino;
        live.set(key(dir, token), { dir, name: token, token });
        count('create');
      } else if (roll < 0.55) {
        const from = pick(mine);
        const dir = pick(SHARED_DIRS);
        const name = `${from.token}-r${serial++}`;
        await svc.rename(caller, dirs.get(from.dir)!, from.name, dirs.get(dir)!, name, 0);
        live.delete(key(from.dir, from.name));
        live.set(key(dir, name), { dir, name, token: from.token });
        count('rename');
      } else if (roll < 0.7) {
        const from = pick(mine);
        const dir = pick(SHARED_DIRS);
        const name = `${from.token}-l${serial++}`;
        await svc.link(caller, asIno(report.inos[from.token]), dirs.get(dir)!, name);
        live.set(key(dir, name), { dir, name, token: from.token });
        count('link');
      } else if (roll < 0.87 || mine.length >= MAX_LIVE_FILES) {
        const victim = pick(mine);
        await svc.unlink(caller, dirs.get(victim.dir)!, victim.name);
        live.delete(key(victim.dir, victim.name));
        count('unlink');
      } else if (roll < 0.93) {
        const name = `race-${Math.floor(Math.random() * CONTESTED_NAMES)}`;
        try {
          await svc.mkdir(caller, dirs.get('contest')!, name, 0o755, 0);
          report.mkdirWins.push(name);
          count('mkdir-won');
        } catch (error) {
          if (!isExists(error)) throw error;
          count('mkdir-lost');
        }
      } else {
        const from = pick(mine);
        const name = `prize-${Math.floor(Math.random() * CONTESTED_NAMES)}`;
        try {
          await svc.rename(
            caller,
            dirs.get(from.dir)!,
            from.name,
            dirs.get('contest')!,
            name,
            RENAME_NOREPLACE,
          );
          live.delete(key(from.dir, from.name));
          report.renameWins.push([name, from.token]);
          count('rename-won');
        } catch (error) {
          if (!isExists(error)) throw error;
          count('rename-lost');
        }
      }
    } catch (error) {
      report.errors.push(`${id}: ${String(error)}`);
      if (report.errors.length > 5) break;
    }
  }
  report.names = [...live.values()].map((l) => [l.dir, l.name, l.token]);
  return report;
}

// ---------------------------------------------------------------- consistency check

/** Problems found walking the whole database; [] when consistent. */
async function checkConsistency(url: string): Promise<{ problems: string[]; entries: Map<string, number> }> {
  const engine = await openEngine(url);
  const problems: string[] = [];
  const entries = new Map<string, number>(); // "dir/name" -> ino, for every entry under root
  try {
    await engine.read(async (tx) => {
      const links = new Map<number, number>(); // ino -> names seen
      const subdirs = new Map<number, number>();
      const walk = async (dir: Ino, path: string) => {
        let cursor = 0;
        for (;;) {
          const page = await tx.listDir(dir, cursor, 500);
          for (const e of page) {
            const row = await tx.getInode(e.ino);
            if (!row) {
              problems.push(`dangling entry ${path}/${e.name} -> missing inode ${e.ino}`);
              continue;
            }
            if ((row.mode & 0o170000) !== e.type)
              problems.push(`${path}/${e.name}: entry type differs from inode`);
            entries.set(`${path}/${e.name}`, e.ino);
            links.set(e.ino, (links.get(e.ino) ?? 0) + 1);
            if (e.type === 0o040000) {
              subdirs.set(dir, (subdirs.get(dir) ?? 0) + 1);
              if (row.parent !== dir)
                problems.push(`${path}/${e.name}: parent ${row.parent}, listed in ${dir}`);
              await walk(e.ino, `${path}/${e.name}`);
            }
          }
          if (page.length < 500) break;
          cursor = page[page.length - 1].cursor;
        }
      };
      await walk(ROOT_INO, '');
      links.set(ROOT_INO, 1);
      for (const [ino, names] of links) {
        const row = (await tx.getInode(asIno(ino)))!;
        const expected = (row.mode & 0o170000) === 0o040000 ? 2 + (subdirs.get(ino) ?? 0) : names;
        if (row.nlink !== expected) problems.push(`inode ${ino}: nlink ${row.nlink}, expected ${expected}`);
        if ((row.mode & 0o170000) === 0o040000 && names !== 1 && ino !== ROOT_INO) {
          problems.push(`directory ${ino} has ${names} names`);
        }
      }
      const inodeCount = await tx.getCounter('inodes_used');
      if (inodeCount !== links.size)
        problems.push(`inodes_used counter ${inodeCount}, reachable inodes ${links.size}`);
    });
  } finally {
    await engine.close();
  }
  // Inodes nobody can reach (and nobody has open): leaked by a lost update somewhere.
  const pg = await PostgresEngine.open(url);
  try {
    await pg.read(async () => undefined);
    const reachable = new Set([ROOT_INO as number, ...entries.values()]);
    const { default: pgLib } = await import('pg');
    const client = new pgLib.Client({ connectionString: url });
    await client.connect();
    try {
      const all = await client.query<{ ino: string }>('SELECT ino FROM inode');
      for (const { ino } of all.rows)
        if (!reachable.has(Number(ino))) problems.push(`unreachable inode ${ino}`);
      const hist = await client.query<{ n: string }>('SELECT count(*) AS n FROM dentry_hist');
      if (Number(hist.rows[0].n) === 0) problems.push('no history was kept');
    } finally {
      await client.end();
    }
  } finally {
    await pg.close();
  }
  return { problems, entries };
}

// ---------------------------------------------------------------- the test

async function startServer(url: string, index: number): Promise<{ child: ChildProcess; address: string }> {
  const child = spawn(process.execPath, [SERVER_MAIN, '--engine', url, '--listen', '127.0.0.1:0'], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const address = await new Promise<string>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`metadata server ${index} exited with ${code}`)));
    createInterface({ input: child.stdout! }).once('line', (line) => {
      const match = / listening on (\S+)/.exec(line);
      if (match) resolve(match[1]);
      else reject(new Error(`metadata server ${index} said: ${line}`));
    });
  });
  return { child, address };
}

describe('several metadata servers on one PostgreSQL database', { skip: PG_SKIP_REASON }, () => {
  let db: TestDatabase;
  const servers: ChildProcess[] = [];
  const clients: MetaClient[] = [];

  before(async () => {
    db = await createTestDatabase('strata_ms');
  });
  after(async () => {
    await Promise.all(clients.map((client) => client.close()));
    await Promise.all(
      servers.map(async (server) => {
        if (server.exitCode !== null || server.signalCode !== null) return;
        const exited = once(server, 'exit');
        server.kill('SIGTERM');
        const timer = setTimeout(() => server.kill('SIGKILL'), 5000);
        await exited;
        clearTimeout(timer);
      }),
    );
    await db?.drop();
  });

  test(`${SERVERS} servers x ${CLIENTS_PER_SERVER} RPC clients for ${DURATION_MS / 1000} s: consistent, and the tree the successful operations imply`, async () => {
    const url = `${db.url}?pool_size=6`;
    await formatVolume(url, { name: 'multiserver' });
    const setup = await openMetaService({ engineUrl: url, background: false });
    let secret: string;
    try {
      for (const name of [...SHARED_DIRS, 'contest']) await setup.mkdir(caller, ROOT_INO, name, 0o777, 0);
      secret = await setup.volumeSecret();
    } finally {
      await setup.close();
    }
    for (let s = 0; s < SERVERS; s++) {
      const { child, address } = await startServer(url, s);
      servers.push(child);
      for (let c = 0; c < CLIENTS_PER_SERVER; c++)
        clients.push(await connectMeta({ address, secret, timeoutMs: 120_000 }));
    }

    const reports = await Promise.all(clients.map((client, n) => runClient(client, `c${n}`, DURATION_MS)));
    const totals: Record<string, number> = {};
    for (const r of reports) for (const [op, n] of Object.entries(r.ops)) totals[op] = (totals[op] ?? 0) + n;
    console.log(`multiserver: ${JSON.stringify(totals)}`);

    assert.deepEqual(
      reports.flatMap((r) => r.errors),
      [],
      'no operation failed unexpectedly',
    );
    assert.ok((totals.create ?? 0) > 0 && (totals.rename ?? 0) > 0 && (totals.link ?? 0) > 0);

    // Ids stay unique across servers.
    const allInos = reports.flatMap((r) => Object.values(r.inos));
    assert.equal(new Set(allInos).size, allInos.length, 'an inode number was handed out twice');

    const { problems, entries } = await checkConsistency(url);
    assert.deepEqual(problems, [], 'consistency check');

    // The tree the successful operations imply.
    const tokenIno = new Map<string, number>();
    for (const r of reports) for (const [token, ino] of Object.entries(r.inos)) tokenIno.set(token, ino);
    const expected = new Map<string, number>();
    for (const name of [...SHARED_DIRS, 'contest']) expected.set(`/${name}`, entries.get(`/${name}`)!);
    for (const r of reports) {
      for (const [dir, name, token] of r.names) expected.set(`/${dir}/${name}`, tokenIno.get(token)!);
    }
    const mkdirWinners = new Map<string, number>();
    for (const r of reports) {
      for (const name of r.mkdirWins) mkdirWinners.set(name, (mkdirWinners.get(name) ?? 0) + 1);
    }
    for (const [name, wins] of mkdirWinners) {
      assert.equal(wins, 1, `mkdir contest/${name} succeeded ${wins} times`);
      expected.set(`/contest/${name}`, entries.get(`/contest/${name}`)!);
    }
    const renameWinners = new Map<string, string[]>();
    for (const r of reports) {
      for (const [name, token] of r.renameWins)
        renameWinners.set(name, [...(renameWinners.get(name) ?? []), token]);
    }
    for (const [name, tokens] of renameWinners) {
      assert.equal(
        tokens.length,
        1,
        `RENAME_NOREPLACE onto contest/${name} succeeded ${tokens.length} times`,
      );
      expected.set(`/contest/${name}`, tokenIno.get(tokens[0])!);
    }
    assert.deepEqual(new Map([...entries].sort()), new Map([...expected].sort()));
  });
});
