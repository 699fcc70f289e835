import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FsError, ROOT_INO } from '../../src/common/index.js';
import { formatVolume, openMetaService } from '../../src/meta/index.js';
import { META_METHODS, startMetaServer } from '../../src/meta/server/index.js';
import { connectMeta } from '../../src/meta/client/index.js';
import { RpcClient } from '../../src/rpc/index.js';
import { seededRandom } from '../rpc/helpers.js';
import { INVALID } from '../../src/meta/server/validate.js';

const CALLS = Number(process.env.STRATA_FUZZ_CALLS ?? 3_000);

/** Values that are valid for some parameter of some method, and values valid for none. */
const POOL: unknown[] = [
  1,
  2,
  3,
  0,
  -1,
  7,
  0o100644,
  0o40755,
  2 ** 53,
  1.5,
  NaN,
  'x',
  'y',
  '',
  'a'.repeat(300),
  'now',
  'read',
  'write',
  'unlock',
  'user.k',
  { uid: 0, gid: 0, pid: 1 },
  { uid: 1000, gid: 1000, groups: [1, 2], pid: 5 },
  { uid: -1, gid: 0, pid: 1 },
  { asOfUs: 0 },
  { asOfUs: 'yesterday' },
  { sec: 1, nsec: 5 },
  { sec: 1, nsec: 2e9 },
  {
    id: 1,
    sliceSizeBytes: 10,
    chunkOffsetBytes: 0,
    sliceOffsetBytes: 0,
    lengthBytes: 10,
    blockSizeBytes: 4096,
  },
  [
    {
      chunkIndex: 0,
      slice: {
        id: 1,
        sliceSizeBytes: 10,
        chunkOffsetBytes: 0,
        sliceOffsetBytes: 0,
        lengthBytes: 10,
        blockSizeBytes: 4096,
      },
    },
  ],
  { sessionId: 'nope', owner: '12' },
  { type: 'write', start: 0, end: 10, pid: 1 },
  { hostname: 'h', mountpoint: '/m', pid: 1, version: 'v' },
  { mode: 0o644, mtime: 'now', sizeBytes: 5 },
  Buffer.from('value'),
  true,
  false,
  null,
  undefined,
  [],
  {},
  [1, 2],
];

const pick = (random: () => number): unknown => POOL[Math.floor(random() * POOL.length)];

/** Mostly arguments that pass the server's checks (so the service itself is exercised), sometimes not. */
function argsFor(method: keyof typeof META_METHODS, random: () => number): unknown[] {
  const params = META_METHODS[method].params as [string, { parse(value: unknown): unknown }][];
  if (random() < 0.2) return Array.from({ length: Math.floor(random() * 8) }, () => pick(random));
  return params.map(([, parser]) => {
    for (let tries = 0; tries < 50; tries++) {
      const value = pick(random);
      if (parser.parse(value) !== INVALID) return value;
    }
    return pick(random);
  });
}

test(`${CALLS} calls with random arguments: each answered, none able to take the server down`, async () => {
  const seed = Number(process.env.STRATA_TEST_SEED ?? Date.now() % 1_000_000_007);
  console.log(`metadata fuzz seed ${seed}`);
  const random = seededRandom(seed);
  const dir = mkdtempSync(join(tmpdir(), 'strata-rpc-metafuzz-'));
  const engineUrl = `sqlite:${join(dir, 'meta.db')}`;
  await formatVolume(engineUrl, { name: 'fuzz' });
  const service = await openMetaService({ engineUrl, background: false });
  const internalErrors: string[] = [];
  const secret = await service.volumeSecret();
  const server = await startMetaServer({
    service,
    listen: join(dir, 'meta.sock'),
    secret,
    onEvent: (event) => {
      if (event.type === 'internal-error') internalErrors.push(`${event.method}: ${String(event.error)}`);
    },
  });
  const raw = new RpcClient({ address: server.address, secret, timeoutMs: 20_000 });
  try {
    const methods = Object.keys(META_METHODS);
    let answered = 0;
    let refused = 0;
    for (let batch = 0; batch < CALLS / 100; batch++) {
      await Promise.all(
        Array.from({ length: 100 }, async () => {
          const method = methods[Math.floor(random() * methods.length)] as keyof typeof META_METHODS;
          const args = argsFor(method, random);
          try {
            await raw.call(method, args, { idempotent: random() < 0.5 });
            answered++;
          } catch (error) {
            assert.ok(error instanceof FsError, `${method} failed with ${String(error)}`);
            refused++;
          }
        }),
      );
    }
    console.log(
      `${answered} calls succeeded, ${refused} refused with an errno, ${internalErrors.length} internal errors`,
    );
    for (const line of new Set(internalErrors)) console.log(`  internal error: ${line}`);
    assert.ok(answered > 0, 'some random calls should have been valid');
    // Input that passed the argument checks must get an errno, never an exception of the service.
    assert.deepEqual([...new Set(internalErrors)], [], 'internal errors');
    // A fresh, normal client is served as before.
    const client = await connectMeta({ address: server.address, secret });
    try {
      assert.equal((await client.getattr(ROOT_INO)).ino, ROOT_INO);
    } finally {
      await client.close();
    }
  } finally {
    await raw.close();
    await server.close();
    await service.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
