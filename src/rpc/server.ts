import net from 'node:net';
import tls from 'node:tls';
import { unlinkSync } from 'node:fs';
import { Errno, FsError, fsError } from '../common/index.js';
import { formatRpcAddress, parseRpcAddress, type RpcAddress } from './address.js';
import type { RpcSecret } from './auth.js';
import { DEFAULT_MAX_FRAME_BYTES, MessageType, encodeFrame } from './codec.js';
import { ReplayCache, type ReplayOptions } from './replay.js';
import { ServerConnection } from './server-connection.js';
import type { RpcServerStats } from './stats.js';
import { DEFAULT_TURN_BUDGET_MS, TurnBudget } from './turn-budget.js';

/** What the server knows about a call besides its method and arguments. */
export interface CallInfo {
  /** The client's stable id (survives reconnects), sent in its handshake. */
  clientId: string;
  /** Set for calls the client wants applied at most once. */
  seq?: number;
  isRetry: boolean;
  /** The method's series in `RpcServerOptions.stats` (its place in the method list), -1 without stats. */
  methodIndex: number;
}

/** Runs one call. Throw (or reject with) an FsError to answer with its errno and message. */
export type RpcHandler = (method: string, args: unknown[], call: CallInfo) => Promise<unknown> | unknown;

/** Things worth counting or logging; the server itself never logs. */
export type RpcServerEvent =
  | { type: 'connection'; remote: string }
  | { type: 'disconnect'; remote: string }
  | { type: 'rejected'; remote: string; reason: string }
  | { type: 'internal-error'; method: string; error: unknown };

export interface RpcServerOptions {
  /** `HOST:PORT` (port 0 picks a free one) or a Unix socket path. */
  listen: string;
  secret: RpcSecret;
  handler: RpcHandler;
  /** Serve TLS on TCP (key and cert at least). */
  tls?: tls.TlsOptions;
  maxFrameBytes?: number;
  /** Calls of one connection running at once; beyond it the server stops reading that connection. */
  maxInFlightPerConnection?: number;
  /** An unauthenticated connection is closed after this long. */
  handshakeTimeoutMs?: number;
  /** At-most-once memory for numbered calls; `false` runs every resend again. */
  replay?: ReplayOptions | false;
  /**
   * How long one event-loop turn may keep starting calls before the rest wait for a later turn
   * (turn-budget.ts); default DEFAULT_TURN_BUDGET_MS.
   */
  turnBudgetMs?: number;
  onEvent?: (event: RpcServerEvent) => void;
  /**
   * Count calls (by method: latency from frame decoded to reply written, errors by errno),
   * connections, bytes and pushes here, for metrics. Without it the serving loop counts nothing.
   */
  stats?: RpcServerStats;
}

export interface RpcServer {
  /** The address clients should use (the real port when listening on port 0). */
  readonly address: string;
  readonly connectionCount: number;
  readonly replay: ReplayCache | null;
  /**
   * Sends `[PUSH, topic, value]` to every authenticated client that understands pushes, except
   * those whose client id is `exceptClientId` (the client whose call caused it knows already).
   */
  push(topic: string, value: unknown, exceptClientId?: string): void;
  close(): Promise<void>;
}

export const DEFAULT_MAX_IN_FLIGHT_PER_CONNECTION = 256;
export const DEFAULT_HANDSHAKE_TIMEOUT_MS = 10_000;
const REPLAY_EXPIRY_INTERVAL_MS = 1_000;

/** Settings a connection needs, resolved once per server. */
export interface ServerSettings {
  secret: RpcSecret;
  handler: RpcHandler;
  maxFrameBytes: number;
  maxInFlight: number;
  handshakeTimeoutMs: number;
  replay: ReplayCache | null;
  turn: TurnBudget;
  emit: (event: RpcServerEvent) => void;
  stats: RpcServerStats | undefined;
}

export async function startRpcServer(options: RpcServerOptions): Promise<RpcServer> {
  const address = parseRpcAddress(options.listen);
  if (options.tls && address.kind !== 'tcp') {
    throw fsError.EINVAL(
      `TLS is for TCP addresses; "${options.listen}" is a Unix socket (drop the TLS options)`,
    );
  }
  const replay = options.replay === false ? null : new ReplayCache(options.replay);
  const settings: ServerSettings = {
    secret: options.secret,
    handler: options.handler,
    maxFrameBytes: options.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES,
    maxInFlight: options.maxInFlightPerConnection ?? DEFAULT_MAX_IN_FLIGHT_PER_CONNECTION,
    handshakeTimeoutMs: options.handshakeTimeoutMs ?? DEFAULT_HANDSHAKE_TIMEOUT_MS,
    replay,
    turn: new TurnBudget(options.turnBudgetMs ?? DEFAULT_TURN_BUDGET_MS),
    emit: options.onEvent ?? (() => {}),
    stats: options.stats,
  };
  const connections = new Set<ServerConnection>();
  const accept = (socket: net.Socket): void => {
    const connection = new ServerConnection(socket, settings, () => connections.delete(connection));
    connections.add(connection);
  };
  // With TLS, a connection counts only once its TLS handshake is done.
  const server = options.tls
    ? tls.createServer(options.tls, accept)
    : net.createServer({ noDelay: true }, accept);
  // A client failing its TLS handshake must not take the server down.
  server.on('tlsClientError', (error: Error, socket: tls.TLSSocket) => {
    settings.emit({ type: 'rejected', remote: String(socket.remoteAddress), reason: error.message });
  });
  await listen(server, address);
  const expiry = replay ? setInterval(() => replay.expire(), REPLAY_EXPIRY_INTERVAL_MS).unref() : null;
  const bound = server.address();
  const actual =
    address.kind === 'tcp' && bound !== null && typeof bound === 'object'
      ? formatRpcAddress({ kind: 'tcp', host: address.host, port: bound.port })
      : formatRpcAddress(address);
  let closing: Promise<void> | null = null;
  return {
    address: actual,
    get connectionCount() {
      return connections.size;
    },
    replay,
    push(topic, value, exceptClientId) {
      // Packed only once some connection takes pushes: most clients never ask for them.
      let frame: Buffer | undefined;
      // A client with several connections hears each push once.
      const reached = new Set<string>();
      for (const connection of connections) {
        if (!connection.acceptsPushes) continue;
        const clientId = connection.peerClientId;
        if (clientId === exceptClientId || reached.has(clientId)) continue;
        frame ??= encodeFrame([MessageType.PUSH, topic, value]);
        if (connection.push(frame)) reached.add(clientId);
      }
    },
    close() {
      closing ??= new Promise<void>((resolve) => {
        if (expiry) clearInterval(expiry);
        server.close(() => resolve());
        for (const connection of connections) connection.destroy();
      });
      return closing;
    },
  };
}

async function listen(server: net.Server, address: RpcAddress): Promise<void> {
  try {
    await listenOnce(server, address);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (address.kind === 'unix' && code === 'EADDRINUSE' && !(await someoneListens(address.path))) {
      // A socket file left behind by a server that died: nobody answers on it, so reuse the path.
      unlinkSync(address.path);
      await listenOnce(server, address);
      return;
    }
    const where = formatRpcAddress(address);
    const hint = code === 'EADDRINUSE' ? '; is another server already running there?' : '';
    throw new FsError(Errno.EIO, `cannot listen on ${where}: ${(error as Error).message}${hint}`, {
      cause: error,
    });
  }
}

function listenOnce(server: net.Server, address: RpcAddress): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (error: Error): void => reject(error);
    server.once('error', onError);
    const done = (): void => {
      server.off('error', onError);
      resolve();
    };
    if (address.kind === 'unix') server.listen(address.path, done);
    else server.listen(address.port, address.host, done);
  });
}

function someoneListens(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = net.connect(path);
    probe.once('connect', () => {
      probe.destroy();
      resolve(true);
    });
    probe.once('error', () => resolve(false));
  });
}
