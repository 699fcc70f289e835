"""Writers that acknowledge like databases do, for databases-crash.test.ts.

Each writer prints `acked N` (flushed) only after what round N wrote is durable by the
promise it relies on; the matching verify command, run after a kill -9 of the mount and a
remount, checks that every acknowledged round is there and nothing is torn.

  sqlite DB MODE          transactions small and large (journal_mode MODE, synchronous=FULL)
  sqlite-verify DB        integrity_check, then each transaction's rows match its summary row
  pages KIND PATH         KIND: mmap (msync), direct (fallocate + O_DIRECT + fdatasync),
                          buffered (sync_file_range, then fdatasync)
  pages-verify PATH N     every page holds its latest round <= N or a later one, never torn
"""
import ctypes
import hashlib
import mmap
import os
import sqlite3
import sys

PAGE = 4096
PAGES = 2048  # 8 MiB files
STRIDE = 37  # round r writes page (r * STRIDE) % PAGES: coprime, so every page is revisited


def acked(n):
    sys.stdout.write(f'acked {n}\n')
    sys.stdout.flush()


def sqlite_writer(db, mode):
    c = sqlite3.connect(db, timeout=60, isolation_level=None)
    print(c.execute(f'pragma journal_mode={mode}').fetchone()[0], flush=True)
    c.execute('pragma synchronous=full')
    # A small page cache makes the large transactions spill pages into the database file
    # before their commit, which a rollback journal must then be able to undo.
    c.execute('pragma cache_size=-256')
    c.execute('create table if not exists t(txn int, k int, v blob)')
    c.execute('create index if not exists t_txn on t(txn, k)')
    c.execute('create table if not exists txns(txn integer primary key, nrows int, total int)')
    txn = c.execute('select coalesce(max(txn), 0) from txns').fetchone()[0]
    while True:
        txn += 1
        n = 3000 if txn % 5 == 0 else 1 + txn % 7
        c.execute('begin immediate')
        c.executemany(
            'insert into t values (?, ?, ?)',
            ((txn, k, hashlib.sha256(f'{txn}/{k}'.encode()).digest() * 6) for k in range(n)),
        )
        c.execute('insert into txns values (?, ?, ?)', (txn, n, n * (n - 1) // 2))
        # Rewrite an older transaction inside this one: deletes and updates move pages around.
        old = txn - 4
        if old > 0:
            c.execute('delete from t where txn = ? and k % 3 = 0', (old,))
            c.execute('update t set v = zeroblob(100) where txn = ? and k % 3 = 1', (old,))
            c.execute(
                'update txns set nrows = (select count(*) from t where txn = ?),'
                ' total = (select coalesce(sum(k), 0) from t where txn = ?) where txn = ?',
                (old, old, old),
            )
        c.execute('commit')
        acked(txn)


def sqlite_verify(db):
    c = sqlite3.connect(db, timeout=60)
    print(c.execute('pragma integrity_check').fetchone()[0])
    bad = c.execute(
        'select count(*) from txns s where nrows != (select count(*) from t where t.txn = s.txn)'
        ' or total != (select coalesce(sum(k), 0) from t where t.txn = s.txn)'
    ).fetchone()[0]
    orphans = c.execute('select count(*) from t where txn not in (select txn from txns)').fetchone()[0]
    last = c.execute('select coalesce(max(txn), 0), count(*) from txns').fetchone()
    # Transactions are numbered without gaps: the count says none is missing below the last.
    print(f'mismatched {bad} orphans {orphans} last {last[0]} count {last[1]}')


def page_bytes(r, page):
    head = f'round {r} page {page} '.encode()
    return (head + hashlib.sha256(head).hexdigest().encode() * 64)[:PAGE]


def pages_writer(kind, path):
    libc = ctypes.CDLL(None, use_errno=True)
    size = PAGE * PAGES
    flags = os.O_RDWR | os.O_CREAT | (os.O_DIRECT if kind == 'direct' else 0)
    fd = os.open(path, flags, 0o644)
    os.posix_fallocate(fd, 0, size)
    os.fsync(fd)
    mapped = mmap.mmap(fd, size) if kind == 'mmap' else None
    # O_DIRECT needs an aligned buffer: an anonymous mapping is page-aligned.
    buf = mmap.mmap(-1, PAGE)
    r = 0
    while True:
        r += 1
        page = (r * STRIDE) % PAGES
        data = page_bytes(r, page)
        if mapped is not None:
            mapped[page * PAGE:(page + 1) * PAGE] = data
            if r % 4 == 0:
                mapped.flush()
                acked(r)
            continue
        buf[:] = data
        assert os.pwritev(fd, [buf], page * PAGE) == PAGE
        if kind == 'buffered':
            # WAIT_BEFORE | WRITE | WAIT_AFTER: starts and waits for write-out; not a durability point.
            if libc.sync_file_range(fd, ctypes.c_long(page * PAGE), ctypes.c_long(PAGE), 7) != 0:
                raise OSError(ctypes.get_errno(), 'sync_file_range')
            if r % 4 != 0:
                continue
        os.fdatasync(fd)
        acked(r)


def pages_verify(path, last_acked):
    data = open(path, 'rb').read()
    assert len(data) == PAGE * PAGES, f'size {len(data)}'
    latest = {}
    for r in range(1, last_acked + 1):
        latest[(r * STRIDE) % PAGES] = r
    problems = []
    for page in range(PAGES):
        got = data[page * PAGE:(page + 1) * PAGE]
        want = latest.get(page, 0)
        if got == bytes(PAGE):
            if want:
                problems.append(f'page {page}: zeros, round {want} was acknowledged')
            continue
        r = int(got.split(b' ')[1])
        if got != page_bytes(r, page) or (r * STRIDE) % PAGES != page or r < want:
            problems.append(f'page {page}: holds round {r}, acknowledged {want}')
    print(f'pages {PAGES} problems {len(problems)}', *problems[:5], sep='\n')


if __name__ == '__main__':
    cmd, args = sys.argv[1], sys.argv[2:]
    try:
        if cmd == 'sqlite':
            sqlite_writer(*args)
        elif cmd == 'sqlite-verify':
            sqlite_verify(*args)
        elif cmd == 'pages':
            pages_writer(*args)
        elif cmd == 'pages-verify':
            pages_verify(args[0], int(args[1]))
    except OSError as e:
        # The mount died under a writer: expected in the crash tests, said on stderr.
        print(f'stopped: {e}', file=sys.stderr)
        sys.exit(3)
    except sqlite3.Error as e:
        print(f'stopped: {e}', file=sys.stderr)
        sys.exit(3)
