import { randomUUID } from 'node:crypto';
import type tls from 'node:tls';
import { Errno, FsError } from '../common/index.js';
import { formatRpcAddress, parseRpcAddressList, type RpcAddress } from './address.js';
import type { RpcSecret } from './auth.js';
import { ClientConnection, ConnectionError, type OutgoingCall } from './client-connection.js';
import { DEFAULT_MAX_FRAME_BYTES } from './codec.js';
import type { RpcCallStats } from './stats.js';

export interface RpcClientOptions {
  /**
   * `HOST:PORT` or a Unix socket path; several servers of one service as a comma-separated list
   * (`10.0.0.1:7070,10.0.0.2:7070`): the client uses one at a time and moves to the next when
   * its server goes away.
   */
  address: string;
  secret: RpcSecret;
  /** Use TLS (TCP only); at least `ca` for a self-signed server certificate. */
  tls?: tls.ConnectionOptions;
  /** Connections to keep; calls are spread over them and pipelined on each. */
  connections?: number;
  /** Default deadline of a call, retries included. */
  timeoutMs?: number;
  connectTimeoutMs?: number;
  /** Connection attempts in a row before waiting calls fail; also the most times one call is sent. */
  maxAttempts?: number;
  /**
   * Once connected, keep trying a server that became unreachable at least this long before
   * waiting calls fail, however many attempts that takes (a mount rides out a server restart
   * or failover; calls still end at their own timeout). The first connection is not retried
   * past maxAttempts: a wrong address fails fast. Default 0: maxAttempts alone decides.
   */
  retryForMs?: number;
  initialBackoffMs?: number;
  maxBackoffMs?: number;
  /** Calls in flight per connection; more wait in the client (the server enforces its own bound). */
  maxInFlightPerConnection?: number;
  maxFrameBytes?: number;
  /**
   * Names this client in its id (e.g. the host name). The id always ends in a random part: a
   * client restarted under the same name numbers its calls from 1 again, and must not be
   * answered with the previous instance's remembered results.
   */
  clientName?: string;
  /** How errors name the peer, e.g. "metadata server". */
  serverName?: string;
  /** Appended to "unreachable" errors, e.g. "is `strata meta serve` running?". */
  unreachableHint?: string;
  /**
   * Receives the server's unasked messages (PUSH frames), from whichever connection. Only a
   * client that sets it asks for pushes: the others cost the server nothing.
   */
  onPush?: (topic: string, value: unknown) => void;
  /**
   * A connection was lost or a new one opened after a loss: pushes sent meanwhile are gone
   * (whoever keeps state from pushes should assume they missed some).
   */
  onPushGap?: () => void;
  /** Tests only: speak another protocol version. */
  protocolVersion?: number;
  /**
   * Time each call by method here, from call() to its answer (retries and waits for a
   * connection included), and count its errors by errno; for metrics. Default: nothing counted.
   */
  stats?: RpcCallStats;
}

export interface CallOptions {
  /** Safe to run twice (reads): resent freely. Otherwise the call is numbered and applied at most once. */
  idempotent: boolean;
  timeoutMs?: number;
}

export const DEFAULT_CALL_TIMEOUT_MS = 30_000;
export const DEFAULT_CONNECT_TIMEOUT_MS = 5_000;
export const DEFAULT_MAX_ATTEMPTS = 5;
export const DEFAULT_CLIENT_MAX_IN_FLIGHT = 256;
/** 5 attempts back off 100+200+400+800 ms: a server restart of about a second goes unnoticed. */
export const DEFAULT_INITIAL_BACKOFF_MS = 100;
export const DEFAULT_MAX_BACKOFF_MS = 2_000;

class Call implements OutgoingCall {
  isRetry = false;
  requestId = 0;
  sends = 0;
  done = false;
  /** Why the connection carrying this call last went away. */
  lastConnectionError: FsError | null = null;
  connection: ClientConnection | null = null;
  resolve!: (value: unknown) => void;
  reject!: (error: FsError) => void;
  /** The method's series in RpcClientOptions.stats and when the call began (unused without stats). */
  series = 0;
  startMs = 0;

  constructor(
    private readonly client: RpcClient,
    readonly method: string,
    readonly args: unknown[],
    readonly seq: number | undefined,
    readonly deadlineMs: number,
    readonly timeoutMs: number,
  ) {}

  onResult(value: unknown): void {
    this.client.settle(this, null, value);
  }

  onError(error: FsError): void {
    this.client.settle(this, error, undefined);
  }
}

interface Slot {
  connection: ClientConnection | null;
  /** Index in `addresses` of the server this slot's connection goes (or went) to. */
  serverIndex: number;
  connecting: boolean;
  retryTimer: NodeJS.Timeout | null;
}

/**
 * Calls over a small pool of pipelined connections, with deadlines, reconnects with backoff
 * and retries. Idempotent calls are simply resent after a connection loss; the others carry
 * (client id, sequence number) and are resent flagged as retries, so the server answers them
 * from its replay memory instead of applying them twice.
 */
export class RpcClient {
  readonly clientId: string;
  private readonly addresses: RpcAddress[];
  private readonly where: string;
  /** The server new connections go to; moves on when a connection to it fails or is lost. */
  private currentServer = 0;
  private readonly slots: Slot[];
  private readonly waiting: Call[] = [];
  private waitingHead = 0;
  private readonly active = new Set<Call>();
  /** Sequence numbers still awaiting an answer, in increasing order (the first is the lowest). */
  private readonly unacked = new Set<number>();
  private nextSeq = 1;
  private nextSlot = 0;
  private failedAttempts = 0;
  /** A connection was up before: the next one follows a gap in pushes. */
  private hadConnection = false;
  private sweepTimer: NodeJS.Timeout | null = null;
  private sweepPeriodMs = 0;
  private connectWaiters: { resolve: () => void; reject: (error: FsError) => void }[] = [];
  private closed = false;
  private readonly timeoutMs: number;
  private readonly maxAttempts: number;
  private readonly stats: RpcCallStats | undefined;
  private readonly maxInFlight: number;
  /** When the current run of failed connection attempts began (Date.now()). */
  private failingSinceMs = 0;

  constructor(private readonly options: RpcClientOptions) {
    this.addresses = parseRpcAddressList(options.address);
    const names = this.addresses.map(formatRpcAddress);
    this.where =
      names.length === 1
        ? `${options.serverName ?? 'server'} ${names[0]}`
        : `${options.serverName ?? 'server'}s ${names.join(', ')}`;
    this.clientId = `${(options.clientName ?? 'client').slice(0, 64)}/${randomUUID()}`;
    this.timeoutMs = options.timeoutMs ?? DEFAULT_CALL_TIMEOUT_MS;
    this.stats = options.stats;
    this.maxAttempts = options.maxAttempts ?? DEFAULT_MAX_ATTEMPTS;
    this.maxInFlight = options.maxInFlightPerConnection ?? DEFAULT_CLIENT_MAX_IN_FLIGHT;
    const count = Math.max(1, options.connections ?? 1);
    this.slots = Array.from({ length: count }, () => ({
      connection: null,
      serverIndex: 0,
      connecting: false,
      retryTimer: null,
    }));
  }

  /** Calls retried after a lost connection so far (for metrics and tests). */
  retriedCalls = 0;
  /** Times the client moved on to another server of its list (for metrics and tests). */
  failovers = 0;

  /** The server new connections go to, as given. */
  get currentAddress(): string {
    return formatRpcAddress(this.addresses[this.currentServer]);
  }

  /** Connected connections right now. */
  get connectedCount(): number {
    return this.slots.filter((slot) => slot.connection !== null).length;
  }

  call(method: string, args: unknown[], options: CallOptions): Promise<unknown> {
    if (this.closed) {
      return Promise.reject(new FsError(Errno.ENOTCONN, `${method}: the client of ${this.where} is closed`));
    }
    const timeoutMs = options.timeoutMs ?? this.timeoutMs;
    let seq: number | undefined;
    if (!options.idempotent) {
      seq = this.nextSeq++;
      this.unacked.add(seq);
    }
    const call = new Call(this, method, args, seq, Date.now() + timeoutMs, timeoutMs);
    const { stats } = this;
    if (stats) {
      call.series = stats.seriesOf(method);
      call.startMs = performance.now();
    }
    const promise = new Promise<unknown>((resolve, reject) => {
      call.resolve = resolve;
      call.reject = reject;
    });
    this.active.add(call);
    // Deadlines are checked by one periodic sweep, often enough for the shortest one in use.
    const periodMs = sweepPeriodMs(timeoutMs);
    if (this.sweepTimer === null || periodMs < this.sweepPeriodMs) this.startSweeping(periodMs);
    this.enqueue(call);
    this.pump();
    return promise;
  }

  /**
   * Opens the connections now rather than on the first call; resolves once one is up, rejects
   * like a call would when the server stays unreachable (so a bad address fails at startup).
   */
  connect(): Promise<void> {
    if (this.slots.some((slot) => slot.connection !== null)) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      this.connectWaiters.push({ resolve, reject });
      this.ensureConnecting();
    });
  }

  close(): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.closed = true;
    this.stopSweeping();
    for (const slot of this.slots) {
      if (slot.retryTimer) clearTimeout(slot.retryTimer);
      slot.connection?.close();
    }
    const error = new FsError(
      Errno.ENOTCONN,
      `the client of ${this.where} was closed while the call was waiting`,
    );
    for (const call of [...this.active]) this.settle(call, error, undefined);
    for (const waiter of this.connectWaiters.splice(0)) waiter.reject(error);
    return Promise.resolve();
  }

  /** Called by a Call (through its connection) and by timeouts: the one place a call ends. */
  settle(call: Call, error: FsError | null, value: unknown): void {
    if (call.done) return;
    call.done = true;
    this.active.delete(call);
    if (call.seq !== undefined) this.unacked.delete(call.seq);
    if (call.connection) {
      call.connection.forget(call);
      call.connection = null;
    }
    this.stats?.record(call.series, performance.now() - call.startMs, error ? error.errno : 0);
    if (error) call.reject(error);
    else call.resolve(value);
    // A freed slot on a connection may let a waiting call go.
    if (this.waiting.length > this.waitingHead) this.pump();
  }

  private enqueue(call: Call, atFront = false): void {
    if (atFront && this.waitingHead > 0) this.waiting[--this.waitingHead] = call;
    else if (atFront) this.waiting.unshift(call);
    else this.waiting.push(call);
  }

  private pump(): void {
    while (this.waitingHead < this.waiting.length) {
      const connection = this.pickConnection();
      if (!connection) break;
      const call = this.waiting[this.waitingHead];
      this.waiting[this.waitingHead++] = undefined as unknown as Call;
      if (!call.done) this.dispatch(call, connection);
    }
    if (this.waitingHead === this.waiting.length) {
      this.waiting.length = 0;
      this.waitingHead = 0;
    } else {
      if (this.waitingHead > 1024) {
        this.waiting.splice(0, this.waitingHead);
        this.waitingHead = 0;
      }
      this.ensureConnecting();
    }
  }

  private pickConnection(): ClientConnection | null {
    const count = this.slots.length;
    for (let i = 0; i < count; i++) {
      const slot = this.slots[(this.nextSlot + i) % count];
      const connection = slot.connection;
      if (connection && connection.inFlight < this.maxInFlight) {
        this.nextSlot = (this.nextSlot + i + 1) % count;
        return connection;
      }
    }
    return null;
  }

  private dispatch(call: Call, connection: ClientConnection): void {
    call.sends++;
    if (call.sends > this.maxAttempts) {
      const error = new FsError(
        Errno.EIO,
        `${call.method}: lost the connection to ${this.where} ${this.maxAttempts} times while the call was in flight; giving up` +
          (call.lastConnectionError ? ` (last: ${call.lastConnectionError.message})` : ''),
        { cause: call.lastConnectionError },
      );
      this.settle(call, error, undefined);
      return;
    }
    const ackBelowSeq = this.unacked.size > 0 ? (this.unacked.values().next().value as number) : this.nextSeq;
    try {
      connection.send(call, ackBelowSeq);
      call.connection = connection;
    } catch (error) {
      this.settle(call, error as FsError, undefined);
    }
  }

  private ensureConnecting(): void {
    if (this.closed) return;
    const anyConnected = this.slots.some((slot) => slot.connection !== null);
    if (anyConnected) {
      for (const slot of this.slots) {
        if (!slot.connection && !slot.connecting && !slot.retryTimer) void this.connectSlot(slot);
      }
      return;
    }
    // Nothing is up: one slot probes (with backoff) so a dead server is not hammered N times over.
    if (this.slots.some((slot) => slot.connecting || slot.retryTimer)) return;
    void this.connectSlot(this.slots[0]);
  }

  /**
   * The server at `serverIndex` failed us: later connections go to the next one in the list.
   * Only the first slot to report a server moves the client on, so several connections lost to
   * one dead server do not skip over a live one.
   */
  private moveOnFrom(serverIndex: number): void {
    if (this.addresses.length === 1 || serverIndex !== this.currentServer) return;
    this.currentServer = (serverIndex + 1) % this.addresses.length;
    this.failovers++;
  }

  private async connectSlot(slot: Slot): Promise<void> {
    slot.connecting = true;
    slot.serverIndex = this.currentServer;
    let connection: ClientConnection;
    try {
      connection = await ClientConnection.open({
        address: this.addresses[slot.serverIndex],
        secret: this.options.secret,
        clientId: this.clientId,
        tls: this.options.tls,
        connectTimeoutMs: this.options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS,
        maxFrameBytes: this.options.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES,
        protocolVersion: this.options.protocolVersion,
        wantsPushes: this.options.onPush !== undefined,
      });
    } catch (error) {
      slot.connecting = false;
      this.onConnectFailed(slot, error as ConnectionError);
      return;
    }
    slot.connecting = false;
    if (this.closed) {
      connection.close();
      return;
    }
    this.failedAttempts = 0;
    slot.connection = connection;
    const { onPush, onPushGap } = this.options;
    if (onPush) connection.onPush = onPush;
    if (this.hadConnection) onPushGap?.();
    this.hadConnection = true;
    for (const waiter of this.connectWaiters.splice(0)) waiter.resolve();
    connection.onClose = (error, orphans) => {
      slot.connection = null;
      if (!this.closed) onPushGap?.();
      // A server that dropped us may be dying: reconnect to the next one rather than wait on it.
      if (!this.closed) this.moveOnFrom(slot.serverIndex);
      for (let i = orphans.length - 1; i >= 0; i--) {
        const call = orphans[i] as Call;
        call.connection = null;
        if (call.done) continue;
        call.lastConnectionError = error;
        // Numbered calls go again under the same number, marked as a retry: at most once.
        call.isRetry = call.seq !== undefined;
        this.retriedCalls++;
        this.enqueue(call, true);
      }
      if (!this.closed) this.pump();
    };
    this.pump();
  }

  private onConnectFailed(slot: Slot, error: ConnectionError): void {
    if (this.closed) return;
    this.moveOnFrom(slot.serverIndex);
    const anyConnected = this.slots.some((other) => other.connection !== null);
    if (!anyConnected && this.failedAttempts++ === 0) this.failingSinceMs = Date.now();
    // Every server of the list gets maxAttempts tries, and the retry time, before waiting calls fail.
    const attemptBudget = this.maxAttempts * this.addresses.length;
    const retryForMs = this.hadConnection ? (this.options.retryForMs ?? 0) : 0;
    const triedLongEnough = Date.now() - this.failingSinceMs >= retryForMs;
    const giveUp = error.fatal || (!anyConnected && this.failedAttempts >= attemptBudget && triedLongEnough);
    if (giveUp) {
      const failure = error.fatal
        ? error
        : new FsError(
            Errno.EIO,
            `${this.where} unreachable after ${this.failedAttempts} attempts in ` +
              `${((Date.now() - this.failingSinceMs) / 1000).toFixed(1)} s (${causeCode(error)})` +
              (this.options.unreachableHint ? `; ${this.options.unreachableHint}` : ''),
            { cause: error },
          );
      this.failedAttempts = 0;
      this.failWaiting(failure);
      return;
    }
    const demand = this.waiting.length > this.waitingHead || this.connectWaiters.length > 0;
    if (!demand) return; // reconnect lazily, on the next call
    const initialMs = this.options.initialBackoffMs ?? DEFAULT_INITIAL_BACKOFF_MS;
    const maxMs = this.options.maxBackoffMs ?? DEFAULT_MAX_BACKOFF_MS;
    // The first try of each round through the list is at once: another server may be up.
    const servers = this.addresses.length;
    const round = Math.max(1, Math.ceil(this.failedAttempts / servers));
    const delayMs =
      servers > 1 && this.failedAttempts % servers !== 0
        ? 0
        : Math.min(maxMs, initialMs * 2 ** (round - 1)) * (0.8 + 0.4 * Math.random());
    slot.retryTimer = setTimeout(() => {
      slot.retryTimer = null;
      if (this.waiting.length > this.waitingHead || this.connectWaiters.length > 0) this.ensureConnecting();
    }, delayMs);
  }

  private failWaiting(error: FsError): void {
    for (const waiter of this.connectWaiters.splice(0)) waiter.reject(error);
    const calls = this.waiting.slice(this.waitingHead);
    this.waiting.length = 0;
    this.waitingHead = 0;
    for (const call of calls) if (call) this.settle(call, error, undefined);
  }

  private startSweeping(periodMs: number): void {
    this.stopSweeping();
    this.sweepPeriodMs = periodMs;
    this.sweepTimer = setInterval(() => this.sweep(), periodMs);
    this.sweepTimer.unref();
  }

  private stopSweeping(): void {
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    this.sweepTimer = null;
  }

  private sweep(): void {
    if (this.active.size === 0) {
      this.stopSweeping();
      return;
    }
    const nowMs = Date.now();
    for (const call of this.active) {
      if (call.deadlineMs > nowMs) continue;
      const state = call.connection ? 'no answer' : 'no connection';
      this.settle(
        call,
        new FsError(
          Errno.ETIMEDOUT,
          `${call.method} timed out after ${call.timeoutMs} ms (${state} from ${this.where})`,
        ),
        undefined,
      );
    }
  }
}

/** A call may end up to a quarter of its timeout late (at most 250 ms, checked at least every 10 ms). */
function sweepPeriodMs(timeoutMs: number): number {
  return Math.max(10, Math.min(250, timeoutMs / 4));
}

function causeCode(error: ConnectionError): string {
  const cause = error.cause as NodeJS.ErrnoException | undefined;
  return cause?.code ?? error.message;
}
