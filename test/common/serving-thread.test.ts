import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fork, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';

const FIXTURE = fileURLToPath(new URL('./serving-thread-fixture.js', import.meta.url));

function start(args: string[]): {
  child: ChildProcess;
  lines: () => string[];
  exited: Promise<number | null>;
} {
  const child = fork(FIXTURE, args, { stdio: ['ignore', 'pipe', 'pipe', 'ipc'] });
  let out = '';
  child.stdout?.on('data', (chunk: Buffer) => (out += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (out += chunk.toString()));
  const exited = once(child, 'exit').then(([code]) => code as number | null);
  return { child, lines: () => out.split('\n').filter(Boolean), exited };
}

async function until(check: () => boolean): Promise<void> {
  for (let i = 0; i < 500 && !check(); i++) await new Promise((resolve) => setTimeout(resolve, 10));
  assert.ok(check(), 'timed out');
}

test('a serving thread has the young generation it asks for: the same workload grows a larger one past 16 MiB', async () => {
  const sizeWith = async (youngMb: string): Promise<number> => {
    const run = start(['heap', youngMb]);
    assert.equal(await run.exited, 0, run.lines().join('\n'));
    return (JSON.parse(run.lines()[0]) as { newSpaceBytes: number }).newSpaceBytes;
  };
  // 6 MiB: two 2 MiB semi-spaces; 48 MiB: the 16 MiB semi-spaces of Node's main thread.
  const small = await sizeWith('6');
  const large = await sizeWith('48');
  assert.ok(small <= 4 * 2 ** 20, `new space ${small} B with 6 MiB`);
  assert.ok(large >= 16 * 2 ** 20, `new space ${large} B with 48 MiB: the same workload must grow it`);
});

/**
 * Starts the fixture in `mode`, sends SIGTERM once it is ready, and gives its exit code (or
 * 'still running' after 15 s) and output.
 */
async function terminated(mode: string): Promise<{ code: number | null | 'still running'; lines: string[] }> {
  const run = start([mode]);
  try {
    await until(() => run.lines().includes('{"ready":true}'));
    run.child.kill('SIGTERM');
    const code = await Promise.race([
      run.exited,
      new Promise<'still running'>((resolve) => setTimeout(() => resolve('still running'), 15_000).unref()),
    ]);
    return { code, lines: run.lines() };
  } finally {
    run.child.kill('SIGKILL');
  }
}

test(
  "the process's SIGTERM reaches the serving thread, whose exit code is the process's",
  { timeout: 20_000 },
  async () => {
    const { code, lines } = await terminated('signal');
    assert.equal(code, 3);
    assert.deepEqual(lines, ['{"ready":true}', '{"got":"SIGTERM"}']);
  },
);

test(
  'a signal the serving thread does not listen for ends the process, as its default action would',
  { timeout: 20_000 },
  async () => {
    assert.equal((await terminated('no-listener')).code, 128 + 15);
  },
);

test("messages of the parent process's channel reach the serving thread and its answers come back", async () => {
  const run = start(['ipc']);
  try {
    const [ready] = (await once(run.child, 'message')) as [unknown];
    assert.equal(ready, 'ready');
    run.child.send({ hello: 1 });
    const [echo] = (await once(run.child, 'message')) as [unknown];
    assert.deepEqual(echo, { echo: { hello: 1 } });
  } finally {
    run.child.kill('SIGKILL');
    await run.exited;
  }
});

test('an exception the serving thread leaves uncaught is printed and exits the process with 1', async () => {
  const run = start(['throw']);
  assert.equal(await run.exited, 1);
  assert.match(run.lines().join('\n'), /thrown on the serving thread/);
});
