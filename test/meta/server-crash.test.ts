import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ROOT_INO, type Ino } from '../../src/common/index.js';
import { formatVolume, openMetaService, type Caller } from '../../src/meta/index.js';
import { connectMeta, type MetaClient } from '../../src/meta/client/index.js';
import { seededRandom } from '../rpc/helpers.js';

const root: Caller = { uid: 0, gid: 0, pid: 1 };
const S_IFREG = 0o100000;
const S_IFDIR = 0o040000;
const S_IFMT = 0o170000;
const WORKERS = 6;
const MAIN_JS = fileURLToPath(new URL('../../src/meta/server/main.js', import.meta.url));

/** Starts `meta/server/main.js` as a child process and waits for its "listening" line. */
async function startServerProcess(
  engineUrl: string,
  socket: string,
  engineThread: boolean,
): Promise<ChildProcess> {
  const args = [
    MAIN_JS,
    '--engine',
    engineUrl,
    '--listen',
    socket,
    ...(engineThread ? [] : ['--no-engine-thread']),
  ];
  const child = spawn(process.execPath, args, {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  await new Promise<void>((resolve, reject) => {
    child.stdout?.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      if (output.includes('listening on')) resolve();
    });
    child.once('exit', (code) =>
      reject(new Error(`metadata server exited (${code}) before listening: ${output}`)),
    );
  });
  return child;
}

async function kill9(child: ChildProcess | null): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill('SIGKILL');
  await exited;
}

type Kind = 'file' | 'dir';
interface Entry {
  kind: Kind;
  /** Where it is for sure, or both candidates while an unanswered rename may or may not have happened. */
  places: string[];
  /** False when its create was never answered (it may or may not exist). */
  created: boolean;
}

/**
 * Streams creates and renames from several workers, recording what the server acknowledged.
 * A worker stops at its first failed call (the server is dead); that call's effect is unknown.
 */
async function stream(
  client: MetaClient,
  dirs: Map<string, Ino>,
  model: Map<string, Entry>,
  round: number,
  random: () => number,
  onAcknowledged: () => void,
): Promise<void> {
  const names = [...dirs.keys()];
  const worker = async (w: number): Promise<void> => {
    const home = names[w];
    // Runs until the server dies under it (bounded, in case it never does).
    for (let i = 0; i < 100_000; i++) {
      const kind: Kind = i % 4 === 0 ? 'dir' : 'file';
      const name = `${kind[0]}${round}-${w}-${i}`;
      const entry: Entry = { kind, places: [`${home}/${name}`], created: false };
      model.set(name, entry);
      try {
        if (kind === 'dir') await client.mkdir(root, dirs.get(home) as Ino, name, 0o755, 0);
        else await client.mknod(root, dirs.get(home) as Ino, name, S_IFREG | 0o644, 0, 0);
        entry.created = true;
        onAcknowledged();
        if (random() < 0.4) {
          const target = names[Math.floor(random() * names.length)];
          const newName = `m-${name}`;
          entry.places = [`${home}/${name}`, `${target}/${newName}`];
          await client.rename(root, dirs.get(home) as Ino, name, dirs.get(target) as Ino, newName, 0);
          entry.places = [`${target}/${newName}`];
          onAcknowledged();
        }
      } catch {
        return;
      }
    }
  };
  await Promise.all(Array.from({ length: WORKERS }, (_, w) => worker(w)));
}

/** Checks the namespace after a restart against what was acknowledged. */
async function verify(
  client: MetaClient,
  dirs: Map<string, Ino>,
  model: Map<string, Entry>,
): Promise<number> {
  const found = new Map<string, { ino: Ino; type: number }>();
  for (const [dirName, dirIno] of dirs) {
    const entries = (await client.readdir(root, dirIno, 0, 100_000, true)).filter(
      (e) => e.name !== '.' && e.name !== '..',
    );
    let childDirs = 0;
    for (const entry of entries) {
      // No dangling entry: every name leads to a live inode of the type the entry says.
      const attr = await client.getattr(entry.ino);
      assert.equal(attr.mode & S_IFMT, entry.type, `type of ${dirName}/${entry.name}`);
      if (entry.type === S_IFDIR) {
        childDirs++;
        assert.equal(attr.nlink, 2, `link count of empty directory ${dirName}/${entry.name}`);
      } else {
        assert.equal(attr.nlink, 1, `link count of ${dirName}/${entry.name}`);
      }
      found.set(`${dirName}/${entry.name}`, { ino: entry.ino, type: entry.type });
    }
    assert.equal((await client.getattr(dirIno)).nlink, 2 + childDirs, `link count of ${dirName}`);
  }
  const seen = new Set<string>();
  for (const [name, entry] of model) {
    const present = entry.places.filter((place) => found.has(place));
    assert.ok(present.length <= 1, `${name} exists twice: ${present.join(', ')}`);
    if (entry.created)
      assert.equal(
        present.length,
        1,
        `acknowledged ${name} is missing (expected at ${entry.places.join(' or ')})`,
      );
    for (const place of present) {
      seen.add(place);
      assert.equal(found.get(place)?.type, entry.kind === 'dir' ? S_IFDIR : S_IFREG);
    }
  }
  const unexplained = [...found.keys()].filter((place) => !seen.has(place));
  assert.deepEqual(unexplained, [], 'entries nobody created');
  assert.equal((await client.getattr(ROOT_INO)).nlink, 2 + dirs.size);
  const stat = await client.statfs();
  assert.equal(stat.inodesUsed, 1 + dirs.size + found.size, 'inodes in use = root + worker dirs + entries');
  return found.size;
}

test('kill -9 of the server during creates and renames loses no acknowledged operation and leaves it consistent', async () => {
  const seed = Number(process.env.STRATA_TEST_SEED ?? Date.now() % 1_000_000_007);
  console.log(`crash test seed ${seed}`);
  const random = seededRandom(seed);
  const dir = mkdtempSync(join(tmpdir(), 'strata-rpc-crash-'));
  const engineUrl = `sqlite:${join(dir, 'meta.db')}`;
  const socket = join(dir, 'meta.sock');
  let child: ChildProcess | null = null;
  let client: MetaClient | null = null;
  try {
    await formatVolume(engineUrl, { name: 'crash' });
    const service = await openMetaService({ engineUrl, background: false });
    const secret = await service.volumeSecret();
    await service.close();

    child = await startServerProcess(engineUrl, socket, false);
    const connect = () =>
      connectMeta({
        address: socket,
        secret,
        timeoutMs: 10_000,
        maxAttempts: 3,
        initialBackoffMs: 20,
        maxBackoffMs: 100,
        connections: 2,
      });
    client = await connect();
    const dirs = new Map<string, Ino>();
    for (let w = 0; w < WORKERS; w++)
      dirs.set(`w${w}`, (await client.mkdir(root, ROOT_INO, `w${w}`, 0o755, 0)).ino);
    const model = new Map<string, Entry>();

    for (let round = 0; round < 2; round++) {
      let acknowledged = 0;
      const killAt = 200 + Math.floor(random() * 400);
      const streaming = stream(client, dirs, model, round, random, () => acknowledged++);
      // Kill the server once enough calls have been acknowledged, mid-stream.
      while (acknowledged < killAt) await new Promise((resolve) => setTimeout(resolve, 2));
      await kill9(child);
      child = null;
      await streaming;
      await client.close();

      // Rounds alternate between the engine on the serving thread and on its own thread.
      child = await startServerProcess(engineUrl, socket, round === 0);
      client = await connect();
      const entries = await verify(client, dirs, model);
      console.log(`round ${round}: killed after ${killAt} acknowledged calls; ${entries} entries verified`);
    }
  } finally {
    await client?.close();
    await kill9(child);
    rmSync(dir, { recursive: true, force: true });
  }
});

test('commits nobody synced survive kill -9 of the server (they are in the WAL), and sync works over RPC', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'strata-rpc-unsynced-'));
  const engineUrl = `sqlite:${join(dir, 'meta.db')}`;
  const socket = join(dir, 'meta.sock');
  let child: ChildProcess | null = null;
  let client: MetaClient | null = null;
  try {
    await formatVolume(engineUrl, { name: 'unsynced' });
    const service = await openMetaService({ engineUrl, background: false });
    const secret = await service.volumeSecret();
    await service.close();
    const connect = () => connectMeta({ address: socket, secret, timeoutMs: 10_000, connections: 4 });

    child = await startServerProcess(engineUrl, socket, true);
    client = await connect();
    const c = client;
    // A synced prefix, then 3,000 creates and 1,000 unlinks with no sync after them.
    const base = await c.mkdir(root, ROOT_INO, 'base', 0o755, 0);
    await Promise.all([c.sync(), c.sync(), c.sync()]);
    const names = Array.from({ length: 3000 }, (_, i) => `f${i}`);
    for (let i = 0; i < names.length; i += 100) {
      await Promise.all(
        names.slice(i, i + 100).map((name) => c.mknod(root, base.ino, name, S_IFREG | 0o644, 0, 0)),
      );
    }
    for (let i = 0; i < 1000; i += 100) {
      await Promise.all(names.slice(i, i + 100).map((name) => c.unlink(root, base.ino, name)));
    }
    // The last reply is out: kill at once, before any checkpoint or timer could flush.
    await kill9(child);
    child = null;
    await client.close();
    client = null;

    child = await startServerProcess(engineUrl, socket, false);
    client = await connect();
    const listed = (await client.readdir(root, base.ino, 0, 10_000, false))
      .map((e) => e.name)
      .filter((name) => name !== '.' && name !== '..')
      .sort();
    assert.deepEqual(listed, names.slice(1000).sort());
    assert.equal((await client.statfs()).inodesUsed, 1 + 1 + 2000);
    await client.sync();
  } finally {
    await client?.close();
    await kill9(child);
    rmSync(dir, { recursive: true, force: true });
  }
});
