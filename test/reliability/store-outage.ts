// The object store taken away for longer than the retry budget, on a real
// mount: `strata up --storage s3://...` reaches radosgw through a TCP proxy
// that the test cuts (every connection reset, new ones too) and restores.
// Applications must get EIO from fsync and close while the store is away,
// nothing acknowledged before must be lost (checked through a fresh mount, so
// from the store), and once the store is back the same mount must work again.
import { createServer, connect, type Socket } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { openObjectStore } from '../../src/object/index.js';
import { FileModel, fillPattern } from './crash.js';
import { Executor } from './executor.js';
import { startStrata, type StrataMount } from './strata-mount.js';

/** A TCP forwarder to one address whose link can be cut and restored, keeping its port. */
export class CuttableProxy {
  private readonly sockets = new Set<Socket>();
  private readonly server = createServer((client) => this.accept(client));
  private cut = false;
  port = 0;

  private constructor(
    private readonly targetHost: string,
    private readonly targetPort: number,
  ) {}

  static async start(targetHost: string, targetPort: number): Promise<CuttableProxy> {
    const proxy = new CuttableProxy(targetHost, targetPort);
    await new Promise<void>((resolve) => proxy.server.listen(0, '127.0.0.1', resolve));
    const address = proxy.server.address();
    if (address === null || typeof address === 'string') throw new Error('the proxy has no TCP port');
    proxy.port = address.port;
    return proxy;
  }

  private accept(client: Socket): void {
    if (this.cut) {
      client.resetAndDestroy();
      return;
    }
    const upstream = connect(this.targetPort, this.targetHost);
    for (const [a, b] of [
      [client, upstream],
      [upstream, client],
    ] as const) {
      this.sockets.add(a);
      a.on('error', () => b.destroy());
      a.on('close', () => {
        this.sockets.delete(a);
        b.destroy();
      });
      a.pipe(b);
    }
  }

  /** From now on the store is unreachable: open connections reset, new ones reset at once. */
  cutLink(): void {
    this.cut = true;
    for (const socket of this.sockets) socket.resetAndDestroy();
  }

  restoreLink(): void {
    this.cut = false;
  }

  async close(): Promise<void> {
    this.cutLink();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

export interface OutageOptions {
  /** An s3:// URL of a reachable store (its endpoint is what the proxy forwards to). */
  storeUrl: string;
  /** The mount's --store-retry: how long a store request is retried before EIO. */
  retryBudget: string;
  seed: number;
}

export interface OutageResult {
  /** Replies of fsync/close while the store was away, e.g. "fsync f1: err EIO". */
  duringOutage: string[];
  /** Operations after the store came back that failed (must be none). */
  failuresAfter: string[];
  /** Files whose content after a remount is not a state their acknowledged history allows. */
  problems: string[];
  acknowledged: number;
}

/** `s3://bucket/PREFIX?...` with the endpoint (and other query parameters) replaced. */
export function withQuery(url: string, extra: Record<string, string>): string {
  const q = url.indexOf('?');
  const params = new URLSearchParams(q < 0 ? '' : url.slice(q + 1));
  for (const [k, v] of Object.entries(extra)) params.set(k, v);
  return `${q < 0 ? url : url.slice(0, q)}?${params.toString()}`;
}

/** Runs the outage scenario once; the caller asserts on the result. */
export async function runStoreOutage(options: OutageOptions): Promise<OutageResult> {
  const endpoint = new URL(new URLSearchParams(options.storeUrl.split('?')[1] ?? '').get('endpoint') ?? '');
  const proxy = await CuttableProxy.start(endpoint.hostname, Number(endpoint.port || 80));
  const work = mkdtempSync('/tmp/strata-rel-outage-');
  const dataDir = join(work, 'data');
  const mountpoint = join(work, 'mnt');
  // One attempt must not wait out the whole budget on a dead connection either.
  const storage = withQuery(options.storeUrl, {
    endpoint: `http://127.0.0.1:${proxy.port}`,
    timeout: options.retryBudget,
  });
  const args = ['--storage', storage, '--store-retry', options.retryBudget];
  const result: OutageResult = { duringOutage: [], failuresAfter: [], problems: [], acknowledged: 0 };
  const models = new Map<string, FileModel>();
  let mount: StrataMount | undefined;
  let executor: Executor | undefined;
  let seed = options.seed;
  try {
    mount = await startStrata({ dataDir, mountpoint, extraArgs: args });
    executor = new Executor({ root: mountpoint, requestTimeoutMs: 120_000 });
    const exec = executor;
    const request = (line: string): Promise<string> => exec.request(line);
    // Slot i holds file fi; every write is 100 KiB of a pattern the model reproduces.
    const write = async (slot: number, offset: number): Promise<string> => {
      const model = models.get(`f${slot}`);
      const bytes = fillPattern(100_000, ++seed);
      model?.write(offset, bytes);
      return request(`0 write ${slot} ${offset} ${bytes.length} ${seed}`);
    };
    const must = async (what: string, reply: Promise<string>, failures: string[]): Promise<boolean> => {
      const text = await reply;
      if (!text.startsWith('ok')) failures.push(`${what}: ${text}`);
      return text.startsWith('ok');
    };
    const setup: string[] = [];
    await must('base', request('!base outage'), setup);
    for (let slot = 0; slot < 4; slot++) {
      models.set(`f${slot}`, new FileModel());
      await must(`create f${slot}`, request(`0 open ${slot} f${slot} rw+creat+excl 0644`), setup);
      await must(`write f${slot}`, write(slot, 0), setup);
      if (await must(`fsync f${slot}`, request(`0 fsync ${slot}`), setup)) {
        models.get(`f${slot}`)?.ack();
        result.acknowledged++;
      }
    }
    await must('open dir', request('0 open 9 . r+directory 0'), setup);
    await must('fsync dir', request('0 fsync 9'), setup);
    if (setup.length > 0) throw new Error(`the mount failed before any outage: ${setup.join('; ')}`);

    proxy.cutLink();
    // Buffered writes may still succeed; making them durable must fail, not hang or lie.
    for (const slot of [1, 2, 3]) await write(slot, 100_000);
    result.duringOutage.push(`fsync f1: ${await request('0 fsync 1')}`);
    result.duringOutage.push(`fdatasync f2: ${await request('0 fdatasync 2')}`);
    result.duringOutage.push(`close f3: ${await request('0 close 3')}`);
    proxy.restoreLink();

    // The same mount, without a restart: new data becomes durable again.
    const after = result.failuresAfter;
    models.set('f4', new FileModel());
    await must('create f4', request('0 open 4 f4 rw+creat+excl 0644'), after);
    await must('write f4', write(4, 0), after);
    if (await must('fsync f4', request('0 fsync 4'), after)) models.get('f4')?.ack();
    await must('write f0', write(0, 100_000), after);
    if (await must('fsync f0', request('0 fsync 0'), after)) models.get('f0')?.ack();
    await must('fsync dir', request('0 fsync 9'), after);
    await executor.close();
    executor = undefined;

    // Only what reached the store counts: a fresh mount on the same volume.
    await mount.stop();
    mount = await startStrata({ dataDir, mountpoint, extraArgs: args });
    for (const [name, model] of models) {
      // Asynchronously: the proxy lives on this event loop, and a synchronous read would
      // stall the very requests it is waiting for.
      const content = await readFile(join(mountpoint, 'outage', name)).then(
        (bytes): Uint8Array | null => bytes,
        (error: NodeJS.ErrnoException) => {
          if (error.code === 'ENOENT') return null;
          result.problems.push(`${name}: cannot be read back: ${error.message}`);
          return undefined;
        },
      );
      const problem = content === undefined ? undefined : model.check(content);
      if (problem) result.problems.push(`${name}: ${problem}`);
    }
  } finally {
    await executor?.close();
    proxy.restoreLink();
    await mount?.stop();
    await proxy.close();
    rmSync(work, { recursive: true, force: true });
    await deleteAll(options.storeUrl);
  }
  return result;
}

/** Removes every object under the URL's prefix (straight to the store, not through the proxy). */
async function deleteAll(url: string): Promise<void> {
  const store = await openObjectStore(url, { retry: false });
  try {
    for await (const info of store.list('')) await store.delete(info.key);
  } finally {
    await store.close();
  }
}
