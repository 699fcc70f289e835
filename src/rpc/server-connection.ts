import type net from 'node:net';
import { Errno, isFsError } from '../common/index.js';
import { clientProof, newNonce, proofMatches, serverProof } from './auth.js';
import {
  FIRST_PUSH_VERSION,
  MAX_HANDSHAKE_FRAME_BYTES,
  MessageType,
  OLDEST_PROTOCOL_VERSION,
  PROTOCOL_VERSION,
  decodePayload,
  encodeFrame,
  encodeResultFrame,
} from './codec.js';
import { FrameDecoder, FrameTooLargeError } from './frame.js';
import type { CallInfo, ServerSettings } from './server.js';

const enum State {
  AwaitHello,
  AwaitAuth,
  Ready,
  Closed,
}

interface Request {
  id: number;
  method: string;
  args: unknown[];
  info: CallInfo;
  ackBelowSeq: number;
  /** The method's series in the server's stats, and when the frame was decoded (0 without stats). */
  series: number;
  startMs: number;
}

const MAX_METHOD_NAME_CHARS = 64;
/** Unsent bytes beyond which a client that does not read is dropped instead of pushed to. */
const MAX_PUSH_BACKLOG_BYTES = 16 * 1024 * 1024;
/** Sequence numbers are sent as msgpack integers and must stay exact in a JS number. */
const isSeq = (value: unknown): value is number => Number.isSafeInteger(value) && (value as number) >= 0;

/**
 * One client connection on the server: handshake, authentication, then requests run
 * concurrently (at most `maxInFlight` at once) and answered in completion order.
 */
export class ServerConnection {
  private state = State.AwaitHello;
  private readonly decoder: FrameDecoder;
  private readonly remote: string;
  private clientId = '';
  private protocolVersion = 0;
  private wantsPushes = false;
  private clientNonce: Buffer = Buffer.alloc(0);
  private serverNonce: Buffer = Buffer.alloc(0);
  private handshakeTimer: NodeJS.Timeout | null;
  private inFlight = 0;
  /** Requests read while no call could start (bound reached, answers not read); at most one socket read's worth. */
  private backlog: Request[] = [];
  private readPaused = false;
  private drainingBacklog = false;
  private writeBlocked = false;
  private corked = false;
  /** A later turn will run the backlog (the turn's budget ran out with calls waiting). */
  private resumeScheduled = false;

  constructor(
    private readonly socket: net.Socket,
    private readonly settings: ServerSettings,
    private readonly onClosed: () => void,
  ) {
    this.remote = `${socket.remoteAddress ?? 'unix'}:${socket.remotePort ?? ''}`;
    this.decoder = new FrameDecoder(MAX_HANDSHAKE_FRAME_BYTES, (payload) => this.onFrame(payload));
    socket.setNoDelay?.(true);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('drain', () => {
      this.writeBlocked = false;
      this.runBacklog();
      this.updateReading();
    });
    socket.on('error', () => {}); // the close event that follows does the cleanup
    socket.on('close', () => this.onSocketClosed());
    this.handshakeTimer = setTimeout(
      () => this.reject(Errno.ETIMEDOUT, 'no authentication within the handshake timeout'),
      settings.handshakeTimeoutMs,
    );
    if (settings.stats) settings.stats.connectionsOpened++;
    settings.emit({ type: 'connection', remote: this.remote });
  }

  destroy(): void {
    this.socket.destroy();
  }

  /** The authenticated client's id ('' before authentication). */
  get peerClientId(): string {
    return this.state === State.Ready ? this.clientId : '';
  }

  /** Authenticated, asked for pushes in its HELLO, and speaks a version that has them. */
  get acceptsPushes(): boolean {
    return this.state === State.Ready && this.wantsPushes && this.protocolVersion >= FIRST_PUSH_VERSION;
  }

  /**
   * Sends an unasked message (a PUSH frame, already encoded) if this client is authenticated and
   * asked for pushes in its HELLO; true when sent. A client that does not read its socket loses pushes rather than making
   * the server buffer them without bound: it then hears of the loss as a reconnect.
   */
  push(frame: Buffer): boolean {
    if (!this.acceptsPushes) return false;
    if (this.socket.writableLength > MAX_PUSH_BACKLOG_BYTES) {
      this.socket.destroy();
      return false;
    }
    this.send(frame);
    if (this.settings.stats) this.settings.stats.pushesSent++;
    return true;
  }

  private onData(chunk: Buffer): void {
    if (this.settings.stats) this.settings.stats.receivedBytes += chunk.length;
    try {
      this.decoder.push(chunk);
    } catch (error) {
      if (!(error instanceof FrameTooLargeError)) throw error;
      this.reject(Errno.EINVAL, `${error.message}; closing the connection`);
    }
  }

  private onFrame(payload: Buffer): void {
    let message: unknown;
    try {
      message = decodePayload(payload);
    } catch {
      this.reject(Errno.EINVAL, 'undecodable frame (not one msgpack value); closing the connection');
      return;
    }
    if (!Array.isArray(message)) {
      this.reject(Errno.EINVAL, 'malformed message (not an array); closing the connection');
      return;
    }
    switch (this.state) {
      case State.Ready:
        this.onRequestMessage(message);
        return;
      case State.AwaitHello:
        this.onHello(message);
        return;
      case State.AwaitAuth:
        this.onAuth(message);
        return;
      case State.Closed:
        return;
    }
  }

  private onHello(message: unknown[]): void {
    const [type, version, clientId, clientNonce, wantsPushes] = message;
    if (type !== MessageType.HELLO) {
      this.reject(Errno.EACCES, 'the first message must be the handshake (HELLO); authenticate first');
      return;
    }
    if (
      typeof version !== 'number' ||
      version < OLDEST_PROTOCOL_VERSION ||
      version > PROTOCOL_VERSION ||
      !Number.isInteger(version)
    ) {
      this.reject(
        Errno.EIO,
        `client speaks RPC protocol version ${String(version)} but this server speaks versions ${OLDEST_PROTOCOL_VERSION}-${PROTOCOL_VERSION}; ` +
          'run the same StrataFS version on both sides',
      );
      return;
    }
    if (
      typeof clientId !== 'string' ||
      clientId.length === 0 ||
      clientId.length > 128 ||
      !Buffer.isBuffer(clientNonce)
    ) {
      this.reject(Errno.EINVAL, 'malformed handshake (HELLO needs a client id and a nonce)');
      return;
    }
    this.clientId = clientId;
    this.clientNonce = clientNonce;
    this.protocolVersion = version;
    this.wantsPushes = wantsPushes === true;
    this.serverNonce = newNonce();
    this.state = State.AwaitAuth;
    // The version both sides speak: the client's own (this server knows every older one).
    this.send(encodeFrame([MessageType.CHALLENGE, version, this.serverNonce]));
  }

  private onAuth(message: unknown[]): void {
    const expected = clientProof(this.settings.secret, this.clientId, this.clientNonce, this.serverNonce);
    if (message[0] !== MessageType.AUTH || !proofMatches(expected, message[1])) {
      this.reject(Errno.EACCES, "authentication failed: the client does not hold this volume's secret");
      return;
    }
    this.state = State.Ready;
    if (this.handshakeTimer) clearTimeout(this.handshakeTimer);
    this.handshakeTimer = null;
    this.decoder.setMaxFrameBytes(this.settings.maxFrameBytes);
    const proof = serverProof(this.settings.secret, this.clientId, this.clientNonce, this.serverNonce);
    this.send(encodeFrame([MessageType.AUTH_OK, proof]));
  }

  private onRequestMessage(message: unknown[]): void {
    const [type, id, method, args, seq, ackBelowSeq, isRetry] = message;
    if (
      type !== MessageType.REQUEST ||
      !Number.isInteger(id) ||
      (id as number) <= 0 ||
      (id as number) > 0xffffffff
    ) {
      this.reject(
        Errno.EINVAL,
        'malformed message (expected a REQUEST with a numeric id); closing the connection',
      );
      return;
    }
    const requestId = id as number;
    const { stats } = this.settings;
    if (typeof method !== 'string' || method.length === 0 || method.length > MAX_METHOD_NAME_CHARS) {
      stats?.record(stats.otherMethodSeries, 0, Errno.EINVAL);
      this.sendError(requestId, Errno.EINVAL, 'malformed request: the method name must be a short string');
      return;
    }
    const series = stats ? stats.seriesOf(method) : -1;
    if (!Array.isArray(args)) {
      stats?.record(series, 0, Errno.EINVAL);
      this.sendError(
        requestId,
        Errno.EINVAL,
        `malformed request for ${method}: the arguments must be an array`,
      );
      return;
    }
    const numbered = message.length > 4;
    if (numbered && (!isSeq(seq) || !isSeq(ackBelowSeq) || typeof isRetry !== 'boolean')) {
      stats?.record(series, 0, Errno.EINVAL);
      this.sendError(requestId, Errno.EINVAL, `malformed request for ${method}: bad sequence fields`);
      return;
    }
    const request: Request = {
      id: requestId,
      method,
      args,
      info: {
        clientId: this.clientId,
        seq: numbered ? (seq as number) : undefined,
        isRetry: isRetry === true,
        methodIndex: series,
      },
      ackBelowSeq: numbered ? (ackBelowSeq as number) : 0,
      series,
      startMs: stats ? performance.now() : 0,
    };
    // Behind a full bound or a full write buffer, calls wait (and reading stops) instead of running;
    // past the turn's budget they wait for a later turn.
    if (this.inFlight >= this.settings.maxInFlight || this.writeBlocked || this.backlog.length > 0) {
      this.backlog.push(request);
      this.updateReading();
      return;
    }
    if (!this.settings.turn.hasRoom()) {
      this.backlog.push(request);
      this.updateReading();
      this.resumeInLaterTurn();
      return;
    }
    this.run(request);
  }

  /** Runs the waiting calls in a later turn (once; the backlog keeps their order). */
  private resumeInLaterTurn(): void {
    if (this.resumeScheduled) return;
    this.resumeScheduled = true;
    this.settings.turn.resumeLater(this.resumeFromTurn);
  }

  private readonly resumeFromTurn = (): void => {
    this.resumeScheduled = false;
    this.runBacklog();
    this.updateReading();
  };

  private run(request: Request): void {
    this.inFlight++;
    if (this.settings.stats) this.settings.stats.inFlightCalls++;
    const { replay } = this.settings;
    let outcome: Promise<unknown> | unknown;
    try {
      outcome =
        replay && request.info.seq !== undefined
          ? replay.execute(request.info.clientId, request.info.seq, request.ackBelowSeq, this.invoke, request)
          : this.settings.handler(request.method, request.args, request.info);
    } catch (error) {
      this.finish(request, false, error);
      return;
    }
    if (outcome instanceof Promise) {
      outcome.then(
        (value) => this.finish(request, true, value),
        (error: unknown) => this.finish(request, false, error),
      );
    } else {
      this.finish(request, true, outcome);
    }
  }

  /** Starts waiting calls while there is room: under the bound and the peer reading its answers. */
  private runBacklog(): void {
    // A call that ends synchronously (a refused argument) re-enters here from finish(): let the
    // outer loop go on instead of recursing once per waiting call.
    if (this.drainingBacklog) return;
    this.drainingBacklog = true;
    try {
      while (
        this.backlog.length > 0 &&
        this.inFlight < this.settings.maxInFlight &&
        !this.writeBlocked &&
        this.state !== State.Closed
      ) {
        if (!this.settings.turn.hasRoom()) {
          this.resumeInLaterTurn();
          break;
        }
        this.run(this.backlog.shift() as Request);
      }
    } finally {
      this.drainingBacklog = false;
    }
  }

  /** The handler as a promise, so a synchronous throw is remembered like a rejection. */
  // A property, not a method: replay.execute calls it without a closure per call.
  private readonly invoke = (request: Request): Promise<unknown> => {
    try {
      return Promise.resolve(this.settings.handler(request.method, request.args, request.info));
    } catch (error) {
      return Promise.reject(error);
    }
  };

  private finish(request: Request, ok: boolean, outcome: unknown): void {
    this.inFlight--;
    const { seq } = request.info;
    if (seq !== undefined) this.settings.replay?.settled(request.info.clientId, seq);
    const { stats } = this.settings;
    // The errno the client is answered with (0: a result); a call whose client left counts too.
    let errno = 0;
    if (this.state !== State.Closed) {
      errno = ok ? this.sendResult(request, outcome) : this.sendFailure(request, outcome);
      this.runBacklog();
    } else if (!ok) {
      errno = isFsError(outcome) ? outcome.errno : Errno.EIO;
    }
    if (stats) {
      stats.inFlightCalls--;
      stats.record(request.series, performance.now() - request.startMs, errno);
    }
    this.updateReading();
  }

  /** Answers a call with its result; returns the errno sent instead when it cannot be (0: sent). */
  private sendResult(request: Request, value: unknown): number {
    let frame: Buffer;
    try {
      frame = encodeResultFrame(request.id, value);
    } catch (error) {
      this.settings.emit({ type: 'internal-error', method: request.method, error });
      this.sendError(request.id, Errno.EIO, `the result of ${request.method} could not be encoded`);
      return Errno.EIO;
    }
    if (frame.length - 4 > this.settings.maxFrameBytes) {
      this.sendError(
        request.id,
        Errno.EFBIG,
        `the result of ${request.method} is ${frame.length} bytes, over the ${this.settings.maxFrameBytes}-byte frame limit; ask for less at once`,
      );
      return Errno.EFBIG;
    }
    this.send(frame);
    return 0;
  }

  /** Answers a call with its error; returns the errno sent. */
  private sendFailure(request: Request, error: unknown): number {
    if (isFsError(error)) {
      this.sendError(request.id, error.errno, error.message);
      return error.errno;
    }
    this.settings.emit({ type: 'internal-error', method: request.method, error });
    const detail = error instanceof Error ? error.message : String(error);
    this.sendError(request.id, Errno.EIO, `internal error in ${request.method} on the server: ${detail}`);
    return Errno.EIO;
  }

  private sendError(id: number, errno: number, message: string): void {
    this.send(encodeFrame([MessageType.ERROR, id, errno, message]));
  }

  /** Answers with a connection-level error, then closes: the stream or the peer is unusable. */
  private reject(errno: number, message: string): void {
    if (this.state === State.Closed) return;
    if (this.settings.stats) this.settings.stats.connectionsRejected++;
    this.settings.emit({ type: 'rejected', remote: this.remote, reason: message });
    this.send(encodeFrame([MessageType.REJECT, errno, message]));
    this.close();
    this.socket.end();
    // A peer that does not read must not keep the socket open forever.
    setTimeout(() => this.socket.destroy(), 1_000).unref();
  }

  private send(frame: Buffer): void {
    if (this.socket.destroyed || !this.socket.writable) return;
    // Replies finished in the same tick leave in one write (writev) instead of one syscall each.
    if (!this.corked) {
      this.corked = true;
      this.socket.cork();
      process.nextTick(() => {
        this.corked = false;
        this.socket.uncork();
      });
    }
    if (this.settings.stats) this.settings.stats.sentBytes += frame.length;
    if (!this.socket.write(frame)) this.writeBlocked = true;
  }

  /** Back-pressure: stop reading while the calls or the replies of this connection pile up. */
  private updateReading(): void {
    const shouldPause =
      this.state !== State.Closed &&
      (this.writeBlocked || this.inFlight >= this.settings.maxInFlight || this.backlog.length > 0);
    if (shouldPause && !this.readPaused) {
      this.readPaused = true;
      this.socket.pause();
    } else if (!shouldPause && this.readPaused) {
      this.readPaused = false;
      this.socket.resume();
    }
  }

  private close(): void {
    if (this.state === State.Closed) return;
    this.state = State.Closed;
    this.decoder.stop();
    this.backlog = [];
    if (this.handshakeTimer) clearTimeout(this.handshakeTimer);
    this.handshakeTimer = null;
  }

  private onSocketClosed(): void {
    this.close();
    if (this.settings.stats) this.settings.stats.connectionsClosed++;
    this.settings.emit({ type: 'disconnect', remote: this.remote });
    this.onClosed();
  }
}
