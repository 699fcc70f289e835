import net from 'node:net';
import { FsError } from '../../src/common/index.js';
import {
  startRpcServer,
  type RpcServer,
  type RpcServerOptions,
  RpcClient,
  type RpcClientOptions,
} from '../../src/rpc/index.js';

export const SECRET = 'test-volume-secret';

/**
 * A small service for RPC-level tests: `echo` returns its argument, `sleep` answers after a
 * delay (so replies overtake each other), `fail` throws an FsError, `boom` a plain Error, and
 * `big` answers that many bytes, `bump` is a non-idempotent counter, so tests can count how often a call was really applied.
 */
export class TestService {
  bumps = 0;
  calls = 0;
  running = 0;
  maxRunning = 0;

  handle = async (method: string, args: unknown[]): Promise<unknown> => {
    this.calls++;
    switch (method) {
      case 'echo':
        return args[0];
      case 'sleep':
        this.running++;
        this.maxRunning = Math.max(this.maxRunning, this.running);
        await new Promise((resolve) => setTimeout(resolve, Number(args[0])));
        this.running--;
        return args[1];
      case 'big':
        return Buffer.alloc(Number(args[0]), 7);
      case 'fail':
        throw new FsError(Number(args[0]), String(args[1]));
      case 'boom':
        throw new Error('kaboom');
      case 'bump':
        this.bumps++;
        return { bumps: this.bumps, tag: args[0] };
      case 'slowbump':
        await new Promise((resolve) => setTimeout(resolve, Number(args[1])));
        this.bumps++;
        return { bumps: this.bumps, tag: args[0] };
      default:
        throw new FsError(38 /* ENOSYS */, `unknown method ${method}`);
    }
  };
}

export async function startTestServer(
  service: TestService,
  options: Partial<RpcServerOptions> = {},
): Promise<RpcServer> {
  return startRpcServer({ listen: '127.0.0.1:0', secret: SECRET, handler: service.handle, ...options });
}

export function testClient(address: string, options: Partial<RpcClientOptions> = {}): RpcClient {
  return new RpcClient({
    address,
    secret: SECRET,
    timeoutMs: 10_000,
    connectTimeoutMs: 2_000,
    initialBackoffMs: 20,
    maxBackoffMs: 200,
    ...options,
  });
}

/**
 * A TCP proxy in front of a server that can lose a connection at the worst moment: after the
 * server got a request (and maybe applied it) but before the client saw the answer.
 */
export class CuttingProxy {
  /** When set, the next server-to-client bytes are dropped and both sides disconnected. */
  dropNextReply = false;
  /** When set, the next client-to-server bytes are forwarded and both sides disconnected at once. */
  cutAfterNextRequest = false;
  cuts = 0;
  private readonly sockets = new Set<net.Socket>();

  private constructor(
    private readonly server: net.Server,
    readonly address: string,
  ) {}

  static async start(target: string): Promise<CuttingProxy> {
    const [host, port] = target.split(':');
    let proxy: CuttingProxy | null = null;
    const server = net.createServer((client) => {
      const upstream = net.connect({ host, port: Number(port) });
      const self = proxy as CuttingProxy;
      self.sockets.add(client).add(upstream);
      const cut = (): void => {
        self.cuts++;
        client.destroy();
        upstream.destroy();
      };
      client.on('data', (chunk: Buffer) => {
        upstream.write(chunk);
        if (self.cutAfterNextRequest) {
          self.cutAfterNextRequest = false;
          // Let the request reach the server before the connection dies.
          upstream.once('drain', cut);
          setTimeout(cut, 20);
        }
      });
      upstream.on('data', (chunk: Buffer) => {
        // Handshake frames go through; only an answer (RESULT, type 7) is dropped.
        if (self.dropNextReply && chunk.length > 4 && chunk[5] === 0x07) {
          self.dropNextReply = false;
          cut();
          return;
        }
        client.write(chunk);
      });
      for (const socket of [client, upstream]) {
        socket.on('error', () => {});
        socket.on('close', () => {
          self.sockets.delete(socket);
          client.destroy();
          upstream.destroy();
        });
      }
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    proxy = new CuttingProxy(server, `127.0.0.1:${(server.address() as net.AddressInfo).port}`);
    return proxy;
  }

  close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

/** A seeded PRNG (mulberry32) so a failing fuzz run can be replayed from its printed seed. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
