import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { cleanup, sh, startUp, tempDir, type StrataProcess } from './harness.js';

// Real programs on a real `strata up` mount, judged against the same programs on the local
// ext4 (/tmp): what they copy in comes back out with every byte, mode, owner, link, xattr
// and ACL; what they coordinate through the file system (locks, WAL, make's timestamps)
// stays consistent.
spawnSync('modprobe', ['overlay']);
const skipNoOverlay = /\boverlay$/m.test(readFileSync('/proc/filesystems', 'utf8'))
  ? undefined
  : 'this kernel has no overlay file system (modprobe overlay failed)';

const root = tempDir('programs');
const mnt = join(root, 'mnt');
const local = join(root, 'local');
let up: StrataProcess | undefined;

before(async () => {
  sh(`chmod 755 ${root} && mkdir -p ${local}`);
  up = await startUp(join(root, 'data'), mnt);
});

after(async () => {
  await cleanup([up], [mnt], [root]);
});

/**
 * A tree with what archivers must carry: hard links, symlinks, a FIFO, xattrs, ACLs, set-id,
 * nanosecond times. Every time is set in the past: rsync compares whole seconds and leaves
 * alone what it created within the source's second (on ext4 as here).
 */
function makeTree(dir: string): void {
  sh(`mkdir -p ${dir}/d1/d2 ${dir}/empty && cd ${dir}
    head -c 300000 /dev/urandom > d1/big && chmod 4755 d1/big
    printf hello > d1/a && ln d1/a d1/hard && ln d1/a d1/d2/hard2 && ln -s a d1/sym && ln -s ../nowhere dangling
    mkfifo d1/fifo && truncate -s 5M d1/sparse && printf tail >> d1/sparse
    setfattr -n user.note -v 'a value' d1/a && setfattr -n user.empty d1/big
    setfacl -m u:65534:rwx,g:100:r d1/a && setfacl -d -m u:65534:rx,g::rwx d1 && setfacl -m u:65534:rx d1
    chown 65534:100 d1/d2 && chmod 2770 d1/d2
    find . -mindepth 1 -depth -exec touch -h -d '2003-04-05 06:07:08.987654321' {} +
    touch -h -d '2001-02-03 04:05:06.123456789' d1/sym && touch -d '2002-01-01 00:00:00.5' d1/a d1/d2`);
}

/** What must survive a copy, one line per name (sorted): type, mode, owner, links, size, mtime, xattrs, ACLs. */
function describe(dir: string): string {
  return sh(`cd ${dir} && find . -mindepth 1 | LC_ALL=C sort | while read -r n; do
      stat -c '%n %F %a %u:%g %h %y' "$n"
      if [ -f "$n" ] && [ ! -L "$n" ]; then echo "  size $(stat -c %s "$n") sha $(sha1sum < "$n" | cut -c1-16)"; fi
      if [ -L "$n" ]; then echo "  -> $(readlink "$n")"; fi
      if [ ! -L "$n" ] && [ ! -p "$n" ]; then getfattr -h -d -m 'user\\.' "$n" 2>/dev/null | grep -v '^#' || true; getfacl -n -p -c "$n" 2>/dev/null || true; fi
    done`);
}

test('rsync -aHAX copies a tree in and back out with links, xattrs and ACLs intact', () => {
  makeTree(`${local}/rs-src`);
  sh(`rsync -aHAX ${local}/rs-src/ ${mnt}/rs/ && rsync -aHAX ${mnt}/rs/ ${local}/rs-back/`);
  const expected = describe(`${local}/rs-src`);
  assert.ok(expected.includes('user.note="a value"') && expected.includes('default:user:65534:r-x'));
  assert.equal(describe(`${mnt}/rs`), expected);
  assert.equal(describe(`${local}/rs-back`), expected);
  // A checksum pass in each direction finds nothing left to transfer.
  assert.equal(sh(`rsync -n -c -aHAX -i --delete ${local}/rs-src/ ${mnt}/rs/`).trim(), '');
  assert.equal(sh(`rsync -n -c -aHAX -i --delete ${mnt}/rs/ ${local}/rs-src/`).trim(), '');
});

test('tar --xattrs --acls and cp -a round trips keep the same tree', () => {
  makeTree(`${local}/tar-src`);
  const tarOpts = `--xattrs --xattrs-include='user.*' --acls --numeric-owner`;
  sh(`tar ${tarOpts} -C ${local}/tar-src -cpf ${local}/in.tar . && mkdir ${mnt}/tarx`);
  sh(`tar ${tarOpts} -C ${mnt}/tarx -xpf ${local}/in.tar`);
  const expected = describe(`${local}/tar-src`);
  assert.equal(describe(`${mnt}/tarx`), expected);
  sh(`tar ${tarOpts} -C ${mnt}/tarx -cpf ${local}/out.tar . && mkdir ${local}/tar-back`);
  sh(`tar ${tarOpts} -C ${local}/tar-back -xpf ${local}/out.tar`);
  assert.equal(describe(`${local}/tar-back`), expected);
  sh(`cp -a ${mnt}/tarx ${mnt}/cpa && cp -a ${mnt}/cpa ${local}/cpa-back`);
  assert.equal(describe(`${mnt}/cpa`), expected);
  assert.equal(describe(`${local}/cpa-back`), expected);
});

test('SQLite in WAL mode: two writers and three readers at once, no reader sees rows vanish', () => {
  const out = sh(`python3 - ${mnt}/wal.db <<'PY'
import sqlite3, sys, time, multiprocessing as mp
db = sys.argv[1]
def writer(n):
    c = sqlite3.connect(db, timeout=60)
    for i in range(n):
        c.execute('insert into t(v) values (?)', (i,)); c.commit()
def reader(q):
    c = sqlite3.connect(db, timeout=60); last = 0; bad = 0; t0 = time.time()
    while time.time() - t0 < 3:
        n = c.execute('select count(*) from t').fetchone()[0]
        if n < last: bad += 1
        last = n
    q.put(bad)
if __name__ == '__main__':
    c = sqlite3.connect(db); print(c.execute('pragma journal_mode=wal').fetchone()[0])
    c.execute('create table t(id integer primary key, v int)'); c.commit()
    q = mp.Queue(); rs = [mp.Process(target=reader, args=(q,)) for _ in range(3)]
    ws = [mp.Process(target=writer, args=(150,)) for _ in range(2)]
    for p in rs + ws: p.start()
    for p in ws: p.join()
    print(sum(q.get() for _ in rs)); [p.join() for p in rs]
    print(c.execute('select count(*) from t').fetchone()[0], c.execute('pragma integrity_check').fetchone()[0])
PY`);
  assert.deepEqual(out.trim().split('\n'), ['wal', '0', '300 ok']);
});

test('flock(1)-guarded appends from 8 processes, and plain O_APPEND ones, lose and tear no line', () => {
  sh(`cd ${mnt} && : > locked.log && : > lk && : > plain.log
    for p in 1 2 3 4 5 6 7 8; do (for i in $(seq 1 40); do
      flock lk sh -c "echo p$p-$i-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa >> locked.log"
      echo p$p-$i-bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb >> plain.log; done) & done; wait`);
  for (const log of ['locked.log', 'plain.log']) {
    const lines = sh(`cat ${mnt}/${log}`).trim().split('\n');
    assert.equal(lines.length, 320, log);
    assert.equal(new Set(lines).size, 320, log);
    assert.ok(
      lines.every((l) => /^p[1-8]-\d+-(a|b){35}$/.test(l)),
      `${log} has a torn line`,
    );
  }
});

test('python tempfile, shutil.copytree, os.replace and rmtree patterns', () => {
  const out = sh(`python3 - ${mnt} <<'PY'
import os, sys, shutil, tempfile, filecmp
m = sys.argv[1]
shutil.copytree('/usr/include/linux/netfilter', m + '/inc', symlinks=True)
c = filecmp.dircmp('/usr/include/linux/netfilter', m + '/inc')
def bad(c): return c.left_only + c.right_only + c.diff_files + c.funny_files + sum((bad(s) for s in c.subdirs.values()), [])
print('copytree', bad(c))
for i in range(20):
    fd, tmp = tempfile.mkstemp(dir=m, prefix='.cfg')
    with os.fdopen(fd, 'w') as f: f.write(f'v{i}'); f.flush(); os.fsync(f.fileno())
    os.replace(tmp, m + '/cfg')
print('replace', open(m + '/cfg').read(), [n for n in os.listdir(m) if n.startswith('.cfg')])
with tempfile.TemporaryDirectory(dir=m) as td:
    os.makedirs(td + '/a/b'); open(td + '/a/b/f', 'w').write('x')
print('tempdir removed', not os.path.exists(td))
with tempfile.TemporaryFile(dir=m) as tf:
    tf.write(b'unnamed'); tf.seek(0); print('tempfile', tf.read().decode())
shutil.copy2(m + '/cfg', m + '/cfg2'); a, b = os.stat(m + '/cfg'), os.stat(m + '/cfg2')
print('copy2', a.st_mtime_ns == b.st_mtime_ns, a.st_mode == b.st_mode)
shutil.move(m + '/inc', m + '/inc2'); shutil.rmtree(m + '/inc2'); print('rmtree', os.path.exists(m + '/inc2'))
PY`);
  assert.deepEqual(out.trim().split('\n'), [
    'copytree []',
    'replace v19 []',
    'tempdir removed True',
    'tempfile unnamed',
    'copy2 True True',
    'rmtree False',
  ]);
});

test('make -j4 with dependency files rebuilds exactly what a changed header or source touches', () => {
  const dir = `${mnt}/mk`;
  sh(`mkdir ${dir} && cd ${dir}
    for i in $(seq 1 8); do printf '#include "h%d.h"\\nint f%d(void){return H%d;}\\n' $i $i $i > f$i.c
      printf '#define H%d %d\\nint f%d(void);\\n' $i $i $i > h$i.h; done
    { echo '#include <stdio.h>'; for i in $(seq 1 8); do echo "#include \\"h$i.h\\""; done
      echo 'int main(void){int s=0;'; for i in $(seq 1 8); do echo "s+=f$i();"; done
      echo 'printf("%d\\n",s);return 0;}'; } > main.c
    printf 'OBJS := $(patsubst %%.c,%%.o,$(wildcard *.c))\\nCFLAGS := -MMD -MP\\nprog: $(OBJS)\\n\\t$(CC) -o $@ $^\\n-include $(OBJS:.o=.d)\\n' > Makefile`);
  sh(`make -s -j4 -C ${dir}`);
  assert.equal(sh(`${dir}/prog`).trim(), '36');
  assert.match(sh(`make -C ${dir}`), /up to date/);
  // h3.h is included by f3.c and main.c: those two recompile, then the link.
  sh(`sleep 0.01 && sed -i 's/#define H3 3/#define H3 300/' ${dir}/h3.h`);
  const rebuilt = sh(`make -j4 -C ${dir}`).match(/^cc .*$/gm) ?? [];
  const names = rebuilt.map((l) => (l.includes('-o prog ') ? 'prog' : l.split(' ').pop()));
  assert.deepEqual(names.sort(), ['f3.c', 'main.c', 'prog']);
  assert.equal(sh(`${dir}/prog`).trim(), '333');
});

test('find -newer, du and ls -l agree with stat', () => {
  const dir = `${mnt}/agree`;
  sh(`mkdir -p ${dir}/sub && cd ${dir} && touch -d '2010-01-01' old1 sub/old2 && touch -d '2015-01-01' ref
    head -c 12345 /dev/urandom > new1 && head -c 100 /dev/urandom > sub/new2 && touch -d '2010-01-01' sub`);
  const newer = sh(`cd ${dir} && find . -type f -newer ref | LC_ALL=C sort`).trim().split('\n');
  const byStat = sh(
    `cd ${dir} && r=$(stat -c %Y ref) && find . -type f | while read -r f; do [ $(stat -c %Y "$f") -gt $r ] && echo "$f"; done | LC_ALL=C sort`,
  )
    .trim()
    .split('\n');
  assert.deepEqual(newer, ['./new1', './sub/new2']);
  assert.deepEqual(newer, byStat);
  const duBytes = Number(sh(`du -s -b --apparent-size ${dir}/new1`).split('\t')[0]);
  assert.equal(duBytes, 12345);
  const lsSize = sh(`ls -l ${dir}/new1`).split(/\s+/)[4];
  assert.equal(lsSize, '12345');
  // ls -lR's size and mtime columns say what stat says, for every file of the tree.
  const lsR = sh(
    `cd ${dir} && ls -lRn --time-style=+%s . | awk 'NF == 7 && /^-/ {print $7, $5, $6}' | LC_ALL=C sort`,
  );
  const stats = sh(
    `cd ${dir} && find . -type f -printf '%f %s %T@\\n' | sed 's/\\.[0-9]*$//' | LC_ALL=C sort`,
  );
  assert.equal(lsR, stats);
  assert.equal(lsR.trim().split('\n').length, 5);
});

test(
  'overlayfs with its upper layer on the mount: copy-up, whiteouts, opaque directories, same view as on ext4 and after a remount',
  { skip: skipNoOverlay },
  () => {
    // The same changes through two overlays over one lower tree: upper on ext4 and upper on StrataFS.
    sh(`mkdir -p ${local}/lower/ld ${local}/lower/keep && cd ${local}/lower && printf lower > lf
    printf one > ld/f && printf two > keep/g && ln -s lf lsym && chmod 640 keep/g`);
    const view = (dir: string): string =>
      sh(`cd ${dir} && find . -mindepth 1 | LC_ALL=C sort | while read -r n; do
        x=""; [ -f "$n" ] && x="$(stat -c %s "$n") $(sha1sum < "$n" | cut -c1-12)"
        echo "$n $(stat -c '%F %a %h' "$n") $x"; done`);
    const changes = (o: string): string =>
      `printf new > ${o}/newf && rm ${o}/lf && printf more >> ${o}/keep/g && rm -rf ${o}/ld && mkdir ${o}/ld &&
     printf fresh > ${o}/ld/h && mv ${o}/newf ${o}/renamed && chmod 600 ${o}/keep/g && ln ${o}/renamed ${o}/hard`;
    const views: string[] = [];
    for (const [name, base] of [
      ['ext4', `${local}/ovl-ref`],
      ['strata', `${mnt}/ovl`],
    ]) {
      const target = `${local}/ovl-${name}-merged`;
      const options = `lowerdir=${local}/lower,upperdir=${base}/upper,workdir=${base}/work`;
      sh(`mkdir -p ${base}/upper ${base}/work ${target}`);
      sh(`mount -t overlay overlay -o ${options} ${target}`);
      try {
        sh(changes(target));
        views.push(view(target));
      } finally {
        sh(`umount ${target}`);
      }
      // Mounted again from what the upper layer kept: the same view.
      sh(`mount -t overlay overlay -o ${options} ${target}`);
      try {
        assert.equal(view(target), views[views.length - 1], `${name} after remounting the overlay`);
      } finally {
        sh(`umount ${target}`);
      }
    }
    assert.equal(views[1], views[0]);
    assert.match(views[0], /^\.\/ld\/h regular file 644 1 5 /m);
    assert.doesNotMatch(views[0], /^\.\/lf /m);
    // The upper layer on StrataFS holds a whiteout for the removed lower file.
    assert.equal(sh(`stat -c '%F %t:%T' ${mnt}/ovl/upper/lf`).trim(), 'character special file 0:0');
  },
);

test('default ACLs are inherited by create, mkdir, mknod, mkfifo, O_TMPFILE and install as on ext4 (getfacl dumps)', () => {
  const script = (dir: string): string =>
    sh(`mkdir ${dir} && cd ${dir} && umask 027
      setfacl -d -m u:65534:rwx,g:100:r-x,m::rwx,o::r-- . && setfacl -m u:65534:rx .
      touch f && mkdir d && mkfifo p && ln -s f s && mknod c c 1 3
      python3 -c "
import os, ctypes
fd = os.open('.', os.O_TMPFILE | os.O_RDWR, 0o640)
ctypes.CDLL(None).linkat(-100, f'/proc/self/fd/{fd}'.encode(), -100, b't', 0x400)
os.mkdir('m', 0o700); os.close(os.open('o', os.O_CREAT | os.O_WRONLY, 0o600))"
      mkdir -p d/sub/subsub && touch d/sub/x && cp -p f fcopy && install -m 644 f inst
      for n in $(find . | LC_ALL=C sort); do getfacl -n -p "$n" | grep -v '^# owner'; stat -c '%n %a' "$n"; done
      chmod 750 d && getfacl -n -p d && setfacl -k d && getfacl -n -p d && setfacl -b f && getfacl -n -p f`);
  const expected = script(`${local}/acl`);
  assert.match(expected, /# file: \.\/d\/sub\/subsub\n# group: 0\nuser::rwx\nuser:65534:rwx\n/);
  assert.equal(script(`${mnt}/acl`), expected);
});
