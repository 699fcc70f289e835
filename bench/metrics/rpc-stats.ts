// What counting the RPC traffic (meta serve --metrics) costs the serving loop: server CPU per
// call with RpcServerStats off and on, taking turns in one invocation (this machine's rounds
// differ by more than the effect: compare within a round).
// Usage: node DIST/bench/metrics/rpc-stats.js [--seconds N] [--rounds N]
import { fork, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { RpcClient } from '../../src/rpc/index.js';
import { parseFlags } from '../common/args.js';

const USAGE = `Usage: node DIST/bench/metrics/rpc-stats.js [--seconds N] [--rounds N]`;
const { values } = parseFlags(USAGE, {
  options: { seconds: { type: 'string', default: '3' }, rounds: { type: 'string', default: '4' } },
});
const seconds = Number(values.seconds);
const rounds = Number(values.rounds);
const CONNECTIONS = 4;
const DEPTH = 16;

interface Report {
  cpuUs: number;
  counted: number;
  address: string;
}

async function ask(child: ChildProcess, message: string): Promise<Report> {
  const reply = once(child, 'message');
  if (message) child.send(message);
  return (await reply)[0] as Report;
}

async function measure(mode: 'off' | 'on'): Promise<{ cpuUsPerCall: number; callsPerSecond: number }> {
  const child = fork(fileURLToPath(new URL('./rpc-stats-server.js', import.meta.url)), [mode]);
  try {
    const { address } = await ask(child, '');
    const clients = Array.from({ length: CONNECTIONS }, () => new RpcClient({ address, secret: 'bench' }));
    await Promise.all(clients.map((client) => client.connect()));
    // A short warm-up so both modes are measured optimized.
    const run = async (ms: number): Promise<number> => {
      let calls = 0;
      const endMs = performance.now() + ms;
      const lane = async (client: RpcClient): Promise<void> => {
        while (performance.now() < endMs) {
          await client.call('getattr', [12345], { idempotent: true });
          calls++;
        }
      };
      await Promise.all(clients.flatMap((client) => Array.from({ length: DEPTH }, () => lane(client))));
      return calls;
    };
    await run(500);
    await ask(child, 'reset');
    const startMs = performance.now();
    const calls = await run(seconds * 1000);
    const elapsedMs = performance.now() - startMs;
    const report = await ask(child, 'report');
    if (mode === 'on' && report.counted < calls)
      throw new Error(`counted ${report.counted} of ${calls} calls`);
    await Promise.all(clients.map((client) => client.close()));
    return { cpuUsPerCall: report.cpuUs / calls, callsPerSecond: (calls / elapsedMs) * 1000 };
  } finally {
    child.send('stop');
    await once(child, 'exit');
  }
}

console.log(
  '| round | off: server CPU µs/call | on: server CPU µs/call | on/off | off calls/s | on calls/s |',
);
console.log('| ----- | ---------------------- | --------------------- | ------ | ----------- | ---------- |');
for (let round = 1; round <= rounds; round++) {
  // Alternate which mode goes first, so a drift in the machine's load does not favour one.
  const first = round % 2 === 1 ? 'off' : 'on';
  const a = await measure(first);
  const b = await measure(first === 'off' ? 'on' : 'off');
  const [off, on] = first === 'off' ? [a, b] : [b, a];
  console.log(
    `| ${round} | ${off.cpuUsPerCall.toFixed(2)} | ${on.cpuUsPerCall.toFixed(2)} | ${(on.cpuUsPerCall / off.cpuUsPerCall).toFixed(3)} | ${Math.round(off.callsPerSecond).toLocaleString('en-US')} | ${Math.round(on.callsPerSecond).toLocaleString('en-US')} |`,
  );
}
