// HTTPS endpoints: certificates are checked against Node's roots plus the system store and
// AWS_CA_BUNDLE; an untrusted certificate is a clear, permanent error, not something to retry.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import https from 'node:https';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Errno, type FsError } from '../../src/common/index.js';
import { TransientStoreError } from '../../src/object/store.js';
import { openS3Store } from '../../src/object/backends/s3.js';
import { quickAckCounts } from '../../src/object/backends/quick-ack.js';
import { sh } from '../e2e/harness.js';
import { listenOnLoopback } from './s3-helpers.js';

describe('S3 backend over HTTPS', () => {
  let dir: string;
  let server: https.Server;
  let port: number;
  const savedBundle = process.env.AWS_CA_BUNDLE;
  const paths: string[] = [];
  const payloadHashes: string[] = [];

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'strata-s3-tls-'));
    sh(
      `openssl req -x509 -newkey rsa:2048 -nodes -keyout key.pem -out cert.pem -days 1 -subj /CN=localhost ` +
        `-addext subjectAltName=IP:127.0.0.1,DNS:localhost 2>/dev/null`,
      dir,
    );
    server = https.createServer(
      { key: readFileSync(join(dir, 'key.pem')), cert: readFileSync(join(dir, 'cert.pem')) },
      (req, res) => {
        paths.push(req.url ?? '');
        payloadHashes.push(String(req.headers['x-amz-content-sha256']));
        req.resume();
        res.writeHead(200, { 'content-length': '7' });
        res.end('payload');
      },
    );
    port = await listenOnLoopback(server);
  });

  after(async () => {
    if (savedBundle === undefined) delete process.env.AWS_CA_BUNDLE;
    else process.env.AWS_CA_BUNDLE = savedBundle;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    rmSync(dir, { recursive: true, force: true });
  });

  const open = () =>
    openS3Store(`s3://bkt?endpoint=https://127.0.0.1:${port}`, {
      accessKeyId: 'ID',
      secretAccessKey: 'SECRET',
    });

  it('trusts a private CA named by AWS_CA_BUNDLE', async () => {
    process.env.AWS_CA_BUNDLE = join(dir, 'cert.pem');
    const store = await open();
    try {
      const acks = { ...quickAckCounts };
      assert.equal((await store.get('k')).toString(), 'payload');
      assert.equal(paths.at(-1), '/bkt/k');
      // The TCP socket under TLS is found, and its answer acknowledged at once (quick-ack.ts).
      assert.equal(quickAckCounts.set, acks.set + 1);
      assert.equal(quickAckCounts.failed, acks.failed);
      // TLS protects the body in transit: no SHA-256 pass over it.
      await store.put('k', Buffer.from('data'));
      assert.equal(payloadHashes.at(-1), 'UNSIGNED-PAYLOAD');
    } finally {
      await store.close();
    }
  });

  it('refuses an untrusted certificate with a permanent EIO naming the problem', async () => {
    process.env.AWS_CA_BUNDLE = join(dir, 'missing.pem');
    const store = await open();
    try {
      await assert.rejects(store.get('k'), (err: FsError) => {
        assert.ok(!(err instanceof TransientStoreError), 'a bad certificate is not worth retrying');
        assert.equal(err.errno, Errno.EIO);
        assert.match(err.message, /GET s3:\/\/bkt\/k: .*(self[- ]signed|certificate)/i);
        assert.match(err.message, /point AWS_CA_BUNDLE at its certificate file/);
        return true;
      });
    } finally {
      await store.close();
    }
  });
});
