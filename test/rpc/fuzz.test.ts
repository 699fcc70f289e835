import { test } from 'node:test';
import assert from 'node:assert/strict';
import { encodeFrame } from '../../src/rpc/codec.js';
import type { RpcServer } from '../../src/rpc/index.js';
import { RawClient } from './raw-client.js';
import { SECRET, TestService, seededRandom, startTestServer, testClient } from './helpers.js';

const FRAMES = Number(process.env.STRATA_FUZZ_FRAMES ?? 10_000);
const WORKERS = 4;

type Random = () => number;
const int = (random: Random, below: number): number => Math.floor(random() * below);

function randomBytes(random: Random, length: number): Buffer {
  const bytes = Buffer.allocUnsafe(length);
  for (let i = 0; i < length; i++) bytes[i] = int(random, 256);
  return bytes;
}

/** Any msgpack-encodable value, nested a little. */
function randomValue(random: Random, depth = 0): unknown {
  switch (int(random, depth > 2 ? 8 : 11)) {
    case 0:
      return int(random, 2 ** 32) - 2 ** 31;
    case 1:
      return random() * 1e12 - 5e11;
    case 2:
      return randomBytes(random, int(random, 12)).toString('latin1');
    case 3:
      return null;
    case 4:
      return undefined;
    case 5:
      return random() < 0.5;
    case 6:
      return randomBytes(random, int(random, 16));
    case 7:
      return [Number.MAX_SAFE_INTEGER, -0, Infinity, NaN][int(random, 4)];
    case 8:
      return Array.from({ length: int(random, 5) }, () => randomValue(random, depth + 1));
    case 9:
      return Object.fromEntries(
        Array.from({ length: int(random, 4) }, (_, i) => [`k${i}`, randomValue(random, depth + 1)]),
      );
    default:
      return new Map([
        [int(random, 2) ? int(random, 100) : `m${int(random, 100)}`, randomValue(random, depth + 1)],
      ]);
  }
}

const METHODS = ['echo', 'bump', 'fail', 'nope', ''];

function validRequest(random: Random, id: number): Buffer {
  return encodeFrame([6, id, METHODS[int(random, 3)], [randomValue(random)]]);
}

/** A frame whose framing is intact but whose content is wrong: the connection should survive it. */
function softFrame(random: Random, id: number): Buffer {
  switch (int(random, 4)) {
    case 0: // random values in argument positions
      return encodeFrame([
        6,
        id,
        METHODS[int(random, METHODS.length)],
        Array.from({ length: int(random, 4) }, () => randomValue(random)),
      ]);
    case 1: // arguments that are not an array, or a method that is not a string
      return encodeFrame([6, id, randomValue(random), randomValue(random)]);
    case 2: // sequence fields of the wrong types
      return encodeFrame([6, id, 'bump', [], randomValue(random), randomValue(random), randomValue(random)]);
    default:
      return validRequest(random, id);
  }
}

/** A frame that may leave the stream unusable: the server may close, but must not fall over. */
function hardFrame(random: Random, id: number): Buffer {
  switch (int(random, 5)) {
    case 0: {
      // random payload under a correct header
      const payload = randomBytes(random, int(random, 64));
      const header = Buffer.alloc(4);
      header.writeUInt32BE(payload.length);
      return Buffer.concat([header, payload]);
    }
    case 1: // random bytes, header included
      return randomBytes(random, 1 + int(random, 64));
    case 2: {
      // a valid frame cut short, its header rewritten to the shorter length
      const frame = Buffer.from(validRequest(random, id));
      const cut = 4 + int(random, frame.length - 4);
      const truncated = Buffer.from(frame.subarray(0, cut));
      truncated.writeUInt32BE(cut - 4);
      return truncated;
    }
    case 3: {
      // a valid frame with a few bits flipped, anywhere (the header too)
      const frame = Buffer.from(validRequest(random, id));
      for (let flips = 1 + int(random, 3); flips > 0; flips--)
        frame[int(random, frame.length)] ^= 1 << int(random, 8);
      return frame;
    }
    default: // a valid message of the wrong type (a second HELLO, a RESULT, a REJECT)
      return encodeFrame([[1, 2, 7, 8, 5, 99][int(random, 6)], id, randomValue(random)]);
  }
}

/** Sends bursts of fuzzed frames, each ending with a ping that must be answered unless the server closed. */
async function fuzzWorker(server: RpcServer, random: Random, quota: { left: number }): Promise<void> {
  while (quota.left > 0) {
    const preAuth = random() < 0.1;
    const client = preAuth
      ? await RawClient.connect(server.address)
      : await RawClient.authenticated(server.address, SECRET);
    try {
      let id = 1;
      while (!client.closed && quota.left > 0) {
        const soft = int(random, 8);
        for (let i = 0; i < soft && quota.left > 0; i++, quota.left--) client.write(softFrame(random, id++));
        let hard = preAuth;
        if (random() < 0.3 && quota.left > 0) {
          quota.left--;
          hard = true;
          const frame = hardFrame(random, id++);
          // Sometimes the stream ends in the middle of the frame.
          client.write(random() < 0.2 ? frame.subarray(0, int(random, frame.length)) : frame);
        }
        // Far from the fuzzed ids, so a bit flip in a fuzzed request id cannot forge a ping answer.
        const pingId = 0x7fff0000 + id++;
        client.write(encodeFrame([6, pingId, 'echo', ['ping']]));
        if (hard) {
          // The stream may now be out of step (the server waiting for the rest of a frame that
          // swallowed the ping): end our side; the server must answer what it can and close.
          client.socket.end();
          const reply = await client.replyTo(pingId, 15_000);
          if (reply !== null) assert.deepEqual(reply, [7, pingId, 'ping']);
          while (!client.closed) await client.next(15_000);
        } else {
          // Only soft frames: the connection must still serve the ping.
          const reply = await client.replyTo(pingId, 15_000);
          assert.deepEqual(
            reply,
            [7, pingId, 'ping'],
            `soft frames closed the connection: ${JSON.stringify(client.messages)}`,
          );
        }
      }
    } finally {
      client.close();
    }
  }
}

test(`${FRAMES} fuzzed frames leave the server healthy for a normal client`, async () => {
  const seed = Number(process.env.STRATA_TEST_SEED ?? Date.now() % 1_000_000_007);
  console.log(`fuzz seed ${seed} (rerun with STRATA_TEST_SEED=${seed})`);
  const service = new TestService();
  const server = await startTestServer(service, { handshakeTimeoutMs: 2_000, maxFrameBytes: 64 * 1024 });
  const bystander = testClient(server.address);
  try {
    assert.equal(await bystander.call('echo', ['before'], { idempotent: true }), 'before');
    const quota = { left: FRAMES };
    await Promise.all(
      Array.from({ length: WORKERS }, (_, i) => fuzzWorker(server, seededRandom(seed + i), quota)),
    );
    assert.equal(await bystander.call('echo', ['after'], { idempotent: true }), 'after');
    const bumps = service.bumps;
    assert.deepEqual(await bystander.call('bump', ['x'], { idempotent: false }), {
      bumps: bumps + 1,
      tag: 'x',
    });
    // Every fuzzing connection is gone; only the bystander's remains.
    for (let i = 0; i < 100 && server.connectionCount > 1; i++)
      await new Promise((resolve) => setTimeout(resolve, 20));
    assert.equal(server.connectionCount, 1);
  } finally {
    await bystander.close();
    await server.close();
  }
});
