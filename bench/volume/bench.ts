// The mounted-volume benchmark: every row on a `strata up` volume (default settings) and on
// bindfs over a local directory, same run, taking turns; the mount's peak RSS per row and the
// CPU time each file system's process used for the row (median; the workload's own processes
// and the kernel's work on their behalf are not in it).
// Usage: node DIST/bench/volume/bench.js [--scale 1] [--repeats 3] [--only SUBSTRING] [--record]
//   --record appends the table to the "## Mounted volume" section of bench/RESULTS.md.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  cleanup,
  isMounted,
  repoRoot,
  startUp,
  tempDir,
  type StrataProcess,
} from '../../test/e2e/harness.js';
import { parseFlags } from '../common/args.js';
import { cleanDir, dropCaches, rows, type Row } from './workloads.js';

const USAGE = `Usage: node DIST/bench/volume/bench.js [--scale 1] [--repeats 3] [--only SUBSTRING] [--record]
  --record appends the table to the "## Mounted volume" section of bench/RESULTS.md.`;
const { values: flags } = parseFlags(USAGE, {
  options: {
    scale: { type: 'string', default: '1' },
    repeats: { type: 'string', default: '3' },
    only: { type: 'string', default: '' },
    record: { type: 'boolean', default: false },
  },
});

interface Target {
  name: string;
  dir: string;
  pid: () => number;
}

/** Resets the process's peak RSS (VmHWM) so each row reports its own peak. */
function resetPeak(pid: number): void {
  writeFileSync(`/proc/${pid}/clear_refs`, '5');
}

function peakRssMiB(pid: number): number {
  const match = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return match ? Number(match[1]) / 1024 : NaN;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

/** User + system CPU time of a process (all its threads) so far, in ms. */
function cpuMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name (which may hold spaces) start after its closing parenthesis.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticksPerSecond = 100; // USER_HZ on Linux
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / ticksPerSecond;
}

function measure(row: Row, target: Target, label: string): { value: number; rssMiB: number; cpuMs: number } {
  const dir = join(target.dir, label);
  mkdirSync(dir);
  try {
    row.setup?.(dir);
    if (row.dropCaches) dropCaches();
    resetPeak(target.pid());
    const cpuBefore = cpuMs(target.pid());
    const value = row.run(dir);
    return { value, rssMiB: peakRssMiB(target.pid()), cpuMs: cpuMs(target.pid()) - cpuBefore };
  } finally {
    cleanDir(dir);
    spawnSync('rmdir', [dir]);
  }
}

async function main(): Promise<void> {
  const scale = Number(flags.scale);
  const repeats = Number(flags.repeats);
  const only = flags.only;
  const root = tempDir('bench');
  const strataMnt = join(root, 'strata');
  const bindSrc = join(root, 'bind-src');
  const bindMnt = join(root, 'bind');
  let up: StrataProcess | undefined;
  let bindfs: ChildProcess | undefined;
  try {
    up = await startUp(join(root, 'data'), strataMnt);
    mkdirSync(bindSrc);
    mkdirSync(bindMnt);
    bindfs = spawn('bindfs', ['-f', '--no-allow-other', bindSrc, bindMnt], { stdio: 'ignore' });
    for (let i = 0; !isMounted(bindMnt); i++) {
      if (i > 200) throw new Error('bindfs did not mount within 10 s; is bindfs installed?');
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    const strataPid = up.pid;
    const bindPid = bindfs.pid ?? -1;
    const targets: Target[] = [
      { name: 'strata', dir: strataMnt, pid: () => strataPid },
      { name: 'bindfs', dir: bindMnt, pid: () => bindPid },
    ];
    const lines = [
      `| row | unit | strata | bindfs | ratio | strata peak RSS MiB | CPU ms strata / bindfs |`,
      `|---|---|---|---|---|---|---|`,
    ];
    for (const [index, row] of rows(scale).entries()) {
      if (only !== '' && !row.name.includes(only)) continue;
      const results: Record<string, number[]> = { strata: [], bindfs: [] };
      const cpu: Record<string, number[]> = { strata: [], bindfs: [] };
      let rss = 0;
      for (let r = 0; r < repeats; r++) {
        // Taking turns, alternating who goes first, so drift on a shared machine hits both.
        const order = r % 2 === 0 ? targets : [...targets].reverse();
        for (const target of order) {
          const { value, rssMiB, cpuMs } = measure(row, target, `row${index}-${r}`);
          results[target.name].push(value);
          cpu[target.name].push(cpuMs);
          if (target.name === 'strata') rss = Math.max(rss, rssMiB);
        }
      }
      const s = median(results.strata);
      const b = median(results.bindfs);
      const line =
        `| ${row.name} | ${row.unit} | ${s.toFixed(0)} | ${b.toFixed(0)} | ${(s / b).toFixed(2)}x | ${rss.toFixed(0)} ` +
        `| ${median(cpu.strata).toFixed(0)} / ${median(cpu.bindfs).toFixed(0)} |`;
      lines.push(line);
      console.log(line);
    }
    const table = lines.join('\n');
    console.log(`\n${table}`);
    if (flags.record) record(table, scale, repeats);
  } finally {
    bindfs?.kill('SIGTERM');
    await cleanup([up], [strataMnt, bindMnt], [root]);
    spawnSync('sh', ['-c', 'rm -f /tmp/strata-vfs-bench-include-*.tar']);
  }
}

function record(table: string, scale: number, repeats: number): void {
  const path = join(repoRoot(), 'bench', 'RESULTS.md');
  const date = new Date().toISOString().slice(0, 16).replace('T', ' ');
  const section =
    `## Mounted volume\n\n` +
    `\`node dist/bench/volume/bench.js --scale ${scale} --repeats ${repeats}\`, ${date} UTC. ` +
    `A \`strata up\` volume (default settings: 512 MiB memory budget, file: object store on the local disk) ` +
    `against bindfs over a local directory on the same disk; medians of ${repeats}, taking turns. ` +
    `Peak RSS is the strata mount process's VmHWM, reset before each row.\n\n${table}\n`;
  // Replace our own section only; other sections belong to other benchmarks.
  const script =
    `import re,sys\np=${JSON.stringify(path)}\ns=open(p).read()\nnew=sys.stdin.read()\n` +
    `m=re.search(r'^## Mounted volume\\n.*?(?=^## |\\Z)', s, re.S|re.M)\n` +
    `s = s[:m.start()] + new + ('\\n' if m.end() < len(s) else '') + s[m.end():] if m else s.rstrip('\\n') + '\\n\\n' + new\nopen(p,'w').write(s)\n`;
  const result = spawnSync('flock', ['/tmp/strata-results.lock', 'python3', '-c', script], {
    input: section,
    encoding: 'utf8',
  });
  if (result.status !== 0) throw new Error(`recording results failed: ${result.stderr}`);
  console.log(`recorded in ${path}`);
}

await main();
