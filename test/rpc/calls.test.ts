import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Errno, FsError } from '../../src/common/index.js';
import { encodeFrame } from '../../src/rpc/codec.js';
import { RawClient } from './raw-client.js';
import { startRpcServer } from '../../src/rpc/index.js';
import { SECRET, TestService, startTestServer, testClient } from './helpers.js';

test('1,000 concurrent calls on one connection complete out of order, each with its own answer', async () => {
  const service = new TestService();
  const server = await startTestServer(service, { maxInFlightPerConnection: 1_000 });
  const client = testClient(server.address, { connections: 1, maxInFlightPerConnection: 1_000 });
  try {
    const finished: number[] = [];
    const calls = Array.from({ length: 1_000 }, (_, i) =>
      // Earlier calls sleep longer, so answers come back roughly in reverse.
      client.call('sleep', [Math.floor((1_000 - i) / 50), i], { idempotent: true }).then((value) => {
        finished.push(value as number);
        return value;
      }),
    );
    const results = await Promise.all(calls);
    assert.deepEqual(
      results,
      Array.from({ length: 1_000 }, (_, i) => i),
    );
    assert.notDeepEqual(finished, results, 'answers should not have arrived in request order');
    assert.equal(client.connectedCount, 1);
    assert.equal(server.connectionCount, 1);
  } finally {
    await client.close();
    await server.close();
  }
});

test('a connection never has more calls running on the server than its in-flight bound', async () => {
  const service = new TestService();
  const server = await startTestServer(service, { maxInFlightPerConnection: 4 });
  // The client itself would send all 200 at once: the server must hold back.
  const client = testClient(server.address, { maxInFlightPerConnection: 1_000 });
  try {
    const results = await Promise.all(
      Array.from({ length: 200 }, (_, i) => client.call('sleep', [1, i], { idempotent: true })),
    );
    assert.deepEqual(
      results,
      Array.from({ length: 200 }, (_, i) => i),
    );
    assert.ok(service.maxRunning <= 4, `${service.maxRunning} calls ran at once`);
    assert.equal(service.maxRunning, 4, 'the bound should have been reached');
  } finally {
    await client.close();
    await server.close();
  }
});

test('a client that stops reading answers makes the server stop running its calls', async () => {
  const service = new TestService();
  const server = await startTestServer(service);
  const raw = await RawClient.authenticated(server.address, SECRET);
  try {
    raw.socket.pause(); // answers pile up in the kernel, then in the server's write buffer
    const requests = 1_000;
    for (let id = 1; id <= requests; id++) raw.write(encodeFrame([6, id, 'big', [64 * 1024]]));
    await new Promise((resolve) => setTimeout(resolve, 500));
    // 1,000 answers of 64 KiB are 64 MiB: far more than socket buffers hold.
    assert.ok(service.calls < requests / 2, `${service.calls} calls ran for a client that reads nothing`);
    raw.socket.resume();
    for (let id = 1; id <= requests; id++) {
      const reply = await raw.replyTo(id, 10_000);
      assert.equal((reply?.[2] as Buffer).length, 64 * 1024);
    }
    assert.equal(service.calls, requests);
  } finally {
    raw.close();
    await server.close();
  }
});

test('20,000 calls queued behind a bound of one all run and are answered, also when refused at once', async () => {
  const server = await startRpcServer({
    listen: '127.0.0.1:0',
    secret: SECRET,
    maxInFlightPerConnection: 1,
    handler: () => {
      throw new FsError(Errno.EINVAL, 'refused at once');
    },
  });
  const raw = await RawClient.authenticated(server.address, SECRET);
  try {
    const requests = 20_000;
    const frames: Buffer[] = [];
    for (let id = 1; id <= requests; id++) frames.push(encodeFrame([6, id, 'x', []]));
    raw.write(Buffer.concat(frames));
    for (let id = 1; id <= requests; id++) {
      assert.deepEqual(await raw.replyTo(id), [8, id, Errno.EINVAL, 'refused at once']);
    }
  } finally {
    raw.close();
    await server.close();
  }
});

test('an FsError thrown by the service arrives as an FsError with the same errno and message', async () => {
  const server = await startTestServer(new TestService());
  const client = testClient(server.address);
  try {
    await assert.rejects(
      client.call('fail', [Errno.ENOTEMPTY, 'directory "d" is not empty'], { idempotent: true }),
      (error) => {
        assert.ok(error instanceof FsError);
        assert.equal(error.errno, Errno.ENOTEMPTY);
        assert.equal(error.message, 'directory "d" is not empty');
        return true;
      },
    );
    await assert.rejects(client.call('boom', [], { idempotent: true }), {
      errno: Errno.EIO,
      message: /internal error in boom.*kaboom/,
    });
    await assert.rejects(client.call('nope', [], { idempotent: true }), { errno: Errno.ENOSYS });
    assert.deepEqual(await client.call('echo', [{ b: Buffer.from('hi') }], { idempotent: true }), {
      b: Buffer.from('hi'),
    });
  } finally {
    await client.close();
    await server.close();
  }
});

test('a client speaking another protocol version is refused with a clear error', async () => {
  const server = await startTestServer(new TestService());
  const client = testClient(server.address, { protocolVersion: 99 });
  try {
    await assert.rejects(client.call('echo', [1], { idempotent: true }), {
      errno: Errno.EIO,
      message: /protocol version 99 but this server speaks versions 1-2/,
    });
  } finally {
    await client.close();
    await server.close();
  }
});

test('a client with the wrong secret is rejected and never served', async () => {
  const service = new TestService();
  const server = await startTestServer(service);
  const client = testClient(server.address, { secret: 'not-the-secret' });
  try {
    await assert.rejects(client.call('bump', [], { idempotent: false }), {
      errno: Errno.EACCES,
      message: /authentication failed/,
    });
    assert.equal(service.calls, 0);
  } finally {
    await client.close();
    await server.close();
  }
});

/** Opens a raw socket, writes `frames`, and collects what the server sends until it closes. */
function rawExchange(address: string, frames: Buffer[]): Promise<{ received: Buffer; closed: boolean }> {
  const [host, port] = address.split(':');
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host, port: Number(port) });
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      socket.destroy();
      resolve({ received: Buffer.concat(chunks), closed: false });
    }, 3_000);
    socket.on('connect', () => {
      for (const frame of frames) socket.write(frame);
    });
    socket.on('data', (chunk) => chunks.push(chunk));
    socket.on('error', reject);
    socket.on('close', () => {
      clearTimeout(timer);
      resolve({ received: Buffer.concat(chunks), closed: true });
    });
  });
}

test('a request before authentication is rejected and the connection closed', async () => {
  const service = new TestService();
  const server = await startTestServer(service);
  try {
    const request = encodeFrame([6, 1, 'bump', []]);
    const { received, closed } = await rawExchange(server.address, [request]);
    assert.ok(closed, 'the server should close the connection');
    assert.match(received.toString('latin1'), /authenticate first/);
    assert.equal(service.calls, 0);
    // A HELLO followed by a request instead of the AUTH answer is refused the same way.
    const hello = encodeFrame([1, 1, 'raw-client', Buffer.alloc(32)]);
    const second = await rawExchange(server.address, [hello, request]);
    assert.ok(second.closed);
    assert.match(second.received.toString('latin1'), /authentication failed/);
    assert.equal(service.calls, 0);
  } finally {
    await server.close();
  }
});

test('a connection that never authenticates is closed after the handshake timeout', async () => {
  const server = await startTestServer(new TestService(), { handshakeTimeoutMs: 100 });
  try {
    const { received, closed } = await rawExchange(server.address, []);
    assert.ok(closed, 'the server should close an idle unauthenticated connection');
    assert.match(received.toString('latin1'), /no authentication within the handshake timeout/);
  } finally {
    await server.close();
  }
});

test('an oversized frame closes that connection while other clients keep being served', async () => {
  const service = new TestService();
  const server = await startTestServer(service, { maxFrameBytes: 64 * 1024 });
  const bystander = testClient(server.address);
  const offender = testClient(server.address, { maxFrameBytes: 1 << 20, maxAttempts: 1 });
  try {
    assert.equal(await bystander.call('echo', ['before'], { idempotent: true }), 'before');
    const slow = bystander.call('sleep', [200, 'still here'], { idempotent: true });
    const oversized = offender.call('echo', [Buffer.alloc(100 * 1024)], { idempotent: true });
    await assert.rejects(oversized, { errno: Errno.EIO, message: /exceeds the 65536-byte limit/ });
    assert.equal(await slow, 'still here');
    assert.equal(await bystander.call('echo', ['after'], { idempotent: true }), 'after');
    // The offender can still make normal calls on a new connection.
    assert.equal(await offender.call('echo', ['small'], { idempotent: true }), 'small');
  } finally {
    await bystander.close();
    await offender.close();
    await server.close();
  }
});

test('a Unix socket server serves calls and replaces a stale socket file', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'strata-rpc-'));
  const path = join(dir, 'meta.sock');
  try {
    // A socket file whose server died without unlinking it: a process killed with SIGKILL.
    const dead = spawn(process.execPath, [
      '-e',
      `require('net').createServer().listen(${JSON.stringify(path)}, () => console.log('up'))`,
    ]);
    try {
      await once(dead.stdout, 'data');
    } finally {
      dead.kill('SIGKILL');
      await once(dead, 'exit');
    }
    assert.ok(existsSync(path), 'the dead server should have left its socket file behind');
    const server = await startTestServer(new TestService(), { listen: path });
    const client = testClient(server.address);
    try {
      assert.equal(server.address, path);
      assert.equal(await client.call('echo', ['over unix'], { idempotent: true }), 'over unix');
    } finally {
      await client.close();
      await server.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a call times out with ETIMEDOUT and a late answer is ignored', async () => {
  const server = await startTestServer(new TestService());
  const client = testClient(server.address);
  try {
    await assert.rejects(client.call('sleep', [500, 'late'], { idempotent: true, timeoutMs: 50 }), {
      errno: Errno.ETIMEDOUT,
      message: /sleep timed out after 50 ms/,
    });
    assert.equal(await client.call('echo', ['next'], { idempotent: true }), 'next');
  } finally {
    await client.close();
    await server.close();
  }
});

test('an unreachable server fails calls with an error naming the address and the attempts', async () => {
  const probe = net.createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port } = probe.address() as net.AddressInfo;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  const client = testClient(`127.0.0.1:${port}`, {
    secret: SECRET,
    serverName: 'metadata server',
    unreachableHint: 'is `strata meta serve` running?',
    maxAttempts: 3,
  });
  try {
    await assert.rejects(client.connect(), {
      message: new RegExp(
        `^metadata server 127\\.0\\.0\\.1:${port} unreachable after 3 attempts in [0-9.]+ s \\(ECONNREFUSED\\); is \`strata meta serve\` running\\?$`,
      ),
    });
  } finally {
    await client.close();
  }
});
