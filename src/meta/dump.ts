import { createInterface } from 'node:readline';
import type { Readable, Writable } from 'node:stream';
import { ROOT_INO, asIno, asSliceId, fsError, type Ino, type SliceRef } from '../common/index.js';
import { alignedBytes, fileCoveredBytes } from './allocation.js';
import { S_IFDIR, S_IFMT, isReg } from './attrs.js';
import type { DentryRow, Engine, InodeRow, ReadTx, WriteTx } from './engine.js';
import { COUNTER_INODES, COUNTER_USED_BYTES } from './namespace.js';
import {
  COUNTER_INO_HI,
  COUNTER_RECLAIM_FLOOR,
  COUNTER_SLICE_HI,
  SETTING_SECRET,
  SETTING_VOLUME,
} from './volume-keys.js';

/**
 * `strata meta dump` / `strata meta load`: a volume's current namespace as JSON lines, engine
 * independent, so a volume moves between SQLite and PostgreSQL. Streams both ways (memory holds
 * the directory queue and the set of inode numbers seen, not the tree).
 *
 * What moves: settings (volume, secret: the dump is as sensitive as the database), id and usage
 * counters, every inode reachable from the root with its xattrs and chunk slice maps, every
 * directory entry, and the log of deleted slices awaiting GC. Inode numbers, generations and
 * slice ids are kept, so the data objects in the store stay valid without copying.
 * What does not: history (time travel starts again at the load), sessions, locks and open
 * files (take the dump with the volume unmounted), unlinked-but-open inodes.
 *
 * A file's allocated bytes (InodeRow.allocatedBytes) go with its row; a dump taken before they
 * existed has none, and the load computes them from the chunks. The load sets the used-bytes
 * counter to the sum of what it loaded (dumps of that time counted sizes there).
 *
 * Format, one JSON object per line, in this order:
 *   {"t":"header","format":"stratafs-meta-dump","version":1,"source":...}
 *   {"t":"setting","key":...,"value":...}          (each setting)
 *   {"t":"counter","name":...,"value":...}         (each counter)
 *   {"t":"inode","row":{InodeRow},"xattrs":[[name,base64]],"chunks":[[index,[SliceRef]]]}
 *   {"t":"dentry","parent":...,"name":...,"ino":...,"type":...}
 *   {"t":"deleted","id":...,"sizeBytes":...}
 *   {"t":"end","inodes":N,"dentries":M}            (a dump without it is truncated)
 */

export const DUMP_FORMAT = 'stratafs-meta-dump';
export const DUMP_VERSION = 1;

const SETTINGS = [SETTING_VOLUME, SETTING_SECRET];
// The reclaim floor goes along: a mount that was away may still try to commit slices below it.
const COUNTERS = [
  COUNTER_INO_HI,
  COUNTER_SLICE_HI,
  COUNTER_RECLAIM_FLOOR,
  COUNTER_INODES,
  COUNTER_USED_BYTES,
];
const LIST_PAGE = 1000;
const MAX_CHUNK_INDEX = 2 ** 31 - 1;
/** Records per write transaction on load: big enough to amortize commits, small enough to retry. */
const LOAD_BATCH_RECORDS = 256;
const PROGRESS_EVERY_RECORDS = 1000;
const MAX_DELETED_SLICES = 100_000_000;

export interface DumpProgress {
  inodes: number;
  dentries: number;
  /** Lines written (dump) or read (load). */
  records: number;
}

export interface DumpOptions {
  onProgress?: (progress: DumpProgress) => void;
}

type Record =
  | { t: 'header'; format: string; version: number; source: string }
  | { t: 'setting'; key: string; value: string }
  | { t: 'counter'; name: string; value: number }
  | { t: 'inode'; row: InodeRow; xattrs: Array<[string, string]>; chunks: Array<[number, SliceRef[]]> }
  | { t: 'dentry'; parent: number; name: string; ino: number; type: number }
  | { t: 'deleted'; id: number; sizeBytes: number }
  | { t: 'end'; inodes: number; dentries: number };

async function writeLine(out: Writable, record: Record): Promise<void> {
  if (!out.write(JSON.stringify(record) + '\n')) {
    await new Promise<void>((resolve, reject) => {
      const onError = (error: Error) => reject(error);
      out.once('error', onError);
      out.once('drain', () => {
        out.off('error', onError);
        resolve();
      });
    });
  }
}

async function inodeRecord(tx: ReadTx, row: InodeRow): Promise<Record> {
  const xattrs: Array<[string, string]> = [];
  for (const name of await tx.listXattrs(row.ino)) {
    const value = await tx.getXattr(row.ino, name);
    if (value !== undefined) xattrs.push([name, value.toString('base64')]);
  }
  const chunks: Array<[number, SliceRef[]]> = [];
  for (const index of await tx.listChunkIndexes(row.ino, 0, MAX_CHUNK_INDEX)) {
    chunks.push([index, await tx.getChunk(row.ino, index)]);
  }
  return { t: 'inode', row, xattrs, chunks };
}

/** Writes the volume held by `engine` to `out` as JSON lines, from one consistent snapshot. */
export async function dumpMeta(
  engine: Engine,
  out: Writable,
  options: DumpOptions = {},
): Promise<DumpProgress> {
  const progress: DumpProgress = { inodes: 0, dentries: 0, records: 0 };
  const emit = async (record: Record) => {
    await writeLine(out, record);
    if (++progress.records % PROGRESS_EVERY_RECORDS === 0) options.onProgress?.({ ...progress });
  };
  await engine.read(
    async (tx) => {
      if ((await tx.getSetting(SETTING_VOLUME)) === undefined) {
        throw fsError.ENOENT(`no volume in ${engine.displayUrl} to dump; run "strata format" first`);
      }
      await emit({ t: 'header', format: DUMP_FORMAT, version: DUMP_VERSION, source: engine.displayUrl });
      for (const key of SETTINGS) {
        const value = await tx.getSetting(key);
        if (value !== undefined) await emit({ t: 'setting', key, value });
      }
      for (const name of COUNTERS) await emit({ t: 'counter', name, value: await tx.getCounter(name) });

      const root = await tx.getInode(ROOT_INO);
      if (!root) throw fsError.EIO(`volume in ${engine.displayUrl} has no root directory; run "strata fsck"`);
      const seen = new Set<number>([ROOT_INO]);
      await emit(await inodeRecord(tx, root));
      progress.inodes++;
      const dirs: Ino[] = [ROOT_INO];
      while (dirs.length > 0) {
        const dir = dirs.pop()!;
        let cursor = 0;
        for (;;) {
          const page: DentryRow[] = await tx.listDir(dir, cursor, LIST_PAGE);
          for (const entry of page) {
            if (!seen.has(entry.ino)) {
              const row = await tx.getInode(entry.ino);
              if (!row) {
                throw fsError.EIO(
                  `entry "${entry.name}" in directory ${dir} points at missing inode ${entry.ino}; run "strata fsck" before dumping`,
                );
              }
              seen.add(entry.ino);
              await emit(await inodeRecord(tx, row));
              progress.inodes++;
              if ((row.mode & S_IFMT) === S_IFDIR) dirs.push(row.ino);
            }
            await emit({ t: 'dentry', parent: dir, name: entry.name, ino: entry.ino, type: entry.type });
            progress.dentries++;
          }
          if (page.length < LIST_PAGE) break;
          cursor = page[page.length - 1].cursor;
        }
      }
      // No cursor to page with: these rows are small and GC keeps their number down.
      for (const d of await tx.listDeletedSlices(Number.MAX_SAFE_INTEGER, MAX_DELETED_SLICES)) {
        await emit({ t: 'deleted', id: d.id, sizeBytes: d.sliceSizeBytes });
      }
      await emit({ t: 'end', inodes: progress.inodes, dentries: progress.dentries });
    },
    { long: true },
  );
  options.onProgress?.({ ...progress });
  return progress;
}

function parseRecord(line: string, lineNumber: number): Record {
  try {
    return JSON.parse(line) as Record;
  } catch (error) {
    throw fsError.EINVAL(
      `dump line ${lineNumber} is not JSON (${String(error)}); is this a strata meta dump?`,
    );
  }
}

/** What the load adds up as it goes: the used-bytes counter it sets at the end. */
interface LoadTotals {
  usedBytes: number;
}

/** The row's allocated bytes, from its chunks when the dump predates them. */
function allocatedBytesOf(record: Extract<Record, { t: 'inode' }>): number {
  const stored = (record.row as Partial<InodeRow>).allocatedBytes;
  if (typeof stored === 'number') return stored;
  return isReg(record.row.mode) ? fileCoveredBytes(record.chunks) : 0;
}

async function applyRecord(tx: WriteTx, record: Record, totals: LoadTotals): Promise<void> {
  switch (record.t) {
    case 'setting':
      await tx.putSetting(record.key, record.value);
      return;
    case 'counter':
      // Set from the files loaded, at the end.
      if (record.name === COUNTER_USED_BYTES) return;
      await tx.addCounter(record.name, record.value - (await tx.getCounter(record.name)));
      return;
    case 'inode': {
      const row: InodeRow = {
        ...record.row,
        ino: asIno(record.row.ino),
        parent: asIno(record.row.parent),
        allocatedBytes: allocatedBytesOf(record),
      };
      if (isReg(row.mode)) totals.usedBytes += alignedBytes(row.allocatedBytes);
      await tx.putInode(row);
      for (const [name, value] of record.xattrs)
        await tx.putXattr(row.ino, name, Buffer.from(value, 'base64'));
      for (const [index, slices] of record.chunks) {
        const refs = slices.map((s) => ({ ...s, id: asSliceId(s.id) }));
        await tx.putChunk(row.ino, index, refs);
        // One reference per occurrence in a chunk list, as the service counts them.
        for (const s of refs) if (s.id !== 0) await tx.addSliceRefs(s.id, s.sliceSizeBytes, 1);
      }
      return;
    }
    case 'dentry':
      await tx.putDentry(asIno(record.parent), record.name, asIno(record.ino), record.type);
      return;
    case 'deleted':
      await tx.recordDeletedSlice(asSliceId(record.id), record.sizeBytes);
      return;
    default:
      throw fsError.EINVAL(`unexpected dump record type "${(record as { t: string }).t}"`);
  }
}

/**
 * Loads a dump into `engine`, which must hold no volume (format nothing first; a fresh
 * database or file). Applies records in batches of write transactions; a dump without its end
 * line is rejected after loading what it had, with a message saying so.
 */
export async function loadMeta(
  engine: Engine,
  input: Readable,
  options: DumpOptions = {},
): Promise<DumpProgress> {
  const existing = await engine.read((tx) => tx.getSetting(SETTING_VOLUME));
  if (existing !== undefined) {
    throw fsError.EEXIST(`${engine.displayUrl} already holds a volume; load into an empty database`);
  }
  const progress: DumpProgress = { inodes: 0, dentries: 0, records: 0 };
  const totals: LoadTotals = { usedBytes: 0 };
  let batch: Record[] = [];
  const flush = async () => {
    if (batch.length === 0) return;
    const records = batch;
    batch = [];
    // A retried transaction must not count its inodes twice.
    const before = totals.usedBytes;
    await engine.write(async (tx) => {
      totals.usedBytes = before;
      for (const record of records) await applyRecord(tx, record, totals);
    });
    options.onProgress?.({ ...progress });
  };
  let header = false;
  let end: Extract<Record, { t: 'end' }> | undefined;
  const lines = createInterface({ input, crlfDelay: Infinity });
  for await (const line of lines) {
    if (line.length === 0) continue;
    const record = parseRecord(line, progress.records + 1);
    progress.records++;
    if (!header) {
      if (record.t !== 'header' || record.format !== DUMP_FORMAT) {
        throw fsError.EINVAL('input does not start with a strata meta dump header');
      }
      if (record.version !== DUMP_VERSION) {
        throw fsError.EINVAL(
          `dump format version ${record.version} is not supported (this build reads ${DUMP_VERSION})`,
        );
      }
      header = true;
      continue;
    }
    if (end) throw fsError.EINVAL(`dump has data after its end line (line ${progress.records})`);
    if (record.t === 'end') {
      end = record;
      continue;
    }
    if (record.t === 'inode') progress.inodes++;
    if (record.t === 'dentry') progress.dentries++;
    batch.push(record);
    if (batch.length >= LOAD_BATCH_RECORDS) await flush();
  }
  await flush();
  if (!header) throw fsError.EINVAL('empty input: no strata meta dump header');
  await engine.write(async (tx) =>
    tx.addCounter(COUNTER_USED_BYTES, totals.usedBytes - (await tx.getCounter(COUNTER_USED_BYTES))),
  );
  if (!end)
    throw fsError.EINVAL(`dump is truncated (no end line after ${progress.records} lines); take it again`);
  if (end.inodes !== progress.inodes || end.dentries !== progress.dentries) {
    throw fsError.EINVAL(
      `dump end line promises ${end.inodes} inodes / ${end.dentries} entries but ${progress.inodes} / ${progress.dentries} were read`,
    );
  }
  return progress;
}
