# A conformance probe run on a StrataFS mount and on tmpfs; posix-probe.test.ts compares the
# two outputs line by line. Each line is "check: result" for one rule a POSIX suite checks:
# fcntl byte-range locks (F_GETLK answers, splitting, merging, upgrade/downgrade, release on
# any close, flock apart from fcntl, OFD locks), open-but-unlinked files and directories,
# readdir under mutation, seekdir, "." and ".." inodes, and timestamps on rename and futimens.
# Run as root: forked children switch to uid 65534. Linux-only differences StrataFS accepts
# (no fcntl deadlock detection, noatime, SEEK_END on a directory) are left out; see
# docs/RELIABILITY.md.
import os, sys, fcntl, struct, time, errno, mmap, ctypes, ctypes.util
import signal
# A forked child that fails leaves its parent waiting on a pipe: end the whole probe instead.
signal.alarm(60)
base = sys.argv[1]
def rec(k, v): print(f"{k}: {v}", flush=True)
def err(f):
    try:
        r = f(); return r
    except OSError as e:
        return errno.errorcode.get(e.errno, e.errno)
d = os.path.join(base, 'p'); os.mkdir(d)
# ---- locks
f = os.path.join(d, 'lk'); fd = os.open(f, os.O_RDWR|os.O_CREAT, 0o644); os.write(fd, b'x'*1000)
FL = 'hhqqi'  # struct flock: l_type, l_whence, l_start, l_len, l_pid
def flk(t, s, l, w=0): return struct.pack(FL, t, w, s, l, 0)
def getlk(fd, t, s, l, cmd=fcntl.F_GETLK):
    r = fcntl.fcntl(fd, cmd, flk(t, s, l)); t2, w, s2, l2, p = struct.unpack(FL, r); return (t2, s2, l2, p)
rd, wr = os.pipe(); rd2, wr2 = os.pipe()
pid = os.fork()
if pid == 0:
    cfd = os.open(f, os.O_RDWR)
    fcntl.fcntl(cfd, fcntl.F_SETLK, flk(fcntl.F_WRLCK, 100, 100))   # [100,200)
    fcntl.fcntl(cfd, fcntl.F_SETLK, flk(fcntl.F_RDLCK, 300, 0))     # [300,inf)
    fcntl.fcntl(cfd, fcntl.F_SETLK, flk(fcntl.F_UNLCK, 140, 20))    # split -> [100,140) [160,200)
    os.write(wr, b'1'); os.read(rd2, 1)
    fcntl.fcntl(cfd, fcntl.F_SETLK, flk(fcntl.F_WRLCK, 140, 20))    # merge back
    fcntl.fcntl(cfd, fcntl.F_SETLK, flk(fcntl.F_RDLCK, 100, 100))   # downgrade
    os.write(wr, b'2'); os.read(rd2, 1)
    fcntl.fcntl(cfd, fcntl.F_SETLK, flk(fcntl.F_WRLCK, 100, 100))   # upgrade
    other = os.open(f, os.O_RDONLY); os.close(other)                # any close drops all locks
    os.write(wr, b'3'); os.read(rd2, 1)
    os._exit(0)
os.read(rd, 1)
me = os.getpid()
def show(t): return (t[0], t[1], t[2], 'child' if t[3] == pid else ('none' if t[3] == 0 else ('me' if t[3]==me else t[3])))
rec('getlk w 0-50', show(getlk(fd, fcntl.F_WRLCK, 0, 50)))
rec('getlk w 0-0', show(getlk(fd, fcntl.F_WRLCK, 0, 0)))
rec('getlk w 140-20 (hole)', show(getlk(fd, fcntl.F_WRLCK, 140, 20)))
rec('getlk w 150-20', show(getlk(fd, fcntl.F_WRLCK, 150, 20)))
rec('getlk r 150-20', show(getlk(fd, fcntl.F_RDLCK, 150, 20)))
rec('getlk w 250-100', show(getlk(fd, fcntl.F_WRLCK, 250, 100)))
rec('getlk r 1000-5', show(getlk(fd, fcntl.F_RDLCK, 1000, 5)))
rec('getlk w 1000-5', show(getlk(fd, fcntl.F_WRLCK, 1000, 5)))
rec('setlk w 150-1', err(lambda: fcntl.fcntl(fd, fcntl.F_SETLK, flk(fcntl.F_WRLCK, 150, 1)) and 'ok'))
rec('setlk w 145-1', err(lambda: fcntl.fcntl(fd, fcntl.F_SETLK, flk(fcntl.F_WRLCK, 145, 1)) and 'ok'))
rec('setlk r 500-1', err(lambda: fcntl.fcntl(fd, fcntl.F_SETLK, flk(fcntl.F_RDLCK, 500, 1)) and 'ok'))
rec('getlk whence=cur', err(lambda: (os.lseek(fd, 120, 0), show(getlk(fd, fcntl.F_WRLCK, 0, 1)))[1]))
fcntl.fcntl(fd, fcntl.F_SETLK, flk(fcntl.F_UNLCK, 0, 0))
os.write(wr2, b'x'); os.read(rd, 1)
rec('after merge getlk w 140-20', show(getlk(fd, fcntl.F_WRLCK, 140, 20)))
rec('after downgrade getlk w 0-0', show(getlk(fd, fcntl.F_WRLCK, 0, 0)))
rec('after downgrade getlk r 0-0', show(getlk(fd, fcntl.F_RDLCK, 0, 0)))
os.write(wr2, b'x'); os.read(rd, 1)
rec('after close getlk w 0-0', show(getlk(fd, fcntl.F_WRLCK, 0, 0)))
os.write(wr2, b'x'); os.waitpid(pid, 0)
# flock vs fcntl independence
fcntl.flock(fd, fcntl.LOCK_EX)
pid = os.fork()
if pid == 0:
    c = os.open(f, os.O_RDWR)
    a = err(lambda: fcntl.fcntl(c, fcntl.F_SETLK, flk(fcntl.F_WRLCK, 0, 0)) and 'ok')
    b = err(lambda: fcntl.flock(c, fcntl.LOCK_EX|fcntl.LOCK_NB) or 'ok')
    os.write(wr, f"{a} {b}".encode()); os._exit(0)
rec('flock held: child fcntl, child flock', os.read(rd, 100).decode()); os.waitpid(pid, 0)
fcntl.flock(fd, fcntl.LOCK_UN)
# OFD locks
F_OFD_GETLK, F_OFD_SETLK = 36, 37
fa = os.open(f, os.O_RDWR); fb = os.open(f, os.O_RDWR)
rec('ofd setlk a', err(lambda: fcntl.fcntl(fa, F_OFD_SETLK, flk(fcntl.F_WRLCK, 0, 10)) and 'ok'))
rec('ofd setlk b conflict', err(lambda: fcntl.fcntl(fb, F_OFD_SETLK, flk(fcntl.F_WRLCK, 5, 10)) and 'ok'))
rec('ofd getlk b', err(lambda: getlk(fb, fcntl.F_WRLCK, 5, 10, F_OFD_GETLK)))
rec('posix setlk same proc vs ofd', err(lambda: fcntl.fcntl(fb, fcntl.F_SETLK, flk(fcntl.F_WRLCK, 0, 10)) and 'ok'))
dup = os.dup(fa); os.close(dup)
rec('ofd lock kept after closing a dup', getlk(fb, fcntl.F_WRLCK, 0, 10, F_OFD_GETLK)[0])
os.close(fa)
rec('ofd lock gone with its last descriptor', getlk(fb, fcntl.F_WRLCK, 0, 10, F_OFD_GETLK)[0])
os.close(fb); os.close(fd)
# ---- unlinked open files
f = os.path.join(d, 'ul'); fd = os.open(f, os.O_RDWR|os.O_CREAT, 0o644); os.write(fd, b'hello'*1000)
os.unlink(f)
st = os.fstat(fd); rec('unlinked nlink size', (st.st_nlink, st.st_size))
os.pwrite(fd, b'WORLD', 2); rec('unlinked read', os.pread(fd, 10, 0))
os.ftruncate(fd, 3); rec('unlinked ftruncate size', os.fstat(fd).st_size)
os.fchmod(fd, 0o600); rec('unlinked fchmod', oct(os.fstat(fd).st_mode))
rec('unlinked fsync', err(lambda: os.fsync(fd) or 'ok'))
rec('unlinked fchown', err(lambda: os.fchown(fd, 1, 1) or os.fstat(fd).st_uid))
rec('unlinked setxattr', err(lambda: os.setxattr(fd, 'user.a', b'1') or os.getxattr(fd, 'user.a')))
rec('unlinked futimens', err(lambda: os.utime(fd, ns=(5, 7)) or (os.fstat(fd).st_atime_ns, os.fstat(fd).st_mtime_ns)))
rec('link from /proc fd', err(lambda: os.link(f'/proc/self/fd/{fd}', os.path.join(d, 'relinked'), follow_symlinks=True) or 'ok'))
os.close(fd)
# rename-over
a = os.path.join(d, 'ra'); b = os.path.join(d, 'rb')
open(a, 'w').write('AAA'); open(b, 'w').write('BBB')
fd = os.open(b, os.O_RDWR); os.rename(a, b)
st = os.fstat(fd); rec('renamed-over nlink', st.st_nlink); rec('renamed-over read', os.pread(fd, 10, 0))
os.pwrite(fd, b'Z', 0); rec('renamed-over target content', open(b).read()); os.close(fd)
# rmdir'ed dir still open
sd = os.path.join(d, 'sd'); os.mkdir(sd); dfd = os.open(sd, os.O_RDONLY|os.O_DIRECTORY); os.rmdir(sd)
rec('rmdir open listdir', err(lambda: sorted(os.listdir(dfd))))
rec('rmdir open fstat nlink', os.fstat(dfd).st_nlink)
rec('rmdir open openat create', err(lambda: os.open('x', os.O_CREAT|os.O_RDWR, 0o644, dir_fd=dfd) and 'ok'))
rec('rmdir open mkdirat', err(lambda: os.mkdir('x', dir_fd=dfd) or 'ok'))
os.close(dfd)
# space reclaimed
sv = os.statvfs(base)
f = os.path.join(d, 'big'); fd = os.open(f, os.O_RDWR|os.O_CREAT, 0o644); os.write(fd, b'\1'*(8<<20)); os.fsync(fd)
used1 = os.statvfs(base); os.unlink(f)
used2 = os.statvfs(base); os.close(fd); time.sleep(1)
used3 = os.statvfs(base)
def used(s): return (s.f_blocks - s.f_bfree) * s.f_frsize
rec('space: written >= 8MiB', used(used1) - used(sv) >= 8<<20)
rec('space: still held while open', used(used2) - used(sv) >= 8<<20)
rec('space: freed after close', used(used3) - used(sv) < 1<<20)
rec('files: freed after close', sv.f_ffree == used3.f_ffree)
# ---- readdir
rd_ = os.path.join(d, 'rd'); os.mkdir(rd_)
for i in range(300): open(os.path.join(rd_, f'f{i:04d}'), 'w').close()
libc = ctypes.CDLL(ctypes.util.find_library('c'), use_errno=True)
class Dirent(ctypes.Structure):
    _fields_ = [('d_ino', ctypes.c_uint64), ('d_off', ctypes.c_int64), ('d_reclen', ctypes.c_ushort), ('d_type', ctypes.c_ubyte), ('d_name', ctypes.c_char*256)]
libc.opendir.restype = ctypes.c_void_p; libc.readdir.restype = ctypes.POINTER(Dirent); libc.readdir.argtypes = [ctypes.c_void_p]
libc.telldir.restype = ctypes.c_long; libc.telldir.argtypes = [ctypes.c_void_p]; libc.seekdir.argtypes = [ctypes.c_void_p, ctypes.c_long]
libc.closedir.argtypes = [ctypes.c_void_p]; libc.rewinddir.argtypes = [ctypes.c_void_p]
def readn(dp, n):
    r = []
    for _ in range(n):
        e = libc.readdir(dp)
        if not e: break
        r.append(e.contents.d_name.decode())
    return r
dp = libc.opendir(rd_.encode())
first = readn(dp, 50)
# remove some not yet seen and some seen; create new
seen = set(first)
removed = [f'f{i:04d}' for i in range(0, 300, 7)]
for n in removed: os.unlink(os.path.join(rd_, n))
for i in range(50): open(os.path.join(rd_, f'g{i:03d}'), 'w').close()
rest = readn(dp, 100000)
allnames = first + rest
dups = [n for n in set(allnames) if allnames.count(n) > 1]
surviving = set(f'f{i:04d}' for i in range(300)) - set(removed)
missing = surviving - set(allnames)
rec('readdir mutation dups', sorted(dups)); rec('readdir mutation missing survivors', len(missing))
# telldir/seekdir
libc.rewinddir(dp)
readn(dp, 10); pos = libc.telldir(dp); after = readn(dp, 5)
readn(dp, 100); libc.seekdir(dp, pos); again = readn(dp, 5)
rec('seekdir back same names', after == again)
libc.closedir(dp)
# lseek on dir fd with getdents via os.scandir is hard; use os.listdir after lseek(0)
# dot dot inos
a1 = os.path.join(d, 'A'); b1 = os.path.join(d, 'B'); os.makedirs(os.path.join(a1, 'sub')); os.mkdir(b1)
def dotinos(p):
    r = {}
    with os.scandir(p) as it: pass
    dp = libc.opendir(p.encode()); 
    while True:
        e = libc.readdir(dp)
        if not e: break
        nm = e.contents.d_name.decode()
        if nm in ('.', '..'): r[nm] = e.contents.d_ino
    libc.closedir(dp); return r
x = dotinos(os.path.join(a1, 'sub'))
rec('sub . ino ok', x.get('.') == os.stat(os.path.join(a1, 'sub')).st_ino)
rec('sub .. ino ok', x.get('..') == os.stat(a1).st_ino)
rec('sub stat .. ok', os.stat(os.path.join(a1, 'sub', '..')).st_ino == os.stat(a1).st_ino)
os.rename(os.path.join(a1, 'sub'), os.path.join(b1, 'sub'))
x = dotinos(os.path.join(b1, 'sub'))
rec('moved sub .. ino ok', x.get('..') == os.stat(b1).st_ino)
rec('moved sub stat .. ok', os.stat(os.path.join(b1, 'sub', '..')).st_ino == os.stat(b1).st_ino)
rec('nlink A B after move', (os.stat(a1).st_nlink, os.stat(b1).st_nlink))
x = dotinos(base)
rec('base . ino ok', x.get('.') == os.stat(base).st_ino)
# ---- times
f = os.path.join(d, 't'); open(f, 'w').write('data')
os.utime(f, ns=(1_000_000_123, 2_000_000_456789 % 10**9 + 2*10**9))
st = os.stat(f); rec('utimensat ns roundtrip', (st.st_atime_ns, st.st_mtime_ns))
os.utime(f, ns=(-1_500_000_001, 2**40 * 10**9 + 999_999_999))
st = os.stat(f); rec('utimensat negative/large', (st.st_atime_ns, st.st_mtime_ns))
def futimens_as_nobody():
    # explicit times, then UTIME_NOW, through an O_RDONLY fd, as uid/gid 65534
    pid = os.fork()
    if pid == 0:
        os.setgid(65534); os.setuid(65534)
        fd = os.open(f, os.O_RDONLY)
        r1 = err(lambda: os.utime(fd, ns=(3_000_000_001, 4_000_000_002)) or 'ok')
        r2 = err(lambda: os.utime(fd) or 'ok')
        os.write(wr, f'{r1} {r2}'.encode()); os._exit(0)
    result = os.read(rd, 100).decode(); os.waitpid(pid, 0)
    return result
os.chmod(f, 0o444); os.chown(f, 65534, 65534)
rec('futimens on O_RDONLY fd by owner', futimens_as_nobody())
os.chown(f, 0, 0)
rec('futimens on O_RDONLY fd by non-owner no write perm', futimens_as_nobody())
# rename dir times
s1 = os.path.join(d, 'S'); t1 = os.path.join(d, 'T'); os.mkdir(s1); os.mkdir(t1)
open(os.path.join(s1, 'x'), 'w').close(); os.mkdir(os.path.join(s1, 'dd'))
for p in (s1, t1, os.path.join(s1, 'x'), os.path.join(s1, 'dd')): os.utime(p, ns=(10**9, 10**9))
def times(p): s = os.stat(p); return (s.st_mtime_ns != 10**9, s.st_ctime_ns)
c_before = {p: os.stat(p).st_ctime_ns for p in (s1, t1, os.path.join(s1, 'x'), os.path.join(s1, 'dd'))}
time.sleep(0.02)
os.rename(os.path.join(s1, 'x'), os.path.join(t1, 'x')); os.rename(os.path.join(s1, 'dd'), os.path.join(t1, 'dd'))
def ch(p, q): s = os.stat(q); return (s.st_mtime_ns != 10**9, s.st_ctime_ns != c_before[p], s.st_atime_ns != 10**9)
rec('rename src dir (mtime,ctime,atime changed)', ch(s1, s1)); rec('rename dst dir', ch(t1, t1))
rec('renamed file', ch(os.path.join(s1, 'x'), os.path.join(t1, 'x'))); rec('renamed dir', ch(os.path.join(s1, 'dd'), os.path.join(t1, 'dd')))


# ---- round 2 probe, part 2
d = os.path.join(base, 'q'); os.mkdir(d)
FL='hhqqi'
def flk(t, s, l, w=0): return struct.pack(FL, t, w, s, l, 0)
f = os.path.join(d, 'lk'); fd = os.open(f, os.O_RDWR|os.O_CREAT, 0o644)
ro = os.open(f, os.O_RDONLY); wo = os.open(f, os.O_WRONLY)
rec('wrlck on O_RDONLY', err(lambda: fcntl.fcntl(ro, fcntl.F_SETLK, flk(fcntl.F_WRLCK, 0, 1)) and 'ok'))
rec('rdlck on O_WRONLY', err(lambda: fcntl.fcntl(wo, fcntl.F_SETLK, flk(fcntl.F_RDLCK, 0, 1)) and 'ok'))
rec('negative start', err(lambda: fcntl.fcntl(fd, fcntl.F_SETLK, flk(fcntl.F_WRLCK, -5, 1)) and 'ok'))
rec('negative len', err(lambda: fcntl.fcntl(fd, fcntl.F_SETLK, flk(fcntl.F_WRLCK, 10, -5)) and 'ok'))
rec('getlk negative len (own)', err(lambda: struct.unpack(FL, fcntl.fcntl(fd, fcntl.F_GETLK, flk(fcntl.F_WRLCK, 10, -5)))))
rec('bad type', err(lambda: fcntl.fcntl(fd, fcntl.F_SETLK, flk(7, 0, 1)) and 'ok'))
rec('whence end', err(lambda: fcntl.fcntl(fd, fcntl.F_SETLK, flk(fcntl.F_WRLCK, 0, 0, 2)) and 'ok'))
fcntl.fcntl(fd, fcntl.F_SETLK, flk(fcntl.F_UNLCK, 0, 0))
# child sees parent lock from whence end, pid
os.write(fd, b'a'*100)
fcntl.fcntl(fd, fcntl.F_SETLK, flk(fcntl.F_WRLCK, -10, 5, 2))   # [90,95)
rd, wr = os.pipe()
pid = os.fork()
if pid == 0:
    c = os.open(f, os.O_RDWR)
    r = struct.unpack(FL, fcntl.fcntl(c, fcntl.F_GETLK, flk(fcntl.F_WRLCK, 0, 0)))
    e = err(lambda: fcntl.fcntl(c, fcntl.F_SETLK, flk(fcntl.F_RDLCK, 92, 1)) and 'ok')
    # fork doesn't inherit: child's own getlk on parent's range using inherited fd
    r2 = struct.unpack(FL, fcntl.fcntl(fd, fcntl.F_GETLK, flk(fcntl.F_WRLCK, 90, 1)))
    os.write(wr, repr((r[0], r[1], r[2], r[3], r[4] == os.getppid(), e, r2[0], r2[4]==os.getppid())).encode()); os._exit(0)
rec('child sees end-relative lock', os.read(rd, 200).decode()); os.waitpid(pid, 0)
fcntl.fcntl(fd, fcntl.F_SETLK, flk(fcntl.F_UNLCK, 0, 0))
# flock: upgrade/downgrade, shared by two, dup'd fd shares flock
fcntl.flock(fd, fcntl.LOCK_SH)
pid = os.fork()
if pid == 0:
    c = os.open(f, os.O_RDONLY)
    a = err(lambda: fcntl.flock(c, fcntl.LOCK_SH|fcntl.LOCK_NB) or 'ok')
    b = err(lambda: fcntl.flock(c, fcntl.LOCK_EX|fcntl.LOCK_NB) or 'ok')
    # inherited fd shares the open file description's flock: converting to EX works? parent holds SH via same ofd
    os.write(wr, f'{a} {b}'.encode()); os._exit(0)
rec('flock sh+sh, sh->ex blocked', os.read(rd, 100).decode()); os.waitpid(pid, 0)
dup = os.dup(fd); os.close(dup)
pid = os.fork()
if pid == 0:
    c = os.open(f, os.O_RDONLY)
    os.write(wr, str(err(lambda: fcntl.flock(c, fcntl.LOCK_EX|fcntl.LOCK_NB) or 'ok')).encode()); os._exit(0)
rec('flock survives close of dup', os.read(rd, 100).decode()); os.waitpid(pid, 0)
fcntl.flock(fd, fcntl.LOCK_EX)  # upgrade
pid = os.fork()
if pid == 0:
    c = os.open(f, os.O_RDONLY)
    os.write(wr, str(err(lambda: fcntl.flock(c, fcntl.LOCK_SH|fcntl.LOCK_NB) or 'ok')).encode()); os._exit(0)
rec('flock upgraded ex blocks sh', os.read(rd, 100).decode()); os.waitpid(pid, 0)
pid = os.fork()
if pid == 0:
    # child inherited fd: same ofd; LOCK_UN from child releases it
    fcntl.flock(fd, fcntl.LOCK_UN); os._exit(0)
os.waitpid(pid, 0)
pid = os.fork()
if pid == 0:
    c = os.open(f, os.O_RDONLY)
    os.write(wr, str(err(lambda: fcntl.flock(c, fcntl.LOCK_EX|fcntl.LOCK_NB) or 'ok')).encode()); os._exit(0)
rec('flock unlocked by child through shared ofd', os.read(rd, 100).decode()); os.waitpid(pid, 0)
# mmap of unlinked file
g = os.path.join(d, 'm'); gfd = os.open(g, os.O_RDWR|os.O_CREAT, 0o644); os.ftruncate(gfd, 8192)
m = mmap.mmap(gfd, 8192); os.unlink(g); m[0:3] = b'abc'; m.flush(); rec('mmap unlinked', os.pread(gfd, 3, 0)); m.close()
os.write(gfd, b'z'*(3<<20)); rec('unlinked big write size', os.fstat(gfd).st_size); rec('unlinked pread far', os.pread(gfd, 2, (3<<20)-1))
os.close(gfd)
# rename-over with target opened, and stat via /proc
a = os.path.join(d, 'a'); b = os.path.join(d, 'b'); open(a,'w').write('A'); open(b,'w').write('B')
bfd = os.open(b, os.O_RDONLY); c0 = os.fstat(bfd).st_ctime_ns; time.sleep(0.02); os.rename(a, b)
st = os.fstat(bfd); rec('replaced target nlink, ctime changed', (st.st_nlink, st.st_ctime_ns != c0)); os.close(bfd)
# unlink of one of two links: ctime
h1 = os.path.join(d, 'h1'); h2 = os.path.join(d, 'h2'); open(h1,'w').close(); os.link(h1, h2)
c0 = os.stat(h1).st_ctime_ns; time.sleep(0.02); os.unlink(h2); rec('unlink other link changes ctime', os.stat(h1).st_ctime_ns != c0)
# readdir entries: d_type, d_ino against lstat, ".." against the parent, unique d_off cookies
def ents(p):
    dp = libc.opendir(p.encode()); r = []
    while True:
        e = libc.readdir(dp)
        if not e: break
        r.append((e.contents.d_name.decode(), e.contents.d_ino, e.contents.d_type, e.contents.d_off))
    libc.closedir(dp); return r
e = ents(d)
rec('dir d_types', sorted((n, t) for n, _, t, _ in e))
rec('dir d_ino match stat', all(i == os.lstat(os.path.join(d, n)).st_ino for n, i, _, _ in e if n not in ('.', '..')))
rec('dir .. ino = parent', [i for n, i, _, _ in e if n == '..'][0] == os.stat(base).st_ino)
rec('offs unique', len(set(o for *_, o in e)) == len(e))
# readdir after partial read then rename inside dir
rr = os.path.join(d, 'rr'); os.mkdir(rr)
for i in range(200): open(os.path.join(rr, f'n{i:03d}'), 'w').close()
fdd = os.open(rr, os.O_RDONLY|os.O_DIRECTORY)
# getdents via os.scandir can't seek; use lseek on fd with listdir(fd) which rewinds... skip
os.close(fdd)
# rmdir non-empty while open, then readdir of open dir after all entries removed


# ---- readdir under mutation
d = os.path.join(base, 'r3'); os.mkdir(d)
N = 400
for i in range(N): open(os.path.join(d, f'f{i:05d}'), 'w').close()
for scenario in ('delete-seen', 'delete-unseen', 'create'):
    dp = libc.opendir(d.encode())
    first = readn(dp, 150)
    names = set(os.listdir(d))
    if scenario == 'delete-seen':
        gone = first[20:120]
        for n in gone: os.unlink(os.path.join(d, n))
    elif scenario == 'delete-unseen':
        rest_names = sorted(names - set(first))
        gone = rest_names[::3]
        for n in gone: os.unlink(os.path.join(d, n))
    elif scenario == 'create':
        gone = []
        for i in range(100): open(os.path.join(d, f'{scenario}{i:04d}'), 'w').close()
    else:
        gone = first[:300]
        for n in gone: os.rename(os.path.join(d, n), os.path.join(d, 'R' + n))
    rest = readn(dp, 10**6)
    allnames = first + rest
    surviving = names - set(gone)
    dups = len(allnames) - len(set(allnames))
    missing = surviving - set(allnames)
    rec(f'{scenario}: dups', dups); rec(f'{scenario}: missing', len(missing))
    libc.closedir(dp)
    # restore N files
    for n in os.listdir(d): os.unlink(os.path.join(d, n))
    for i in range(N): open(os.path.join(d, f'f{i:05d}'), 'w').close()
