import { isIP } from 'node:net';
import { parseDurationMs, parseSizeBytes } from '../../common/index.js';

/** The accepted URL form, repeated verbatim in every parse error. */
export const S3_URL_FORM =
  's3://BUCKET[/PREFIX][?endpoint=http(s)://HOST:PORT&region=REGION&path_style=0|1&profile=NAME' +
  '&multipart_threshold=SIZE&part_size=SIZE&max_in_flight=N&timeout=DURATION&list_page_size=N]';

/** Everything an S3 store URL says, with defaults applied and units in the names. */
export interface S3Location {
  bucket: string;
  /** Key prefix inside the bucket, "" or ending with "/". */
  prefix: string;
  /** Where requests go: scheme, host and port, without the bucket (path-style base). */
  endpoint: URL;
  /** Region for signing; undefined means "take it from AWS_REGION / the profile / us-east-1". */
  region: string | undefined;
  /** Bucket in the path (http://host/bucket/key) rather than in the host name (http://bucket.host/key). */
  pathStyle: boolean;
  /** Profile in ~/.aws/credentials and ~/.aws/config, when the URL names one. */
  profile: string | undefined;
  /** Objects larger than this go up as a multipart upload. */
  multipartThresholdBytes: number;
  /** Part size of multipart uploads (S3 requires at least 5 MiB for all parts but the last). */
  partSizeBytes: number;
  /** Requests in flight at once through this store (also the keep-alive pool size). */
  maxInFlight: number;
  /** A request fails (transiently) when no byte moves for this long. */
  timeoutMs: number;
  /** Keys per ListObjectsV2 page (S3 caps it at 1000). */
  listPageSize: number;
}

const MIN_PART_BYTES = 5 * 1024 * 1024;
const MAX_PARTS = 10_000;
const KNOWN_PARAMS = new Set([
  'endpoint',
  'region',
  'path_style',
  'profile',
  'multipart_threshold',
  'part_size',
  'max_in_flight',
  'timeout',
  'list_page_size',
]);

export const S3_DEFAULTS = {
  multipartThresholdBytes: 64 * 1024 * 1024,
  partSizeBytes: 16 * 1024 * 1024,
  maxInFlight: 64,
  timeoutMs: 30_000,
  listPageSize: 1000,
} as const;

function invalid(url: string, why: string): Error {
  return new Error(`invalid S3 URL "${redactUrl(url)}": ${why}; expected ${S3_URL_FORM}`);
}

/** Hides anything that looks like a secret (userinfo, signature query parameters) before quoting a URL. */
export function redactUrl(url: string): string {
  return url
    .replace(/\/\/[^/@?#]*@/g, '//***@')
    .replace(/((?:secret|password|token|signature|credential)[^=&]*=)[^&]*/gi, '$1***');
}

// Bucket names as S3 defines them (3-63 chars, lowercase, digits, dots, hyphens); underscores and
// capitals are accepted for older or non-AWS stores that allow them with path-style addressing.
const BUCKET_RE = /^[a-zA-Z0-9][a-zA-Z0-9._-]{1,61}[a-zA-Z0-9]$/;

function parseBool(url: string, name: string, text: string): boolean {
  if (/^(1|true|yes)$/i.test(text)) return true;
  if (/^(0|false|no)$/i.test(text)) return false;
  throw invalid(url, `${name} must be 0 or 1, got "${text}"`);
}

function parseCount(url: string, name: string, text: string, min: number, max: number): number {
  const value = Number(text);
  if (!/^\d+$/.test(text) || value < min || value > max) {
    throw invalid(url, `${name} must be an integer from ${min} to ${max}, got "${text}"`);
  }
  return value;
}

function wrapUnits<T>(url: string, parse: () => T): T {
  try {
    return parse();
  } catch (err) {
    throw invalid(url, (err as Error).message);
  }
}

/** Parses `s3://BUCKET[/PREFIX]?endpoint=...`; throws one line naming the accepted form on any mistake. */
export function parseS3Url(url: string): S3Location {
  const match = /^s3:\/\/([^/?#]*)(\/[^?#]*)?(?:\?([^#]*))?$/i.exec(url.trim());
  if (!match) throw invalid(url, 'it does not start with s3://BUCKET');
  const bucket = match[1];
  if (bucket.includes('@') || bucket.includes(':')) {
    throw invalid(
      url,
      'credentials do not belong in the URL; use AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or a profile',
    );
  }
  if (!BUCKET_RE.test(bucket) || bucket.includes('..')) {
    throw invalid(url, `"${bucket}" is not a valid bucket name (3-63 letters, digits, dots, hyphens)`);
  }
  let prefix = decodeURIComponent((match[2] ?? '').replace(/^\/+/, ''));
  if (prefix !== '' && !prefix.endsWith('/')) prefix += '/';
  if (prefix.includes('//')) throw invalid(url, 'the prefix must not contain empty path segments');

  const params = new URLSearchParams(match[3] ?? '');
  for (const name of params.keys()) {
    if (!KNOWN_PARAMS.has(name)) throw invalid(url, `unknown parameter "${name}"`);
  }
  const get = (name: string): string | undefined => params.get(name) ?? undefined;

  const region = get('region');
  if (region !== undefined && !/^[a-z0-9-]{1,40}$/i.test(region))
    throw invalid(url, `bad region "${region}"`);

  let endpoint: URL;
  const endpointText = get('endpoint');
  if (endpointText !== undefined) {
    try {
      endpoint = new URL(endpointText);
    } catch {
      throw invalid(url, `endpoint "${endpointText}" is not a URL like http://127.0.0.1:7480`);
    }
    if (endpoint.protocol !== 'http:' && endpoint.protocol !== 'https:') {
      throw invalid(url, `endpoint must be http:// or https://, got "${endpoint.protocol}"`);
    }
    if (endpoint.username || endpoint.password) {
      throw invalid(
        url,
        'credentials do not belong in the endpoint; use AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY',
      );
    }
    if ((endpoint.pathname !== '/' && endpoint.pathname !== '') || endpoint.search) {
      throw invalid(url, 'the endpoint is scheme://host[:port] only, without a path or query');
    }
  } else {
    endpoint = new URL(`https://s3.${region ?? 'us-east-1'}.amazonaws.com`);
  }

  // Virtual-host style needs a DNS name the bucket can prefix; IP addresses and localhost cannot
  // take one, so path style is the default there (radosgw, MinIO), virtual host everywhere else.
  const host = endpoint.hostname.replace(/^\[|\]$/g, '');
  const hostTakesBucket = isIP(host) === 0 && host !== 'localhost';
  const pathStyleText = get('path_style');
  const pathStyle =
    pathStyleText !== undefined
      ? parseBool(url, 'path_style', pathStyleText)
      : !hostTakesBucket || bucket.includes('.');
  // localhost may take a bucket prefix when a resolver maps *.localhost (radosgw's rgw_dns_name).
  if (!pathStyle && isIP(host) !== 0) {
    throw invalid(url, `path_style=0 needs a DNS host name in the endpoint, not "${host}"`);
  }

  const text = (name: string): string | undefined => get(name);
  const multipartThresholdBytes = wrapUnits(url, () => {
    const t = text('multipart_threshold');
    return t === undefined ? S3_DEFAULTS.multipartThresholdBytes : parseSizeBytes(t, 'multipart_threshold');
  });
  const partSizeBytes = wrapUnits(url, () => {
    const t = text('part_size');
    return t === undefined ? S3_DEFAULTS.partSizeBytes : parseSizeBytes(t, 'part_size');
  });
  if (partSizeBytes < MIN_PART_BYTES) throw invalid(url, 'part_size must be at least 5MiB (an S3 rule)');
  if (multipartThresholdBytes < 1) throw invalid(url, 'multipart_threshold must be positive');
  const timeoutMs = wrapUnits(url, () => {
    const t = text('timeout');
    return t === undefined ? S3_DEFAULTS.timeoutMs : parseDurationMs(t, 'timeout');
  });
  if (timeoutMs < 1) throw invalid(url, 'timeout must be positive');
  const maxInFlightText = text('max_in_flight');
  const listPageText = text('list_page_size');
  const profile = get('profile');
  if (profile !== undefined && !/^[\w.@+-]+$/.test(profile))
    throw invalid(url, `bad profile name "${profile}"`);

  return {
    bucket,
    prefix,
    endpoint,
    region,
    pathStyle,
    profile,
    multipartThresholdBytes,
    partSizeBytes,
    maxInFlight:
      maxInFlightText === undefined
        ? S3_DEFAULTS.maxInFlight
        : parseCount(url, 'max_in_flight', maxInFlightText, 1, 4096),
    timeoutMs,
    listPageSize:
      listPageText === undefined
        ? S3_DEFAULTS.listPageSize
        : parseCount(url, 'list_page_size', listPageText, 1, 1000),
  };
}

/** The largest object a multipart upload with this part size can carry. */
export function maxObjectBytes(location: S3Location): number {
  return location.partSizeBytes * MAX_PARTS;
}

/** "s3://bucket/prefix (http://127.0.0.1:7480, path-style)": what status pages may show. */
export function describeS3Location(location: S3Location, region: string): string {
  const style = location.pathStyle ? 'path-style' : 'virtual-host';
  return `s3://${location.bucket}/${location.prefix} (${location.endpoint.origin}, ${region}, ${style})`;
}
