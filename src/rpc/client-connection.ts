import net from 'node:net';
import tls from 'node:tls';
import { Errno, FsError } from '../common/index.js';
import { formatRpcAddress, type RpcAddress } from './address.js';
import { clientProof, newNonce, proofMatches, serverProof, type RpcSecret } from './auth.js';
import { MessageType, PROTOCOL_VERSION, decodePayload, encodeFrame } from './codec.js';
import { FrameDecoder, FrameTooLargeError } from './frame.js';

/** A call as a connection sees it; the RpcClient owns its life cycle (timeouts, retries). */
export interface OutgoingCall {
  method: string;
  args: unknown[];
  /** Set for calls applied at most once. */
  seq?: number;
  isRetry: boolean;
  /** The request id on the connection it is in flight on (0 when not sent). */
  requestId: number;
  onResult(value: unknown): void;
  onError(error: FsError): void;
}

export interface ConnectionOptions {
  address: RpcAddress;
  secret: RpcSecret;
  clientId: string;
  tls?: tls.ConnectionOptions;
  connectTimeoutMs: number;
  maxFrameBytes: number;
  /** Ask the server for PUSH frames (it sends none otherwise). */
  wantsPushes?: boolean;
  /** Only tests change this, to check that a mismatch is refused. */
  protocolVersion?: number;
}

const KEEPALIVE_DELAY_MS = 15_000;

/** A connection-level failure: `fatal` ones (bad secret, version mismatch) are not worth retrying. */
export class ConnectionError extends FsError {
  constructor(
    errno: number,
    message: string,
    readonly fatal: boolean,
    options?: { cause?: unknown },
  ) {
    super(errno, message, options);
  }
}

/**
 * One authenticated client connection carrying many calls at once. Replies are matched to
 * calls by request id, in whatever order they come.
 */
export class ClientConnection {
  private readonly pending = new Map<number, OutgoingCall>();
  private nextRequestId = 1;
  private closed = false;
  private corked = false;
  /** Receives the server's unasked messages (PUSH frames). */
  onPush: (topic: string, value: unknown) => void = () => {};
  /** Set once, when the connection is gone; receives the calls that were still in flight. */
  onClose: (error: ConnectionError, orphans: OutgoingCall[]) => void = () => {};

  private constructor(
    private readonly socket: net.Socket,
    private readonly decoder: FrameDecoder,
    private readonly where: string,
  ) {}

  get inFlight(): number {
    return this.pending.size;
  }

  get isOpen(): boolean {
    return !this.closed;
  }

  /** Connects and authenticates; rejects with a ConnectionError. */
  static open(options: ConnectionOptions): Promise<ClientConnection> {
    const where = formatRpcAddress(options.address);
    return new Promise((resolve, reject) => {
      const { address } = options;
      const secureEvent = options.tls ? 'secureConnect' : 'connect';
      const socket =
        address.kind === 'unix'
          ? net.connect(address.path)
          : options.tls
            ? tls.connect({ ...options.tls, host: address.host, port: address.port })
            : net.connect({ host: address.host, port: address.port, noDelay: true });
      const clientNonce = newNonce();
      let serverNonce: Buffer | null = null;
      let settled = false;
      const fail = (error: ConnectionError): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        socket.destroy();
        reject(error);
      };
      const timer = setTimeout(
        () =>
          fail(
            new ConnectionError(
              Errno.ETIMEDOUT,
              `no handshake with ${where} within ${options.connectTimeoutMs} ms`,
              false,
            ),
          ),
        options.connectTimeoutMs,
      );
      let connection: ClientConnection | null = null;
      const decoder = new FrameDecoder(options.maxFrameBytes, (payload) => {
        if (connection) {
          connection.onFrame(payload);
          return;
        }
        let message: unknown;
        try {
          message = decodePayload(payload);
        } catch {
          message = null;
        }
        const [type, a, b] = Array.isArray(message) ? message : [];
        if (type === MessageType.REJECT) {
          const fatal = a === Errno.EACCES || a === Errno.EIO;
          fail(new ConnectionError(Number(a), `${where} refused the connection: ${String(b)}`, fatal));
        } else if (type === MessageType.CHALLENGE && serverNonce === null && Buffer.isBuffer(b)) {
          if (a !== (options.protocolVersion ?? PROTOCOL_VERSION)) {
            fail(
              new ConnectionError(
                Errno.EIO,
                `${where} speaks RPC protocol version ${String(a)}, this client ${PROTOCOL_VERSION}; run the same StrataFS version on both sides`,
                true,
              ),
            );
            return;
          }
          serverNonce = b;
          const proof = clientProof(options.secret, options.clientId, clientNonce, serverNonce);
          socket.write(encodeFrame([MessageType.AUTH, proof]));
        } else if (type === MessageType.AUTH_OK && serverNonce !== null) {
          const expected = serverProof(options.secret, options.clientId, clientNonce, serverNonce);
          if (!proofMatches(expected, a)) {
            fail(
              new ConnectionError(
                Errno.EACCES,
                `${where} could not prove it holds the volume's secret; refusing to use it`,
                true,
              ),
            );
            return;
          }
          settled = true;
          clearTimeout(timer);
          socket.removeAllListeners('error');
          connection = new ClientConnection(socket, decoder, where);
          connection.listen();
          resolve(connection);
        } else {
          fail(
            new ConnectionError(Errno.EIO, `${where} answered the handshake with a malformed message`, false),
          );
        }
      });
      socket.on('data', (chunk: Buffer) => {
        try {
          decoder.push(chunk);
        } catch (error) {
          if (connection) connection.shutDown(connectionError(where, error));
          else fail(connectionError(where, error));
        }
      });
      socket.on('error', (error: NodeJS.ErrnoException) => fail(connectionError(where, error)));
      socket.on('close', () =>
        fail(
          new ConnectionError(
            Errno.ECONNREFUSED,
            `${where} closed the connection during the handshake`,
            false,
          ),
        ),
      );
      socket.once(secureEvent, () => {
        const version = options.protocolVersion ?? PROTOCOL_VERSION;
        const hello: unknown[] = [MessageType.HELLO, version, options.clientId, clientNonce];
        if (options.wantsPushes === true) hello.push(true);
        socket.write(encodeFrame(hello));
      });
    });
  }

  private listen(): void {
    // A server that vanished without a FIN (host down, partition) is noticed even while idle.
    this.socket.setKeepAlive(true, KEEPALIVE_DELAY_MS);
    this.socket.removeAllListeners('close');
    this.socket.on('error', (error: Error) => this.shutDown(connectionError(this.where, error)));
    this.socket.on('close', () =>
      this.shutDown(new ConnectionError(Errno.ENOTCONN, `connection to ${this.where} closed`, false)),
    );
  }

  /** Sends a call; throws an FsError (without sending) if it cannot be encoded. */
  send(call: OutgoingCall, ackBelowSeq: number): void {
    const id = this.nextRequestId;
    this.nextRequestId = id === 0xffffffff ? 1 : id + 1;
    const message =
      call.seq === undefined
        ? [MessageType.REQUEST, id, call.method, call.args]
        : [MessageType.REQUEST, id, call.method, call.args, call.seq, ackBelowSeq, call.isRetry];
    let frame: Buffer;
    try {
      frame = encodeFrame(message);
    } catch (error) {
      throw new FsError(
        Errno.EINVAL,
        `arguments of ${call.method} cannot be encoded: ${(error as Error).message}`,
      );
    }
    call.requestId = id;
    this.pending.set(id, call);
    if (!this.corked) {
      this.corked = true;
      this.socket.cork();
      process.nextTick(() => {
        this.corked = false;
        this.socket.uncork();
      });
    }
    this.socket.write(frame);
  }

  /** Forgets a call (timed out): a late reply for it is ignored. */
  forget(call: OutgoingCall): void {
    if (this.pending.get(call.requestId) === call) this.pending.delete(call.requestId);
  }

  close(): void {
    this.shutDown(
      new ConnectionError(Errno.ENOTCONN, `connection to ${this.where} closed by the client`, true),
    );
  }

  private onFrame(payload: Buffer): void {
    let message: unknown;
    try {
      message = decodePayload(payload);
    } catch {
      this.shutDown(new ConnectionError(Errno.EIO, `${this.where} sent an undecodable frame`, false));
      return;
    }
    if (!Array.isArray(message)) return;
    const type = message[0];
    if (type === MessageType.RESULT || type === MessageType.ERROR) {
      const call = this.pending.get(message[1] as number);
      if (!call) return; // timed out earlier
      this.pending.delete(call.requestId);
      if (type === MessageType.RESULT) call.onResult(message[2]);
      else call.onError(wireError(message[2], message[3]));
    } else if (type === MessageType.PUSH) {
      if (typeof message[1] === 'string') this.onPush(message[1], message[2]);
    } else if (type === MessageType.REJECT) {
      this.shutDown(
        new ConnectionError(Errno.EIO, `${this.where} closed the connection: ${String(message[2])}`, false),
      );
    }
  }

  private shutDown(error: ConnectionError): void {
    if (this.closed) return;
    this.closed = true;
    this.decoder.stop();
    this.socket.destroy();
    const orphans = [...this.pending.values()];
    this.pending.clear();
    this.onClose(error, orphans);
  }
}

/** An FsError as the server sent it: same errno, same message. */
function wireError(errno: unknown, message: unknown): FsError {
  const valid = Number.isInteger(errno) && (errno as number) > 0;
  return new FsError(
    valid ? (errno as number) : Errno.EIO,
    typeof message === 'string' ? message : 'unknown error',
  );
}

function connectionError(where: string, error: unknown): ConnectionError {
  if (error instanceof FrameTooLargeError) {
    return new ConnectionError(Errno.EIO, `${where} sent a ${error.message}`, false);
  }
  const code = (error as NodeJS.ErrnoException).code ?? '';
  const errno = code in Errno ? Errno[code as keyof typeof Errno] : Errno.EIO;
  const fatal = /^(ERR_TLS|ERR_SSL)|CERT|SELF_SIGNED|UNABLE_TO_VERIFY/.test(code);
  return new ConnectionError(errno, `${where}: ${(error as Error).message}`, fatal, { cause: error });
}
