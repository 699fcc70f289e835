import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cleanup, formatVolume, freePort, strata, StrataProcess, tempDir, startMount } from './harness.js';

// A metadata server that is down for a few seconds (a restart, a failover, a network cut):
// the mount's calls wait for it up to --meta-retry and then carry on, so a program writing
// and fsyncing meanwhile only pauses. With a retry time shorter than the outage it gets EIO.
const root = tempDir('outage');
const procs: StrataProcess[] = [];
const mountpoints: string[] = [];

after(async () => {
  await cleanup(procs.slice().reverse(), mountpoints, [root]);
});

const OUTAGE_MS = 4_000;

/** Writes, fsyncs and closes a new file, then lists the directory: every step needs the server. */
function writerScript(path: string): string {
  return [
    'import os, sys',
    'try:',
    `    fd = os.open(${JSON.stringify(path)}, os.O_CREAT | os.O_WRONLY, 0o644)`,
    '    os.write(fd, b"written while the server was away\\n")',
    '    os.fsync(fd)',
    '    os.close(fd)',
    `    os.listdir(${JSON.stringify(join(path, '..'))})`,
    'except OSError as e:',
    '    print(e.strerror, file=sys.stderr)',
    '    sys.exit(3)',
  ].join('\n');
}

async function outageWhileWriting(
  retry: string,
  name: string,
): Promise<{ code: number | null; stderr: string; during: string }> {
  const engine = `sqlite:${join(root, `${name}.db`)}`;
  const formatted = formatVolume(engine, join(root, `${name}-objects`), name);
  const secretFile = /client secret: (\S+)/.exec(formatted)?.[1];
  assert.ok(secretFile, formatted);
  const address = `127.0.0.1:${await freePort()}`;
  const serve = (): StrataProcess => {
    const server = new StrataProcess(['meta', 'serve', '--engine', engine, '--listen', address]);
    procs.push(server);
    return server;
  };
  const first = serve();
  await first.waitFor(() => first.output.includes('listening'), 'the metadata server to listen');
  const mnt = join(root, `mnt-${name}`);
  mountpoints.push(mnt);
  const mount = await startMount(
    `${address}/${name}`,
    mnt,
    ['--secret-file', secretFile, '--meta-retry', retry],
    procs,
  );
  writeFileSync(join(mnt, 'before.txt'), 'before the outage\n');

  first.kill();
  await first.exited;
  const writer = spawn('python3', ['-c', writerScript(join(mnt, 'during.txt'))], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  writer.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => writer.once('exit', resolve));
  await new Promise((resolve) => setTimeout(resolve, OUTAGE_MS));
  const second = serve();
  await second.waitFor(() => second.output.includes('listening'), 'the restarted metadata server to listen');
  const code = await exited;
  assert.equal(readFileSync(join(mnt, 'before.txt'), 'utf8'), 'before the outage\n');
  let during = '';
  try {
    during = readFileSync(join(mnt, 'during.txt'), 'utf8');
  } catch {
    // the failed writer may have left nothing
  }
  assert.equal(strata(['umount', mnt]).status, 0);
  await mount.exited;
  return { code, stderr, during };
}

test('a mount rides out a metadata server down for a few seconds: the writer only pauses', async () => {
  const { code, stderr, during } = await outageWhileWriting('30s', 'patient');
  assert.equal(code, 0, `the writer failed: ${stderr}`);
  assert.equal(during, 'written while the server was away\n');
});

test('with --meta-retry shorter than the outage, the writer gets EIO', async () => {
  const { code, stderr } = await outageWhileWriting('1s', 'hasty');
  assert.equal(code, 3, `the writer should have failed: ${stderr}`);
  assert.match(stderr, /Input\/output error/);
});
