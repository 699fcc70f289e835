import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { cleanup, sh, startUp, tempDir, type StrataProcess } from './harness.js';

// The file-system features applications lean on, through the kernel, on a real mount.
const root = tempDir('posix');
const mnt = join(root, 'mnt');
let up: StrataProcess | undefined;

before(async () => {
  // mkdtemp makes 0700 directories; the ACL test runs a command as nobody below it.
  sh(`chmod 755 ${root}`);
  up = await startUp(join(root, 'data'), mnt);
});

after(async () => {
  await cleanup([up], [mnt], [root]);
});

// struct flock l_type values on Linux.
const F_WRLCK = 1;
const F_UNLCK = 2;

function py(code: string): string {
  return sh(`python3 - <<'PY'\nimport os, mmap, fcntl, struct\n${code}\nPY`);
}

test('a shared writable mmap reaches the file on msync and close, and survives a cache drop', () => {
  const file = join(mnt, 'mapped');
  py(
    `fd = os.open(${JSON.stringify(file)}, os.O_RDWR | os.O_CREAT, 0o644)\nos.ftruncate(fd, 3 * 4096)\n` +
      `m = mmap.mmap(fd, 3 * 4096, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)\n` +
      `m[0:5] = b'hello'\nm[8192:8197] = b'world'\nm.flush()\nm[4096:4099] = b'mid'\nm.close()\nos.close(fd)`,
  );
  sh('echo 3 > /proc/sys/vm/drop_caches');
  const out = py(
    `d = open(${JSON.stringify(file)}, 'rb').read()\nprint(len(d), d[0:5].decode(), d[4096:4099].decode(), d[8192:8197].decode())`,
  );
  assert.equal(out.trim(), '12288 hello mid world');
});

test('fallocate punches holes and preallocates; reads see zeros in the hole', () => {
  const file = join(mnt, 'holes');
  sh(`head -c 1048576 /dev/urandom > ${file}`);
  sh(`fallocate --punch-hole --offset 4096 --length 65536 ${file}`);
  assert.equal(sh(`stat -c %s ${file}`).trim(), '1048576', 'punching keeps the size');
  assert.equal(sh(`dd if=${file} bs=4096 skip=1 count=16 status=none | tr -d '\\0' | wc -c`).trim(), '0');
  assert.notEqual(sh(`dd if=${file} bs=4096 count=1 status=none | tr -d '\\0' | wc -c`).trim(), '0');
  sh(`fallocate --length 3145728 ${file}`);
  assert.equal(sh(`stat -c %s ${file}`).trim(), '3145728', 'preallocation extends the size');
});

test('copy_file_range copies by reference and the copy reads identical', () => {
  const src = join(mnt, 'copy-src');
  sh(`head -c 9000000 /dev/urandom > ${src}`);
  const copied = py(
    `s = os.open(${JSON.stringify(src)}, os.O_RDONLY)\nd = os.open(${JSON.stringify(join(mnt, 'copy-dst'))}, os.O_WRONLY | os.O_CREAT, 0o644)\n` +
      `n = 0\nwhile True:\n    k = os.copy_file_range(s, d, 1 << 30)\n    if k == 0: break\n    n += k\nprint(n)`,
  );
  assert.equal(copied.trim(), '9000000');
  assert.equal(sh(`cmp ${src} ${mnt}/copy-dst && echo same`).trim(), 'same');
  // The copy is independent: changing it leaves the source alone.
  sh(`printf XYZ | dd of=${mnt}/copy-dst conv=notrunc status=none`);
  assert.notEqual(sh(`head -c 3 ${src}`), 'XYZ');
});

test('extended attributes and POSIX ACLs are stored and enforced', () => {
  const file = join(mnt, 'acl');
  sh(`echo secret > ${file} && chmod 600 ${file}`);
  sh(`setfattr -n user.origin -v lab42 ${file}`);
  assert.equal(sh(`getfattr --only-values -n user.origin ${file}`), 'lab42');
  sh(`setfattr -x user.origin ${file}`);
  assert.equal(sh(`getfattr -d ${file} | grep -c user.origin || true`).trim(), '0');
  sh(`setfacl -m u:nobody:r ${file}`);
  assert.match(sh(`getfacl -p ${file}`), /user:nobody:r--/);
  // nobody may now read a 0600 file of root's, through the ACL.
  assert.equal(sh(`setpriv --reuid=nobody --regid=nogroup --clear-groups cat ${file}`).trim(), 'secret');
  sh(`setfacl -b ${file}`);
  sh(`! setpriv --reuid=nobody --regid=nogroup --clear-groups cat ${file} 2>/dev/null`);
});

test('a default ACL wins over the umask, chmod rewrites the ACL mask, setfacl -b leaves the mode', () => {
  const dir = join(mnt, 'dacl');
  sh(`mkdir ${dir} && setfacl -d -m u::rwx,g::r-x,o::r-x ${dir}`);
  // umask 077 would make 0700/0600: under a default ACL the umask does not apply.
  sh(`cd ${dir} && umask 077 && mkdir sub && touch file`);
  assert.equal(sh(`stat -c %a ${dir}/sub ${dir}/file`).trim().split('\n').join(' '), '755 644');
  const file = join(mnt, 'acl-mask');
  sh(`touch ${file} && chmod 660 ${file} && setfacl -m u:nobody:rw ${file}`);
  assert.match(sh(`getfacl -p ${file}`), /^mask::rw-$/m);
  sh(`chmod 640 ${file}`);
  assert.match(sh(`getfacl -p ${file}`), /^mask::r--$/m, 'chmod sets the mask from the group bits');
  sh(`setfacl -b ${file}`);
  assert.equal(sh(`stat -c %a ${file}`).trim(), '640');
  assert.equal(sh(`getfacl -p --skip-base ${file}`).trim(), '', 'no ACL left');
});

test('an open FIFO answers fstat after its unlink; trusted xattrs are root-only and hidden from others', () => {
  const fifo = join(mnt, 'fifo');
  const out = py(
    `os.mkfifo(${JSON.stringify(fifo)}, 0o640)\nfd = os.open(${JSON.stringify(fifo)}, os.O_RDWR | os.O_NONBLOCK)\n` +
      `os.unlink(${JSON.stringify(fifo)})\nst = os.fstat(fd)\nos.write(fd, b'x')\nprint(oct(st.st_mode), st.st_nlink, os.read(fd, 1))`,
  );
  assert.equal(out.trim(), "0o10640 0 b'x'");
  const file = join(mnt, 'trusted');
  sh(
    `touch ${file} && chmod 644 ${file} && setfattr -n trusted.k -v v ${file} && setfattr -n user.k -v v ${file}`,
  );
  const asNobody = sh(`setpriv --reuid=nobody --regid=nogroup --clear-groups getfattr -d -m - ${file}`);
  assert.doesNotMatch(asNobody, /trusted\.k/);
  assert.match(asNobody, /user\.k/);
  assert.match(sh(`getfattr -d -m - ${file}`), /trusted\.k/);
});

test('flock and fcntl locks exclude other processes and are released on close', () => {
  const file = join(mnt, 'lockfile');
  sh(`touch ${file}`);
  sh(`flock -x ${file} -c "! flock -n -x ${file} -c true"`);
  sh(`flock -n -x ${file} -c true`);
  const out = py(
    `fd = os.open(${JSON.stringify(file)}, os.O_RDWR)\nfcntl.lockf(fd, fcntl.LOCK_EX, 100, 0)\n` +
      `pid = os.fork()\nif pid == 0:\n    f2 = os.open(${JSON.stringify(file)}, os.O_RDWR)\n` +
      `    try:\n        fcntl.lockf(f2, fcntl.LOCK_EX | fcntl.LOCK_NB, 100, 0); os._exit(1)\n    except OSError:\n        pass\n` +
      `    fcntl.lockf(f2, fcntl.LOCK_EX | fcntl.LOCK_NB, 100, 200)\n    os._exit(0)\n` +
      `_, status = os.waitpid(pid, 0)\nprint(os.waitstatus_to_exitcode(status))`,
  );
  assert.equal(out.trim(), '0', 'an overlapping range conflicts, a disjoint one does not');
});

test('fcntl locks: F_GETLK names the conflicting lock, unlock splits it, any close drops it; flock and OFD locks are apart', () => {
  const file = join(mnt, 'ranges');
  // The child locks [100,200) for writing, then unlocks [140,160) (a split), and waits; after
  // the parent's checks it opens and closes the file once more, which drops all its locks.
  const out = py(
    `f = ${JSON.stringify(file)}\nfd = os.open(f, os.O_RDWR | os.O_CREAT, 0o644)\n` +
      `def lk(t, s, n): return struct.pack('hhqqi', t, 0, s, n, 0)\n` +
      `def getlk(t, s, n, cmd=fcntl.F_GETLK):\n    r = struct.unpack('hhqqi', fcntl.fcntl(fd, cmd, lk(t, s, n)))\n` +
      `    return (r[0], r[2], r[3], 'child' if r[4] == pid else r[4])\n` +
      `r1, w1 = os.pipe(); r2, w2 = os.pipe()\npid = os.fork()\nif pid == 0:\n` +
      `    c = os.open(f, os.O_RDWR)\n    fcntl.fcntl(c, fcntl.F_SETLK, lk(fcntl.F_WRLCK, 100, 100))\n` +
      `    fcntl.fcntl(c, fcntl.F_SETLK, lk(fcntl.F_UNLCK, 140, 20))\n    os.write(w1, b'1'); os.read(r2, 1)\n` +
      `    os.close(os.open(f, os.O_RDONLY))\n    os.write(w1, b'2'); os.read(r2, 1)\n    os._exit(0)\n` +
      `os.read(r1, 1)\nprint(getlk(fcntl.F_WRLCK, 0, 0))\nprint(getlk(fcntl.F_RDLCK, 150, 20))\nprint(getlk(fcntl.F_WRLCK, 140, 20))\n` +
      `try:\n    fcntl.fcntl(fd, fcntl.F_SETLK, lk(fcntl.F_RDLCK, 120, 1)); print('granted')\nexcept OSError as e:\n    print(e.errno == 11)\n` +
      `fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB); print('flock granted'); fcntl.flock(fd, fcntl.LOCK_UN)\n` +
      `os.write(w2, b'x'); os.read(r1, 1)\nprint(getlk(fcntl.F_WRLCK, 0, 0))\nos.write(w2, b'x'); os.waitpid(pid, 0)\n` +
      `a = os.open(f, os.O_RDWR); b = os.open(f, os.O_RDWR)\nfcntl.fcntl(a, 37, lk(fcntl.F_WRLCK, 0, 10))\n` +
      `try:\n    fcntl.fcntl(b, 37, lk(fcntl.F_WRLCK, 5, 10)); print('ofd granted')\nexcept OSError as e:\n    print('ofd', e.errno == 11)\n` +
      `fd = b\nprint(getlk(fcntl.F_WRLCK, 5, 10, 36))`,
  );
  assert.deepEqual(out.trim().split('\n'), [
    `(${F_WRLCK}, 100, 40, 'child')`, // the first conflicting piece of the split lock
    `(${F_WRLCK}, 160, 40, 'child')`,
    `(${F_UNLCK}, 140, 20, 0)`, // the hole is free
    'True', // EAGAIN for a conflicting F_SETLK
    'flock granted', // flock(2) locks do not see fcntl(2) locks
    `(${F_UNLCK}, 0, 0, 0)`, // closing another descriptor dropped the child's locks
    'ofd True',
    `(${F_WRLCK}, 0, 10, -1)`, // an OFD lock reports pid -1
  ]);
});

test('the mount is noatime: reads leave atime alone; utimensat keeps nanoseconds', () => {
  assert.match(sh(`grep ' ${mnt} ' /proc/mounts`), /[,\s]noatime[,\s]/);
  const file = join(mnt, 'times');
  const out = py(
    `f = ${JSON.stringify(file)}\nopen(f, 'w').write('x')\nos.utime(f, ns=(1_000_000_123, 2_000_456_789))\n` +
      `open(f).read(); os.listdir(${JSON.stringify(mnt)})\nst = os.stat(f)\nprint(st.st_atime_ns, st.st_mtime_ns)\n` +
      `os.utime(f, ns=(-1_500_000_001, 2**40 * 10**9 + 999_999_999))\nst = os.stat(f)\nprint(st.st_atime_ns, st.st_mtime_ns)`,
  );
  assert.deepEqual(out.trim().split('\n'), ['1000000123 2000456789', '-1500000001 1099511627776999999999']);
});

test('O_DIRECT reads and writes go straight through and agree with buffered ones', () => {
  const file = join(mnt, 'direct');
  sh(`head -c 4194304 /dev/urandom > ${root}/direct.ref`);
  sh(`dd if=${root}/direct.ref of=${file} bs=1M oflag=direct status=none`);
  sh(`dd if=${file} of=${root}/direct.back bs=64k iflag=direct status=none`);
  sh(`cmp ${root}/direct.ref ${root}/direct.back && cmp ${root}/direct.ref ${file}`);
});

test('a user may create and remove files through a supplementary group', () => {
  const dir = join(mnt, 'team');
  sh(`mkdir ${dir} && chown root:4321 ${dir} && chmod 0770 ${dir}`);
  const asMember = 'setpriv --reuid=65534 --regid=65534 --groups=4321';
  sh(`${asMember} sh -c 'echo member > ${dir}/note && cat ${dir}/note && rm ${dir}/note'`);
  // Without the group the same user is refused.
  sh(`! setpriv --reuid=65534 --regid=65534 --clear-groups touch ${dir}/other 2>/dev/null`);
});

test('statfs reports the volume: df shows capacity and the files in use', () => {
  const fields = sh(`stat -f -c '%b %S %c %d' ${mnt}`).trim().split(' ').map(Number);
  const [blocks, blockSize, files, filesFree] = fields;
  assert.ok(blocks * blockSize >= 2 ** 40, `capacity ${blocks} x ${blockSize}`);
  assert.ok(files > filesFree, 'some inodes are in use');
  assert.match(sh(`df -h ${mnt}`), /strata:strata/);
});
