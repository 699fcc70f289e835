import { spawnSync } from 'node:child_process';

/**
 * The rows of the mounted-volume benchmark. Each runs against a directory on a mount and
 * returns one figure (higher is better) with its unit. Small-op loops run in Python so the
 * loop overhead is the same for both file systems and far below a FUSE round trip.
 */
export interface Row {
  name: string;
  unit: string;
  /** Prepares state the measured part needs (not timed). */
  setup?: (dir: string) => void;
  run: (dir: string) => number;
  /** Whether to drop the kernel's page/dentry caches right before `run`. */
  dropCaches?: boolean;
}

function sh(script: string, timeoutMs = 900_000): string {
  const result = spawnSync('bash', ['-euo', 'pipefail', '-c', script], {
    encoding: 'utf8',
    timeout: timeoutMs,
    maxBuffer: 64 * 1024 * 1024,
  });
  if (result.status !== 0) throw new Error(`benchmark step failed: ${script}\n${result.stderr}`);
  return result.stdout;
}

function python(code: string): number {
  return Number(
    sh(`python3 - <<'PY'\nimport os, time, sys\nfrom multiprocessing import Process\n${code}\nPY`).trim(),
  );
}

export function dropCaches(): void {
  sh('sync; echo 3 > /proc/sys/vm/drop_caches');
}

function timed(fn: () => void): number {
  const start = process.hrtime.bigint();
  fn();
  return Number(process.hrtime.bigint() - start) / 1e9;
}

const createFiles = (dir: string, procs: number, perProc: number): string => `
def work(p):
    d = os.path.join(${JSON.stringify(dir)}, 'p%d' % p)
    os.makedirs(d, exist_ok=True)
    for i in range(${perProc}):
        os.close(os.open(os.path.join(d, 'f%d' % i), os.O_CREAT | os.O_WRONLY, 0o644))
`;

function parallel(procs: number, body: string): string {
  return `${body}
t = time.perf_counter()
ps = [Process(target=work, args=(p,)) for p in range(${procs})]
[p.start() for p in ps]
[p.join() for p in ps]
assert all(p.exitcode == 0 for p in ps)
`;
}

export function rows(scale: number): Row[] {
  const statFiles = Math.round(10_000 * scale);
  const createPerProc = (procs: number): number => Math.round((8_000 * scale) / procs);
  const bigMiB = Math.max(64, Math.round(1024 * scale));
  const smallFiles = Math.round(2_000 * scale);
  // The whole of /usr/include at full scale; a ~2,000-file part of it for quick runs.
  const untarParts = scale >= 1 ? '.' : 'linux c++ x86_64-linux-gnu';
  const untarTar = `/tmp/strata-vfs-bench-include-${scale >= 1 ? 'all' : 'part'}.tar`;
  const list: Row[] = [
    {
      name: `lstat ${statFiles} files`,
      unit: 'ops/s',
      setup: (dir) => void python(`${createFiles(dir, 1, statFiles)}\nwork(0)\nprint(0)`),
      dropCaches: true,
      run: (dir) =>
        python(
          `d = os.path.join(${JSON.stringify(dir)}, 'p0')\nnames = [os.path.join(d, 'f%d' % i) for i in range(${statFiles})]\n` +
            `t = time.perf_counter()\nfor n in names: os.lstat(n)\nprint(len(names) / (time.perf_counter() - t))`,
        ),
    },
  ];
  for (const procs of [1, 4]) {
    const per = createPerProc(procs);
    list.push({
      name: `create+close ${procs} proc`,
      unit: 'files/s',
      run: (dir) =>
        python(
          `${parallel(procs, createFiles(dir, procs, per))}\nprint(${per * procs} / (time.perf_counter() - t))`,
        ),
    });
    list.push({
      name: `unlink ${procs} proc`,
      unit: 'files/s',
      setup: (dir) => void python(`${parallel(procs, createFiles(dir, procs, per))}\nprint(0)`),
      run: (dir) =>
        python(
          `def work(p):\n    d = os.path.join(${JSON.stringify(dir)}, 'p%d' % p)\n    for i in range(${per}): os.unlink(os.path.join(d, 'f%d' % i))\n` +
            `${parallel(procs, '')}\nprint(${per * procs} / (time.perf_counter() - t))`,
        ),
    });
  }
  list.push(
    {
      name: `seq write ${bigMiB} MiB (1 MiB, fsync)`,
      unit: 'MiB/s',
      run: (dir) =>
        bigMiB /
        timed(() => sh(`dd if=/dev/zero of=${dir}/big bs=1M count=${bigMiB} conv=fsync status=none`)),
    },
    {
      name: `seq read ${bigMiB} MiB, caches dropped`,
      unit: 'MiB/s',
      setup: (dir) => sh(`dd if=/dev/urandom of=${dir}/big bs=1M count=${bigMiB} conv=fsync status=none`),
      dropCaches: true,
      run: (dir) => bigMiB / timed(() => sh(`dd if=${dir}/big of=/dev/null bs=1M status=none`)),
    },
  );
  for (const jobs of [1, 4]) {
    list.push({
      name: `4 KiB random read O_DIRECT, ${jobs} job${jobs > 1 ? 's' : ''}`,
      unit: 'IOPS',
      setup: (dir) => sh(`dd if=/dev/urandom of=${dir}/rand bs=1M count=256 conv=fsync status=none`),
      run: (dir) => {
        const out = sh(
          `fio --name=rr --filename=${dir}/rand --rw=randread --bs=4k --direct=1 --ioengine=psync ` +
            `--numjobs=${jobs} --group_reporting --time_based --runtime=${Math.max(3, Math.round(8 * scale))} --output-format=json`,
        );
        return (JSON.parse(out) as { jobs: { read: { iops: number } }[] }).jobs[0].read.iops;
      },
    });
  }
  list.push(
    {
      name: `untar ${untarParts === '.' ? '/usr/include (~8k files)' : 'part of /usr/include (~2k files)'}`,
      unit: 'files/s',
      setup: () => sh(`[ -f ${untarTar} ] || tar -C /usr/include -cf ${untarTar} ${untarParts}`),
      run: (dir) => {
        const files = Number(sh(`tar -tf ${untarTar} | wc -l`).trim());
        return files / timed(() => sh(`mkdir -p ${dir}/src && tar -C ${dir}/src -xf ${untarTar}`));
      },
    },
    {
      name: `write ${smallFiles} x 4 KiB files`,
      unit: 'files/s',
      run: (dir) =>
        python(
          `d = os.path.join(${JSON.stringify(dir)}, 'small')\nos.makedirs(d)\nb = os.urandom(4096)\nt = time.perf_counter()\n` +
            `for i in range(${smallFiles}):\n    with open(os.path.join(d, 'f%d' % i), 'wb') as f: f.write(b)\n` +
            `print(${smallFiles} / (time.perf_counter() - t))`,
        ),
    },
    {
      name: `read ${smallFiles} x 4 KiB files, caches dropped`,
      unit: 'files/s',
      setup: (dir) =>
        void python(
          `d = os.path.join(${JSON.stringify(dir)}, 'small')\nos.makedirs(d)\nb = os.urandom(4096)\n` +
            `for i in range(${smallFiles}):\n    with open(os.path.join(d, 'f%d' % i), 'wb') as f: f.write(b)\nprint(0)`,
        ),
      dropCaches: true,
      run: (dir) =>
        python(
          `d = os.path.join(${JSON.stringify(dir)}, 'small')\nt = time.perf_counter()\n` +
            `for i in range(${smallFiles}):\n    with open(os.path.join(d, 'f%d' % i), 'rb') as f: assert len(f.read()) == 4096\n` +
            `print(${smallFiles} / (time.perf_counter() - t))`,
        ),
    },
  );
  return list;
}

export function cleanDir(dir: string): void {
  sh(`find ${dir} -mindepth 1 -delete`);
}
