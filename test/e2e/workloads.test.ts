import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  cleanup,
  isLongProfile,
  repoRoot,
  sh,
  startUp,
  strata,
  tempDir,
  type StrataProcess,
} from './harness.js';

// Real-world workloads and stress tools that check their own results, on one embedded volume
// (`strata up`, default settings). Every one fails the test on a verification error; at the end
// the volume is stopped, checked by `strata fsck`, restarted, and the workloads' outputs are
// checked again. The long profile (STRATA_TEST_PROFILE=long) adds the heavy ones.
const root = tempDir('workloads');
const dataDir = join(root, 'data');
const mnt = join(root, 'mnt');
let up: StrataProcess | undefined;

/** Why a test needing `tool` cannot run here, or undefined when it can. */
function missing(tool: string, debianPackage = tool): string | undefined {
  const found = spawnSync('sh', ['-c', `command -v ${tool}`]).status === 0;
  return found ? undefined : `${tool} is not installed (apt-get install ${debianPackage})`;
}

/** sha256 of every regular file under `dir` (relative names), for before/after comparisons. */
function checksums(dir: string): string {
  return sh(`cd ${dir} && find . -type f -print0 | sort -z | xargs -0 -r sha256sum`);
}

/**
 * Runs stress-ng's `stressors` in parallel (one instance each) with --verify on the mount.
 * stress-ng exits 0 on success and also when a stressor skips itself because the file system
 * does not support a feature (e.g. FIEMAP); any failed stressor or verification error fails.
 */
function stressNg(stressors: string[], seconds: number): string {
  const args = stressors.map((name) => `--${name} 1`).join(' ');
  const out = sh(
    `stress-ng ${args} -t ${seconds}s --verify --temp-path ${mnt} --metrics-brief 2>&1`,
    undefined,
    (seconds + 120) * 1000,
  );
  assert.doesNotMatch(out, /fail|error|corrupt|mismatch/i, out);
  assert.match(out, /successful run completed/, out);
  return out;
}

/**
 * Writers in separate processes share one WAL database (fcntl locks, the mmap'ed -shm file),
 * each transaction inserting, updating and deleting; then integrity_check, a checkpoint that
 * folds the WAL into the database, and integrity_check again.
 */
function sqliteWriters(dir: string, writers: number, transactions: number): void {
  sh(`mkdir -p ${dir}`);
  const script = join(dir, 'writer.py');
  writeFileSync(
    script,
    [
      'import sqlite3, sys',
      'db, wid, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])',
      'c = sqlite3.connect(db, timeout=120, isolation_level=None)',
      "c.execute('pragma journal_mode=wal')",
      'for i in range(n):',
      "    c.execute('begin immediate')",
      "    c.execute('insert into t(w, i, v) values (?, ?, randomblob(200))', (wid, i))",
      '    if i % 7 == 0:',
      "        c.execute('update t set v = randomblob(300) where id in (select id from t where w = ? order by random() limit 3)', (wid,))",
      '    if i % 10 == 9:',
      "        c.execute('delete from t where w = ? and i = ?', (wid, i - 5))",
      "    c.execute('commit')",
      '',
    ].join('\n'),
  );
  const db = join(dir, 'app.db');
  sh(
    `sqlite3 ${db} "pragma journal_mode=wal; create table t(id integer primary key, w int, i int, v blob);"`,
  );
  const procs = Array.from({ length: writers }, (_, w) => `python3 ${script} ${db} ${w} ${transactions} &`);
  sh(`${procs.join(' ')} wait`);
  // `wait` without arguments reports success even if a writer failed: count what landed instead.
  const perWriter = transactions - Math.floor(transactions / 10);
  const rows = sh(`sqlite3 ${db} "pragma integrity_check; select w, count(*) from t group by w;"`);
  const expected = ['ok', ...Array.from({ length: writers }, (_, w) => `${w}|${perWriter}`)].join('\n');
  assert.equal(rows.trim(), expected);
  const after = sh(`sqlite3 ${db} "pragma wal_checkpoint(truncate); pragma integrity_check;"`);
  assert.equal(after.trim().split('\n').pop(), 'ok');
}

/** fio random writes of mixed sizes by `jobs` processes, every block read back and crc-checked. */
function fioVerify(dir: string, jobs: number, sizeMiB: number, extra = ''): string {
  sh(`mkdir -p ${dir}`);
  const out = sh(
    `fio --name=randwrite --directory=${dir} --numjobs=${jobs} --size=${sizeMiB}m --bsrange=4k-64k ` +
      `--rw=randwrite --verify=crc32c --verify_fatal=1 --verify_state_save=0 --ioengine=psync --fsync=32 ` +
      `--group_reporting ${extra} 2>&1`,
  );
  assert.match(out, /err= 0/, out);
  assert.doesNotMatch(out, /bad magic|verify failed|type mismatch|wanted [0-9a-fx]+, got/i, out);
  return out;
}

before(async () => {
  up = await startUp(dataDir, mnt);
});

after(async () => {
  await cleanup([up], [mnt], [root]);
});

describe('verifying workloads on a mounted volume', () => {
  test('stress-ng file system stressors pass their own verification', { skip: missing('stress-ng') }, () => {
    stressNg(
      [
        'hdd',
        'dir',
        'dentry',
        'rename',
        'fallocate',
        'fpunch',
        'sync-file',
        'copy-file',
        'lockf',
        'flock',
        'fcntl',
        'seek',
        'sendfile',
        'splice',
        'readahead',
        'utime',
        'getdent',
        'fiemap',
      ],
      isLongProfile ? 20 : 4,
    );
  });

  test('fio random writes by 4 processes read back with valid checksums', { skip: missing('fio') }, () => {
    fioVerify(join(mnt, 'fio'), 4, isLongProfile ? 64 : 8);
  });

  test('dbench file server load runs without an unexpected result', { skip: missing('dbench') }, () => {
    const dir = join(mnt, 'dbench');
    sh(`mkdir -p ${dir}`);
    const out = sh(`dbench -D ${dir} -t ${isLongProfile ? 60 : 8} ${isLongProfile ? 4 : 2} 2>&1`);
    // dbench checks each call's result against its load file and reports "failed"/"ERROR" when
    // one differs; its closing "failed to create barrier semaphore" is about its own IPC.
    const report = out.replace(/^.*barrier semaphore.*$/gm, '');
    assert.doesNotMatch(report, /fail|error|expected/i, out);
    assert.match(out, /Throughput [0-9.]+ MB\/sec/, out);
  });

  test(
    'SQLite WAL database written by 3 processes passes integrity_check',
    { skip: missing('python3') },
    () => {
      sqliteWriters(join(mnt, 'sqlite'), 3, isLongProfile ? 1000 : 120);
    },
  );
});

describe(
  'real-world builds and repositories (long profile)',
  { skip: !isLongProfile && 'long profile only' },
  () => {
    test('every file system stressor in turn', { skip: missing('stress-ng') }, () => {
      // filename is left out: names that are not valid UTF-8 are not kept byte for byte yet.
      const stressors = sh(`stress-ng --class filesystem? 2>&1`)
        .replace(/^.*stressors:/s, '')
        .trim()
        .split(/\s+/)
        .filter((name) => !['filename', 'bind-mount', 'binderfs', 'verity', 'procfs'].includes(name));
      for (const name of stressors) stressNg([name], 5);
    });

    test('git clone, commit, gc and fsck of this repository', () => {
      const repo = join(mnt, 'repo');
      sh(`git clone -q --no-hardlinks ${repoRoot()} ${repo}`);
      sh(
        `cd ${repo} && git config user.email w@example.com && git config user.name W && ` +
          `for i in 1 2 3; do echo $i >> README.md; git commit -qam "change $i"; done && ` +
          `git gc -q --aggressive && git fsck --strict --full --no-dangling && test -z "$(git status --porcelain)"`,
      );
      assert.equal(sh(`cd ${repo} && git log --oneline -3 | wc -l`).trim(), '3');
    });

    test('make -j2 builds SQLite from its amalgamation and the program works', () => {
      const dir = join(mnt, 'cbuild');
      const amalgamation = join(repoRoot(), 'node_modules', 'better-sqlite3', 'deps', 'sqlite3');
      sh(`mkdir -p ${dir} && cp ${amalgamation}/sqlite3.c ${amalgamation}/sqlite3.h ${dir}/`);
      writeFileSync(
        join(dir, 'main.c'),
        [
          '#include <stdio.h>',
          '#include "sqlite3.h"',
          'static int show(void *u, int n, char **v, char **c) { (void)u; (void)n; (void)c; puts(v[0]); return 0; }',
          'int main(int argc, char **argv) {',
          '  sqlite3 *db; char *err = 0;',
          '  if (argc < 2 || sqlite3_open(argv[1], &db)) return 1;',
          '  const char *sql = "pragma journal_mode=wal; create table t(a integer primary key, b text);"',
          '    "with recursive n(i) as (select 1 union all select i+1 from n where i<20000)"',
          '    " insert into t(b) select hex(randomblob(64)) from n; select count(*) from t; pragma integrity_check;";',
          '  if (sqlite3_exec(db, sql, show, 0, &err)) { fprintf(stderr, "%s\\n", err); return 2; }',
          '  return sqlite3_close(db);',
          '}',
          '',
        ].join('\n'),
      );
      writeFileSync(
        join(dir, 'Makefile'),
        'CFLAGS = -O0 -DSQLITE_THREADSAFE=0\ndemo: main.o sqlite3.o\n\t$(CC) -o $@ $^ -lm\n' +
          '%.o: %.c sqlite3.h\n\t$(CC) $(CFLAGS) -c $< -o $@\n',
      );
      sh(`make -s -j2 -C ${dir}`);
      assert.deepEqual(sh(`cd ${dir} && ./demo t.db`).trim().split('\n'), ['wal', '20000', 'ok']);
    });

    test(
      'a Python venv is created and a library byte-compiled and imported from it',
      { skip: missing('python3') },
      () => {
        const venv = join(mnt, 'venv');
        const lib = join(mnt, 'pylib');
        sh(`python3 -m venv --without-pip ${venv}`);
        const stdlib = sh(`python3 -c "import sysconfig; print(sysconfig.get_paths()['stdlib'])"`).trim();
        sh(`mkdir -p ${lib} && cp -r ${stdlib}/email ${stdlib}/json ${stdlib}/asyncio ${lib}/`);
        sh(`find ${lib} -name __pycache__ -prune -exec rm -rf {} +`);
        sh(`${venv}/bin/python -m compileall -q -j2 ${lib}`);
        assert.ok(Number(sh(`find ${lib} -name '*.pyc' | wc -l`)) > 50);
        const out = sh(
          `cd ${lib} && ${venv}/bin/python -c "import json.decoder, email.parser, asyncio.tasks; print('ok')"`,
        );
        assert.equal(out.trim(), 'ok');
      },
    );

    test('fio over mmap and over O_DIRECT libaio verify', { skip: missing('fio') }, () => {
      fioVerify(join(mnt, 'fio-mmap'), 2, 16, '--ioengine=mmap');
      fioVerify(join(mnt, 'fio-direct'), 2, 8, '--ioengine=libaio --direct=1 --iodepth=8');
    });
  },
);

describe('after the workloads', () => {
  test('fsck finds the volume clean and a restart keeps every byte', async () => {
    const before = checksums(mnt);
    const code = await up!.stop();
    assert.equal(code, 0, up!.output);
    const checked = strata(['fsck', '--engine', `sqlite:${join(dataDir, 'meta.db')}`]);
    assert.equal(checked.status, 0, `${checked.stdout}\n${checked.stderr}`);
    up = await startUp(dataDir, mnt);
    assert.equal(checksums(mnt), before);
    const dbs = sh(`find ${mnt} -name '*.db' -type f`).trim().split('\n').filter(Boolean);
    for (const db of dbs) assert.equal(sh(`sqlite3 ${db} "pragma integrity_check;"`).trim(), 'ok', db);
  });
});
