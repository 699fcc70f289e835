import type { LookupFunction } from 'node:net';
import { fsError } from '../../common/index.js';
import { ObjectNotFoundError, type ObjectInfo, type ObjectStore } from '../store.js';
import { resolveAwsSettings, type CredentialInputs } from './s3-credentials.js';
import { S3Transport, type S3Response } from './s3-http.js';
import { EMPTY_SHA256, UNSIGNED_PAYLOAD, sha256Hex } from './s3-sigv4.js';
import { describeS3Location, maxObjectBytes, parseS3Url, type S3Location } from './s3-url.js';
import { xmlBlocks, xmlEscape, xmlText } from './s3-xml.js';

/** Explicit credentials, the environment to read AWS_* from, custom name resolution; all optional. */
export interface S3StoreOptions extends Omit<CredentialInputs, 'profile'> {
  lookup?: LookupFunction;
}

/**
 * Opens `s3://BUCKET[/PREFIX]?endpoint=...` (see S3_URL_FORM). Nothing is sent until the first
 * operation, so opening never blocks on the network; a wrong bucket or key shows up as a clear
 * error on first use (`strata objbench` checks them all).
 */
export async function openS3Store(url: string, options: S3StoreOptions = {}): Promise<S3ObjectStore> {
  const location = parseS3Url(url);
  const settings = resolveAwsSettings({ ...options, profile: location.profile });
  return new S3ObjectStore(
    location,
    new S3Transport(
      location,
      settings.credentials,
      location.region ?? settings.region ?? 'us-east-1',
      options.lookup,
    ),
  );
}

export class S3ObjectStore implements ObjectStore {
  readonly description: string;

  constructor(
    readonly location: S3Location,
    private readonly transport: S3Transport,
  ) {
    this.description = describeS3Location(location, transport.region);
  }

  /**
   * Over plain HTTP the body's SHA-256 is signed, so the store rejects a body damaged on the
   * way (before StrataFS acknowledges it). Over HTTPS, TLS already guarantees that, and
   * UNSIGNED-PAYLOAD saves a hashing pass over every block.
   */
  private bodyHash(body: Buffer): string {
    return this.location.endpoint.protocol === 'https:' ? UNSIGNED_PAYLOAD : sha256Hex(body);
  }

  private fullKey(key: string): string {
    if (key.length === 0) throw fsError.EINVAL('object key must not be empty');
    return this.location.prefix + key;
  }

  async put(key: string, data: Buffer): Promise<void> {
    const fullKey = this.fullKey(key);
    if (data.length > this.location.multipartThresholdBytes) {
      await this.putMultipart(fullKey, data);
      return;
    }
    await this.transport.send({
      method: 'PUT',
      key: fullKey,
      body: data,
      payloadSha256: this.bodyHash(data),
    });
  }

  private async putMultipart(fullKey: string, data: Buffer): Promise<void> {
    if (data.length > maxObjectBytes(this.location)) {
      throw fsError.EFBIG(
        `object of ${data.length} bytes exceeds 10,000 parts of ${this.location.partSizeBytes} bytes; raise part_size=`,
      );
    }
    const created = await this.transport.send({
      method: 'POST',
      key: fullKey,
      query: { uploads: '' },
      payloadSha256: EMPTY_SHA256,
    });
    const uploadId = xmlText(created.body.toString('utf8'), 'UploadId');
    if (!uploadId)
      throw fsError.EIO(
        `multipart upload of s3://${this.location.bucket}/${fullKey}: no UploadId in the answer`,
      );
    try {
      const partSize = this.location.partSizeBytes;
      const partCount = Math.ceil(data.length / partSize);
      // Parts go up concurrently; the transport's in-flight limit bounds how many at once.
      const etags = await Promise.all(
        Array.from({ length: partCount }, async (_, index) => {
          const part = data.subarray(index * partSize, Math.min(data.length, (index + 1) * partSize));
          const res = await this.transport.send({
            method: 'PUT',
            key: fullKey,
            query: { partNumber: String(index + 1), uploadId },
            body: part,
            payloadSha256: this.bodyHash(part),
          });
          const etag = res.headers.etag;
          if (!etag)
            throw fsError.EIO(`multipart upload of ${fullKey}: part ${index + 1} came back without an ETag`);
          return etag;
        }),
      );
      const manifest =
        '<CompleteMultipartUpload>' +
        etags
          .map((etag, i) => `<Part><PartNumber>${i + 1}</PartNumber><ETag>${xmlEscape(etag)}</ETag></Part>`)
          .join('') +
        '</CompleteMultipartUpload>';
      const body = Buffer.from(manifest, 'utf8');
      const done = await this.transport.send({
        method: 'POST',
        key: fullKey,
        query: { uploadId },
        body,
        headers: { 'content-type': 'application/xml' },
        payloadSha256: sha256Hex(body),
      });
      // S3 may answer 200 and still report a failure in the body (it has already sent the status).
      const text = done.body.toString('utf8');
      if (text.includes('<Error>')) {
        throw fsError.EIO(
          `completing multipart upload of ${fullKey} failed: ${xmlText(text, 'Code') ?? 'unknown'} ${xmlText(text, 'Message') ?? ''}`,
        );
      }
    } catch (err) {
      // Parts of an abandoned upload cost storage until aborted; the original error matters more.
      await this.transport
        .send({
          method: 'DELETE',
          key: fullKey,
          query: { uploadId },
          payloadSha256: EMPTY_SHA256,
          acceptStatuses: [404],
        })
        .catch(() => undefined);
      throw err;
    }
  }

  async get(key: string, offset?: number, length?: number): Promise<Buffer> {
    const fullKey = this.fullKey(key);
    let range: string | undefined;
    if (offset !== undefined || length !== undefined) {
      const start = offset ?? 0;
      if (!Number.isSafeInteger(start) || start < 0) throw fsError.EINVAL(`get ${key}: bad offset ${offset}`);
      if (length !== undefined && (!Number.isSafeInteger(length) || length < 0)) {
        throw fsError.EINVAL(`get ${key}: bad length ${length}`);
      }
      if (length === 0) {
        // An empty range cannot be expressed in HTTP; still report a missing object as missing.
        if ((await this.head(key)) === null) throw new ObjectNotFoundError(key, this.description);
        return Buffer.alloc(0);
      }
      range = `bytes=${start}-${length === undefined ? '' : start + length - 1}`;
    }
    const res = await this.transport.send({
      method: 'GET',
      key: fullKey,
      headers: range ? { range } : undefined,
      payloadSha256: EMPTY_SHA256,
      acceptStatuses: [404, 416],
    });
    // 416: the range starts at or past the end; like a file read at EOF, that is zero bytes.
    if (res.status === 416) return Buffer.alloc(0);
    if (res.status === 404) this.throwNotFound(res, key, 'GET');
    return res.body;
  }

  private throwNotFound(res: S3Response, key: string, method: string): never {
    const code = xmlText(res.body.toString('utf8'), 'Code');
    if (code === 'NoSuchBucket') {
      throw fsError.EIO(
        `${method} s3://${this.location.bucket}/${this.location.prefix}${key} failed: NoSuchBucket (404) - ` +
          'the bucket does not exist; create it or fix the URL',
      );
    }
    throw new ObjectNotFoundError(key, this.description);
  }

  async head(key: string): Promise<ObjectInfo | null> {
    const res = await this.transport.send({
      method: 'HEAD',
      key: this.fullKey(key),
      payloadSha256: EMPTY_SHA256,
      acceptStatuses: [404],
    });
    if (res.status === 404) return null;
    const lastModified = res.headers['last-modified'];
    return {
      key,
      sizeBytes: Number(res.headers['content-length'] ?? 0),
      modifiedMs: lastModified ? Date.parse(lastModified) : 0,
    };
  }

  async delete(key: string): Promise<void> {
    const res = await this.transport.send({
      method: 'DELETE',
      key: this.fullKey(key),
      payloadSha256: EMPTY_SHA256,
      acceptStatuses: [404],
    });
    if (res.status === 404 && xmlText(res.body.toString('utf8'), 'Code') === 'NoSuchBucket') {
      this.throwNotFound(res, key, 'DELETE');
    }
  }

  async *list(prefix: string, startAfter?: string): AsyncIterable<ObjectInfo> {
    const strip = this.location.prefix.length;
    let token: string | undefined;
    do {
      const query: Record<string, string> = {
        'list-type': '2',
        prefix: this.location.prefix + prefix,
        'max-keys': String(this.location.listPageSize),
      };
      if (token !== undefined) query['continuation-token'] = token;
      else if (startAfter !== undefined) query['start-after'] = this.location.prefix + startAfter;
      const res = await this.transport.send({ method: 'GET', query, payloadSha256: EMPTY_SHA256 });
      const xml = res.body.toString('utf8');
      for (const entry of xmlBlocks(xml, 'Contents')) {
        const fullKey = xmlText(entry, 'Key') ?? '';
        const modified = xmlText(entry, 'LastModified');
        yield {
          key: fullKey.slice(strip),
          sizeBytes: Number(xmlText(entry, 'Size') ?? 0),
          modifiedMs: modified ? Date.parse(modified) : 0,
        };
      }
      token = xmlText(xml, 'IsTruncated') === 'true' ? xmlText(xml, 'NextContinuationToken') : undefined;
    } while (token !== undefined);
  }

  async close(): Promise<void> {
    this.transport.close();
  }
}
