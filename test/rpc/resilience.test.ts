import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Errno } from '../../src/common/index.js';
import { ReplayCache } from '../../src/rpc/index.js';
import { CuttingProxy, TestService, startTestServer, testClient } from './helpers.js';

test('a create whose answer is lost is retried and applied once, the client getting the original result', async () => {
  const service = new TestService();
  const server = await startTestServer(service);
  const proxy = await CuttingProxy.start(server.address);
  const client = testClient(proxy.address);
  try {
    assert.deepEqual(await client.call('bump', ['warm-up'], { idempotent: false }), {
      bumps: 1,
      tag: 'warm-up',
    });
    proxy.dropNextReply = true;
    const result = await client.call('bump', ['lost-answer'], { idempotent: false });
    assert.equal(proxy.cuts, 1, 'the proxy should have cut the connection once');
    assert.deepEqual(result, { bumps: 2, tag: 'lost-answer' });
    assert.equal(service.bumps, 2, 'the retried call must not be applied a second time');
    assert.equal(client.retriedCalls, 1);
    assert.equal(server.replay?.replayedCount, 1);
  } finally {
    await client.close();
    await proxy.close();
    await server.close();
  }
});

test('a retry that arrives while the first attempt still runs waits for it instead of running again', async () => {
  const service = new TestService();
  const server = await startTestServer(service);
  const proxy = await CuttingProxy.start(server.address);
  const client = testClient(proxy.address);
  try {
    await client.connect();
    proxy.cutAfterNextRequest = true;
    const result = await client.call('slowbump', ['slow', 300], { idempotent: false });
    assert.equal(proxy.cuts, 1);
    assert.deepEqual(result, { bumps: 1, tag: 'slow' });
    assert.equal(service.bumps, 1);
    assert.equal(server.replay?.replayedCount, 1);
  } finally {
    await client.close();
    await proxy.close();
    await server.close();
  }
});

test('without replay memory the same lost answer makes the server apply the call twice', async () => {
  // The control experiment: shows the test above can fail.
  const service = new TestService();
  const server = await startTestServer(service, { replay: false });
  const proxy = await CuttingProxy.start(server.address);
  const client = testClient(proxy.address);
  try {
    await client.connect();
    proxy.dropNextReply = true;
    assert.deepEqual(await client.call('bump', ['twice'], { idempotent: false }), { bumps: 2, tag: 'twice' });
    assert.equal(service.bumps, 2);
  } finally {
    await client.close();
    await proxy.close();
    await server.close();
  }
});

test('answered calls are forgotten by the server as the client acknowledges them', async () => {
  const service = new TestService();
  const server = await startTestServer(service);
  const client = testClient(server.address);
  try {
    for (let i = 0; i < 200; i++) await client.call('bump', [i], { idempotent: false });
    // Each request tells the server the lowest unanswered number: only the last one is kept.
    assert.ok((server.replay?.size ?? 0) <= 1, `replay memory holds ${server.replay?.size} entries`);
  } finally {
    await client.close();
    await server.close();
  }
});

test('the client reconnects after the server restarts, also for calls made while it was down', async () => {
  const service = new TestService();
  let server = await startTestServer(service);
  const address = server.address;
  const client = testClient(address, { connections: 2, maxAttempts: 8 });
  try {
    assert.equal(await client.call('echo', ['first'], { idempotent: true }), 'first');
    await server.close();
    const whileDown = client.call('echo', ['while down'], { idempotent: true });
    await new Promise((resolve) => setTimeout(resolve, 100));
    server = await startTestServer(service, { listen: address });
    assert.equal(await whileDown, 'while down');
    assert.deepEqual(await client.call('bump', ['after'], { idempotent: false }), { bumps: 1, tag: 'after' });
  } finally {
    await client.close();
    await server.close();
  }
});

test('with retryForMs, calls made while the server is down wait for it that long, not only maxAttempts tries', async () => {
  const service = new TestService();
  let server = await startTestServer(service);
  const address = server.address;
  // Two attempts alone give up within a few hundred ms; the restart below takes 1.5 s.
  const client = testClient(address, { maxAttempts: 2, retryForMs: 10_000, maxBackoffMs: 200 });
  try {
    assert.equal(await client.call('echo', ['first'], { idempotent: true }), 'first');
    await server.close();
    const whileDown = client.call('bump', ['while down'], { idempotent: false });
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    server = await startTestServer(service, { listen: address });
    assert.deepEqual(await whileDown, { bumps: 1, tag: 'while down' });
    // Never back: the call fails once the retry time is spent, saying for how long it tried.
    const short = testClient(address, { maxAttempts: 2, retryForMs: 800, maxBackoffMs: 100 });
    assert.equal(await short.call('echo', ['up'], { idempotent: true }), 'up');
    await server.close();
    const started = Date.now();
    await assert.rejects(short.call('echo', ['lost'], { idempotent: true }), {
      errno: Errno.EIO,
      message: /unreachable after \d+ attempts in (0\.[89]|[1-9][0-9.]*) s/,
    });
    assert.ok(Date.now() - started >= 800, 'kept trying for retryForMs');
    await short.close();
  } finally {
    await client.close();
    await server.close();
  }
});

test('retryForMs does not hold up the first connection: a wrong address fails after maxAttempts', async () => {
  const server = await startTestServer(new TestService());
  const address = server.address;
  await server.close();
  const client = testClient(address, { maxAttempts: 2, retryForMs: 60_000, maxBackoffMs: 100 });
  try {
    await assert.rejects(client.connect(), { errno: Errno.EIO, message: /unreachable after 2 attempts/ });
  } finally {
    await client.close();
  }
});

test('calls in flight when the server dies are retried on the restarted server', async () => {
  const service = new TestService();
  let server = await startTestServer(service);
  const address = server.address;
  const client = testClient(address, { maxAttempts: 8 });
  try {
    await client.connect();
    const inFlight = client.call('sleep', [2_000, 'resent'], { idempotent: true });
    await new Promise((resolve) => setTimeout(resolve, 50));
    await server.close();
    server = await startTestServer(new TestService(), { listen: address });
    assert.equal(await inFlight, 'resent');
    assert.ok(client.retriedCalls >= 1);
  } finally {
    await client.close();
    await server.close();
  }
});

test('a closed client fails its waiting calls and refuses new ones', async () => {
  const server = await startTestServer(new TestService());
  const client = testClient(server.address);
  try {
    const waiting = client.call('sleep', [1_000, 'never'], { idempotent: true });
    await new Promise((resolve) => setTimeout(resolve, 20));
    await client.close();
    await assert.rejects(waiting, { errno: Errno.ENOTCONN });
    await assert.rejects(client.call('echo', [1], { idempotent: true }), {
      errno: Errno.ENOTCONN,
      message: /closed/,
    });
  } finally {
    await server.close();
  }
});

test('a client restarted under the same name is not answered with its predecessor’s results', async () => {
  const service = new TestService();
  const server = await startTestServer(service);
  try {
    for (let instance = 1; instance <= 2; instance++) {
      const client = testClient(server.address, { clientName: 'host-a' });
      try {
        // Both instances number this call 1; the second must still be applied.
        assert.deepEqual(await client.call('bump', [instance], { idempotent: false }), {
          bumps: instance,
          tag: instance,
        });
      } finally {
        await client.close();
      }
    }
    assert.equal(service.bumps, 2);
  } finally {
    await server.close();
  }
});

test('an outcome still running is kept even when a later request acknowledges it', async () => {
  const cache = new ReplayCache();
  let finish = (): void => undefined;
  const slow = cache.execute('client', 1, 1, () => new Promise<void>((resolve) => (finish = resolve)), null);
  await cache.execute('client', 2, 2, () => Promise.resolve('quick'), null);
  cache.settled('client', 2);
  assert.equal(cache.size, 2, 'call 1 has not settled: its resend must still find it');
  finish();
  await slow;
  cache.settled('client', 1);
  await cache.execute('client', 3, 3, () => Promise.resolve('next'), null);
  assert.equal(cache.size, 1, 'calls 1 and 2 settled and were acknowledged');
});
