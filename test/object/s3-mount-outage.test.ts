// The whole stack on S3 through a real outage: `strata up --storage s3://...` on radosgw, an
// application writing and fsyncing files, radosgw stopped for a while, then started again.
// Every file whose fsync succeeded must read back intact after a remount (so from the store);
// fsyncs during the outage wait it out (it is shorter than the default retry budget), never
// succeed without the data; and the mount keeps working afterwards. Runs only against the radosgw of scripts/radosgw.
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { openS3Store } from '../../src/object/backends/s3.js';
import { cleanup, sh, startUp, tempDir, type StrataProcess } from '../e2e/harness.js';
import { S3_TEST_URL, localRadosgwPid, repoRoot, testUrl, uniquePrefix } from './s3-helpers.js';

const OUTAGE_MS = process.env.STRATA_TEST_PROFILE === 'long' ? 20_000 : 5_000;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function radosgwScript(name: string, args: string[] = []): void {
  sh(`${join(repoRoot(), 'scripts', 'radosgw', name)} ${args.join(' ')} >/dev/null`, undefined, 180_000);
}

const skip = !S3_TEST_URL
  ? 'STRATA_S3_TEST_URL is unset: run eval "$(scripts/radosgw/start.sh)" first'
  : localRadosgwPid() === undefined
    ? 'the S3 under test is not the radosgw of scripts/radosgw/start.sh, which this test stops and starts'
    : false;

/**
 * The default retry budget (60 s) outlasts the outage: no fsync may fail. A budget shorter than
 * the outage (long profile only, it costs another minute) must turn waiting fsyncs into EIO.
 */
const cases: { storeRetry: string | null; title: string }[] = [
  { storeRetry: null, title: 'with the default retry budget, waits out' },
  ...(process.env.STRATA_TEST_PROFILE === 'long'
    ? [
        {
          storeRetry: '3s',
          title: 'with --store-retry 3s, reports EIO (and loses nothing acknowledged) during',
        },
      ]
    : []),
];

describe('a StrataFS mount on S3 through a radosgw outage', { skip }, () => {
  const root = tempDir('s3-outage');
  const mnt = join(root, 'mnt');
  const storages: string[] = [];
  let up: StrataProcess | undefined;

  after(async () => {
    await cleanup([up], [mnt], []);
    if (localRadosgwPid() === undefined) radosgwScript('start.sh');
    for (const storage of storages) {
      const store = await openS3Store(storage);
      for await (const info of store.list('')) await store.delete(info.key);
      await store.close();
    }
    await cleanup([], [], [root]);
  });

  for (const [n, { storeRetry, title }] of cases.entries()) {
    it(
      `${title} ${OUTAGE_MS / 1000} s without radosgw; every fsynced file is intact`,
      { timeout: 600_000 },
      async () => {
        const dataDir = join(root, `data${n}`);
        const local = join(root, `local${n}`);
        const storage = testUrl(uniquePrefix('mount-outage'));
        storages.push(storage);
        const args = ['--storage', storage, ...(storeRetry === null ? [] : ['--store-retry', storeRetry])];
        sh(`mkdir -p ${local}`);
        up = await startUp(dataDir, mnt, args);
        // The application: a separate process, so a blocked write blocks it and not the test.
        const writer = spawn(
          'bash',
          [
            '-c',
            `i=0; while [ ! -e ${local}/STOP ]; do
           head -c $((16384 + RANDOM)) /dev/urandom > ${local}/next
           sum=$(sha256sum < ${local}/next | cut -c1-64)
           if cp ${local}/next ${mnt}/f$i 2>>${local}/errors && sync ${mnt}/f$i 2>>${local}/errors; then
             echo "f$i $sum $(date +%s%3N)" >> ${local}/acked
           else
             echo "f$i $(date +%s%3N)" >> ${local}/failed
           fi
           i=$((i+1))
         done`,
          ],
          { stdio: 'ignore' },
        );
        const writerDone = new Promise<void>((resolve) => writer.once('exit', () => resolve()));
        let stopped = false;
        try {
          await sleep(2_000);
          radosgwScript('stop.sh', ['--rgw-only']);
          stopped = true;
          await sleep(OUTAGE_MS);
          radosgwScript('start.sh');
          stopped = false;
          const restartedMs = Date.now();
          await sleep(4_000);
          writeFileSync(join(local, 'STOP'), '');
          await writerDone;

          const acked = readFileSync(join(local, 'acked'), 'utf8')
            .trim()
            .split('\n')
            .map((line) => line.split(' '));
          const failed = existsSync(join(local, 'failed'))
            ? readFileSync(join(local, 'failed'), 'utf8').trim().split('\n')
            : [];
          const errors = existsSync(join(local, 'errors')) ? readFileSync(join(local, 'errors'), 'utf8') : '';
          console.log(`# ${acked.length} files fsynced, ${failed.length} failed during the outage`);
          assert.ok(acked.length > 0);
          if (storeRetry === null) {
            // The outage (plus radosgw's restart) is shorter than the default retry budget (60 s):
            // fsyncs wait it out, none may fail.
            assert.deepEqual(failed, [], `fsyncs failed during a ${OUTAGE_MS} ms outage: ${errors}`);
          } else {
            assert.ok(
              failed.length > 0,
              `no fsync failed although the outage outlasted --store-retry ${storeRetry}`,
            );
          }
          assert.ok(
            acked.some(([, , atMs]) => Number(atMs) > restartedMs),
            'writes succeed again once radosgw is back',
          );
          // The documented failure mode is EIO; anything else (ENOTCONN, a crash) is a bug.
          for (const line of errors.split('\n').filter(Boolean)) assert.match(line, /Input\/output error/);

          // Remount: reads now come from radosgw, not from the page cache of the old mount.
          await cleanup([up], [mnt], []);
          up = undefined;
          up = await startUp(dataDir, mnt, args);
          const sums = sh(`cd ${mnt} && sha256sum ${acked.map(([name]) => name).join(' ')}`)
            .trim()
            .split('\n')
            .map((line) => line.split(/\s+/));
          assert.deepEqual(
            sums.map(([sum, name]) => `${name} ${sum}`),
            acked.map(([name, sum]) => `${name} ${sum}`),
            'every fsynced file reads back intact',
          );
          await cleanup([up], [mnt], []);
          up = undefined;
        } finally {
          writeFileSync(join(local, 'STOP'), '');
          if (writer.exitCode === null) writer.kill('SIGKILL');
          if (stopped) radosgwScript('start.sh');
        }
      },
    );
  }
});
