import net, { type LookupFunction } from 'node:net';
import type http from 'node:http';
import { quickAck } from './quick-ack.js';

/** What a GET answered: status, headers (lowercase names) and the whole body. */
export interface RawResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

/** Why a raw GET failed; `code` as Node's network errors have it (ECONNRESET...) when there is one. */
export class RawGetError extends Error {
  constructor(
    message: string,
    readonly code: string | undefined,
    /** The connection was a kept-alive one and not a byte of the answer came: sending again is safe. */
    readonly staleSocket: boolean,
    /** Some of the answer had arrived. */
    readonly answered: boolean,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

const SCRATCH_BYTES = 64 * 1024;
const MAX_HEAD_BYTES = 64 * 1024;

/** One request and its answer on a connection. */
interface Exchange {
  resolve: (response: RawResponse) => void;
  reject: (error: RawGetError) => void;
  phase: 'head' | 'body' | 'chunked' | 'untilClose';
  /** The answer's bytes until its head ends. */
  head: Buffer;
  status: number;
  headers: http.IncomingHttpHeaders;
  /** Known length: the body, filled by the socket's reads straight into its free part. */
  body: Buffer | null;
  received: number;
  /** Chunked or close-delimited bodies: the parts, copied out of the scratch buffer. */
  parts: Buffer[];
  /** Chunked: undecoded bytes (a size line cut by a read). */
  pending: Buffer;
  /**
   * Chunked: bytes left of the current chunk; -1 while reading a size line, -3 while reading the
   * CRLF after a chunk's data, -2 while reading the trailers after the last chunk.
   */
  chunkLeft: number;
  keepAlive: boolean;
}

/**
 * GETs over plain HTTP/1.1 whose bodies the socket reads straight into the buffer that is
 * returned (`net.Socket`'s `onread` option, pointed at the body's unfilled part), instead of
 * node:http's fresh 64 KiB buffer per read, stream events and a copy of each into the body:
 * on a LAN radosgw that was about a third of a sequential read's CPU and most of its garbage
 * collections (bench/RESULTS.md, S3 backend, session 18). Connections are kept alive, LIFO.
 * Not for TLS (a TLS socket cannot read into a caller's buffer); the caller keeps the request
 * count in bounds.
 */
export class RawGets {
  private readonly idle: RawConnection[] = [];

  constructor(
    private readonly host: string,
    private readonly port: number,
    private readonly maxIdle: number,
    private readonly lookup?: LookupFunction,
  ) {}

  /** Sends `head` (request line and headers, CRLF-terminated) on a kept-alive or new connection. */
  get(head: string, timeoutMs: number): Promise<RawResponse> {
    let connection = this.idle.pop();
    while (connection !== undefined && !connection.usable) connection = this.idle.pop();
    const reused = connection !== undefined;
    connection ??= new RawConnection(this.host, this.port, this.lookup, (done) => this.release(done));
    return connection.send(head, timeoutMs, reused);
  }

  close(): void {
    for (const connection of this.idle.splice(0)) connection.destroy();
  }

  private release(connection: RawConnection): void {
    if (connection.usable && this.idle.length < this.maxIdle) this.idle.push(connection);
    else connection.destroy();
  }
}

class RawConnection {
  private readonly socket: net.Socket;
  private readonly scratch = Buffer.allocUnsafe(SCRATCH_BYTES);
  private exchange: Exchange | null = null;
  private reused = false;
  private closed = false;

  constructor(
    host: string,
    port: number,
    lookup: LookupFunction | undefined,
    private readonly release: (connection: RawConnection) => void,
  ) {
    const options: net.NetConnectOpts = {
      host,
      port,
      lookup,
      noDelay: true,
      onread: {
        buffer: () => this.readTarget(),
        callback: (bytes: number, buffer: Uint8Array) => {
          this.onData(bytes, buffer);
          return true;
        },
      },
    };
    this.socket = net.connect(options);
    this.socket.on('error', (err: NodeJS.ErrnoException) => this.fail(err.message, err.code, err));
    this.socket.on('end', () => this.onEnd());
    this.socket.on('close', () => this.onEnd());
    this.socket.on('timeout', () => this.fail('no progress', 'ETIMEDOUT'));
  }

  get usable(): boolean {
    return !this.closed && this.exchange === null;
  }

  destroy(): void {
    this.closed = true;
    this.socket.destroy();
  }

  send(head: string, timeoutMs: number, reused: boolean): Promise<RawResponse> {
    this.reused = reused;
    return new Promise<RawResponse>((resolve, reject) => {
      this.exchange = {
        resolve,
        reject,
        phase: 'head',
        head: Buffer.alloc(0),
        status: 0,
        headers: {},
        body: null,
        received: 0,
        parts: [],
        pending: Buffer.alloc(0),
        chunkLeft: -1,
        keepAlive: true,
      };
      this.socket.setTimeout(timeoutMs);
      this.socket.write(head);
    });
  }

  private readTarget(): Uint8Array {
    const exchange = this.exchange;
    if (exchange?.phase === 'body' && exchange.body !== null)
      return exchange.body.subarray(exchange.received);
    return this.scratch;
  }

  private onData(bytes: number, buffer: Uint8Array): void {
    const exchange = this.exchange;
    if (exchange === null) {
      // Bytes nobody asked for: the connection is out of step; never use it again.
      this.destroy();
      return;
    }
    if (exchange.phase === 'body' && buffer !== this.scratch) {
      exchange.received += bytes;
      if (exchange.received === exchange.body!.length) this.complete(exchange);
      return;
    }
    this.consume(exchange, this.scratch.subarray(0, bytes));
  }

  /** Bytes read into the scratch buffer: the head, a chunked or close-delimited body. */
  private consume(exchange: Exchange, data: Buffer): void {
    if (exchange.phase === 'head') {
      const all = Buffer.concat([exchange.head, data]);
      exchange.head = all;
      const end = all.indexOf('\r\n\r\n');
      if (end < 0) {
        if (all.length > MAX_HEAD_BYTES) this.fail('response headers longer than 64 KiB', 'EPROTO');
        return;
      }
      if (!this.parseHead(exchange, all.subarray(0, end).toString('latin1'))) return;
      quickAck(this.socket);
      data = all.subarray(end + 4);
    }
    if (exchange.phase === 'body') {
      const body = exchange.body!;
      const taken = Math.min(data.length, body.length - exchange.received);
      data.copy(body, exchange.received, 0, taken);
      exchange.received += taken;
      if (data.length > taken) this.fail('the store sent more bytes than it announced', 'EPROTO');
      else if (exchange.received === body.length) this.complete(exchange);
      return;
    }
    if (exchange.phase === 'untilClose') {
      exchange.parts.push(Buffer.from(data));
      return;
    }
    if (exchange.phase === 'chunked') this.decodeChunks(exchange, data);
  }

  /** Status line and headers; false once the exchange has failed. */
  private parseHead(exchange: Exchange, text: string): boolean {
    const lines = text.split('\r\n');
    const status = /^HTTP\/1\.[01] (\d{3})/.exec(lines[0] ?? '');
    if (status === null) {
      this.fail(`not an HTTP/1.x status line: ${JSON.stringify((lines[0] ?? '').slice(0, 80))}`, 'EPROTO');
      return false;
    }
    exchange.status = Number(status[1]);
    for (const line of lines.slice(1)) {
      const colon = line.indexOf(':');
      if (colon <= 0) continue;
      const name = line.slice(0, colon).trim().toLowerCase();
      const value = line.slice(colon + 1).trim();
      const previous = exchange.headers[name];
      exchange.headers[name] = previous === undefined ? value : `${String(previous)}, ${value}`;
    }
    const connection = String(exchange.headers.connection ?? '').toLowerCase();
    exchange.keepAlive = lines[0]!.startsWith('HTTP/1.1')
      ? connection !== 'close'
      : connection === 'keep-alive';
    const encoding = String(exchange.headers['transfer-encoding'] ?? '').toLowerCase();
    const length = exchange.headers['content-length'];
    if (exchange.status < 200) {
      // Interim answers (100 Continue) come only to requests that ask for them; GETs do not.
      this.fail(`unexpected interim response ${exchange.status}`, 'EPROTO');
      return false;
    }
    if (exchange.status === 204 || exchange.status === 304) {
      exchange.phase = 'body';
      exchange.body = Buffer.alloc(0);
    } else if (encoding !== '' && encoding !== 'identity') {
      if (encoding !== 'chunked') {
        this.fail(`unsupported transfer-encoding ${encoding}`, 'EPROTO');
        return false;
      }
      exchange.phase = 'chunked';
    } else if (length !== undefined) {
      const bytes = Number(length);
      if (!Number.isSafeInteger(bytes) || bytes < 0) {
        this.fail(`bad content-length ${String(length)}`, 'EPROTO');
        return false;
      }
      exchange.phase = 'body';
      exchange.body = Buffer.allocUnsafe(bytes);
    } else {
      exchange.phase = 'untilClose';
      exchange.keepAlive = false;
    }
    return true;
  }

  private decodeChunks(exchange: Exchange, data: Buffer): void {
    let input = exchange.pending.length > 0 ? Buffer.concat([exchange.pending, data]) : data;
    exchange.pending = Buffer.alloc(0);
    while (input.length > 0) {
      if (exchange.chunkLeft > 0) {
        const taken = Math.min(exchange.chunkLeft, input.length);
        exchange.parts.push(Buffer.from(input.subarray(0, taken)));
        exchange.chunkLeft -= taken;
        input = input.subarray(taken);
        if (exchange.chunkLeft === 0) exchange.chunkLeft = -3; // its CRLF next
        continue;
      }
      const eol = input.indexOf('\r\n');
      if (eol < 0) {
        if (input.length > 1024) this.fail('chunk size line too long', 'EPROTO');
        else exchange.pending = Buffer.from(input);
        return;
      }
      const line = input.subarray(0, eol).toString('latin1');
      input = input.subarray(eol + 2);
      if (exchange.chunkLeft === -3) {
        if (line !== '') return this.fail('chunk not followed by CRLF', 'EPROTO');
        exchange.chunkLeft = -1;
        continue;
      }
      if (exchange.chunkLeft === -2) {
        // Trailers end with an empty line.
        if (line === '') {
          if (input.length > 0) return this.fail('bytes after the last chunk', 'EPROTO');
          exchange.body = Buffer.concat(exchange.parts);
          this.complete(exchange);
          return;
        }
        continue;
      }
      const size = parseInt(line.split(';')[0]!.trim(), 16);
      if (!Number.isSafeInteger(size) || size < 0)
        return this.fail(`bad chunk size ${JSON.stringify(line)}`, 'EPROTO');
      exchange.chunkLeft = size === 0 ? -2 : size;
    }
  }

  private complete(exchange: Exchange): void {
    this.exchange = null;
    this.socket.setTimeout(0);
    const body = exchange.body ?? Buffer.concat(exchange.parts);
    if (!exchange.keepAlive) this.destroy();
    exchange.resolve({ status: exchange.status, headers: exchange.headers, body });
    this.release(this);
  }

  private onEnd(): void {
    if (this.closed && this.exchange === null) return;
    this.closed = true;
    const exchange = this.exchange;
    if (exchange === null) return;
    if (exchange.phase === 'untilClose') {
      exchange.keepAlive = false;
      this.complete(exchange);
      return;
    }
    const expected = exchange.body ? ` of ${exchange.body.length}` : '';
    this.fail(
      exchange.phase === 'head' && exchange.head.length === 0
        ? 'connection closed before any answer'
        : `connection ended after ${exchange.received}${expected} bytes`,
      'ECONNRESET',
    );
  }

  private fail(message: string, code: string | undefined, cause?: Error): void {
    const exchange = this.exchange;
    this.exchange = null;
    this.destroy();
    if (exchange === null) return;
    const answered = exchange.head.length > 0;
    exchange.reject(
      new RawGetError(message, code, this.reused && !answered, answered, cause ? { cause } : undefined),
    );
  }
}
