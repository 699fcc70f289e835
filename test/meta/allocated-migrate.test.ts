import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { after, describe, it } from 'node:test';
import BetterSqlite3 from 'better-sqlite3';
import pg from 'pg';
import { asSliceId, type Ino, type SliceRef } from '../../src/common/index.js';
import {
  FALLOC_FL_KEEP_SIZE,
  FALLOC_FL_PUNCH_HOLE,
  coveredBytes,
  dumpMeta,
  encodeSlices,
  formatVolume,
  loadMeta,
  openEngine,
  openMetaService,
  type MetaService,
} from '../../src/meta/index.js';
import { SCHEMA_VERSION } from '../../src/meta/engines/sqlite/schema.js';
import { ManualClock, ROOT, root } from './conformance/fixture.js';
import { PG_SKIP_REASON, createTestSchema } from './postgres-fixture.js';

/**
 * Volumes made before allocated bytes (SQLite schema 5, PostgreSQL migration 7) get each file's
 * allocated bytes computed from its chunks when opened, history images included (as-of getattr
 * answers what the file had then), and the used-bytes counter recomputed from them; a dump taken
 * before them loads with them computed.
 */

const CHUNK = 1024 * 1024;
const slice = (id: number, chunkOffsetBytes: number, lengthBytes: number): SliceRef => ({
  id: asSliceId(id),
  sliceSizeBytes: lengthBytes,
  chunkOffsetBytes,
  sliceOffsetBytes: 0,
  lengthBytes,
  blockSizeBytes: 65536,
});

interface Expected {
  files: Map<Ino, number>;
  /** Allocated bytes of `sparse` as of `pastUs`. */
  pastUs: number;
  pastAllocated: number;
  sparse: Ino;
  usedBytes: number;
}

/** Files with overlays, holes, a punched range, data in several chunks and a hard link. */
async function populate(svc: MetaService, clock: ManualClock): Promise<Expected> {
  const commit = (ino: Ino, chunkIndex: number, s: SliceRef) =>
    svc.commitWrites(
      root,
      ino,
      [{ chunkIndex, slice: s }],
      chunkIndex * CHUNK + s.chunkOffsetBytes + s.lengthBytes,
      {
        sec: 1,
        nsec: 0,
      },
    );
  const sparse = (await svc.mknod(root, ROOT, 'sparse', 0o100644, 0, 0)).ino;
  await commit(sparse, 0, slice(1, 0, 10_000));
  await commit(sparse, 0, slice(2, 5_000, 10_000));
  await commit(sparse, 3, slice(3, 100, 1));
  clock.advanceMs(1000);
  const pastUs = clock.nowUs();
  clock.advanceMs(1000);
  await svc.fallocate(root, sparse, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 1_000, 2_000);
  const grown = (await svc.mknod(root, ROOT, 'grown', 0o100644, 0, 0)).ino;
  await commit(grown, 1, slice(4, 0, CHUNK));
  await svc.setattr(root, grown, { sizeBytes: 100 * CHUNK });
  await svc.link(root, grown, ROOT, 'grown-link');
  const empty = (await svc.mknod(root, ROOT, 'empty', 0o100644, 0, 0)).ino;
  await svc.setattr(root, empty, { sizeBytes: 5 * CHUNK });
  const dir = (await svc.mkdir(root, ROOT, 'dir', 0o755, 0)).ino;
  const files = new Map<Ino, number>([
    [sparse, 15_000 - 2_000 + 1],
    [grown, CHUNK],
    [empty, 0],
    [dir, 0],
  ]);
  for (const [ino, bytes] of files)
    assert.equal((await svc.getattr(ino)).allocatedBytes, bytes, `inode ${ino}`);
  const usedBytes = 16_384 + CHUNK;
  assert.equal((await svc.statfs()).usedBytes, usedBytes);
  return { files, pastUs, pastAllocated: 15_001, sparse, usedBytes };
}

async function check(svc: MetaService, expected: Expected): Promise<void> {
  for (const [ino, bytes] of expected.files) {
    assert.equal((await svc.getattr(ino)).allocatedBytes, bytes, `inode ${ino}`);
  }
  assert.equal(
    (await svc.getattr(expected.sparse, { asOfUs: expected.pastUs })).allocatedBytes,
    expected.pastAllocated,
    'as of before the punch',
  );
  assert.equal((await svc.statfs()).usedBytes, expected.usedBytes);
}

describe('allocated bytes: volumes and dumps from before them', () => {
  const base = mkdtempSync(join(tmpdir(), 'strata-allocated-migrate-'));
  after(() => rmSync(base, { recursive: true, force: true }));

  it('SQLite schema 5 gets inode.alloc computed from the chunks, history included, and used bytes from them', async () => {
    const path = join(base, 'meta.db');
    const url = `sqlite:${path}`;
    const clock = new ManualClock();
    await formatVolume(url, { name: 'old' }, { clock });
    let svc = await openMetaService({ engineUrl: url, clock, background: false });
    let expected: Expected;
    try {
      expected = await populate(svc, clock);
    } finally {
      await svc.close();
    }
    // Back to schema 5: no alloc columns, used bytes counted from sizes as then.
    const db = new BetterSqlite3(path);
    db.exec(`ALTER TABLE inode DROP COLUMN alloc; ALTER TABLE inode_hist DROP COLUMN alloc;
      UPDATE counter SET value = 123456789 WHERE name = 'used_bytes';`);
    db.pragma('user_version = 5');
    db.close();
    svc = await openMetaService({ engineUrl: url, clock, background: false });
    try {
      await check(svc, expected);
    } finally {
      await svc.close();
    }
    const after = new BetterSqlite3(path, { readonly: true });
    try {
      assert.equal(after.pragma('user_version', { simple: true }), SCHEMA_VERSION);
    } finally {
      after.close();
    }
  });

  it(
    'PostgreSQL migration 8 computes inode.alloc from the chunks, history included, and used bytes from them',
    { skip: PG_SKIP_REASON },
    async () => {
      const schema = await createTestSchema('strata_alloc');
      try {
        const clock = new ManualClock();
        await formatVolume(schema.url, { name: 'old' }, { clock });
        let svc = await openMetaService({ engineUrl: schema.url, clock, background: false });
        let expected: Expected;
        try {
          expected = await populate(svc, clock);
        } finally {
          await svc.close();
        }
        const client = new pg.Client({ connectionString: schema.url });
        await client.connect();
        try {
          await client.query(`ALTER TABLE inode DROP COLUMN alloc; ALTER TABLE inode_hist DROP COLUMN alloc;
            DROP FUNCTION strata_apply2; DROP FUNCTION strata_covered_bytes;
            DELETE FROM strata_migrations WHERE version = 8;
            INSERT INTO counter_shard (name, shard, value) VALUES ('used_bytes', 7, 123456789)
              ON CONFLICT (name, shard) DO UPDATE SET value = 123456789;`);
        } finally {
          await client.end();
        }
        svc = await openMetaService({ engineUrl: schema.url, clock, background: false });
        try {
          await check(svc, expected);
        } finally {
          await svc.close();
        }
      } finally {
        await schema.drop();
      }
    },
  );

  it(
    'PostgreSQL strata_covered_bytes (the migration) agrees with coveredBytes on random slice lists',
    { skip: PG_SKIP_REASON },
    async () => {
      const schema = await createTestSchema('strata_alloc');
      try {
        await formatVolume(schema.url, { name: 'fn' });
        const client = new pg.Client({ connectionString: schema.url });
        await client.connect();
        try {
          let state = 12345;
          const next = () => {
            state = (Math.imul(state, 1103515245) + 12345) >>> 0;
            return state / 4294967296;
          };
          const chunkBytes = 64 * CHUNK; // offsets up to 2^26: every byte of the u32 fields matters
          for (let round = 0; round < 200; round++) {
            const slices: SliceRef[] = [];
            const count = Math.floor(next() * 12);
            for (let i = 0; i < count; i++) {
              const from = Math.floor(next() * chunkBytes);
              const length = 1 + Math.floor(next() * (chunkBytes - from));
              // Ids past 2^32 must not read as holes: the high word counts too.
              const id = next() < 0.3 ? 0 : next() < 0.5 ? 2 ** 32 : i + 1;
              slices.push({ ...slice(1, from, length), id: asSliceId(id) });
            }
            const { rows } = await client.query<{ bytes: string }>(
              'SELECT strata_covered_bytes($1::bytea) AS bytes',
              [encodeSlices(slices)],
            );
            assert.equal(
              Number(rows[0].bytes),
              coveredBytes(slices),
              `round ${round}: ${JSON.stringify(slices)}`,
            );
          }
        } finally {
          await client.end();
        }
      } finally {
        await schema.drop();
      }
    },
  );

  it('a dump without allocated bytes loads with them computed from the chunks', async () => {
    const from = `sqlite:${join(base, 'dump-from.db')}`;
    const to = `sqlite:${join(base, 'dump-to.db')}`;
    const clock = new ManualClock();
    await formatVolume(from, { name: 'moved' }, { clock });
    const source = await openMetaService({ engineUrl: from, clock, background: false });
    let expected: Expected;
    const chunks: Buffer[] = [];
    try {
      expected = await populate(source, clock);
      const out = new PassThrough();
      out.on('data', (chunk: Buffer) => chunks.push(chunk));
      await dumpMeta(source.engine, out);
      out.end();
    } finally {
      await source.close();
    }
    // As a build before allocated bytes wrote it: no field, used bytes counted from sizes.
    const old = Buffer.concat(chunks)
      .toString('utf8')
      .split('\n')
      .filter((line) => line.length > 0)
      .map((line) => {
        const record = JSON.parse(line) as {
          t: string;
          name?: string;
          value?: number;
          row?: Record<string, unknown>;
        };
        if (record.t === 'inode') delete record.row!.allocatedBytes;
        if (record.t === 'counter' && record.name === 'used_bytes') record.value = 123456789;
        return JSON.stringify(record) + '\n';
      })
      .join('');
    assert.ok(!old.includes('allocatedBytes'));
    const target = await openEngine(to, { clock });
    try {
      await loadMeta(target, Readable.from([old]));
    } finally {
      await target.close();
    }
    const svc = await openMetaService({ engineUrl: to, clock, background: false });
    try {
      for (const [ino, bytes] of expected.files) {
        assert.equal((await svc.getattr(ino)).allocatedBytes, bytes, `inode ${ino}`);
      }
      assert.equal((await svc.statfs()).usedBytes, expected.usedBytes);
    } finally {
      await svc.close();
    }
  });
});
