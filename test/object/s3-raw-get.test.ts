// GETs over plain HTTP that read bodies straight into place (src/object/backends/s3-raw-get.ts),
// against scripted servers on 127.0.0.1: the framings a store may answer with, kept-alive
// connections and what ends them. Error mapping is in s3-errors.test.ts; radosgw itself in
// s3.test.ts and the conformance suite.
import { describe, it, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { openS3Store } from '../../src/object/backends/s3.js';
import { TransientStoreError } from '../../src/object/store.js';
import { listenOnLoopback } from './s3-helpers.js';

const credentials = { accessKeyId: 'ID', secretAccessKey: 'SECRET' };
const pattern = (bytes: number): Buffer => {
  const out = Buffer.allocUnsafe(bytes);
  for (let i = 0; i < bytes; i++) out[i] = (i * 31 + (i >> 10)) & 255;
  return out;
};

describe('S3 GETs read straight into their buffer', () => {
  let server: http.Server;
  let port: number;
  let connections = 0;
  let answer: (res: http.ServerResponse) => void = () => undefined;
  before(async () => {
    server = http.createServer((req, res) => {
      req.resume();
      req.on('end', () => answer(res));
    });
    server.on('connection', () => connections++);
    port = await listenOnLoopback(server);
  });
  after(() => {
    server.closeAllConnections();
    server.close();
  });
  beforeEach(() => {
    connections = 0;
  });
  const open = () => openS3Store(`s3://bkt?endpoint=http://127.0.0.1:${port}&region=us-east-1`, credentials);

  it('takes a large body in many reads, and several GETs on one kept-alive connection', async () => {
    const body = pattern(3 * 1024 * 1024 + 17);
    answer = (res) => {
      res.writeHead(200, { 'content-length': String(body.length) });
      // Written in pieces, so the client's reads land at many offsets of its buffer.
      for (let at = 0; at < body.length; at += 100_000) res.write(body.subarray(at, at + 100_000));
      res.end();
    };
    const store = await open();
    try {
      for (let i = 0; i < 3; i++) assert.ok((await store.get('k')).equals(body));
    } finally {
      await store.close();
    }
    assert.equal(connections, 1);
  });

  it('decodes a chunked body', async () => {
    const body = pattern(200_000);
    answer = (res) => {
      res.writeHead(200); // no length: node sends chunks
      res.write(body.subarray(0, 1));
      res.write(body.subarray(1, 70_000));
      res.end(body.subarray(70_000));
    };
    const store = await open();
    try {
      assert.ok((await store.get('k')).equals(body));
      assert.ok((await store.get('k')).equals(body), 'and the connection stays usable after it');
    } finally {
      await store.close();
    }
    assert.equal(connections, 1);
  });

  it('opens a new connection after "Connection: close", and after the server closed an idle one', async () => {
    answer = (res) => {
      res.writeHead(200, { 'content-length': '2', connection: 'close' });
      res.end('ok');
    };
    const store = await open();
    try {
      assert.equal((await store.get('k')).toString(), 'ok');
      assert.equal((await store.get('k')).toString(), 'ok');
      assert.equal(connections, 2);
      answer = (res) => {
        res.writeHead(200, { 'content-length': '3' });
        res.end('yes');
      };
      assert.equal((await store.get('k')).toString(), 'yes');
      // The server drops its idle connections; the next GET is sent again on a fresh one.
      server.closeIdleConnections();
      await new Promise((resolve) => setTimeout(resolve, 50));
      assert.equal((await store.get('k')).toString(), 'yes');
      assert.equal(connections, 4);
    } finally {
      await store.close();
    }
  });
});

describe('S3 GETs from a server that frames bodies by closing, or badly', () => {
  let server: net.Server;
  let port: number;
  let reply = '';
  before(async () => {
    server = net.createServer((socket) => {
      socket.once('data', () => {
        socket.end(reply);
      });
    });
    port = await listenOnLoopback(server);
  });
  after(() => server.close());
  const open = () =>
    openS3Store(`s3://bkt?endpoint=http://127.0.0.1:${port}&region=us-east-1&timeout=2s`, credentials);

  it('takes a body that ends with the connection (no length, not chunked)', async () => {
    reply = 'HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil the end';
    const store = await open();
    try {
      assert.equal((await store.get('k')).toString(), 'until the end');
    } finally {
      await store.close();
    }
  });

  for (const [name, text] of [
    ['more bytes than announced', 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\ntoo many'],
    ['a status line that is not HTTP', 'SSH-2.0-OpenSSH\r\n\r\n'],
    ['a bad chunk size', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n'],
    ['an interim answer', 'HTTP/1.1 100 Continue\r\n\r\n'],
  ] as const) {
    it(`treats ${name} as a transient error`, async () => {
      reply = text;
      const store = await open();
      try {
        await assert.rejects(store.get('k'), (err: Error) => {
          assert.ok(err instanceof TransientStoreError, `${err.name}: ${err.message}`);
          assert.match(err.message, /GET s3:\/\/bkt\/k/);
          return true;
        });
      } finally {
        await store.close();
      }
    });
  }
});
