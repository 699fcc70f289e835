import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after } from 'node:test';
import { isFsError, type Ino } from '../../../src/common/index.js';
import { createTestSchema, type TestDatabase } from '../postgres-fixture.js';
import {
  formatVolume,
  openMetaService,
  type Caller,
  type Clock,
  type FormatSettings,
  type MetaService,
  type OpenMetaServiceOptions,
} from '../../../src/meta/index.js';

/** What an engine must provide to run the conformance suite: fresh, empty databases. */
export interface EngineFixture {
  name: string;
  /** A URL of a new, empty database (schema may or may not exist yet). */
  newUrl(): Promise<string>;
  /** Drops what newUrl created. */
  dropUrl(url: string): Promise<void>;
}

/**
 * SQLite volumes, each in a fresh directory under a temporary one of the calling test file's own
 * (`strata-LABEL-*`), removed after its tests. Call it at the top level of a test file.
 */
export function sqliteFixture(label: string): EngineFixture {
  const base = mkdtempSync(join(tmpdir(), `strata-${label}-`));
  after(() => rmSync(base, { recursive: true, force: true }));
  let volumes = 0;
  return {
    name: 'sqlite',
    newUrl: async () => {
      const dir = join(base, `v${++volumes}`);
      mkdirSync(dir);
      return `sqlite:${join(dir, 'meta.db')}`;
    },
    dropUrl: async (url) => rmSync(dirname(url.slice('sqlite:'.length)), { recursive: true, force: true }),
  };
}

/**
 * PostgreSQL volumes, each in a fresh schema of the test database (`PREFIX_*`), reached with a
 * pool of `poolSize` connections; dropped with their volume.
 */
export function postgresFixture(prefix: string, poolSize: number): EngineFixture {
  const schemas = new Map<string, TestDatabase>();
  return {
    name: 'postgres',
    async newUrl() {
      const db = await createTestSchema(prefix);
      const url = `${db.url}&pool_size=${poolSize}`;
      schemas.set(url, db);
      return url;
    },
    async dropUrl(url) {
      await schemas.get(url)?.drop();
      schemas.delete(url);
    },
  };
}

/** A clock the test moves by hand. Starts at a fixed instant so histories are reproducible. */
export class ManualClock implements Clock {
  constructor(public us = 1_800_000_000_000_000) {}
  nowUs(): number {
    return this.us;
  }
  advanceMs(ms: number): void {
    this.us += Math.round(ms * 1000);
  }
}

export const root: Caller = { uid: 0, gid: 0, pid: 1 };
export const user = (uid: number, gid = uid, groups?: number[]): Caller => ({
  uid,
  gid,
  groups,
  pid: 100 + uid,
});
export const ROOT = 1 as Ino;

export interface Volume {
  svc: MetaService;
  clock: ManualClock;
  url: string;
  /** Closes and opens the service again over the same database (a restart). */
  reopen(): Promise<MetaService>;
}

export async function withVolume(
  fx: EngineFixture,
  fn: (v: Volume) => Promise<void>,
  settings: Partial<FormatSettings> = {},
  options: Partial<OpenMetaServiceOptions> = {},
): Promise<void> {
  const url = await fx.newUrl();
  const clock = new ManualClock();
  await formatVolume(url, { name: 'conformance', ...settings }, { clock, rootMode: 0o777 });
  const open = () => openMetaService({ engineUrl: url, clock, background: false, ...options });
  const v: Volume = {
    svc: await open(),
    clock,
    url,
    reopen: async () => {
      await v.svc.close();
      v.svc = await open();
      return v.svc;
    },
  };
  try {
    await fn(v);
  } finally {
    await v.svc.close();
    await fx.dropUrl(url);
  }
}

/** Asserts that `promise` fails with FsError `code` (e.g. "ENOENT"). */
export async function rejectsWith(promise: Promise<unknown>, code: string): Promise<void> {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(isFsError(error), `expected FsError ${code}, got ${String(error)}`);
    assert.equal(error.code, code, `expected ${code}, got ${error.code}: ${error.message}`);
    return true;
  });
}

/** Names in a directory (without "." and ".."), sorted. */
export async function names(svc: MetaService, dir: Ino, asOfUs?: number): Promise<string[]> {
  const out: string[] = [];
  let cursor = 0;
  for (;;) {
    const page = await svc.readdir(
      root,
      dir,
      cursor,
      100,
      false,
      asOfUs === undefined ? undefined : { asOfUs },
    );
    if (page.length === 0) break;
    for (const e of page) if (e.name !== '.' && e.name !== '..') out.push(e.name);
    cursor = page[page.length - 1].cursor;
  }
  return out.sort();
}

export const file = (svc: MetaService, parent: Ino, name: string, caller = root, mode = 0o644) =>
  svc.mknod(caller, parent, name, 0o100000 | mode, 0, 0);
export const dir = (svc: MetaService, parent: Ino, name: string, caller = root, mode = 0o755) =>
  svc.mkdir(caller, parent, name, mode, 0);
