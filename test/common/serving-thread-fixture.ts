// A process that runs itself on a serving thread (runOnServingThread), for serving-thread.test.ts.
// argv: MODE [YOUNG_GENERATION_MB]; what the thread saw goes to stdout as one JSON line.
import { getHeapSpaceStatistics } from 'node:v8';
import { isMainThread, workerData } from 'node:worker_threads';
import { runOnServingThread, sendToParentProcess, takeRelayedEvents } from '../../src/common/index.js';

if (isMainThread) {
  const youngMb = process.argv[3] === undefined ? undefined : Number(process.argv[3]);
  process.exit(await runOnServingThread(new URL(import.meta.url), process.argv.slice(2), youngMb));
}
takeRelayedEvents();
const [mode] = workerData as string[];
const report = (value: unknown): void => {
  process.stdout.write(`${JSON.stringify(value)}\n`);
};
const keepAlive = setInterval(() => undefined, 1000);

if (mode === 'heap') {
  // Many objects that live a while, as a loaded server's are: the young generation grows to
  // its limit.
  const live: unknown[] = new Array(20_000);
  for (let i = 0; i < 3_000_000; i++) live[i % live.length] = { i, list: [i] };
  const newSpace = getHeapSpaceStatistics().find((space) => space.space_name === 'new_space');
  report({ newSpaceBytes: newSpace?.space_size, kept: live.length });
  process.exit(0);
} else if (mode === 'signal') {
  process.on('SIGTERM', (signal) => {
    report({ got: signal });
    process.exit(3);
  });
  report({ ready: true });
} else if (mode === 'no-listener') {
  // A server still starting: no SIGTERM listener yet.
  report({ ready: true });
} else if (mode === 'ipc') {
  process.on('message', (message) => {
    sendToParentProcess({ echo: message });
    clearInterval(keepAlive);
  });
  sendToParentProcess('ready');
} else if (mode === 'throw') {
  throw new Error('thrown on the serving thread');
}
