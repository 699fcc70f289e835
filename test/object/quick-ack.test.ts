// Quick acknowledgements on the S3 client's sockets (src/object/backends/quick-ack.ts,
// native/tcpopt): a server that writes a response's headers and body separately with Nagle's
// algorithm on waits for the headers' ACK before sending the body, and Linux delays that ACK
// on a socket that looks interactive. The kernel state is read back with getsockopt; no timing
// is asserted.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { once } from 'node:events';
import { openS3Store } from '../../src/object/backends/s3.js';
import { quickAckCounts, socketFd, tcpOptions } from '../../src/object/backends/quick-ack.js';
import { listenOnLoopback } from './s3-helpers.js';

/** One request/response exchange over `client`: the peer echoes what it gets. */
async function exchange(client: net.Socket, text: string): Promise<void> {
  const answer = once(client, 'data');
  client.write(text);
  await answer;
}

describe('TCP quick acknowledgements (native/tcpopt)', () => {
  it('is built, and takes a socket out of delayed acknowledgements', async () => {
    const options = tcpOptions();
    assert.ok(options, 'native/tcpopt is not built: run npm run build');
    const server = net.createServer((socket) => socket.on('data', (chunk) => socket.write(chunk)));
    const client = net.connect(await listenOnLoopback(server), '127.0.0.1');
    try {
      await once(client, 'connect');
      // Requests sent right after answers arrive: Linux takes the socket for interactive and
      // delays its ACKs (hoping to send them with the next request).
      for (let i = 0; i < 4; i++) await exchange(client, `request ${i}`);
      const fd = socketFd(client);
      assert.ok(fd !== undefined);
      assert.equal(options.quickAckState(fd), 0, 'expected delayed ACKs after request/response turns');
      assert.equal(options.quickAck(fd), 0);
      assert.equal(options.quickAckState(fd), 1);
      assert.ok(options.quickAck(-1) > 0, 'a bad descriptor gives its errno');
    } finally {
      client.destroy();
      server.close();
    }
  });

  describe('the S3 client', () => {
    let server: http.Server;
    let port: number;
    before(async () => {
      // Headers and body in two writes with Nagle's algorithm on, as radosgw answers.
      server = http.createServer((req, res) => {
        req.resume();
        req.on('end', () => {
          res.socket?.setNoDelay(false);
          res.writeHead(200, { 'content-length': '7' });
          res.flushHeaders();
          setImmediate(() => res.end('payload'));
        });
      });
      port = await listenOnLoopback(server);
    });
    after(() => {
      server.closeAllConnections();
      server.close();
    });

    it('acknowledges each answer at once, on its kept-alive socket', async () => {
      const store = await openS3Store(`s3://bkt?endpoint=http://127.0.0.1:${port}&region=us-east-1`, {
        accessKeyId: 'ID',
        secretAccessKey: 'SECRET',
      });
      const before = { ...quickAckCounts };
      try {
        for (let i = 0; i < 5; i++) assert.equal((await store.get(`k${i}`)).toString(), 'payload');
      } finally {
        await store.close();
      }
      assert.equal(quickAckCounts.set, before.set + 5);
      assert.equal(quickAckCounts.failed, before.failed);
    });
  });
});
