import { createHash, createHmac } from 'node:crypto';
import type { S3Credentials } from './s3-credentials.js';

/** SHA-256 of the empty body, needed by every GET/HEAD/DELETE. */
export const EMPTY_SHA256 = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';
/** Allowed by S3 when the body is not hashed (we hash bodies by default: it lets the server check them). */
export const UNSIGNED_PAYLOAD = 'UNSIGNED-PAYLOAD';

export function sha256Hex(data: Buffer | string): string {
  return createHash('sha256').update(data).digest('hex');
}

/**
 * RFC 3986 encoding as SigV4 wants it: everything but A-Z a-z 0-9 - . _ ~ is %XX-encoded;
 * encodeURIComponent leaves !'()* alone, so those are fixed up.
 */
export function uriEncode(text: string): string {
  return encodeURIComponent(text).replace(
    /[!'()*]/g,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
  );
}

/** Encodes an object path for S3: each segment encoded, slashes kept. */
export function encodePath(path: string): string {
  return path.split('/').map(uriEncode).join('/');
}

/** Query string in SigV4 canonical form (sorted by key, then value; both encoded); also used on the wire. */
export function canonicalQuery(query: Record<string, string> | undefined): string {
  if (!query) return '';
  return Object.entries(query)
    .map(([k, v]) => [uriEncode(k), uriEncode(v)] as const)
    .sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0))
    .map(([k, v]) => `${k}=${v}`)
    .join('&');
}

export interface SignInput {
  method: string;
  host: string;
  /** Already encoded path, e.g. "/bucket/a%20b". */
  encodedPath: string;
  /** Already canonical query (canonicalQuery()). */
  query: string;
  /** Extra headers to sign (lowercase names), e.g. range or content-type. */
  headers: Record<string, string>;
  payloadSha256: string;
  now: Date;
}

/**
 * AWS Signature Version 4 for S3 (header form). The signing key depends only on the day, so it is
 * cached: per request the cost is one SHA-256 of the canonical request and one HMAC.
 */
export class SigV4Signer {
  private keyDay = '';
  private key: Buffer = Buffer.alloc(0);

  constructor(
    private readonly credentials: S3Credentials,
    private readonly region: string,
    private readonly service = 's3',
  ) {}

  private signingKey(day: string): Buffer {
    if (day !== this.keyDay) {
      const kDate = createHmac('sha256', `AWS4${this.credentials.secretAccessKey}`).update(day).digest();
      const kRegion = createHmac('sha256', kDate).update(this.region).digest();
      const kService = createHmac('sha256', kRegion).update(this.service).digest();
      this.key = createHmac('sha256', kService).update('aws4_request').digest();
      this.keyDay = day;
    }
    return this.key;
  }

  /** Returns the headers to send: the input headers plus host, x-amz-date, x-amz-content-sha256, token, authorization. */
  sign(input: SignInput): Record<string, string> {
    const amzDate = input.now
      .toISOString()
      .replace(/[-:]/g, '')
      .replace(/\.\d{3}/, '');
    const day = amzDate.slice(0, 8);
    const headers: Record<string, string> = {
      ...input.headers,
      host: input.host,
      'x-amz-content-sha256': input.payloadSha256,
      'x-amz-date': amzDate,
    };
    if (this.credentials.sessionToken) headers['x-amz-security-token'] = this.credentials.sessionToken;
    const names = Object.keys(headers)
      .map((n) => n.toLowerCase())
      .sort();
    const lower: Record<string, string> = {};
    for (const [k, v] of Object.entries(headers)) lower[k.toLowerCase()] = v.trim().replace(/\s+/g, ' ');
    const signedHeaders = names.join(';');
    const canonicalRequest = [
      input.method,
      input.encodedPath,
      input.query,
      names.map((n) => `${n}:${lower[n]}\n`).join(''),
      signedHeaders,
      input.payloadSha256,
    ].join('\n');
    const scope = `${day}/${this.region}/${this.service}/aws4_request`;
    const stringToSign = `AWS4-HMAC-SHA256\n${amzDate}\n${scope}\n${sha256Hex(canonicalRequest)}`;
    const signature = createHmac('sha256', this.signingKey(day)).update(stringToSign).digest('hex');
    headers.authorization =
      `AWS4-HMAC-SHA256 Credential=${this.credentials.accessKeyId}/${scope}, ` +
      `SignedHeaders=${signedHeaders}, Signature=${signature}`;
    return headers;
  }
}
