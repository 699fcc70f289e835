import http from 'node:http';
import https from 'node:https';
import { readFileSync } from 'node:fs';
import type { LookupFunction } from 'node:net';
import { rootCertificates } from 'node:tls';
import { Errno, FsError } from '../../common/index.js';
import { TransientStoreError } from '../store.js';
import type { S3Credentials } from './s3-credentials.js';
import { quickAck } from './quick-ack.js';
import { RawGetError, RawGets } from './s3-raw-get.js';
import { SigV4Signer, canonicalQuery, encodePath } from './s3-sigv4.js';
import type { S3Location } from './s3-url.js';
import { xmlText } from './s3-xml.js';

export type S3Method = 'GET' | 'PUT' | 'HEAD' | 'DELETE' | 'POST';

export interface S3Request {
  method: S3Method;
  /** Full object key (store prefix included); undefined addresses the bucket itself. */
  key?: string;
  query?: Record<string, string>;
  /** Extra headers (lowercase names); they are signed. */
  headers?: Record<string, string>;
  body?: Buffer;
  /** SHA-256 hex of `body`, or UNSIGNED-PAYLOAD; computed by the caller so it can reuse it. */
  payloadSha256: string;
  /** Statuses >= 300 the caller handles itself (404 for head, 416 for ranges); others throw. */
  acceptStatuses?: readonly number[];
}

export interface S3Response {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

// Failures of the connection itself that a retry may cure (the server restarting, a reset
// keep-alive socket, a flaky network). Unknown hosts and TLS failures are not among them.
const TRANSIENT_NET_CODES = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENETDOWN',
  'ENOTCONN',
]);

// S3 error codes that come with a 4xx status and still mean "try again". A body whose checksum
// does not match was damaged on the way and was not stored: sending it again is the cure.
const TRANSIENT_S3_CODES = new Set([
  'SlowDown',
  'RequestTimeout',
  'ThrottlingException',
  'RequestTimeTooSkewed',
  'XAmzContentSHA256Mismatch',
  'BadDigest',
]);

const HINTS: Record<string, string> = {
  SignatureDoesNotMatch: 'the secret access key does not match the access key id',
  InvalidAccessKeyId: 'the store does not know this access key id',
  AccessDenied: 'the credentials lack permission for this bucket or key',
  NoSuchBucket: 'the bucket does not exist; create it or fix the URL',
  AuthorizationHeaderMalformed: 'the region in the URL probably does not match the bucket region',
  PermanentRedirect: 'the bucket lives at another endpoint or region; fix endpoint= or region=',
};

/** Node's bundled roots plus the system store (and AWS_CA_BUNDLE), so private CAs installed the usual way work. */
function systemCaBundle(): string[] {
  const cas = [...rootCertificates];
  for (const path of [
    process.env.AWS_CA_BUNDLE,
    '/etc/ssl/certs/ca-certificates.crt',
    '/etc/pki/tls/certs/ca-bundle.crt',
  ]) {
    if (!path) continue;
    try {
      cas.push(readFileSync(path, 'utf8'));
    } catch {
      // a missing bundle is fine: the others still apply
    }
  }
  return cas;
}

/** A counting semaphore: at most `limit` requests in flight per store. */
class InFlightLimit {
  private active = 0;
  private readonly waiters: (() => void)[] = [];
  constructor(private readonly limit: number) {}
  async acquire(): Promise<void> {
    if (this.active < this.limit) {
      this.active++;
      return;
    }
    await new Promise<void>((resolve) => this.waiters.push(resolve));
  }
  release(): void {
    const next = this.waiters.shift();
    if (next) next();
    else this.active--;
  }
}

/**
 * Signed HTTP requests to one bucket over a keep-alive pool, with at most `maxInFlight` requests
 * at once, an idle timeout per request, and S3/network failures mapped to StrataFS errors:
 * retryable ones to TransientStoreError, the rest to an FsError naming the operation and a fix.
 */
export class S3Transport {
  private readonly agent: http.Agent;
  /** GETs over plain HTTP read their bodies straight into place (s3-raw-get.ts); null over TLS. */
  private readonly rawGets: RawGets | null;
  private readonly limit: InFlightLimit;
  private readonly signer: SigV4Signer;
  private readonly request: typeof http.request;
  private readonly host: string;
  private readonly basePath: string;
  /** Host name to connect to (IPv6 without brackets), the bucket prepended in virtual-host style. */
  private readonly connectHost: string;

  constructor(
    private readonly location: S3Location,
    private readonly credentials: S3Credentials,
    readonly region: string,
    /** Custom name resolution (split-horizon DNS; tests mapping BUCKET.localhost to 127.0.0.1). */
    private readonly lookup?: LookupFunction,
  ) {
    const secure = location.endpoint.protocol === 'https:';
    const poolOptions = {
      keepAlive: true,
      maxSockets: location.maxInFlight,
      maxFreeSockets: location.maxInFlight,
    };
    this.agent = secure
      ? new https.Agent({ ...poolOptions, ca: systemCaBundle(), scheduling: 'lifo' })
      : new http.Agent({ ...poolOptions, scheduling: 'lifo' });
    this.request = secure ? https.request : http.request;
    this.limit = new InFlightLimit(location.maxInFlight);
    this.signer = new SigV4Signer(credentials, region);
    this.host = location.pathStyle ? location.endpoint.host : `${location.bucket}.${location.endpoint.host}`;
    this.basePath = location.pathStyle ? `/${location.bucket}` : '';
    const hostname = location.endpoint.hostname.replace(/^\[|\]$/g, '');
    this.connectHost = location.pathStyle ? hostname : `${location.bucket}.${hostname}`;
    this.rawGets =
      secure || process.env.STRATA_S3_RAW_GET === '0'
        ? null
        : new RawGets(this.connectHost, Number(location.endpoint.port || 80), location.maxInFlight, lookup);
  }

  /** "GET s3://bucket/key" for messages. */
  describe(req: S3Request): string {
    return `${req.method} s3://${this.location.bucket}/${req.key ?? ''}`;
  }

  async send(req: S3Request): Promise<S3Response> {
    await this.limit.acquire();
    try {
      try {
        return await this.attempt(req);
      } catch (err) {
        // A keep-alive socket the server closed while idle fails the next request with a reset
        // before any byte is answered; one immediate retry on a fresh socket is always safe then.
        if (err instanceof StaleSocketError) return await this.attempt(req);
        throw err;
      }
    } finally {
      this.limit.release();
    }
  }

  private attempt(req: S3Request): Promise<S3Response> {
    const encodedPath =
      req.key === undefined ? this.basePath || '/' : `${this.basePath}/${encodePath(req.key)}`;
    const query = canonicalQuery(req.query);
    const headers = this.signer.sign({
      method: req.method,
      host: this.host,
      encodedPath,
      query,
      headers: req.headers ?? {},
      payloadSha256: req.payloadSha256,
      now: new Date(),
    });
    if (req.body) headers['content-length'] = String(req.body.length);
    else if (req.method === 'PUT' || req.method === 'POST') headers['content-length'] = '0';
    if (req.method === 'GET' && this.rawGets !== null) {
      return this.rawGet(this.rawGets, req, query ? `${encodedPath}?${query}` : encodedPath, headers);
    }

    return new Promise<S3Response>((resolve, reject) => {
      const what = this.describe(req);
      let answered = false;
      const httpReq = this.request(
        {
          agent: this.agent,
          protocol: this.location.endpoint.protocol,
          hostname: this.connectHost,
          port: this.location.endpoint.port || undefined,
          method: req.method,
          path: query ? `${encodedPath}?${query}` : encodedPath,
          headers,
          lookup: this.lookup,
        },
        (res) => {
          answered = true;
          quickAck(res.socket);
          const status = res.statusCode ?? 0;
          const declared = Number(res.headers['content-length']);
          // Known length (the usual case): one buffer sized up front, chunks copied in once.
          const sized = req.method !== 'HEAD' && Number.isSafeInteger(declared) && declared >= 0;
          const body = sized ? Buffer.allocUnsafe(declared) : undefined;
          const chunks: Buffer[] = [];
          let received = 0;
          res.on('data', (chunk: Buffer) => {
            if (body) {
              if (received + chunk.length > body.length) {
                res.destroy(new TransientStoreError(`${what}: the store sent more bytes than it announced`));
                return;
              }
              chunk.copy(body, received);
            } else chunks.push(chunk);
            received += chunk.length;
          });
          res.on('error', (err) => reject(this.mapNetworkError(err, what, false)));
          res.on('end', () => {
            if (body && received !== body.length) {
              reject(
                new TransientStoreError(
                  `${what}: connection ended after ${received} of ${body.length} bytes`,
                ),
              );
              return;
            }
            const payload = body ?? Buffer.concat(chunks);
            if (status < 300 || req.acceptStatuses?.includes(status)) {
              resolve({ status, headers: res.headers, body: payload });
            } else {
              reject(this.mapStatusError(status, payload, what));
            }
          });
        },
      );
      httpReq.setTimeout(this.location.timeoutMs, () => httpReq.destroy(this.noProgress(what)));
      httpReq.on('error', (err) => {
        const code = (err as NodeJS.ErrnoException).code;
        if (!answered && httpReq.reusedSocket && code === 'ECONNRESET') reject(new StaleSocketError());
        else reject(this.mapNetworkError(err, what, answered));
      });
      httpReq.end(req.body);
    });
  }

  private async rawGet(
    rawGets: RawGets,
    req: S3Request,
    path: string,
    headers: Record<string, string>,
  ): Promise<S3Response> {
    const what = this.describe(req);
    // The signed headers include host.
    let head = `GET ${path} HTTP/1.1\r\n`;
    for (const [name, value] of Object.entries(headers)) head += `${name}: ${value}\r\n`;
    let res;
    try {
      res = await rawGets.get(`${head}\r\n`, this.location.timeoutMs);
    } catch (err) {
      if (!(err instanceof RawGetError)) throw err;
      if (err.staleSocket) throw new StaleSocketError();
      if (err.code === 'ETIMEDOUT') throw this.noProgress(what);
      if (err.code === 'EPROTO') throw new TransientStoreError(`${what}: ${err.message}`);
      throw this.mapNetworkError(err, what, err.answered);
    }
    if (res.status < 300 || req.acceptStatuses?.includes(res.status)) return res;
    throw this.mapStatusError(res.status, res.body, what);
  }

  /** A request that saw no byte move for the store URL's timeout=. */
  private noProgress(what: string): TransientStoreError {
    return new TransientStoreError(
      `${what}: no progress for ${this.location.timeoutMs} ms (timeout=); the store is slow or unreachable`,
    );
  }

  private mapNetworkError(err: Error, what: string, _answered: boolean): Error {
    if (err instanceof TransientStoreError) return err;
    const code = (err as NodeJS.ErrnoException).code ?? '';
    const where = this.location.endpoint.origin;
    if (TRANSIENT_NET_CODES.has(code)) {
      return new TransientStoreError(`${what}: ${code} talking to ${where} (${err.message})`, { cause: err });
    }
    if (code === 'ENOTFOUND') {
      return new FsError(Errno.EIO, `${what}: host of ${where} not found; check endpoint= in the store URL`, {
        cause: err,
      });
    }
    // TLS verification failures (CERT_*, *_SELF_SIGNED_*, UNABLE_TO_*): a setup problem, said so.
    const tlsHint = /CERT|SELF_SIGNED|UNABLE_TO/.test(code)
      ? '; if the store uses a private CA, point AWS_CA_BUNDLE at its certificate file'
      : '';
    return new FsError(
      Errno.EIO,
      `${what}: ${code || err.name} talking to ${where}: ${err.message}${tlsHint}`,
      {
        cause: err,
      },
    );
  }

  private mapStatusError(status: number, body: Buffer, what: string): Error {
    const xml = body.toString('utf8');
    const code = xmlText(xml, 'Code') ?? `HTTP ${status}`;
    const serverMessage = xmlText(xml, 'Message');
    const detail = `${code} (${status})${serverMessage ? `: ${serverMessage}` : ''}`;
    if (status >= 500 || status === 429 || TRANSIENT_S3_CODES.has(code)) {
      return new TransientStoreError(`${what}: ${detail}`);
    }
    const hint = HINTS[code];
    const credentialsNote =
      status === 403
        ? `; credentials from ${this.credentials.source}, access key id ${this.credentials.accessKeyId}`
        : '';
    const message = `${what} failed: ${detail}${hint ? ` - ${hint}` : ''}${credentialsNote}`;
    return new FsError(status === 403 ? Errno.EACCES : Errno.EIO, message);
  }

  /** Closes the pooled connections; requests after this open new ones. */
  close(): void {
    this.agent.destroy();
    this.rawGets?.close();
  }
}

/** Transient as well: the one immediate re-send can meet a second stale socket of the pool. */
class StaleSocketError extends TransientStoreError {
  constructor() {
    super('keep-alive socket closed by the server');
  }
}
