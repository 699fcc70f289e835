// RpcServerStats: the serving loop counts every call under its method (unknown ones under
// "other"), with the errno it answered, the bytes each way, the calls running, the connections
// and the handshakes it refused; and hands the handler the method's number.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Errno } from '../../src/common/index.js';
import { encodeFrame } from '../../src/rpc/codec.js';
import { OTHER_METHOD, RpcCallStats, RpcServerStats, type CallInfo } from '../../src/rpc/index.js';
import { SECRET, TestService, startTestServer, testClient } from './helpers.js';
import { RawClient } from './raw-client.js';

const METHODS = ['echo', 'sleep', 'fail', 'boom'];

function errorsOf(stats: RpcCallStats): Map<string, number> {
  return new Map([...stats.errorCounts()].map(({ method, errno, count }) => [`${method}/${errno}`, count]));
}

test('calls, errors by errno, in-flight calls and method numbers are counted per method', async () => {
  const service = new TestService();
  const stats = new RpcServerStats(METHODS);
  const seen: { method: string; index: number }[] = [];
  const server = await startTestServer(service, {
    stats,
    handler: (method: string, args: unknown[], call: CallInfo) => {
      seen.push({ method, index: call.methodIndex });
      return service.handle(method, args);
    },
  });
  const client = testClient(server.address);
  try {
    for (let i = 0; i < 5; i++) await client.call('echo', [i], { idempotent: true });
    for (let i = 0; i < 2; i++) {
      await assert.rejects(client.call('fail', [Errno.ENOENT, 'gone'], { idempotent: true }));
    }
    await assert.rejects(client.call('boom', [], { idempotent: true }));
    await assert.rejects(client.call('nope', [], { idempotent: true }));
    const sleeping = [1, 2, 3].map((i) => client.call('sleep', [200, i], { idempotent: true }));
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.equal(stats.inFlightCalls, 3, 'three sleeps are running');
    await Promise.all(sleeping);
    assert.equal(stats.inFlightCalls, 0);

    const count = (method: string): number => stats.latency.count(stats.seriesOf(method));
    assert.equal(count('echo'), 5);
    assert.equal(count('fail'), 2);
    assert.equal(count('boom'), 1);
    assert.equal(count('sleep'), 3);
    assert.equal(stats.latency.count(stats.methodNames.indexOf(OTHER_METHOD)), 1, 'the unknown method');
    assert.ok(stats.latency.sumsSeconds[stats.seriesOf('sleep')] >= 3 * 0.19, 'sleeps last 200 ms each');
    assert.deepEqual(
      errorsOf(stats),
      new Map([
        [`fail/${Errno.ENOENT}`, 2],
        [`boom/${Errno.EIO}`, 1],
        [`${OTHER_METHOD}/${Errno.ENOSYS}`, 1],
      ]),
    );
    for (const { method, index } of seen) assert.equal(index, stats.seriesOf(method), method);
    assert.equal(stats.seriesOf('nope'), stats.methodNames.length - 1);
  } finally {
    await client.close();
    await server.close();
  }
});

test('bytes each way are exactly what the client wrote and read; malformed requests count as EINVAL', async () => {
  const service = new TestService();
  const stats = new RpcServerStats(METHODS);
  const server = await startTestServer(service, { stats });
  const raw = await RawClient.authenticated(server.address, SECRET);
  try {
    raw.write(encodeFrame([6, 1, 'echo', ['hello']]));
    assert.deepEqual((await raw.replyTo(1))?.slice(0, 2), [7, 1]);
    raw.write(encodeFrame([6, 2, 'echo', 'not an array']));
    assert.equal((await raw.replyTo(2))?.[2], Errno.EINVAL);
    raw.write(encodeFrame([6, 3, 42, []]));
    assert.equal((await raw.replyTo(3))?.[2], Errno.EINVAL);
    assert.equal(stats.receivedBytes, raw.socket.bytesWritten);
    assert.equal(stats.sentBytes, raw.socket.bytesRead);
    assert.equal(stats.latency.count(stats.seriesOf('echo')), 2);
    assert.deepEqual(
      errorsOf(stats),
      new Map([
        [`echo/${Errno.EINVAL}`, 1],
        [`${OTHER_METHOD}/${Errno.EINVAL}`, 1],
      ]),
    );
    assert.equal(stats.connectionsOpened - stats.connectionsClosed, 1);
  } finally {
    raw.close();
  }
  const refused = await RawClient.authenticated(server.address, 'wrong secret').catch(() => null);
  assert.equal(refused, null);
  try {
    const deadline = Date.now() + 5_000;
    while (stats.connectionsOpened !== stats.connectionsClosed && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    assert.equal(stats.connectionsOpened, 2);
    assert.equal(stats.connectionsClosed, 2);
    assert.equal(stats.connectionsRejected, 1);
  } finally {
    await server.close();
  }
});

test('a server without stats counts nothing and hands the handler no method number', async () => {
  const service = new TestService();
  let index: number | undefined;
  const server = await startTestServer(service, {
    handler: (method: string, args: unknown[], call: CallInfo) => {
      index = call.methodIndex;
      return service.handle(method, args);
    },
  });
  const client = testClient(server.address);
  try {
    await client.call('echo', [1], { idempotent: true });
    assert.equal(index, -1);
  } finally {
    await client.close();
    await server.close();
  }
});

test('a client with stats times each call by method from call() to its answer, errors by errno', async () => {
  const service = new TestService();
  const server = await startTestServer(service);
  const stats = new RpcCallStats(METHODS);
  const client = testClient(server.address, { stats });
  try {
    for (let i = 0; i < 3; i++) await client.call('echo', [i], { idempotent: true });
    await assert.rejects(client.call('fail', [Errno.EEXIST, 'there'], { idempotent: false }));
    await client.call('sleep', [100, 'late'], { idempotent: true });
    assert.equal(stats.latency.count(stats.seriesOf('echo')), 3);
    assert.equal(stats.latency.count(stats.seriesOf('fail')), 1);
    assert.ok(stats.latency.sumsSeconds[stats.seriesOf('sleep')] >= 0.09);
    assert.deepEqual(errorsOf(stats), new Map([[`fail/${Errno.EEXIST}`, 1]]));
  } finally {
    await client.close();
    await server.close();
  }
});
