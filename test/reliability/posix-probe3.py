# Round-3 conformance probe, run on a StrataFS mount and on tmpfs; posix-probe3.test.ts
# compares the outputs line by line. Each line is "check: result". It covers what the random
# tester and posix-probe.py reach rarely or not at all: rename in its edge forms (into its
# own subtree, over directories, hard links of one inode, RENAME_EXCHANGE of a file with a
# directory and the ".." and link counts that follow), link counts across directories,
# xattr flags and size limits, fallocate modes, SEEK_DATA/SEEK_HOLE, copy_file_range edge
# cases, mmap past EOF, path limits and trailing slashes.
import os, sys, errno, mmap, ctypes, ctypes.util, signal, stat

signal.alarm(60)
base = sys.argv[1]
libc = ctypes.CDLL(ctypes.util.find_library('c'), use_errno=True)


def rec(k, v):
    print(f"{k}: {v}", flush=True)


def err(f):
    try:
        r = f()
        return 'ok' if r is None else r
    except OSError as e:
        return errno.errorcode.get(e.errno, e.errno)


def cerr(r):
    if r < 0:
        e = ctypes.get_errno()
        return errno.errorcode.get(e, e)
    return 'ok' if r == 0 else r


AT_FDCWD = -100
RENAME_NOREPLACE, RENAME_EXCHANGE, RENAME_WHITEOUT = 1, 2, 4
libc.renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
libc.fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_long, ctypes.c_long]


def renameat2(a, b, flags):
    return cerr(libc.renameat2(AT_FDCWD, a.encode(), AT_FDCWD, b.encode(), flags))


def falloc(fd, mode, off, ln):
    return cerr(libc.fallocate(fd, mode, off, ln))


libc.linkat.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]


def link_fd(fd, dst):
    # linkat(AT_SYMLINK_FOLLOW) of /proc/self/fd/N: os.link would link the proc symlink itself
    return cerr(libc.linkat(AT_FDCWD, f'/proc/self/fd/{fd}'.encode(), AT_FDCWD, dst.encode(), 0x400))


def nl(p):
    return os.lstat(p).st_nlink


d = os.path.join(base, 'p3')
os.mkdir(d)
j = lambda *a: os.path.join(d, *a)

# ---- rename edge forms
os.makedirs(j('a/b/c'))
rec('rename dir into own child', err(lambda: os.rename(j('a'), j('a/b/x'))))
rec('rename dir into own grandchild', err(lambda: os.rename(j('a'), j('a/b/c/x'))))
rec('rename dir onto own child', err(lambda: os.rename(j('a'), j('a/b'))))
rec('rename child onto ancestor', err(lambda: os.rename(j('a/b/c'), j('a'))))
rec('rename dir to itself', err(lambda: os.rename(j('a'), j('a'))))
rec('rename . away', err(lambda: os.rename(j('a/.'), j('z'))))
rec('rename .. away', err(lambda: os.rename(j('a/b/..'), j('z'))))
rec('rename onto .', err(lambda: os.rename(j('a/b/c'), j('a/b/.'))))
os.mkdir(j('e'))
os.makedirs(j('ne/x'))
open(j('f'), 'w').close()
rec('rename dir over empty dir', err(lambda: os.rename(j('a/b/c'), j('e'))))
rec('nlink a/b after', nl(j('a/b')))
rec('rename dir over non-empty dir', err(lambda: os.rename(j('e'), j('ne'))))
rec('rename dir over file', err(lambda: os.rename(j('e'), j('f'))))
rec('rename file over dir', err(lambda: os.rename(j('f'), j('e'))))
rec('rename file over dir/ (trailing)', err(lambda: os.rename(j('f'), j('e') + '/')))
rec('rename file/ (trailing) to g', err(lambda: os.rename(j('f') + '/', j('g'))))
rec('rename dir/ to e2/', err(lambda: os.rename(j('e') + '/', j('e2') + '/')))
rec('exists e2', os.path.isdir(j('e2')))
rec('rename file to nonexistent/', err(lambda: os.rename(j('f'), j('g') + '/')))
# hard links of one inode: rename is a no-op, both names stay
os.link(j('f'), j('f2'))
rec('rename link onto link', err(lambda: os.rename(j('f'), j('f2'))))
rec('both names stay', (os.path.exists(j('f')), os.path.exists(j('f2')), nl(j('f'))))
rec('noreplace link onto link', renameat2(j('f'), j('f2'), RENAME_NOREPLACE))
rec('exchange link with link', renameat2(j('f'), j('f2'), RENAME_EXCHANGE))
rec('noreplace to new', renameat2(j('f2'), j('f3'), RENAME_NOREPLACE))
rec('exchange with missing', renameat2(j('f3'), j('nope'), RENAME_EXCHANGE))
rec('bad flags', renameat2(j('f3'), j('f4'), RENAME_EXCHANGE | RENAME_NOREPLACE))
rec('noreplace dir into own child', renameat2(j('a'), j('a/b/q'), RENAME_NOREPLACE))
# exchange file <-> directory in different parents
os.makedirs(j('p1/dd/sub'))
os.mkdir(j('p2'))
with open(j('p2/ff'), 'w') as fh:
    fh.write('hello')
rec('nlink p1 p2 before', (nl(j('p1')), nl(j('p2'))))
rec('exchange dir with file', renameat2(j('p1/dd'), j('p2/ff'), RENAME_EXCHANGE))
rec('types after', (stat.S_ISDIR(os.lstat(j('p1/dd')).st_mode), stat.S_ISDIR(os.lstat(j('p2/ff')).st_mode)))
rec('nlink p1 p2 after', (nl(j('p1')), nl(j('p2'))))
rec('.. of exchanged dir', os.stat(j('p2/ff/..')).st_ino == os.stat(j('p2')).st_ino)
rec('sub reachable', os.path.isdir(j('p2/ff/sub')))
rec('exchange dir into its own subtree', renameat2(j('p2/ff'), j('p2/ff/sub'), RENAME_EXCHANGE))
rec('exchange subtree with ancestor', renameat2(j('p2/ff/sub'), j('p2/ff'), RENAME_EXCHANGE))
os.makedirs(j('q1/x'))
os.makedirs(j('q2/y/z'))
rec('exchange dirs nlink before', (nl(j('q1')), nl(j('q2')), nl(j('q1/x')), nl(j('q2/y'))))
rec('exchange dir with dir', renameat2(j('q1/x'), j('q2/y'), RENAME_EXCHANGE))
rec('exchange dirs nlink after', (nl(j('q1')), nl(j('q2')), nl(j('q1/x')), nl(j('q2/y'))))
rec('.. after dir exchange', (os.stat(j('q1/x/..')).st_ino == os.stat(j('q1')).st_ino, os.path.isdir(j('q1/x/z'))))
# RENAME_WHITEOUT (overlayfs's upper layer): a 0:0 character device of mode 0 at the old name
open(j('wo'), 'w').close()
rec('whiteout rename', renameat2(j('wo'), j('wo2'), RENAME_WHITEOUT))
st = os.lstat(j('wo'))
rec('whiteout left', (oct(st.st_mode), st.st_rdev, st.st_nlink, os.path.isfile(j('wo2'))))
rec('whiteout noreplace onto existing', renameat2(j('wo2'), j('wo'), RENAME_WHITEOUT | RENAME_NOREPLACE))
rec('whiteout with exchange', renameat2(j('wo2'), j('wo'), RENAME_WHITEOUT | RENAME_EXCHANGE))
rec('whiteout over whiteout', renameat2(j('wo2'), j('wo'), RENAME_WHITEOUT))
rec('whiteout after', (oct(os.lstat(j('wo')).st_mode), oct(os.lstat(j('wo2')).st_mode)))
# rename over a hard link: link count of the victim drops
open(j('v'), 'w').close()
os.link(j('v'), j('v2'))
open(j('w'), 'w').close()
os.rename(j('w'), j('v'))
rec('nlink of victim after rename over', nl(j('v2')))
# moving a directory updates nlink of both parents
os.makedirs(j('m1/md'))
os.mkdir(j('m2'))
os.rename(j('m1/md'), j('m2/md'))
rec('nlink parents after dir move', (nl(j('m1')), nl(j('m2'))))
rec('rmdir of non-empty via rename target', err(lambda: os.rmdir(j('m2'))))

# ---- hard links
os.mkdir(j('h1'))
os.mkdir(j('h2'))
open(j('h1/x'), 'w').close()
os.link(j('h1/x'), j('h2/x'))
os.link(j('h1/x'), j('h2/y'))
rec('nlink 3 links', nl(j('h1/x')))
os.unlink(j('h1/x'))
rec('nlink after unlink', nl(j('h2/y')))
rec('link to dir', err(lambda: os.link(j('h1'), j('h3'))))
rec('link onto existing', err(lambda: os.link(j('h2/x'), j('h2/y'))))
rec('link missing/', err(lambda: os.link(j('h2/x') + '/', j('h2/z'))))
rec('link to new/', err(lambda: os.link(j('h2/x'), j('h2/z') + '/')))
os.symlink('h2/x', j('sl'))
os.link(j('sl'), j('sl2'), follow_symlinks=False)
rec('link of symlink is a symlink', (os.path.islink(j('sl2')), nl(j('sl'))))
# linkat of an open unlinked file (not O_TMPFILE): ENOENT
fd = os.open(j('h2/u'), os.O_RDWR | os.O_CREAT, 0o644)
os.write(fd, b'abc')
os.unlink(j('h2/u'))
rec('linkat open unlinked', link_fd(fd, j('h2/u2')))
os.close(fd)
# O_TMPFILE with O_EXCL cannot be linked
fd = err(lambda: os.open(d, os.O_TMPFILE | os.O_RDWR | os.O_EXCL, 0o600))
if isinstance(fd, int):
    os.write(fd, b'tmp')
    rec('linkat O_TMPFILE|O_EXCL', link_fd(fd, j('tx')))
    os.close(fd)
else:
    rec('O_TMPFILE|O_EXCL open', fd)
fd = os.open(d, os.O_TMPFILE | os.O_RDWR, 0o600)
os.write(fd, b'tmp2')
rec('tmpfile nlink', os.fstat(fd).st_nlink)
rec('tmpfile link', link_fd(fd, j('tl')))
rec('tmpfile linked nlink', (os.fstat(fd).st_nlink, open(j('tl'), 'rb').read()))
rec('tmpfile link again', link_fd(fd, j('tl2')))
rec('tmpfile linked twice nlink', os.fstat(fd).st_nlink)
os.close(fd)

# ---- xattrs
x = j('xf')
open(x, 'w').close()
XC, XR = os.XATTR_CREATE, os.XATTR_REPLACE
rec('xattr replace missing', err(lambda: os.setxattr(x, 'user.a', b'1', XR)))
rec('xattr create', err(lambda: os.setxattr(x, 'user.a', b'1', XC)))
rec('xattr create existing', err(lambda: os.setxattr(x, 'user.a', b'2', XC)))
rec('xattr replace existing', err(lambda: os.setxattr(x, 'user.a', b'22', XR)))
rec('xattr value', os.getxattr(x, 'user.a'))
rec('xattr empty value', err(lambda: (os.setxattr(x, 'user.e', b''), os.getxattr(x, 'user.e'))[1]))
libc.getxattr.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_void_p, ctypes.c_size_t]
libc.getxattr.restype = ctypes.c_ssize_t
libc.listxattr.argtypes = [ctypes.c_char_p, ctypes.c_void_p, ctypes.c_size_t]
libc.listxattr.restype = ctypes.c_ssize_t
buf = ctypes.create_string_buffer(65536)
rec('getxattr size query', cerr(libc.getxattr(x.encode(), b'user.a', None, 0)))
rec('getxattr ERANGE', cerr(libc.getxattr(x.encode(), b'user.a', buf, 1)))
rec('getxattr exact size', cerr(libc.getxattr(x.encode(), b'user.a', buf, 2)))
rec('getxattr size query empty value', cerr(libc.getxattr(x.encode(), b'user.e', None, 0)))
rec('listxattr size query', cerr(libc.listxattr(x.encode(), None, 0)))
rec('listxattr ERANGE', cerr(libc.listxattr(x.encode(), buf, 3)))
rec('getxattr missing', cerr(libc.getxattr(x.encode(), b'user.zz', None, 0)))
rec('xattr 64KiB value', err(lambda: (os.setxattr(x, 'user.big', b'v' * 65536), len(os.getxattr(x, 'user.big')))[1]))
rec('xattr 64KiB+1 value', err(lambda: os.setxattr(x, 'user.big2', b'v' * 65537)))
rec('xattr 255-byte name', err(lambda: os.setxattr(x, 'user.' + 'n' * 250, b'1')))
rec('xattr 256-byte name', err(lambda: os.setxattr(x, 'user.' + 'n' * 251, b'1')))
rec('xattr empty name', err(lambda: os.setxattr(x, '', b'1')))
for bare in ('user.', 'trusted.', 'security.', 'system.', 'system.foo'):
    rec(f'xattr name {bare!r} set/get/remove', (err(lambda: os.setxattr(x, bare, b'1')), err(lambda: os.getxattr(x, bare)), err(lambda: os.removexattr(x, bare))))
rec('xattr unknown namespace', err(lambda: os.setxattr(x, 'foo.bar', b'1')))
rec('removexattr missing', err(lambda: os.removexattr(x, 'user.zz')))
rec('listxattr', sorted(n for n in os.listxattr(x) if n.startswith('user.') and len(n) < 40))
os.removexattr(x, 'user.big')
os.mkfifo(j('fifo'))
rec('user xattr on fifo', err(lambda: os.setxattr(j('fifo'), 'user.a', b'1')))
rec('trusted xattr on fifo', err(lambda: (os.setxattr(j('fifo'), 'trusted.a', b'1'), os.getxattr(j('fifo'), 'trusted.a'))[1]))
os.symlink('xf', j('xl'))
rec('user xattr on symlink (nofollow)', err(lambda: os.setxattr(j('xl'), 'user.a', b'1', follow_symlinks=False)))
rec('trusted xattr on symlink', err(lambda: (os.setxattr(j('xl'), 'trusted.a', b'1', follow_symlinks=False), os.getxattr(j('xl'), 'trusted.a', follow_symlinks=False))[1]))
rec('user xattr through symlink', err(lambda: os.getxattr(j('xl'), 'user.a')))
# many attributes: list grows past a page
for i in range(200):
    os.setxattr(x, f'user.attr-{i:04d}-' + 'p' * 40, b'x')
rec('listxattr 200 names size', cerr(libc.listxattr(x.encode(), None, 0)))
rec('listxattr 200 names', len(os.listxattr(x)))
# xattrs change ctime only
st0 = os.stat(x)

# ---- fallocate modes and SEEK_DATA / SEEK_HOLE
FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE, FALLOC_FL_COLLAPSE_RANGE = 1, 2, 8
FALLOC_FL_ZERO_RANGE, FALLOC_FL_INSERT_RANGE = 0x10, 0x20
fa = j('fa')
fd = os.open(fa, os.O_RDWR | os.O_CREAT, 0o644)
os.pwrite(fd, b'A' * 20000, 0)
rec('punch without keep_size', falloc(fd, FALLOC_FL_PUNCH_HOLE, 0, 4096))
rec('punch keep_size', falloc(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 4096, 4096))
rec('after punch', (os.fstat(fd).st_size, os.pread(fd, 3, 4095), os.pread(fd, 2, 8191)))
rec('punch unaligned', falloc(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 100, 50))
rec('after unaligned punch', os.pread(fd, 60, 95))
rec('punch past EOF', falloc(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 19000, 5000))
rec('size after punch past EOF', (os.fstat(fd).st_size, os.pread(fd, 2, 18999)))
rec('keep_size past EOF', falloc(fd, FALLOC_FL_KEEP_SIZE, 30000, 1000))
rec('size after keep_size', os.fstat(fd).st_size)
rec('mode 0 past EOF', falloc(fd, 0, 30000, 1000))
rec('size after mode 0', os.fstat(fd).st_size)
# ZERO_RANGE: ext4 and StrataFS support it, tmpfs does not; where it works it must zero.
zr = falloc(fd, FALLOC_FL_ZERO_RANGE, 10, 10)
rec('zero range', 'ok-or-unsupported' if zr in ('ok', 'ENOTSUP', 'EOPNOTSUPP') else zr)
if zr == 'ok' and os.pread(fd, 12, 9) != b'A' + bytes(10) + b'A':
    rec('zero range content', os.pread(fd, 12, 9))
rec('collapse range', falloc(fd, FALLOC_FL_COLLAPSE_RANGE, 0, 4096) in ('EOPNOTSUPP', 'EINVAL'))
rec('insert range', falloc(fd, FALLOC_FL_INSERT_RANGE, 0, 4096) in ('EOPNOTSUPP', 'EINVAL'))
rec('fallocate negative offset', falloc(fd, 0, -1, 10))
rec('fallocate zero length', falloc(fd, 0, 0, 0))
rec('fallocate unknown mode', falloc(fd, 0x4000, 0, 10))
rofd = os.open(fa, os.O_RDONLY)
rec('fallocate on O_RDONLY', falloc(rofd, 0, 0, 10))
os.close(rofd)
apfd = os.open(fa, os.O_WRONLY | os.O_APPEND)
rec('punch on O_APPEND', falloc(apfd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, 10))
os.close(apfd)
os.close(fd)
# Past 2^53 bytes StrataFS answers EFBIG (docs/RELIABILITY.md) where tmpfs goes on to 2^63 - 1;
# any other answer (EINVAL over RPC) is a mismatch.
fd = os.open(j('huge'), os.O_RDWR | os.O_CREAT, 0o644)
os.write(fd, b'abc')
big = lambda r: 'ok-or-EFBIG' if r in ('ok', 0, 3, 'EFBIG') else r
rec('ftruncate to 2^62', big(err(lambda: os.ftruncate(fd, 1 << 62))))
rec('fallocate at 2^62', big(falloc(fd, 0, 1 << 62, 10)))
rec('punch at 2^62', big(falloc(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 1 << 62, 10)))
rec('copy_file_range to 2^62', big(err(lambda: os.copy_file_range(fd, fd, 3, 0, 1 << 62))))
rec('pwrite at 2^60', big(err(lambda: os.pwrite(fd, b'x', 1 << 60)) and 'ok'))
os.close(fd)
# SEEK_DATA/SEEK_HOLE: only the rules every file system keeps (tmpfs reports holes
# exactly, a file system may report all data); checked: ENXIO past EOF, hole at EOF.
sk = j('sk')
fd = os.open(sk, os.O_RDWR | os.O_CREAT, 0o644)
os.pwrite(fd, b'D' * 100, 1 << 20)
size = os.fstat(fd).st_size
rec('seek_data past EOF', err(lambda: os.lseek(fd, size + 1, os.SEEK_DATA)))
rec('seek_hole past EOF', err(lambda: os.lseek(fd, size + 1, os.SEEK_HOLE)))
rec('seek_data at EOF', err(lambda: os.lseek(fd, size, os.SEEK_DATA)))
rec('seek_hole at EOF', err(lambda: os.lseek(fd, size, os.SEEK_HOLE) == size))
rec('seek_hole last byte', err(lambda: os.lseek(fd, size - 1, os.SEEK_HOLE) == size))
rec('seek_data last byte', err(lambda: os.lseek(fd, size - 1, os.SEEK_DATA) == size - 1))
rec('seek_data negative', err(lambda: os.lseek(fd, -1, os.SEEK_DATA)))
rec('seek_data empty file', err(lambda: os.lseek(os.open(j('f3'), os.O_RDONLY), 0, os.SEEK_DATA)))
os.close(fd)

# ---- copy_file_range edges
cs = j('cs')
with open(cs, 'wb') as fh:
    fh.write(bytes(range(256)) * 64)  # 16 KiB
fs = os.open(cs, os.O_RDWR)
rec('cfr same file overlap', err(lambda: os.copy_file_range(fs, fs, 4096, 0, 100)))
rec('cfr same file no overlap', err(lambda: os.copy_file_range(fs, fs, 100, 0, 8192)))
rec('cfr same file result', os.pread(fs, 4, 8190))
ct = j('ct')
ft = os.open(ct, os.O_RDWR | os.O_CREAT, 0o644)
rec('cfr zero length', err(lambda: os.copy_file_range(fs, ft, 0, 0, 0)))
rec('cfr past EOF', err(lambda: os.copy_file_range(fs, ft, 100, 1 << 20, 0)))
rec('cfr straddling EOF', err(lambda: os.copy_file_range(fs, ft, 1000, 16000, 0)))
rec('cfr unaligned', err(lambda: os.copy_file_range(fs, ft, 777, 13, 5001)))
rec('cfr dest content', (os.fstat(ft).st_size, os.pread(ft, 4, 5000), os.pread(ft, 4, 5777)))
rec('cfr negative offset', err(lambda: os.copy_file_range(fs, ft, 1, -1, 0)))
fap = os.open(ct, os.O_WRONLY | os.O_APPEND)
rec('cfr to O_APPEND', err(lambda: os.copy_file_range(fs, fap, 10)))
os.close(fap)
fro = os.open(ct, os.O_RDONLY)
rec('cfr to O_RDONLY', err(lambda: os.copy_file_range(fs, fro, 10)))
fwo = os.open(cs, os.O_WRONLY)
rec('cfr from O_WRONLY', err(lambda: os.copy_file_range(fwo, ft, 10)))
os.close(fwo)
os.close(fro)
rec('cfr from dir', err(lambda: os.copy_file_range(os.open(d, os.O_RDONLY), ft, 10)))
rec('cfr file offsets', (os.lseek(fs, 0, os.SEEK_CUR), os.lseek(ft, 0, os.SEEK_CUR)))
rec('cfr using file offset', err(lambda: (os.lseek(fs, 10, 0), os.copy_file_range(fs, ft, 20), os.lseek(fs, 0, 1), os.lseek(ft, 0, 1))[1:]))
os.close(fs)
os.close(ft)

# ---- O_APPEND as the descriptor has it at each write (fcntl F_SETFL changes it)
import fcntl
fd = os.open(j('apx'), os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
os.write(fd, b'12345')
os.pwrite(fd, b'AB', 0)
rec('pwrite on O_APPEND appends', os.pread(fd, 20, 0))
fcntl.fcntl(fd, fcntl.F_SETFL, 0)
os.pwrite(fd, b'Z', 0)
rec('pwrite after F_SETFL cleared O_APPEND', os.pread(fd, 20, 0))
os.lseek(fd, 1, os.SEEK_SET)
os.write(fd, b'Y')
rec('write after F_SETFL cleared O_APPEND', os.pread(fd, 20, 0))
fcntl.fcntl(fd, fcntl.F_SETFL, os.O_APPEND)
os.pwrite(fd, b'C', 0)
rec('pwrite after F_SETFL set O_APPEND', os.pread(fd, 20, 0))
os.close(fd)
fd = os.open(j('apx'), os.O_WRONLY)
os.pwritev(fd, [b'D'], 0, os.RWF_APPEND)
rec('pwritev2 RWF_APPEND', open(j('apx'), 'rb').read())
os.pwritev(fd, [b'E'], 1, os.RWF_DSYNC)
rec('pwritev2 RWF_DSYNC', open(j('apx'), 'rb').read())
os.close(fd)

# ---- O_DIRECT, O_SYNC
od = j('od')
fd = os.open(od, os.O_RDWR | os.O_CREAT | os.O_DIRECT, 0o644)
m = mmap.mmap(-1, 8192)
m.write(b'Z' * 8192)
rec('odirect aligned write', err(lambda: os.pwrite(fd, m, 0)))
rec('odirect unaligned offset write', err(lambda: os.pwrite(fd, b'q' * 100, 7)))
rec('odirect unaligned read', err(lambda: os.pread(fd, 10, 3)))
rec('odirect read past EOF', err(lambda: len(os.pread(fd, 4096, 8192 + 4096))))
os.close(fd)
fd = os.open(od, os.O_RDWR | os.O_SYNC | os.O_DSYNC)
rec('osync write', err(lambda: os.pwrite(fd, b'sync', 1)))
os.close(fd)
rec('odirect content', open(od, 'rb').read()[:12])

# ---- mmap past EOF, truncate under a mapping
mp = j('mp')
with open(mp, 'wb') as fh:
    fh.write(b'M' * 8192)
fd = os.open(mp, os.O_RDWR)
mm = mmap.mmap(fd, 8192)
os.ftruncate(fd, 100)
rd, wr = os.pipe()
pid = os.fork()
if pid == 0:
    signal.signal(signal.SIGBUS, signal.SIG_DFL)
    try:
        v = mm[5000]
        os.write(wr, b'read')
    except Exception as e:
        os.write(wr, type(e).__name__.encode())
    os._exit(0)
_, status = os.waitpid(pid, 0)
rec('mmap read past EOF after truncate', 'SIGBUS' if os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGBUS else os.read(rd, 100))
rec('mmap within EOF after truncate', (mm[0:3], mm[99:101]))
os.ftruncate(fd, 8192)
rec('mmap after regrow', mm[100:103])
mm[8000:8003] = b'xyz'
mm.flush()
rec('msync then read', os.pread(fd, 3, 8000))
os.pwrite(fd, b'WWW', 10)
rec('write then mmap read', mm[10:13])
mm.close()
os.close(fd)

# ---- path limits and trailing slashes
n255 = 'n' * 255
rec('create 255-byte name', err(lambda: os.close(os.open(j(n255), os.O_CREAT | os.O_WRONLY, 0o644))))
rec('create 256-byte name', err(lambda: os.open(j(n255 + 'n'), os.O_CREAT | os.O_WRONLY, 0o644)))
rec('symlink 4095-byte target', err(lambda: (os.symlink('t' * 4095, j('lt')), len(os.readlink(j('lt'))))[1]))
rec('symlink 4096-byte target', err(lambda: os.symlink('t' * 4096, j('lt2'))))
os.symlink('loop1', j('loop2'))
os.symlink('loop2', j('loop1'))
rec('symlink loop', err(lambda: os.stat(j('loop1'))))
rec('open file/', err(lambda: os.open(j('f3') + '/', os.O_RDONLY)))
rec('open creat file/', err(lambda: os.open(j('new') + '/', os.O_RDWR | os.O_CREAT, 0o644)))
rec('stat file/', err(lambda: os.stat(j('f3') + '/') and 'ok'))
rec('mkdir d/', err(lambda: os.mkdir(j('md') + '/')))
rec('rmdir d/', err(lambda: os.rmdir(j('md') + '/')))
rec('unlink file/', err(lambda: os.unlink(j('f3') + '/')))
rec('symlink to dir/ followed', err(lambda: (os.symlink('e2', j('tod')), os.path.isdir(j('tod') + '/'))[1]))
rec('unlink symlink-to-dir/', err(lambda: os.unlink(j('tod') + '/')))
rec('rmdir symlink-to-dir/', err(lambda: os.rmdir(j('tod') + '/')))
rec('rename symlink-to-dir/', err(lambda: os.rename(j('tod') + '/', j('tod2'))))
rec('mkdir existing', err(lambda: os.mkdir(j('e2'))))
rec('rmdir .', err(lambda: os.rmdir(j('e2') + '/.')))
rec('rmdir ..', err(lambda: os.rmdir(j('e2') + '/..')))
rec('mkdir over dangling symlink', err(lambda: (os.symlink('nowhere', j('dang')), os.mkdir(j('dang')))[1]))
rec('open creat over dangling symlink', err(lambda: (os.close(os.open(j('dang'), os.O_CREAT | os.O_WRONLY, 0o644)), os.path.isfile(j('nowhere')))[1]))
# a removed directory that is only a working directory: Linux keeps the inode (nlink 0)
os.mkdir(j('cwd'))
here = os.open('.', os.O_RDONLY | os.O_DIRECTORY)
os.chdir(j('cwd'))
os.rmdir(j('cwd'))
rec('stat . of removed cwd', err(lambda: os.stat('.').st_nlink))
rec('listdir . of removed cwd', err(lambda: os.listdir('.')))
rec('create in removed cwd', err(lambda: open('x', 'w')))
os.fchdir(here)
os.close(here)
deep = d
depth = 0
while len(deep) + 256 < 4095:
    deep = os.path.join(deep, 'd' * 250)
    os.mkdir(deep)
    depth += 1
tail = 'x' * (4095 - len(deep) - 2)
rec('path of 4095 bytes', err(lambda: (os.close(os.open(os.path.join(deep, tail), os.O_CREAT | os.O_WRONLY)), 'ok')[1]))
rec('path of 4096 bytes', err(lambda: os.open(os.path.join(deep, tail + 'x'), os.O_CREAT | os.O_WRONLY)))
rec('done', depth > 0)
