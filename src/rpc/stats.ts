import { LatencyHistograms } from '../common/index.js';

/** The series that counts calls of a method outside the list (unknown to the server, or malformed). */
export const OTHER_METHOD = 'other';

/**
 * Calls by method: a latency histogram (whose counts are the calls) and errors by errno. Methods
 * are known up front and numbered once; a call's method is looked up once (`seriesOf`) and the
 * number travels with it, so recording is array arithmetic. Errors are rare: a map by number.
 */
export class RpcCallStats {
  /** Method names by series number, `OTHER_METHOD` last. */
  readonly methodNames: readonly string[];
  readonly latency: LatencyHistograms;
  /** Error answers by `series * ERRNO_SPAN + errno`; read them with `errorCounts()`. */
  private readonly errors = new Map<number, number>();
  private readonly seriesByName: Map<string, number>;
  private readonly otherSeries: number;

  constructor(methodNames: Iterable<string>) {
    const names = [...methodNames].filter((name) => name !== OTHER_METHOD);
    this.otherSeries = names.length;
    this.methodNames = [...names, OTHER_METHOD];
    this.seriesByName = new Map(names.map((name, index) => [name, index]));
    this.latency = new LatencyHistograms(this.methodNames.length);
  }

  /** The series of a method name (`OTHER_METHOD`'s for names outside the list). */
  seriesOf(method: string): number {
    return this.seriesByName.get(method) ?? this.otherSeries;
  }

  get otherMethodSeries(): number {
    return this.otherSeries;
  }

  /** One finished call: its duration, and its errno when it failed (0 when it succeeded). */
  record(series: number, durationMs: number, errno: number): void {
    this.latency.observe(series, durationMs);
    if (errno !== 0) {
      const key = series * ERRNO_SPAN + (errno > 0 && errno < ERRNO_SPAN ? errno : 0);
      this.errors.set(key, (this.errors.get(key) ?? 0) + 1);
    }
  }

  /** Error answers so far, by method and errno (0: not an errno the server could name). */
  *errorCounts(): Iterable<{ method: string; errno: number; count: number }> {
    for (const [key, count] of this.errors) {
      yield { method: this.methodNames[Math.floor(key / ERRNO_SPAN)], errno: key % ERRNO_SPAN, count };
    }
  }
}

/** Errno values are below this on Linux (EHWPOISON is 133). */
const ERRNO_SPAN = 4096;

/**
 * What an RPC server counts for its metrics, besides its calls: connections, bytes, calls
 * running, pushes. Plain numbers the serving loop bumps; read at scrape time.
 */
export class RpcServerStats extends RpcCallStats {
  /** Connections accepted (TLS: once its handshake is done), and those closed again. */
  connectionsOpened = 0;
  connectionsClosed = 0;
  /** Connections refused: failed authentication, a bad handshake, a broken stream. */
  connectionsRejected = 0;
  /** Bytes read from and written to clients (frames with their headers; TLS overhead excluded). */
  receivedBytes = 0;
  sentBytes = 0;
  /** Calls started and not yet answered (waiting ones behind a connection's bound excluded). */
  inFlightCalls = 0;
  /** Push frames (cache invalidations) written, one per client connection reached. */
  pushesSent = 0;
}
