// The long profile's driver (scripts/reliability/long-run.sh runs it): rounds
// of differential testing against fresh `strata up` mounts (as root and as
// several users), under object-store faults, crash injection (of strata up, and
// of strata meta serve under a strata mount) and FUSE frame fuzzing, until a
// deadline; then a summary.
//
//   node DIST/test/reliability/long-run.js --hours 2 [--doc docs/RELIABILITY.md] [--seed N]
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { runCrashLoop } from './crash.js';
import { runDifferential } from './differential.js';
import { runMetaCrashLoop } from './meta-crash.js';
import { runStoreOutage } from './store-outage.js';
import { S3_TEST_URL, testUrl, uniquePrefix } from '../object/s3-helpers.js';
import { TEST_USERS } from './executor.js';
import { startFaultyMount } from './faults.js';
import { fuzzFuseFrames, fuseFuzzUnavailable } from './fuse-fuzz.js';
import { STRATA_KNOWN, startStrata, strataUnavailable } from './strata-mount.js';
import { mountTmpfs } from './tmpfs.js';

interface Totals {
  rounds: number;
  differentialOps: number;
  multiUserOps: number;
  sequences: number;
  framesFuzzed: number;
  crashesInjected: number;
  fsyncsAcknowledged: number;
  metaCrashesInjected: number;
  metaFsyncsAcknowledged: number;
  storeOutages: number;
  faultsInjected: number;
  faultOps: number;
  problems: { what: string; script: string }[];
  notRun: string[];
}

const NO_S3 = 'the S3 outage (STRATA_S3_TEST_URL unset; eval "$(scripts/radosgw/start.sh)" first)';
const MARK_START = '<!-- long-run-summary:start -->';
const MARK_END = '<!-- long-run-summary:end -->';

async function round(totals: Totals, seed: number, failuresDir: string): Promise<void> {
  const reference = mountTmpfs('ref');
  try {
    const unavailable = strataUnavailable();
    if (!unavailable) {
      for (const users of [[], TEST_USERS]) {
        const mount = await startStrata();
        try {
          const result = await runDifferential({
            targetRoot: mount.mountpoint,
            referenceRoot: reference.path,
            users,
            seed: seed + (users.length > 0 ? 500_000 : 0),
            opCount: users.length > 0 ? 10_000 : 20_000,
            largeOffsets: true,
            shrinkBudgetMs: 120_000,
            ...STRATA_KNOWN,
          });
          if (users.length > 0) totals.multiUserOps += result.opsRun;
          else totals.differentialOps += result.opsRun;
          totals.sequences += result.sequences;
          if (result.failure) {
            const file = join(
              failuresDir,
              `strata-${users.length > 0 ? 'users' : 'root'}-${result.failure.seed}.txt`,
            );
            writeFileSync(file, result.failure.script);
            totals.problems.push({
              what: `differential mismatch (replay: ${file})`,
              script: result.failure.script,
            });
          }
        } finally {
          await mount.stop();
        }
      }
      const faulty = await startFaultyMount({ seed, errorRate: 0.1, truncateRate: 0.1 });
      try {
        const result = await runDifferential({
          targetRoot: faulty.mountpoint,
          referenceRoot: reference.path,
          seed: seed + 900_000,
          opCount: 5_000,
          largeOffsets: true,
          ...STRATA_KNOWN,
        });
        totals.faultOps += result.opsRun;
        if (result.failure) {
          totals.problems.push({
            what: 'differential mismatch under store faults',
            script: result.failure.script,
          });
        }
      } finally {
        const counts = await faulty.stop();
        totals.faultsInjected += counts ? counts.errors + counts.truncated : 0;
      }
      const crash = await runCrashLoop({ seed, crashes: 10 });
      totals.crashesInjected += crash.crashesInjected;
      totals.fsyncsAcknowledged += crash.fsyncsAcknowledged;
      for (const problem of crash.problems)
        totals.problems.push({ what: `crash injection: ${problem}`, script: '' });
      const metaCrash = await runMetaCrashLoop({ seed, crashes: 5 });
      totals.metaCrashesInjected += metaCrash.crashesInjected;
      totals.metaFsyncsAcknowledged += metaCrash.fsyncsAcknowledged;
      for (const problem of metaCrash.problems)
        totals.problems.push({ what: `metadata server crash injection: ${problem}`, script: '' });
      if (S3_TEST_URL) {
        const outage = await runStoreOutage({
          storeUrl: testUrl(uniquePrefix('rel-long-outage')),
          retryBudget: '2s',
          seed,
        });
        totals.storeOutages++;
        const expected = ['fsync f1: err EIO', 'fdatasync f2: err EIO', 'close f3: err EIO'];
        const unexpected = outage.duringOutage.filter((reply, i) => reply !== expected[i]);
        for (const problem of [...unexpected, ...outage.failuresAfter, ...outage.problems])
          totals.problems.push({ what: `store outage past the retry budget: ${problem}`, script: '' });
      } else if (!totals.notRun.includes(NO_S3)) {
        totals.notRun.push(NO_S3);
      }
    } else if (!totals.notRun.includes(unavailable)) {
      totals.notRun.push(unavailable);
    }
    const fuzzUnavailable = fuseFuzzUnavailable();
    if (!fuzzUnavailable) {
      const fuzz = await fuzzFuseFrames({ seed, frameCount: 20_000 });
      totals.framesFuzzed += fuzz.framesSent;
      for (const problem of fuzz.problems)
        totals.problems.push({ what: `FUSE fuzz: ${problem}`, script: '' });
    } else if (!totals.notRun.includes(fuzzUnavailable)) {
      totals.notRun.push(fuzzUnavailable);
    }
  } finally {
    reference.dispose();
  }
}

function summary(totals: Totals, startedAt: Date, hours: number, seed: number): string {
  const elapsedMin = Math.round((Date.now() - startedAt.getTime()) / 60_000);
  const lines = [
    `Long run started ${startedAt.toISOString()}, ${elapsedMin} min (bound ${hours} h), first seed ${seed}.`,
    '',
    '| measure | count |',
    '|---|---|',
    `| rounds | ${totals.rounds} |`,
    `| differential operations, root (strata up vs tmpfs) | ${totals.differentialOps} |`,
    `| differential operations, three users + root | ${totals.multiUserOps} |`,
    `| sequences (each from an empty directory) | ${totals.sequences} |`,
    `| FUSE frames fuzzed | ${totals.framesFuzzed} |`,
    `| crashes injected (kill -9 of strata up, restart, check) | ${totals.crashesInjected} |`,
    `| fsyncs acknowledged before crashes, all checked | ${totals.fsyncsAcknowledged} |`,
    `| crashes of the metadata server (kill -9 of strata meta serve under a live mount, fsck, restart) | ${totals.metaCrashesInjected} |`,
    `| fsyncs and closes acknowledged around those crashes, all checked | ${totals.metaFsyncsAcknowledged} |`,
    `| S3 outages past the retry budget (EIO on fsync/close, nothing acknowledged lost, mount recovers) | ${totals.storeOutages} |`,
    `| differential operations under object-store faults (10% errors, 10% cut reads) | ${totals.faultOps} |`,
    `| object-store faults injected | ${totals.faultsInjected} |`,
    `| problems found | ${totals.problems.length} |`,
    '',
  ];
  for (const reason of totals.notRun) lines.push(`Not run: ${reason}.`);
  for (const problem of totals.problems) {
    lines.push('', `- ${problem.what}`);
    if (problem.script) lines.push('', '```', problem.script.trimEnd(), '```');
  }
  return lines.join('\n');
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      hours: { type: 'string', default: '2' },
      doc: { type: 'string' },
      seed: { type: 'string' },
    },
  });
  const hours = Number(values.hours);
  if (!(hours > 0)) throw new Error(`--hours wants a positive number, got ${values.hours}`);
  const seed = Number(values.seed ?? Date.now() % 1_000_000_000);
  const deadline = Date.now() + hours * 3_600_000;
  const startedAt = new Date();
  const failuresDir = mkdtempSync('/tmp/strata-rel-long-');
  mkdirSync(failuresDir, { recursive: true });
  const totals: Totals = {
    rounds: 0,
    differentialOps: 0,
    multiUserOps: 0,
    sequences: 0,
    framesFuzzed: 0,
    crashesInjected: 0,
    fsyncsAcknowledged: 0,
    metaCrashesInjected: 0,
    metaFsyncsAcknowledged: 0,
    storeOutages: 0,
    faultsInjected: 0,
    faultOps: 0,
    problems: [],
    notRun: [],
  };
  // SIGINT/SIGTERM end the run after the current round, which unmounts what it mounted; the
  // summary is still written. A second signal kills at once.
  let stopRequested = false;
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      stopRequested = true;
      console.log(`${signal}: stopping after this round (send it again to kill at once)`);
    });
  }
  // Stop early after several problems: they need people, not more hours.
  while (Date.now() < deadline && totals.problems.length < 5 && !stopRequested) {
    const reported = totals.problems.length;
    try {
      await round(totals, seed + totals.rounds * 1000, failuresDir);
    } catch (error) {
      // A round that breaks (a harness or environment failure) is itself a finding; go on.
      totals.problems.push({ what: `round ${totals.rounds + 1} failed: ${String(error)}`, script: '' });
    }
    totals.rounds++;
    // Each problem is printed when found: an interrupted run still tells what it saw.
    for (const problem of totals.problems.slice(reported)) {
      console.log(`problem: ${problem.what}`);
      if (problem.script !== '') console.log(problem.script);
    }
    console.log(
      `round ${totals.rounds}: ${totals.differentialOps + totals.multiUserOps} operations, ` +
        `${totals.framesFuzzed} frames, ${totals.problems.length} problems`,
    );
  }
  const text = summary(totals, startedAt, hours, seed);
  console.log(text);
  if (values.doc) {
    const doc = readFileSync(values.doc, 'utf8');
    const start = doc.indexOf(MARK_START);
    const end = doc.indexOf(MARK_END);
    if (start < 0 || end < start)
      throw new Error(`${values.doc} lacks the ${MARK_START} / ${MARK_END} markers`);
    writeFileSync(values.doc, `${doc.slice(0, start + MARK_START.length)}\n${text}\n${doc.slice(end)}`);
    console.log(`summary written into ${values.doc}`);
  }
  return totals.problems.length > 0 ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(error instanceof Error ? (error.stack ?? error.message) : error);
    process.exit(2);
  },
);
