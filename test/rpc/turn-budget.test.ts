import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MessageType, encodeFrame } from '../../src/rpc/codec.js';
import { startRpcServer, type RpcServer } from '../../src/rpc/index.js';
import { RawClient } from './raw-client.js';
import { SECRET } from './helpers.js';

const CALLS = 8;
const SPIN_MS = 3;

/**
 * A server whose `spin` calls each hold the thread SPIN_MS; the first one arms a timer, which
 * notes how many calls had started when the loop came round to it.
 */
async function spinningServer(turnBudgetMs: number): Promise<{
  server: RpcServer;
  started: number[];
  startedWhenTimerRan: () => number;
}> {
  const started: number[] = [];
  let atTimer = -1;
  const server = await startRpcServer({
    listen: '127.0.0.1:0',
    secret: SECRET,
    turnBudgetMs,
    handler: (method, args) => {
      if (started.length === 0) setTimeout(() => (atTimer = started.length), 0);
      started.push(Number(args[0]));
      const untilMs = performance.now() + SPIN_MS;
      while (performance.now() < untilMs); // the CPU work of a call
      return args[0];
    },
  });
  return { server, started, startedWhenTimerRan: () => atTimer };
}

/** Sends CALLS requests in one write (one socket read on the server) and collects the answers. */
async function callAllAtOnce(client: RawClient): Promise<unknown[]> {
  const frames = Array.from({ length: CALLS }, (_, i) =>
    encodeFrame([MessageType.REQUEST, i + 1, 'spin', [i]]),
  );
  client.write(Buffer.concat(frames));
  const answers: unknown[] = [];
  for (let i = 1; i <= CALLS; i++) answers.push(await client.replyTo(i));
  return answers;
}

test('calls read in one turn past the turn budget wait for a later turn, so timers run in between', async () => {
  const { server, started, startedWhenTimerRan } = await spinningServer(1);
  const client = await RawClient.authenticated(server.address, SECRET);
  try {
    const answers = await callAllAtOnce(client);
    assert.deepEqual(
      answers,
      Array.from({ length: CALLS }, (_, i) => [MessageType.RESULT, i + 1, i]),
    );
    assert.deepEqual(
      started,
      Array.from({ length: CALLS }, (_, i) => i),
      'calls start in the order sent',
    );
    const atTimer = startedWhenTimerRan();
    assert.ok(atTimer > 0 && atTimer < CALLS, `the timer ran after ${atTimer} of ${CALLS} calls had started`);
  } finally {
    client.socket.destroy();
    await server.close();
  }
});

test('with a budget longer than all calls together, one read runs every call before the timer', async () => {
  // The control for the test above: the calls really arrive in one read.
  const { server, started, startedWhenTimerRan } = await spinningServer(60_000);
  const client = await RawClient.authenticated(server.address, SECRET);
  try {
    await callAllAtOnce(client);
    assert.equal(started.length, CALLS);
    assert.equal(startedWhenTimerRan(), CALLS);
  } finally {
    client.socket.destroy();
    await server.close();
  }
});
