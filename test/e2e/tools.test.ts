import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  cleanup,
  e2eStorageArgs,
  isLongProfile,
  isMounted,
  sh,
  startUp,
  StrataProcess,
  tempDir,
} from './harness.js';

// Everyday tools on one embedded volume (`strata up`), then a restart that must keep it all.
const root = tempDir('tools');
const dataDir = join(root, 'data');
const mnt = join(root, 'mnt');
const local = join(root, 'local');
let up: StrataProcess | undefined;

before(async () => {
  sh(`mkdir -p ${local}`);
  up = await startUp(dataDir, mnt);
});

after(async () => {
  await cleanup([up], [mnt], [root]);
});

test('an untarred tree of thousands of files reads back byte for byte', () => {
  // The short profile takes ~2,000 headers (22 MB); the long one all of /usr/include (~8,000).
  const parts = isLongProfile ? '.' : 'linux c++ x86_64-linux-gnu';
  sh(`tar -C /usr/include -cf ${local}/tree.tar ${parts}`);
  const files = Number(sh(`tar -tf ${local}/tree.tar | grep -vc '/$'`).trim());
  assert.ok(files >= 1500, `expected thousands of files, got ${files}`);
  sh(`mkdir ${local}/tree ${mnt}/tree && tar -C ${local}/tree -xf ${local}/tree.tar`);
  sh(`tar -C ${mnt}/tree -xf ${local}/tree.tar`);
  sh(`diff -r --no-dereference ${local}/tree ${mnt}/tree`);
  const sums = (dir: string): string =>
    sh(`cd ${dir} && find . -type f -print0 | sort -z | xargs -0 sha256sum`);
  assert.equal(sums(`${mnt}/tree`), sums(`${local}/tree`));
  assert.equal(
    sh(`cd ${mnt}/tree && find . | sort | wc -l`),
    sh(`cd ${local}/tree && find . | sort | wc -l`),
  );
});

test('git init, add, commit and log work on the mount', () => {
  const repo = join(mnt, 'repo');
  sh(
    `mkdir ${repo} && cd ${repo} && git init -q && git config user.email t@example.com && git config user.name T`,
  );
  for (let i = 0; i < 20; i++) writeFileSync(join(repo, `file${i}.txt`), `line ${i}\n`.repeat(i + 1));
  sh(
    `cd ${repo} && git add -A && git commit -q -m first && echo more >> file3.txt && git commit -qam second`,
  );
  const log = sh(`cd ${repo} && git log --oneline`);
  assert.equal(log.trim().split('\n').length, 2);
  sh(`cd ${repo} && git fsck --strict 2>&1 && git status --porcelain | (! grep .)`);
});

test('a SQLite database is created, filled and queried on the mount', () => {
  const db = join(mnt, 'test.db');
  sh(
    `sqlite3 ${db} "create table t(id integer primary key, v text); ` +
      `with recursive n(i) as (select 1 union all select i+1 from n where i < 5000) ` +
      `insert into t(v) select hex(randomblob(100)) from n; create index tv on t(v);"`,
  );
  sh(`sqlite3 ${db} "update t set v = 'x' where id % 7 = 0; delete from t where id % 11 = 0;"`);
  assert.equal(sh(`sqlite3 ${db} "select count(*) from t;"`).trim(), String(5000 - Math.floor(5000 / 11)));
  assert.equal(sh(`sqlite3 ${db} "pragma integrity_check;"`).trim(), 'ok');
});

test('make builds and runs a small C program on the mount', () => {
  const dir = join(mnt, 'cprog');
  sh(`mkdir ${dir}`);
  writeFileSync(
    join(dir, 'main.c'),
    '#include <stdio.h>\nint add(int,int);\nint main(void){printf("%d\\n", add(40,2));return 0;}\n',
  );
  writeFileSync(join(dir, 'add.c'), 'int add(int a, int b) { return a + b; }\n');
  writeFileSync(
    join(dir, 'Makefile'),
    'prog: main.o add.o\n\tcc -o prog main.o add.o\n%.o: %.c\n\tcc -O2 -c $<\n',
  );
  sh(`make -s -C ${dir}`);
  assert.equal(sh(`${dir}/prog`).trim(), '42');
  // A second make sees up-to-date timestamps and does nothing.
  assert.match(sh(`make -C ${dir}`), /up to date/);
});

test('rsync in and back out preserves every byte (checksums)', () => {
  sh(
    `mkdir -p ${local}/rs && for i in $(seq 1 200); do head -c $((i * 997)) /dev/urandom > ${local}/rs/f$i; done`,
  );
  sh(
    `mkdir -p ${local}/rs/sub/deeper && cp ${local}/rs/f1* ${local}/rs/sub/deeper/ && ln -s f1 ${local}/rs/link`,
  );
  sh(`rsync -a ${local}/rs/ ${mnt}/rs/`);
  sh(`rsync -a ${mnt}/rs/ ${local}/rs-back/`);
  sh(`diff -r --no-dereference ${local}/rs ${local}/rs-back`);
  // A checksum pass finds nothing to transfer.
  const out = sh(`rsync -a --checksum --itemize-changes ${local}/rs/ ${mnt}/rs/`);
  assert.equal(out.trim(), '');
});

test('names that are not UTF-8 stay distinct and come back byte for byte', () => {
  // Archives from other systems carry Latin-1 and other non-UTF-8 names; each must stay its own file.
  const script = [
    'import os, sys',
    'd = os.fsencode(sys.argv[1]) + b"/raw-names"',
    'os.mkdir(d)',
    'names = [b"\\x80", b"\\x81", b"caf\\xe9", b"\\xef\\x9e\\x80", b"\\xc3\\xa9", b"\\x80" * 255]',
    'for i, n in enumerate(names):',
    '    with open(d + b"/" + n, "wb") as f: f.write(b"%d" % i)',
    'assert sorted(os.listdir(d)) == sorted(names), os.listdir(d)',
    'for i, n in enumerate(names):',
    '    assert open(d + b"/" + n, "rb").read() == b"%d" % i, n',
    'os.symlink(b"target-\\xff", d + b"/link")',
    'assert os.readlink(d + b"/link") == b"target-\\xff"',
    'assert os.lstat(d + b"/link").st_size == len(b"target-\\xff")',
    'os.setxattr(d + b"/\\x80", b"user.\\xfe", b"v")',
    'assert os.listxattr(d + b"/\\x80") == ["user.\\udcfe"], os.listxattr(d + b"/\\x80")',
    'os.rename(d + b"/\\x81", d + b"/\\x82")',
    'assert open(d + b"/\\x82", "rb").read() == b"1"',
    'try:',
    '    open(d + b"/" + b"\\x80" * 256, "wb")',
    '    raise SystemExit("a 256-byte name was accepted")',
    'except OSError as e:',
    '    assert e.errno == 36, e',
    'print("ok")',
  ].join('\n');
  writeFileSync(join(root, 'raw-names.py'), script);
  assert.equal(sh(`python3 ${join(root, 'raw-names.py')} ${mnt}`).trim(), 'ok');
});

test('stopping and starting `strata up` on the same data dir keeps all data', async () => {
  const before = sh(`cd ${mnt} && find . -type f -print0 | sort -z | xargs -0 sha256sum`);
  const code = await up!.stop();
  up = undefined;
  assert.equal(code, 0, 'SIGTERM stops strata up with exit code 0');
  assert.ok(!isMounted(mnt), 'the mount is gone after strata up exits');
  assert.ok(existsSync(join(dataDir, 'meta.db')), 'the SQLite engine lives in DATA_DIR/meta.db');
  up = await startUp(dataDir, mnt);
  const afterRestart = sh(`cd ${mnt} && find . -type f -print0 | sort -z | xargs -0 sha256sum`);
  assert.equal(afterRestart, before);
  assert.equal(sh(`sqlite3 ${mnt}/test.db "pragma integrity_check;"`).trim(), 'ok');
});

test("SIGINT the instant `strata up`'s mount appears, or while it starts, leaves no mount behind", async () => {
  await up?.stop();
  up = undefined;
  // Sent as soon as the mount shows in /proc/mounts, the signal lands between the mount and the
  // foreground loop's listener: it used to be lost (SIGINT ignored) or to kill the process and
  // leave a dead mount. Now it stops the mount cleanly. Sent at once, it may land before node
  // runs any of strata (the default action ends it, nothing mounted) or while the volume opens
  // (a clean stop once mounted): either way no mount is left.
  for (const when of ['mount appears', 'at once'] as const) {
    const proc = new StrataProcess(['up', dataDir, mnt, ...e2eStorageArgs(dataDir, [])]);
    try {
      if (when === 'mount appears') {
        while (!isMounted(mnt) && proc.exitCode === undefined) await new Promise((r) => setImmediate(r));
      }
      proc.child.kill('SIGINT');
      const code = await Promise.race([
        proc.exited,
        new Promise<'hung'>((resolve) => setTimeout(() => resolve('hung'), 60_000).unref()),
      ]);
      if (when === 'mount appears') {
        assert.equal(code, 0, `SIGINT as the mount appeared: exit ${code}\n${proc.output}`);
        assert.match(proc.output, /stopped cleanly/);
      } else {
        assert.ok(
          code === 0 || (code === null && proc.child.signalCode === 'SIGINT'),
          `exit ${code}\n${proc.output}`,
        );
      }
      assert.ok(!isMounted(mnt), `SIGINT ${when}: the mount is gone`);
    } finally {
      proc.kill();
      if (isMounted(mnt)) sh(`umount -l ${mnt}`);
    }
  }
  up = await startUp(dataDir, mnt);
  assert.equal(sh(`sqlite3 ${mnt}/test.db "pragma integrity_check;"`).trim(), 'ok');
});
