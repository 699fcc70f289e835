import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { cleanup, formatVolume, freePort, StrataProcess, strata, tempDir } from '../e2e/harness.js';

const commands = [
  ['up'],
  ['format'],
  ['meta', 'serve'],
  ['mount'],
  ['umount'],
  ['status'],
  ['objbench'],
  ['fsck'],
  ['gc'],
  ['restore'],
];

test('--help works on the program and on every command, with exit code 0', () => {
  const top = strata(['--help']);
  assert.equal(top.status, 0, top.stderr);
  for (const command of commands) {
    assert.match(top.stdout, new RegExp(`\\b${command[0]}\\b`), `strata --help lists ${command[0]}`);
    const result = strata([...command, '--help']);
    assert.equal(result.status, 0, `${command.join(' ')} --help: ${result.stderr}`);
    assert.match(result.stdout, new RegExp(`Usage: strata ${command.join(' ')}`));
  }
});

/** One line on stderr, starting "strata: ", exit code 2 (usage) unless said otherwise. */
function assertOneLineError(args: string[], pattern: RegExp, exitCode = 2): void {
  const result = strata(args);
  assert.equal(result.status, exitCode, `strata ${args.join(' ')} exit code; stderr: ${result.stderr}`);
  const lines = result.stderr.trim().split('\n');
  assert.equal(lines.length, 1, `one line, got: ${result.stderr}`);
  assert.match(lines[0], /^strata: /);
  assert.match(lines[0], pattern);
  assert.equal(result.stdout, '');
}

test('an unknown flag or a missing argument is one line pointing at --help', () => {
  assertOneLineError(
    ['up', '/tmp/x', '/tmp/y', '--memroy', '1G'],
    /unknown option '--memroy'.*strata up --help/,
  );
  assertOneLineError(['up', '/tmp/x'], /missing required argument 'MOUNTPOINT'.*strata up --help/);
  assertOneLineError(['frobnicate'], /unknown command 'frobnicate'/);
  assertOneLineError(['format', '--engine', 'sqlite:/tmp/x.db'], /required option '--storage <URL>'/);
});

test('bad sizes, durations and addresses say how to write them', () => {
  assertOneLineError(['up', '/tmp/x', '/tmp/y', '--memory', 'lots'], /invalid --memory "lots".*e\.g\. 512M/);
  assertOneLineError(['up', '/tmp/x', '/tmp/y', '--cache-size', '10Q'], /invalid --cache-size "10Q"/);
  assertOneLineError(
    ['up', '/tmp/x', '/tmp/y', '--attr-timeout', 'soon'],
    /invalid --attr-timeout "soon".*500ms/,
  );
  assertOneLineError(
    ['up', '/tmp/x', '/tmp/y', '--listen', 'localhost'],
    /invalid --listen "localhost".*HOST:PORT/,
  );
  assertOneLineError(['mount', 'myvol', '/tmp/y'], /invalid volume address "myvol".*META_ADDR\/VOLUME/);
  assertOneLineError(
    ['meta', 'serve', '--engine', 'mysql://x', '--listen', '127.0.0.1:1'],
    /invalid --engine "mysql:\/\/x"/,
  );
  assertOneLineError(
    [
      'meta',
      'serve',
      '--engine',
      'sqlite:/tmp/x.db',
      '--listen',
      '127.0.0.1:1',
      '--engine-thread-nice',
      '25',
    ],
    /--engine-thread-nice takes a whole number 0-19.*not "25"/,
  );
  assertOneLineError(
    ['format', '--engine', 'sqlite:/tmp/x.db', '--storage', 'not a url', '--name', 'v'],
    /invalid --storage "not a url"/,
  );
  assertOneLineError(
    ['format', '--engine', 'sqlite:/tmp/x.db', '--storage', 'file:/tmp/o', '--name', 'bad name'],
    /invalid --name "bad name"/,
  );
});

test('an environment variable with a bad value is reported by name', () => {
  const result = strata(['up', '/tmp/x', '/tmp/y'], { STRATA_MEMORY: 'huge' });
  assert.equal(result.status, 2);
  assert.match(result.stderr, /^strata: invalid environment variable STRATA_MEMORY "huge"/);
});

test('umount of something not mounted fails with exit code 1 and a hint', () => {
  assertOneLineError(
    ['umount', '/tmp/strata-vfs-not-a-mount'],
    /umount .* failed: .*grep fuse \/proc\/mounts|lazy/,
    1,
  );
});

test('--version prints the version', () => {
  const result = strata(['--version']);
  assert.equal(result.status, 0);
  assert.match(result.stdout, /^\d+\.\d+\.\d+\n$/);
});

test('meta serve --engine-thread-nice sets the niceness of one thread of the server, not of the process', async () => {
  const dir = tempDir('nice');
  const engine = `sqlite:${join(dir, 'meta.db')}`;
  formatVolume(engine, join(dir, 'objects'), 'vol');
  const server = new StrataProcess([
    'meta',
    'serve',
    '--engine',
    engine,
    '--listen',
    `127.0.0.1:${await freePort()}`,
    '--engine-thread-nice',
    '7',
  ]);
  try {
    await server.waitFor(() => server.output.includes('listening'), 'the metadata server to listen');
    // Field 19 of /proc/PID/task/TID/stat is the nice value; the comm field before it may hold spaces.
    const niceOf = (tid: string): number =>
      Number(readFileSync(`/proc/${server.pid}/task/${tid}/stat`, 'utf8').split(') ')[1].split(' ')[16]);
    const nices = readdirSync(`/proc/${server.pid}/task`).map(niceOf);
    assert.equal(niceOf(String(server.pid)), 0, 'the serving (main) thread keeps nice 0');
    assert.equal(nices.filter((nice) => nice === 7).length, 1, `thread nices: ${nices.join(' ')}`);
  } finally {
    await cleanup([server], [], [dir]);
  }
});

test('--as-of instants: ISO 8601, @seconds or a duration ago; never the future', async () => {
  const { parseInstantUs } = await import('../../src/cli/options.js');
  const now = Date.parse('2026-11-26T12:00:00Z');
  assert.equal(parseInstantUs('2026-11-26T10:00:00Z', now), Date.parse('2026-11-26T10:00:00Z') * 1000);
  assert.equal(
    parseInstantUs('2026-11-26 10:00:00.250Z', now),
    Date.parse('2026-11-26T10:00:00.250Z') * 1000,
  );
  assert.equal(parseInstantUs('@1764150000.5', now), 1_764_150_000_500_000);
  assert.equal(parseInstantUs('90m ago', now), (now - 90 * 60_000) * 1000);
  assert.equal(parseInstantUs(' 7d ago ', now), (now - 7 * 86_400_000) * 1000);
  for (const bad of ['yesterday', '2h', 'ago', 'x ago', '26/11/2026', '']) {
    assert.throws(() => parseInstantUs(bad, now), /ISO 8601 .* ago/, bad);
  }
  assert.throws(() => parseInstantUs('2026-11-26T12:00:01Z', now), /in the future/);
});
