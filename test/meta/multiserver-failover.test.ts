import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { ROOT_INO, asIno, type Ino } from '../../src/common/index.js';
import { connectMeta, type MetaClient } from '../../src/meta/client/index.js';
import { formatVolume, openMetaService, type Caller } from '../../src/meta/index.js';
import { createTestDatabase, LONG_PROFILE, PG_SKIP_REASON, type TestDatabase } from './postgres-fixture.js';

/**
 * Failover: two `meta serve` processes on one PostgreSQL database; RPC clients given both
 * addresses run a workload (create, rename, link, chmod, unlink in shared directories) while
 * the server they all started on is killed with SIGKILL. No call may fail: calls in flight move
 * to the other server, and changes that committed on the dead one are answered from their
 * stored outcome instead of running twice. Afterwards the tree must be exactly the one the
 * clients' own records of their successful calls imply, with exact link counts and modes.
 */

const CLIENTS = 4;
const DURATION_MS = LONG_PROFILE ? 30_000 : 6_000;
const KILL_AFTER_MS = LONG_PROFILE ? 10_000 : 2_000;
const DIRS = ['d0', 'd1'];
const caller: Caller = { uid: 0, gid: 0, pid: 1 };
const S_IFREG = 0o100000;
const SERVER_MAIN = fileURLToPath(new URL('../../src/meta/server/main.js', import.meta.url));

interface FileModel {
  ino: Ino;
  mode: number;
  /** "dir/name" of every name of the file. */
  names: Set<string>;
}

interface ClientRun {
  files: FileModel[];
  ops: number;
  errors: string[];
}

async function runClient(
  meta: MetaClient,
  id: string,
  dirs: Map<string, Ino>,
  untilMs: number,
): Promise<ClientRun> {
  const files: FileModel[] = [];
  const errors: string[] = [];
  let serial = 0;
  let ops = 0;
  const pick = <T>(items: T[]): T => items[Math.floor(Math.random() * items.length)];
  const split = (path: string): [Ino, string] => {
    const [dir, name] = path.split('/');
    return [dirs.get(dir)!, name];
  };
  while (Date.now() < untilMs && errors.length === 0) {
    const roll = Math.random();
    const live = files.filter((f) => f.names.size > 0);
    try {
      if (live.length === 0 || roll < 0.3) {
        const dir = pick(DIRS);
        const name = `${id}-${serial++}`;
        const attr = await meta.mknod(caller, dirs.get(dir)!, name, S_IFREG | 0o644, 0, 0);
        files.push({ ino: attr.ino, mode: 0o644, names: new Set([`${dir}/${name}`]) });
      } else if (roll < 0.5) {
        const file = pick(live);
        const from = pick([...file.names]);
        const to = `${pick(DIRS)}/${id}-${serial++}`;
        const [fromDir, fromName] = split(from);
        const [toDir, toName] = split(to);
        await meta.rename(caller, fromDir, fromName, toDir, toName, 0);
        file.names.delete(from);
        file.names.add(to);
      } else if (roll < 0.65) {
        const file = pick(live);
        const to = `${pick(DIRS)}/${id}-${serial++}`;
        const [toDir, toName] = split(to);
        await meta.link(caller, file.ino, toDir, toName);
        file.names.add(to);
      } else if (roll < 0.8) {
        const file = pick(live);
        const mode = 0o600 + Math.floor(Math.random() * 0o100);
        await meta.setattr(caller, file.ino, { mode });
        file.mode = mode;
      } else {
        const file = pick(live);
        const victim = pick([...file.names]);
        const [dir, name] = split(victim);
        await meta.unlink(caller, dir, name);
        file.names.delete(victim);
      }
      ops++;
    } catch (error) {
      errors.push(`${id}: ${String(error)}`);
    }
  }
  return { files, ops, errors };
}

async function startServer(url: string): Promise<{ child: ChildProcess; address: string }> {
  const child = spawn(process.execPath, [SERVER_MAIN, '--engine', url, '--listen', '127.0.0.1:0'], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const address = await new Promise<string>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`metadata server exited with ${code}`)));
    createInterface({ input: child.stdout! }).once('line', (line) => {
      const match = / listening on (\S+)/.exec(line);
      if (match) resolve(match[1]);
      else reject(new Error(`metadata server said: ${line}`));
    });
  });
  return { child, address };
}

async function stop(child: ChildProcess, signal: NodeJS.Signals): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill(signal);
  const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
  await exited;
  clearTimeout(timer);
}

describe('metadata client failover between servers', { skip: PG_SKIP_REASON }, () => {
  let db: TestDatabase;
  const servers: ChildProcess[] = [];
  const clients: MetaClient[] = [];

  before(async () => {
    db = await createTestDatabase('strata_failover');
  });
  after(async () => {
    await Promise.all(clients.map((client) => client.close()));
    await Promise.all(servers.map((server) => stop(server, 'SIGTERM')));
    await db?.drop();
  });

  test(`kill -9 of the server ${CLIENTS} clients use, during their workload: no call fails, the tree is the one they made`, async () => {
    await formatVolume(db.url, { name: 'failover' });
    const setup = await openMetaService({ engineUrl: db.url, background: false });
    const dirs = new Map<string, Ino>();
    let secret: string;
    try {
      for (const name of DIRS) dirs.set(name, (await setup.mkdir(caller, ROOT_INO, name, 0o777, 0)).ino);
      secret = await setup.volumeSecret();
    } finally {
      await setup.close();
    }
    const first = await startServer(db.url);
    const second = await startServer(db.url);
    servers.push(first.child, second.child);
    for (let c = 0; c < CLIENTS; c++) {
      clients.push(await connectMeta({ address: `${first.address},${second.address}`, secret }));
    }

    const untilMs = Date.now() + DURATION_MS;
    const runs = clients.map((client, n) => runClient(client, `c${n}`, dirs, untilMs));
    await new Promise((resolve) => setTimeout(resolve, KILL_AFTER_MS));
    await stop(first.child, 'SIGKILL');
    const results = await Promise.all(runs);

    assert.deepEqual(
      results.flatMap((r) => r.errors),
      [],
      'no call failed',
    );
    const failovers = clients.map((client) => client.failovers);
    assert.ok(
      failovers.every((n) => n >= 1),
      `every client moved to the second server (failovers ${failovers.join(', ')})`,
    );
    const opsAfterKill = results.reduce((sum, r) => sum + r.ops, 0);
    assert.ok(opsAfterKill > 0);

    // The tree, read from the surviving server, against the clients' records.
    const check = clients[0];
    const expected = new Map<string, { ino: number; mode: number; nlink: number }>();
    for (const { files } of results) {
      for (const file of files) {
        for (const path of file.names)
          expected.set(path, { ino: file.ino, mode: file.mode, nlink: file.names.size });
      }
    }
    const actual = new Map<string, { ino: number; mode: number; nlink: number }>();
    for (const [dirName, dirIno] of dirs) {
      let cursor = 0;
      for (;;) {
        const page = await check.readdir(caller, dirIno, cursor, 500, true);
        for (const entry of page) {
          if (entry.name === '.' || entry.name === '..') continue;
          const attr = entry.attr ?? (await check.getattr(asIno(entry.ino)));
          actual.set(`${dirName}/${entry.name}`, {
            ino: attr.ino,
            mode: attr.mode & 0o7777,
            nlink: attr.nlink,
          });
        }
        if (page.length < 500) break;
        cursor = page[page.length - 1].cursor;
      }
    }
    assert.deepEqual(
      [...actual].sort(([a], [b]) => a.localeCompare(b)),
      [...expected].sort(([a], [b]) => a.localeCompare(b)),
    );
  });
});
