import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import type { FuseSession, MountOptions } from '../../src/fuse/index.js';
import { MemFs } from './memfs.js';
import { mountInProcess, run, sh, type InProcessMount } from './mount-helper.js';
import { compileProgram, type Program } from './programs.js';

// Real programs against a real mount of the test MemFs (served by this process, so
// every program runs asynchronously). One suite, run over each transport the session
// speaks: posix.test.ts (/dev/fuse read/write) and uring.test.ts (io_uring).

/** Hooks for a transport's own checks, run around the shared programs. */
export interface PosixSuiteHooks {
  /** Skip the whole suite, saying why (a kernel without the transport). */
  skip?: string | false;
  /** After the mount is up (e.g. assert the transport in use). */
  mounted?(session: FuseSession): void;
  /** A last test, after the programs (e.g. assert the requests went where they should). */
  last?: { name: string; check(session: FuseSession): void };
}

export function describePosixPrograms(
  title: string,
  options: MountOptions,
  hooks: PosixSuiteHooks = {},
): void {
  describe(title, { skip: hooks.skip ?? false }, () => {
    let mounted: InProcessMount;
    let program: Program;
    let scratch: string;
    let mnt: string;

    before(async () => {
      program = compileProgram();
      scratch = mkdtempSync('/tmp/strata-fuse-scratch-');
      mounted = await mountInProcess(new MemFs(), options);
      mnt = mounted.mountpoint;
      hooks.mounted?.(mounted.session);
    });

    after(async () => {
      await mounted?.cleanup();
      program?.remove();
      if (scratch) rmSync(scratch, { recursive: true, force: true });
    });

    test('cp, mv, ln, ln -s, chmod, chown, touch -d, truncate and stat behave as on a local disk', async () => {
      await sh(
        `head -c 300000 /dev/urandom > ${scratch}/src && cp ${scratch}/src ${mnt}/a && cmp ${scratch}/src ${mnt}/a`,
      );
      await sh(
        `mkdir ${mnt}/dir && mv ${mnt}/a ${mnt}/dir/b && test ! -e ${mnt}/a && cmp ${scratch}/src ${mnt}/dir/b`,
      );
      await sh(`ln ${mnt}/dir/b ${mnt}/hard && ln -s dir/b ${mnt}/soft`);
      assert.equal((await sh(`stat -c %h ${mnt}/dir/b`)).trim(), '2');
      assert.equal((await sh(`readlink ${mnt}/soft`)).trim(), 'dir/b');
      await sh(`cmp ${scratch}/src ${mnt}/soft`);
      await sh(`chmod 4751 ${mnt}/hard && chown 1234:5678 ${mnt}/hard`);
      assert.equal(
        (await sh(`stat -c '%a %u %g' ${mnt}/dir/b`)).trim(),
        '751 1234 5678',
        'chown as root clears setuid',
      );
      await sh(`chmod 4751 ${mnt}/hard`);
      assert.equal((await sh(`stat -c %a ${mnt}/hard`)).trim(), '4751');
      await sh(`touch -d '2001-02-03 04:05:06.123456789 UTC' ${mnt}/hard`);
      assert.equal((await sh(`TZ=UTC stat -c %y ${mnt}/hard`)).trim(), '2001-02-03 04:05:06.123456789 +0000');
      await sh(`touch -d '1965-06-01 00:00:00 UTC' ${mnt}/dir`);
      assert.equal((await sh(`stat -c %Y ${mnt}/dir`)).trim(), String(Date.UTC(1965, 5, 1) / 1000));
      await sh(`truncate -s 12345 ${mnt}/hard`);
      assert.equal((await sh(`stat -c %s ${mnt}/dir/b`)).trim(), '12345');
      await sh(`head -c 12345 ${scratch}/src | cmp - ${mnt}/hard`);
      await sh(
        `truncate -s 20000 ${mnt}/hard && tail -c 7655 ${mnt}/hard | cmp - /dev/zero 2>&1 | grep -q EOF`,
      );
      await sh(`rm ${mnt}/hard ${mnt}/soft && rm -r ${mnt}/dir`);
      assert.equal((await sh(`ls -A ${mnt}`)).trim(), '');
    });

    test("the caller's uid, gid and umask reach the file system: ownership, modes and permission checks", async () => {
      await sh(
        `mkdir ${mnt}/shared && chmod 1777 ${mnt}/shared && mkdir ${mnt}/private && chmod 700 ${mnt}/private`,
      );
      const asUser = `setpriv --reuid 1234 --regid 4321 --clear-groups sh -c`;
      await sh(`${asUser} 'umask 027; touch ${mnt}/shared/mine && mkdir ${mnt}/shared/subdir'`);
      assert.equal((await sh(`stat -c '%u %g %a' ${mnt}/shared/mine`)).trim(), '1234 4321 640');
      assert.equal((await sh(`stat -c '%u %g %a' ${mnt}/shared/subdir`)).trim(), '1234 4321 750');
      const denied = await run('setpriv', [
        '--reuid',
        '1234',
        '--regid',
        '4321',
        '--clear-groups',
        'touch',
        `${mnt}/private/x`,
      ]);
      assert.match(denied.stderr, /Permission denied/);
      const sticky = await run('setpriv', [
        '--reuid',
        '999',
        '--regid',
        '999',
        '--clear-groups',
        'rm',
        '-f',
        `${mnt}/shared/mine`,
      ]);
      assert.match(sticky.stderr, /Operation not permitted/);
      await sh(`rm -r ${mnt}/shared ${mnt}/private`);
    });

    test('df reports the file system, and errors come back as the right errno', async () => {
      const df = await sh(`df -P ${mnt} | tail -1`);
      assert.match(df, /^stratafs\s+\d+/);
      const missing = await run('stat', [`${mnt}/nope`]);
      assert.notEqual(missing.code, 0);
      assert.match(missing.stderr, /No such file or directory/);
      await sh(`mkdir -p ${mnt}/full/sub`);
      const rmdir = await run('rmdir', [`${mnt}/full`]);
      assert.match(rmdir.stderr, /Directory not empty/);
      await sh(`rm -r ${mnt}/full`);
    });

    test('tar round-trips a tree with modes, times, symlinks and hard links', async () => {
      const tree = `${scratch}/tree`;
      await sh(
        `mkdir -p ${tree}/a/b/c && echo one > ${tree}/a/one && head -c 70000 /dev/urandom > ${tree}/a/b/bin && ` +
          `ln -s ../one ${tree}/a/b/link && ln ${tree}/a/one ${tree}/a/b/c/hard && chmod 640 ${tree}/a/one && ` +
          `chmod 700 ${tree}/a/b && touch -h -d '2010-10-10 10:10:10' ${tree}/a/b/link && mkfifo ${tree}/a/fifo`,
      );
      await sh(
        `tar -C ${tree} -cf ${scratch}/tree.tar . && mkdir ${mnt}/t && tar -C ${mnt}/t -xpf ${scratch}/tree.tar`,
      );
      // tar --compare checks content, mode, owner, mtime, link targets and hard links.
      await sh(`tar -C ${mnt}/t -df ${scratch}/tree.tar`);
      await sh(`tar -C ${mnt}/t -cf - . | tar -tvf - > /dev/null`);
      assert.equal((await sh(`stat -c %h ${mnt}/t/a/one`)).trim(), '2');
      assert.equal((await sh(`stat -c %F ${mnt}/t/a/fifo`)).trim(), 'fifo');
      await sh(`rm -r ${mnt}/t`);
    });

    test('setfattr and getfattr set, list, read and remove extended attributes', async () => {
      await sh(`touch ${mnt}/x`);
      const big = 'v'.repeat(3000);
      await sh(`setfattr -n user.small -v hello ${mnt}/x && setfattr -n user.big -v ${big} ${mnt}/x`);
      assert.equal((await sh(`getfattr --only-values -n user.small ${mnt}/x`)).trim(), 'hello');
      assert.equal((await sh(`getfattr --only-values -n user.big ${mnt}/x`)).trim(), big);
      const dump = await sh(`getfattr -d ${mnt}/x`);
      assert.match(dump, /user\.small="hello"/);
      assert.match(dump, /user\.big=/);
      await sh(`setfattr -x user.small ${mnt}/x`);
      const missing = await run('getfattr', ['-n', 'user.small', `${mnt}/x`]);
      assert.match(missing.stderr, /No such attribute/);
      await sh(`rm ${mnt}/x`);
    });

    test('fcntl record locks conflict across processes and F_GETLK names the holder', async () => {
      await sh(`touch ${mnt}/locked`);
      // `hold` keeps its lock until its stdin (a pipe from sleep) closes.
      const script = `(sleep 5 | ${program.path} hold ${mnt}/locked) & sleep 1; ${program.path} probe ${mnt}/locked; wait`;
      const out = await sh(script);
      const holderPid = /locked (\d+)/.exec(out)?.[1];
      assert.ok(holderPid, out);
      assert.match(out, new RegExp(`getlk type=wr pid=${holderPid} start=0 len=100`));
      assert.match(out, /setlk busy/);
      assert.match(out, /setlk-free ok/);
      // The holder is gone: close() released its lock (FLUSH carries the lock owner).
      assert.match(await sh(`${program.path} probe ${mnt}/locked`), /getlk type=un/);
    });

    test('a blocked F_SETLKW is interrupted by a signal: the kernel sends INTERRUPT and the waiter gets EINTR', async () => {
      await sh(`touch ${mnt}/waited`);
      const out = await sh(
        `(sleep 4 | ${program.path} hold ${mnt}/waited) & sleep 1; ${program.path} setlkw ${mnt}/waited; wait`,
      );
      assert.match(out, /setlkw EINTR/);
    });

    test('flock(1) excludes a second holder and times out instead of hanging', async () => {
      await sh(`touch ${mnt}/flocked`);
      const out = await sh(
        `(flock -x ${mnt}/flocked sleep 3 &) ; sleep 1; if flock -x -w 1 ${mnt}/flocked true; then echo got; else echo timeout; fi; ` +
          `sleep 2.5; flock -x -n ${mnt}/flocked echo free`,
      );
      assert.match(out, /timeout/);
      assert.match(out, /free/);
    });

    test('renameat2 exchanges two names atomically, and NOREPLACE refuses to overwrite', async () => {
      await sh(`echo first > ${mnt}/r1 && mkdir ${mnt}/r2 && echo inside > ${mnt}/r2/f`);
      assert.equal((await sh(`${program.path} exchange ${mnt}/r1 ${mnt}/r2`)).trim(), 'ok');
      assert.equal((await sh(`cat ${mnt}/r2`)).trim(), 'first');
      assert.equal((await sh(`cat ${mnt}/r1/f`)).trim(), 'inside');
      const noreplace = await run(program.path, ['noreplace', `${mnt}/r2`, `${mnt}/r1`]);
      assert.equal(noreplace.stdout.trim(), 'File exists');
      await sh(`rm -r ${mnt}/r1 ${mnt}/r2`);
    });

    test('O_TMPFILE creates an unnamed file that can be linked in', async () => {
      const out = await run(program.path, ['tmpfile', mnt, 'from-tmp']);
      assert.equal(out.stdout.trim(), 'ok', out.stdout + out.stderr);
      assert.equal((await sh(`cat ${mnt}/from-tmp`)).trim(), 'tmp');
      await sh(`rm ${mnt}/from-tmp`);
    });

    test('a directory of 10,000 entries lists completely, with and without attributes', async () => {
      await sh(`mkdir ${mnt}/many && cd ${mnt}/many && seq -f 'entry-%05g' 1 10000 | xargs touch`, 120_000);
      const names = (await sh(`ls -f ${mnt}/many`)).trim().split('\n');
      assert.equal(names.length, 10_002);
      const sorted = names.filter((name) => name.startsWith('entry-')).sort();
      assert.equal(sorted.length, 10_000);
      assert.equal(sorted[0], 'entry-00001');
      assert.equal(sorted[9999], 'entry-10000');
      assert.equal(new Set(sorted).size, 10_000);
      const long = (await sh(`ls -l ${mnt}/many | grep -c '^-rw'`)).trim();
      assert.equal(long, '10000');
      await sh(`rm -r ${mnt}/many`, 120_000);
    });

    test('a sparse file larger than 4 GiB keeps data beyond 4 GiB and holes read as zeros', async () => {
      const f = `${mnt}/sparse`;
      const far = 4 * 1024 ** 3 + 123_456;
      await sh(
        `truncate -s 5G ${f} && printf 'beyond-4GiB' | dd of=${f} bs=1 seek=${far} conv=notrunc status=none`,
      );
      assert.equal((await sh(`stat -c %s ${f}`)).trim(), String(5 * 1024 ** 3));
      assert.equal((await sh(`dd if=${f} bs=1 skip=${far} count=11 status=none`)).trim(), 'beyond-4GiB');
      assert.equal(
        (
          await sh(`dd if=${f} bs=4096 skip=$((3 * 262144)) count=1 status=none | tr -d '\\0' | wc -c`)
        ).trim(),
        '0',
      );
      const blocks = Number((await sh(`stat -c %b ${f}`)).trim());
      assert.ok(
        blocks <= 2048,
        `a sparse file should allocate one 1 MiB block, got ${blocks} blocks of 512 bytes`,
      );
      await sh(`rm ${f}`);
    });

    test('concurrent writers and readers see exactly the data that was written', async () => {
      await sh(`for i in 1 2 3 4; do head -c 4194304 /dev/urandom > ${scratch}/w$i; done`);
      await sh(
        `for i in 1 2 3 4; do dd if=${scratch}/w$i of=${mnt}/w$i bs=64k status=none & done; ` +
          `for i in 1 2 3 4; do dd if=${scratch}/w$i of=${mnt}/shared bs=1M seek=$((($i - 1) * 4)) conv=notrunc status=none & done; wait`,
      );
      await sh(
        `for i in 1 2 3 4; do cmp ${scratch}/w$i ${mnt}/w$i & cmp ${scratch}/w$i ${mnt}/w$i & done; wait; ` +
          `for i in 1 2 3 4; do dd if=${mnt}/shared bs=1M skip=$((($i - 1) * 4)) count=4 status=none | cmp - ${scratch}/w$i || exit 1; done`,
      );
      await sh(`rm ${mnt}/w1 ${mnt}/w2 ${mnt}/w3 ${mnt}/w4 ${mnt}/shared`);
    });

    const last = hooks.last;
    if (last) test(last.name, () => last.check(mounted.session));
  });
}
