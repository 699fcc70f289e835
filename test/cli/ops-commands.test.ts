import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { ROOT_INO, asSliceId } from '../../src/common/index.js';
import { openMetaService, type Caller } from '../../src/meta/index.js';
import { repoRoot, strataEnv } from '../e2e/harness.js';
import { createTestSchema, PG_SKIP_REASON, type TestDatabase } from '../meta/postgres-fixture.js';

const caller: Caller = { uid: 0, gid: 0, pid: 1 };
const S_IFREG = 0o100000;

/** Runs `strata ARGS` with optional stdin, to completion. */
function strata(args: string[], input?: string): { status: number; stdout: string; stderr: string } {
  const result = spawnSync(process.execPath, [join(repoRoot(), 'bin', 'strata.js'), ...args], {
    env: strataEnv(),
    cwd: repoRoot(),
    encoding: 'utf8',
    timeout: 60_000,
    input,
  });
  return { status: result.status ?? -1, stdout: result.stdout, stderr: result.stderr };
}

function assertOk(result: { status: number; stdout: string; stderr: string }, what: string): void {
  assert.equal(
    result.status,
    0,
    `${what}: exit ${result.status}\nstdout: ${result.stdout}\nstderr: ${result.stderr}`,
  );
}

/** One line on stderr starting "strata: ", nothing on stdout. */
function assertOneLineError(args: string[], pattern: RegExp, exitCode: number): void {
  const result = strata(args);
  assert.equal(result.status, exitCode, `strata ${args.join(' ')} exit code; stderr: ${result.stderr}`);
  const lines = result.stderr.trim().split('\n');
  assert.equal(lines.length, 1, `one line, got: ${result.stderr}`);
  assert.match(lines[0], /^strata: /);
  assert.match(lines[0], pattern);
  assert.equal(result.stdout, '');
}

/** The dump without its header line, which names the source engine. */
function dumpBody(text: string): string[] {
  const lines = text.trimEnd().split('\n');
  assert.match(lines[0], /"t":"header"/);
  assert.match(lines[lines.length - 1], /"t":"end"/);
  return lines.slice(1);
}

let dir: string;
let counter = 0;

/** Formats a SQLite volume with `strata format` and fills it through the metadata service. */
async function populatedVolume(): Promise<{ engineUrl: string; dbPath: string; hardIno: number }> {
  const dbPath = join(dir, `v${++counter}.db`);
  const engineUrl = `sqlite:${dbPath}`;
  assertOk(
    strata(['format', '--engine', engineUrl, '--storage', `file:${join(dir, 'objects')}`, '--name', 'ops']),
    'strata format',
  );
  const service = await openMetaService({ engineUrl, background: false });
  try {
    const d1 = await service.mkdir(caller, ROOT_INO, 'd1', 0o755, 0o022);
    const d2 = await service.mkdir(caller, d1.ino, 'd2 with space', 0o700, 0);
    const f1 = await service.mknod(caller, ROOT_INO, 'f1', S_IFREG | 0o644, 0, 0o022);
    await service.mknod(caller, d2.ino, 'f2-é', S_IFREG | 0o600, 0, 0);
    await service.symlink(caller, d1.ino, 'link', '../f1');
    await service.link(caller, f1.ino, d2.ino, 'hard');
    await service.setxattr(caller, f1.ino, 'user.tag', Buffer.from([0, 1, 2, 255]), 0);
    return { engineUrl, dbPath, hardIno: f1.ino };
  } finally {
    await service.close();
  }
}

before(() => {
  dir = mkdtempSync('/tmp/strata-ops-test-');
});
after(() => {
  rmSync(dir, { recursive: true, force: true });
});

test('--help of fsck and meta migrate/dump/load, with exit code 0', () => {
  for (const command of [['fsck'], ['meta', 'migrate'], ['meta', 'dump'], ['meta', 'load']]) {
    const result = strata([...command, '--help']);
    assertOk(result, `${command.join(' ')} --help`);
    assert.match(result.stdout, new RegExp(`Usage: strata ${command.join(' ')}`));
    assert.match(result.stdout, /--engine <URL>/);
  }
  assert.match(strata(['fsck', '--help']).stdout, /--repair[\s\S]*Unmount every client/);
  const meta = strata(['meta', '--help']);
  assert.match(meta.stdout, /serve[\s\S]*migrate[\s\S]*dump[\s\S]*load/, 'one meta command holds all four');
});

test('a bad engine URL or a missing option is one line with exit code 2', () => {
  for (const command of [['fsck'], ['meta', 'migrate'], ['meta', 'dump'], ['meta', 'load']]) {
    assertOneLineError([...command, '--engine', 'mysql://x'], /invalid --engine "mysql:\/\/x"/, 2);
    assertOneLineError(command, /required option '--engine <URL>'/, 2);
  }
  assertOneLineError(
    ['fsck', '--engine', 'sqlite:/tmp/x.db', '--storage', 'not a url'],
    /invalid --storage "not a url"/,
    2,
  );
});

test('a SQLite engine file that does not exist is reported, not created', () => {
  const missing = join(dir, 'missing.db');
  assertOneLineError(
    ['fsck', '--engine', `sqlite:${missing}`],
    /no SQLite metadata file at .*missing\.db/,
    1,
  );
  assertOneLineError(['meta', 'dump', '--engine', `sqlite:${missing}`], /no SQLite metadata file/, 1);
  assert.equal(existsSync(missing), false);
});

test('an unreachable PostgreSQL is one line with exit code 1', () => {
  // Nothing listens on port 1: the connection is refused at once.
  const url = 'postgres://127.0.0.1:1/strata';
  assertOneLineError(['meta', 'migrate', '--engine', url, '--dry-run'], /ECONNREFUSED.*check --engine/, 1);
  for (const command of [['fsck'], ['meta', 'dump'], ['meta', 'load']]) {
    assertOneLineError([...command, '--engine', url], /cannot open PostgreSQL .*ECONNREFUSED/, 1);
  }
});

test('fsck of a freshly formatted volume and of a populated one is clean', async () => {
  const fresh = join(dir, 'fresh.db');
  assertOk(
    strata([
      'format',
      '--engine',
      `sqlite:${fresh}`,
      '--storage',
      `file:${join(dir, 'objects')}`,
      '--name',
      'f',
    ]),
    'format',
  );
  const clean = strata(['fsck', '--engine', `sqlite:${fresh}`]);
  assertOk(clean, 'fsck fresh');
  assert.match(clean.stdout, /1 inode\(s\), 0 entries/);
  assert.match(clean.stdout, /clean: no problems found/);

  const { engineUrl } = await populatedVolume();
  const populated = strata(['fsck', '--engine', engineUrl]);
  assertOk(populated, 'fsck populated');
  assert.match(populated.stdout, /6 inode\(s\), 6 entries/);
  assert.match(populated.stdout, /clean/);
});

test('fsck finds a planted bad link count and counter, --repair fixes them', async () => {
  const { engineUrl, dbPath, hardIno } = await populatedVolume();
  const db = new Database(dbPath);
  try {
    db.prepare('UPDATE inode SET nlink = 7 WHERE ino = ?').run(hardIno);
    db.prepare("UPDATE counter SET value = value + 3 WHERE name = 'inodes_used'").run();
  } finally {
    db.close();
  }

  const found = strata(['fsck', '--engine', engineUrl]);
  assert.equal(found.status, 1, found.stderr);
  assert.match(
    found.stdout,
    new RegExp(`\\[link-count\\] inode ${hardIno} has nlink 7 but 2 .*\\(repairable\\)`),
  );
  assert.match(found.stdout, /-> strata fsck --repair sets nlink to 2/);
  assert.match(found.stdout, /\[counter\] counter inodes_used is 9, .* 6 \(repairable\)/);
  assert.match(found.stdout, /2 problem\(s\): 0 repaired, 2 remain/);
  assert.match(found.stderr, /^strata: 2 problem\(s\) remain.*--repair/);

  const repaired = strata(['fsck', '--engine', engineUrl, '--repair']);
  assertOk(repaired, 'fsck --repair');
  assert.match(repaired.stdout, /2 problem\(s\): 2 repaired, 0 remain/);

  const after = strata(['fsck', '--engine', engineUrl]);
  assertOk(after, 'fsck after repair');
  assert.match(after.stdout, /clean/);
  const check = new Database(dbPath, { readonly: true });
  try {
    const row = check.prepare('SELECT nlink FROM inode WHERE ino = ?').get(hardIno) as { nlink: number };
    assert.equal(row.nlink, 2);
  } finally {
    check.close();
  }
});

test('fsck --repair refuses while a client session is registered', async () => {
  const { engineUrl, dbPath, hardIno } = await populatedVolume();
  const service = await openMetaService({ engineUrl, background: false });
  try {
    await service.openSession({ hostname: 'h', mountpoint: '/mnt/x', pid: 1, version: 'test' });
  } finally {
    await service.close();
  }
  const db = new Database(dbPath);
  try {
    db.prepare('UPDATE inode SET nlink = 3 WHERE ino = ?').run(hardIno);
  } finally {
    db.close();
  }
  const result = strata(['fsck', '--engine', engineUrl, '--repair']);
  assert.equal(result.status, 1, result.stderr);
  assert.match(
    result.stderr,
    /^strata: fsck --repair needs the volume unmounted, but 1 client session\(s\) are registered/,
  );
  assert.match(strata(['fsck', '--engine', engineUrl]).stdout, /has nlink 3 but 2/, 'nothing was changed');
});

test('fsck reports a block missing from the store as not repairable, exit 1 even with --repair', async () => {
  const { engineUrl } = await populatedVolume();
  const service = await openMetaService({ engineUrl, background: false });
  try {
    const file = await service.lookup(caller, ROOT_INO, 'f1');
    const id = await service.allocateSliceIds(1);
    const slice = {
      id: asSliceId(id),
      sliceSizeBytes: 100,
      chunkOffsetBytes: 0,
      sliceOffsetBytes: 0,
      lengthBytes: 100,
      blockSizeBytes: 4 * 1024 * 1024,
    };
    // Metadata that names a block nobody uploaded: what a lost object looks like.
    await service.commitWrites(caller, file.ino, [{ chunkIndex: 0, slice }], 100, {
      sec: 1_700_000_000,
      nsec: 0,
    });
  } finally {
    await service.close();
  }
  const result = strata(['fsck', '--engine', engineUrl, '--repair']);
  assert.equal(result.status, 1, result.stderr);
  assert.match(result.stdout, /1 block\(s\) checked/);
  assert.match(result.stdout, /\[missing-object\] block .* is missing from the object store \(needs you\)/);
  assert.match(result.stderr, /^strata: 1 problem\(s\) remain; follow the suggestions above\n$/);
});

test('dump of a SQLite volume loaded into a new SQLite volume dumps the same (file and pipe)', async () => {
  const { engineUrl } = await populatedVolume();
  const dumpFile = join(dir, 'a.jsonl');
  const dumped = strata(['meta', 'dump', '--engine', engineUrl, '--output', dumpFile]);
  assertOk(dumped, 'dump to file');
  assert.equal(dumped.stdout, '');
  assert.match(dumped.stderr, /^dumped 6 inode\(s\), 6 entries \(\d+ lines\) from .* to .*a\.jsonl\n$/);
  const original = readFileSync(dumpFile, 'utf8');

  const fromFile = `sqlite:${join(dir, 'loaded-file.db')}`;
  const loaded = strata(['meta', 'load', '--engine', fromFile, '--input', dumpFile]);
  assertOk(loaded, 'load from file');
  assert.match(loaded.stderr, /^loaded 6 inode\(s\), 6 entries/);
  const again = strata(['meta', 'dump', '--engine', fromFile]);
  assertOk(again, 'dump to stdout');
  assert.deepEqual(dumpBody(again.stdout), dumpBody(original));

  const fromPipe = `sqlite:${join(dir, 'loaded-pipe.db')}`;
  assertOk(strata(['meta', 'load', '--engine', fromPipe], original), 'load from stdin');
  assert.deepEqual(dumpBody(strata(['meta', 'dump', '--engine', fromPipe]).stdout), dumpBody(original));

  // Loading twice into the same engine is refused: it already holds a volume.
  const twice = strata(['meta', 'load', '--engine', fromFile, '--input', dumpFile]);
  assert.equal(twice.status, 1);
  assert.match(twice.stderr, /already holds a volume; load into an empty database/);
  // A truncated dump is refused.
  const truncated = strata(
    ['meta', 'load', '--engine', `sqlite:${join(dir, 'truncated.db')}`],
    original.split('\n').slice(0, 4).join('\n') + '\n',
  );
  assert.equal(truncated.status, 1);
  assert.match(truncated.stderr, /dump is truncated/);
  assert.equal(
    existsSync(join(dir, 'truncated.db')),
    false,
    'a failed load removes the SQLite file it created',
  );
});

test('meta migrate on SQLite says that SQLite migrates on open', async () => {
  const { engineUrl } = await populatedVolume();
  const result = strata(['meta', 'migrate', '--engine', engineUrl, '--dry-run']);
  assertOk(result, 'migrate sqlite');
  assert.match(result.stdout, /SQLite volumes migrate on open/);
});

describe('with PostgreSQL', { skip: PG_SKIP_REASON }, () => {
  let schema: TestDatabase;
  before(async () => {
    schema = await createTestSchema('strata_cli');
  });
  after(async () => {
    await schema?.drop();
  });

  test('meta migrate --dry-run lists the migrations, migrate applies them', () => {
    const plan = strata(['meta', 'migrate', '--engine', schema.url, '--dry-run']);
    assertOk(plan, 'migrate --dry-run');
    assert.match(plan.stdout, /schema version 0 \(empty/);
    assert.match(plan.stdout, /migration\(s\) to apply/);
    assert.match(plan.stdout, /dry run: nothing changed/);
    assert.match(strata(['meta', 'migrate', '--engine', schema.url, '--dry-run']).stdout, /to apply/);
    const applied = strata(['meta', 'migrate', '--engine', schema.url]);
    assertOk(applied, 'migrate');
    assert.match(applied.stdout, /schema up to date/);
    assert.match(
      strata(['meta', 'migrate', '--engine', schema.url, '--dry-run']).stdout,
      /up to date: nothing to apply/,
    );
  });

  test('SQLite dump loaded into PostgreSQL dumps back identical', async () => {
    const { engineUrl } = await populatedVolume();
    const original = strata(['meta', 'dump', '--engine', engineUrl]);
    assertOk(original, 'dump sqlite');
    const pgUrl = `${schema.url}&pool_size=2`;
    assertOk(strata(['meta', 'load', '--engine', pgUrl], original.stdout), 'load into postgres');
    const back = strata(['meta', 'dump', '--engine', pgUrl]);
    assertOk(back, 'dump postgres');
    assert.deepEqual(dumpBody(back.stdout), dumpBody(original.stdout));
    assertOk(strata(['fsck', '--engine', pgUrl]), 'fsck postgres');
  });
});
