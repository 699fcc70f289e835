import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ClientConnection } from '../../src/rpc/client-connection.js';
import { parseRpcAddress } from '../../src/rpc/index.js';
import { SECRET, startTestServer, testClient, TestService } from './helpers.js';

/** Resolves with the first push `client` hears, or null when none came within `waitMs`. */
function nextPush(pushes: [string, unknown][], waitMs: number): Promise<[string, unknown] | null> {
  const startMs = Date.now();
  return new Promise((resolve) => {
    const poll = (): void => {
      if (pushes.length > 0) resolve(pushes.shift()!);
      else if (Date.now() - startMs > waitMs) resolve(null);
      else setTimeout(poll, 5);
    };
    poll();
  });
}

test('a push reaches each client that asked once, not the client it leaves out, never one that did not ask or speaks version 1', async () => {
  const server = await startTestServer(new TestService());
  const heard = {
    two: [] as [string, unknown][],
    other: [] as [string, unknown][],
    old: [] as [string, unknown][],
  };
  const twoConnections = testClient(server.address, {
    connections: 2,
    onPush: (topic, value) => heard.two.push([topic, value]),
  });
  const other = testClient(server.address, { onPush: (topic, value) => heard.other.push([topic, value]) });
  const old = testClient(server.address, {
    protocolVersion: 1,
    onPush: (topic, value) => heard.old.push([topic, value]),
  });
  // A connection that did not ask for pushes (no onPush) gets none.
  const silent = await ClientConnection.open({
    address: parseRpcAddress(server.address),
    secret: SECRET,
    clientId: 'silent',
    connectTimeoutMs: 2_000,
    maxFrameBytes: 1 << 20,
  });
  const heardBySilent: unknown[] = [];
  silent.onPush = (topic) => heardBySilent.push(topic);
  try {
    for (const client of [twoConnections, other, old]) await client.call('echo', [1], { idempotent: true });
    // More calls than one connection carries make the client open its second connection.
    const burst = Array.from({ length: 600 }, (_, i) =>
      twoConnections.call('echo', [i], { idempotent: true }),
    );
    await Promise.all(burst);
    assert.equal(twoConnections.connectedCount, 2, 'both connections are up before pushing');

    server.push('news', { n: 1 });
    assert.deepEqual(await nextPush(heard.two, 2_000), ['news', { n: 1 }]);
    assert.deepEqual(await nextPush(heard.other, 2_000), ['news', { n: 1 }]);
    server.push('news', { n: 2 }, other.clientId);
    assert.deepEqual(await nextPush(heard.two, 2_000), ['news', { n: 2 }]);
    // Nothing else arrives: no duplicate over the second connection, nothing for the excluded one.
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.deepEqual(heard.two, []);
    assert.deepEqual(heard.other, []);
    // The version 1 client is served but never pushed to.
    assert.equal(await old.call('echo', ['still served'], { idempotent: true }), 'still served');
    assert.deepEqual(heard.old, []);
    assert.deepEqual(heardBySilent, []);
  } finally {
    silent.close();
    for (const client of [twoConnections, other, old]) await client.close();
    await server.close();
  }
});

test('a client given two servers moves to the second when the first goes away, and reports the gap', async () => {
  const first = await startTestServer(new TestService());
  const secondService = new TestService();
  const second = await startTestServer(secondService);
  let gaps = 0;
  const client = testClient(`${first.address},${second.address}`, { onPushGap: () => gaps++ });
  try {
    assert.equal(await client.call('echo', ['one'], { idempotent: true }), 'one');
    assert.equal(secondService.calls, 0, 'the first server of the list is used first');
    await first.close();
    // Calls in flight and new ones go to the second server without an error.
    const results = await Promise.all([
      client.call('bump', ['a'], { idempotent: false }),
      client.call('echo', ['two'], { idempotent: true }),
    ]);
    assert.deepEqual(results, [{ bumps: 1, tag: 'a' }, 'two']);
    assert.equal(client.currentAddress, second.address);
    assert.ok(client.failovers >= 1);
    assert.ok(gaps >= 2, 'the lost connection and the new one each report a gap in pushes');
  } finally {
    await client.close();
    await first.close();
    await second.close();
  }
});

test('a list with an empty address is refused with an example', () => {
  assert.throws(() => testClient('127.0.0.1:1,,127.0.0.1:2'), /separate addresses with single commas/);
});
