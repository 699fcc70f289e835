// How the S3 backend maps failures, against a tiny scripted HTTP server on 127.0.0.1: throttling,
// 5xx, resets, hangs and short bodies must become TransientStoreError (so the retry wrapper
// retries them); permanent refusals must become clear FsErrors. radosgw cannot be made to fail
// on cue, which is why this server exists; everything else is tested against radosgw itself.
import { describe, it, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { Errno, type FsError } from '../../src/common/index.js';
import { TransientStoreError } from '../../src/object/store.js';
import { openS3Store } from '../../src/object/backends/s3.js';
import { withRetry } from '../../src/object/wrappers/retry.js';
import { listenOnLoopback, resolveToLoopback } from './s3-helpers.js';

type Behaviour = (req: http.IncomingMessage, res: http.ServerResponse) => void;

const xmlError =
  (status: number, code: string): Behaviour =>
  (_req, res) => {
    res.writeHead(status, { 'content-type': 'application/xml' });
    res.end(`<?xml version="1.0"?><Error><Code>${code}</Code><Message>scripted ${code}</Message></Error>`);
  };
const ok: Behaviour = (req, res) => {
  res.writeHead(200, { etag: '"abc"' });
  res.end(req.method === 'GET' ? 'payload' : '');
};

describe('S3 backend error mapping (scripted server)', () => {
  let server: http.Server;
  let port: number;
  const script: Behaviour[] = [];
  const seen: { method: string; url: string; host: string; auth: string; payloadHash: string }[] = [];
  const secret = 'scriptedSecretNeverShown';

  before(async () => {
    server = http.createServer((req, res) => {
      seen.push({
        method: req.method ?? '',
        url: req.url ?? '',
        host: req.headers.host ?? '',
        auth: String(req.headers.authorization ?? ''),
        payloadHash: String(req.headers['x-amz-content-sha256']),
      });
      req.resume();
      req.on('end', () => (script.shift() ?? ok)(req, res));
    });
    port = await listenOnLoopback(server);
  });
  after(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  beforeEach(() => {
    script.length = 0;
    seen.length = 0;
  });

  const open = (extra = '') =>
    openS3Store(`s3://bkt/pre?endpoint=http://127.0.0.1:${port}&region=us-east-1${extra}`, {
      accessKeyId: 'SCRIPTEDID',
      secretAccessKey: secret,
    });

  const transientCases: [string, Behaviour][] = [
    ['503 SlowDown', xmlError(503, 'SlowDown')],
    ['500 InternalError', xmlError(500, 'InternalError')],
    ['429 TooManyRequests', xmlError(429, 'TooManyRequests')],
    ['400 RequestTimeout', xmlError(400, 'RequestTimeout')],
    ['a connection reset before any answer', (req) => req.socket.destroy()],
    [
      'a body cut short of its Content-Length',
      (_req, res) => {
        res.writeHead(200, { 'content-length': '100' });
        res.write('only ten b');
        setTimeout(() => res.socket?.destroy(), 10);
      },
    ],
  ];
  for (const [name, behaviour] of transientCases) {
    it(`treats ${name} as transient`, async () => {
      const store = await open();
      try {
        script.push(behaviour);
        await assert.rejects(store.get('k'), (err: Error) => {
          assert.ok(err instanceof TransientStoreError, `${err.name}: ${err.message}`);
          assert.match(err.message, /GET s3:\/\/bkt\/pre\/k/);
          return true;
        });
      } finally {
        await store.close();
      }
    });
  }

  it('times out a request that gets no answer, as a transient error', async () => {
    const store = await open('&timeout=200ms');
    try {
      script.push(() => undefined); // never answers
      await assert.rejects(store.put('k', Buffer.from('x')), (err: Error) => {
        assert.ok(err instanceof TransientStoreError);
        assert.match(err.message, /no progress for 200 ms/);
        return true;
      });
    } finally {
      await store.close();
    }
  });

  it('treats a refused connection as transient', async () => {
    const closed = http.createServer();
    const deadPort = await listenOnLoopback(closed);
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const store = await openS3Store(`s3://bkt?endpoint=http://127.0.0.1:${deadPort}`, {
      accessKeyId: 'A',
      secretAccessKey: secret,
    });
    try {
      await assert.rejects(
        store.head('k'),
        (err: Error) => err instanceof TransientStoreError && /ECONNREFUSED/.test(err.message),
      );
    } finally {
      await store.close();
    }
  });

  it('maps permanent refusals to FsErrors that say what to fix and never show the secret', async () => {
    const store = await open();
    try {
      script.push(xmlError(403, 'AccessDenied'));
      await assert.rejects(store.put('k', Buffer.from('x')), (err: FsError) => {
        assert.equal(err.errno, Errno.EACCES);
        assert.match(err.message, /AccessDenied \(403\).*lack permission.*SCRIPTEDID/);
        assert.ok(!err.message.includes(secret));
        return true;
      });
      script.push(xmlError(400, 'InvalidArgument'));
      await assert.rejects(
        store.get('k'),
        (err: FsError) => err.errno === Errno.EIO && /InvalidArgument \(400\)/.test(err.message),
      );
      script.push(xmlError(301, 'PermanentRedirect'));
      await assert.rejects(store.get('k'), /fix endpoint= or region=/);
      assert.ok(!store.description.includes(secret));
    } finally {
      await store.close();
    }
  });

  it('recovers through the retry wrapper once the store stops failing', async () => {
    const store = withRetry(await open(), { baseDelayMs: 1, maxDelayMs: 5 });
    try {
      script.push(xmlError(503, 'SlowDown'), (req) => req.socket.destroy(), xmlError(500, 'InternalError'));
      await store.put('k', Buffer.from('x'));
      assert.equal(seen.length, 4, 'three failures, then success');
      // The reset hit a reused keep-alive socket, which the transport retries once by itself.
      assert.ok(store.stats.retries >= 2, `retries: ${store.stats.retries}`);
      // Over plain HTTP the body's SHA-256 is signed, so the server can reject a damaged body.
      assert.equal(seen[3].payloadHash, '2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881');
    } finally {
      await store.close();
    }
  });

  it('sends path-style and virtual-host requests with signed, escaped paths', async () => {
    const pathStyle = await open();
    try {
      await pathStyle.get('a b/c+d', 5, 10);
      assert.equal(seen[0].url, '/bkt/pre/a%20b/c%2Bd');
      assert.equal(seen[0].host, `127.0.0.1:${port}`);
      assert.match(
        seen[0].auth,
        /^AWS4-HMAC-SHA256 Credential=SCRIPTEDID\/\d{8}\/us-east-1\/s3\/aws4_request, SignedHeaders=host;range;/,
      );
    } finally {
      await pathStyle.close();
    }
    const vhost = await openS3Store(`s3://bkt?endpoint=http://localhost:${port}&path_style=0`, {
      accessKeyId: 'SCRIPTEDID',
      secretAccessKey: secret,
      lookup: resolveToLoopback,
    });
    try {
      for await (const _ of vhost.list('p/')) assert.fail('the scripted server lists nothing');
      assert.equal(seen[1].host, `bkt.localhost:${port}`);
      assert.equal(seen[1].url, '/?list-type=2&max-keys=1000&prefix=p%2F');
    } finally {
      await vhost.close();
    }
  });
});
