// The S3 backend's pure parts, without a server: URL parsing, the credential chain, SigV4.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseS3Url, S3_URL_FORM, S3_DEFAULTS } from '../../src/object/backends/s3-url.js';
import { parseIni, resolveAwsSettings } from '../../src/object/backends/s3-credentials.js';
import { SigV4Signer, EMPTY_SHA256, canonicalQuery, encodePath } from '../../src/object/backends/s3-sigv4.js';

describe('s3 URL parser', () => {
  it('reads bucket, prefix, endpoint, region and path style', () => {
    const loc = parseS3Url(
      's3://data/vol1/blocks?endpoint=http://127.0.0.1:7480&region=eu-west-1&path_style=1',
    );
    assert.equal(loc.bucket, 'data');
    assert.equal(loc.prefix, 'vol1/blocks/');
    assert.equal(loc.endpoint.origin, 'http://127.0.0.1:7480');
    assert.equal(loc.region, 'eu-west-1');
    assert.equal(loc.pathStyle, true);
    assert.equal(loc.multipartThresholdBytes, S3_DEFAULTS.multipartThresholdBytes);
    assert.equal(loc.listPageSize, 1000);
  });

  it('defaults to AWS with virtual-host style, and to path style for IP endpoints', () => {
    const aws = parseS3Url('s3://my-bucket');
    assert.equal(aws.endpoint.origin, 'https://s3.us-east-1.amazonaws.com');
    assert.equal(aws.pathStyle, false);
    assert.equal(aws.prefix, '');
    assert.equal(parseS3Url('s3://b12?endpoint=http://10.0.0.5:9000').pathStyle, true);
    assert.equal(parseS3Url('s3://b12?endpoint=https://minio.example.com').pathStyle, false);
    // Dotted bucket names break TLS wildcard certificates in virtual-host style.
    assert.equal(parseS3Url('s3://my.bucket?endpoint=https://s3.example.com').pathStyle, true);
  });

  it('parses tuning options with units', () => {
    const loc = parseS3Url(
      's3://bkt?multipart_threshold=8M&part_size=5MiB&max_in_flight=16&timeout=500ms&list_page_size=100',
    );
    assert.equal(loc.multipartThresholdBytes, 8 * 1024 * 1024);
    assert.equal(loc.partSizeBytes, 5 * 1024 * 1024);
    assert.equal(loc.maxInFlight, 16);
    assert.equal(loc.timeoutMs, 500);
    assert.equal(loc.listPageSize, 100);
  });

  const bad: [string, RegExp][] = [
    ['http://bucket/x', /does not start with s3:\/\/BUCKET/],
    ['s3://', /not a valid bucket name/],
    ['s3://a', /not a valid bucket name/],
    ['s3://abc?endpoint=ftp://x', /endpoint must be http/],
    ['s3://abc?endpoint=notaurl', /is not a URL/],
    ['s3://abc?endpoint=http://h:1/path', /without a path/],
    ['s3://abc?colour=blue', /unknown parameter "colour"/],
    ['s3://abc?path_style=maybe', /path_style must be 0 or 1/],
    ['s3://abc?endpoint=http://127.0.0.1:1&path_style=0', /needs a DNS host name/],
    ['s3://abc?part_size=1M', /at least 5MiB/],
    ['s3://abc?max_in_flight=0', /max_in_flight must be an integer/],
    ['s3://abc?list_page_size=5000', /list_page_size must be an integer from 1 to 1000/],
    ['s3://abc?timeout=soon', /invalid timeout/],
    ['s3://abc/x//y', /empty path segments/],
  ];
  for (const [url, why] of bad) {
    it(`rejects ${url} in one line naming the accepted form`, () => {
      assert.throws(
        () => parseS3Url(url),
        (err: Error) => {
          assert.match(err.message, why);
          assert.ok(err.message.includes(S3_URL_FORM), err.message);
          assert.ok(!err.message.includes('\n'));
          return true;
        },
      );
    });
  }

  it('never repeats credentials put into the URL', () => {
    for (const url of ['s3://AKID:SECRETXYZ@bucket', 's3://bkt?endpoint=http://AKID:SECRETXYZ@host:1']) {
      assert.throws(
        () => parseS3Url(url),
        (err: Error) => !err.message.includes('SECRETXYZ') && /credentials do not belong/.test(err.message),
      );
    }
  });
});

describe('s3 credential chain', () => {
  let home: string;
  before(() => {
    home = mkdtempSync(join(tmpdir(), 'strata-s3-cred-'));
    mkdirSync(join(home, '.aws'));
    writeFileSync(
      join(home, '.aws', 'credentials'),
      '# comment\n[default]\naws_access_key_id = DEFAULTID\naws_secret_access_key = defaultsecret\n\n' +
        '[dev]\naws_access_key_id=DEVID\naws_secret_access_key=devsecret\naws_session_token=devtoken\n',
    );
    writeFileSync(
      join(home, '.aws', 'config'),
      '[default]\nregion = eu-central-1\n[profile dev]\nregion=ap-south-1\n' +
        '[profile cfgonly]\naws_access_key_id = CFGID\naws_secret_access_key = cfgsecret\n',
    );
  });
  after(() => rmSync(home, { recursive: true, force: true }));

  it('prefers explicit keys over the environment', () => {
    const s = resolveAwsSettings({
      accessKeyId: 'X',
      secretAccessKey: 'Y',
      env: { HOME: home, AWS_ACCESS_KEY_ID: 'E', AWS_SECRET_ACCESS_KEY: 'F' },
    });
    assert.equal(s.credentials.accessKeyId, 'X');
    assert.equal(s.credentials.source, 'explicit options');
  });

  it('takes AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN from the environment', () => {
    const s = resolveAwsSettings({
      env: {
        HOME: home,
        AWS_ACCESS_KEY_ID: 'E',
        AWS_SECRET_ACCESS_KEY: 'F',
        AWS_SESSION_TOKEN: 'T',
        AWS_REGION: 'us-west-2',
      },
    });
    assert.deepEqual(
      [s.credentials.accessKeyId, s.credentials.secretAccessKey, s.credentials.sessionToken, s.region],
      ['E', 'F', 'T', 'us-west-2'],
    );
  });

  it('falls back to the default profile, with the region from ~/.aws/config', () => {
    const s = resolveAwsSettings({ env: { HOME: home } });
    assert.equal(s.credentials.accessKeyId, 'DEFAULTID');
    assert.equal(s.region, 'eu-central-1');
  });

  it('uses AWS_PROFILE, and a profile named explicitly beats environment keys', () => {
    const s = resolveAwsSettings({ env: { HOME: home, AWS_PROFILE: 'dev' } });
    assert.deepEqual(
      [s.credentials.accessKeyId, s.credentials.sessionToken, s.region],
      ['DEVID', 'devtoken', 'ap-south-1'],
    );
    const t = resolveAwsSettings({
      profile: 'dev',
      env: { HOME: home, AWS_ACCESS_KEY_ID: 'E', AWS_SECRET_ACCESS_KEY: 'F' },
    });
    assert.equal(t.credentials.accessKeyId, 'DEVID');
  });

  it('reads keys from the config file when the credentials file has none for the profile', () => {
    const s = resolveAwsSettings({ env: { HOME: home, AWS_PROFILE: 'cfgonly' } });
    assert.equal(s.credentials.accessKeyId, 'CFGID');
  });

  it('honours AWS_SHARED_CREDENTIALS_FILE and AWS_CONFIG_FILE', () => {
    const other = join(home, 'other-creds');
    writeFileSync(other, '[default]\naws_access_key_id=OTHER\naws_secret_access_key=othersecret\n');
    const s = resolveAwsSettings({
      env: { HOME: '/nonexistent', AWS_SHARED_CREDENTIALS_FILE: other, AWS_CONFIG_FILE: '/nonexistent/c' },
    });
    assert.equal(s.credentials.accessKeyId, 'OTHER');
  });

  it('explains what to set when nothing is found, without leaking anything', () => {
    assert.throws(
      () => resolveAwsSettings({ env: { HOME: '/nonexistent' } }),
      /set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY/,
    );
    assert.throws(
      () => resolveAwsSettings({ env: { HOME: home, AWS_PROFILE: 'nope' } }),
      /no keys for profile "nope"/,
    );
    assert.throws(
      () => resolveAwsSettings({ env: { HOME: home, AWS_SECRET_ACCESS_KEY: 'LEAKME' } }),
      (err: Error) => /only one of AWS_ACCESS_KEY_ID/.test(err.message) && !err.message.includes('LEAKME'),
    );
  });

  it('parses INI comments, spacing and sections', () => {
    const ini = parseIni('; c\n[ a ]\nk = v = w\n  x=y  \n[b]\n');
    assert.equal(ini.get('a')?.get('k'), 'v = w');
    assert.equal(ini.get('a')?.get('x'), 'y');
    assert.equal(ini.get('b')?.size, 0);
  });
});

describe('SigV4 signer', () => {
  it('matches the GET-object example of the AWS S3 SigV4 documentation', () => {
    // docs.aws.amazon.com/AmazonS3/latest/API/sig-v4-header-based-auth.html, "GET Object".
    const signer = new SigV4Signer(
      {
        accessKeyId: 'AKIAIOSFODNN7EXAMPLE',
        secretAccessKey: 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY',
        source: 'test',
      },
      'us-east-1',
    );
    const headers = signer.sign({
      method: 'GET',
      host: 'examplebucket.s3.amazonaws.com',
      encodedPath: '/test.txt',
      query: '',
      headers: { range: 'bytes=0-9' },
      payloadSha256: EMPTY_SHA256,
      now: new Date('2013-05-24T00:00:00Z'),
    });
    assert.equal(
      headers.authorization,
      'AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, ' +
        'SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, ' +
        'Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41',
    );
  });

  it('encodes paths and queries the way SigV4 wants', () => {
    assert.equal(encodePath("a b/ü+(x)*!'~"), 'a%20b/%C3%BC%2B%28x%29%2A%21%27~');
    assert.equal(canonicalQuery({ uploads: '', b: '2', a: 'x y' }), 'a=x%20y&b=2&uploads=');
  });
});
