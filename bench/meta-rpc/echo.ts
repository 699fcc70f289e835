// RPC layer alone: calls/s and server CPU per call against echo-server.ts (no engine).
// Usage: node dist/bench/meta-rpc/echo.js [--seconds N]
import { fork } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { RpcClient } from '../../src/rpc/index.js';
import { parseFlags } from '../common/args.js';

const USAGE = `Usage: node dist/bench/meta-rpc/echo.js [--seconds N]`;
const { values } = parseFlags(USAGE, { options: { seconds: { type: 'string', default: '3' } } });
const seconds = Number(values.seconds);
const child = fork(fileURLToPath(new URL('./echo-server.js', import.meta.url)), ['127.0.0.1:0']);
const ask = async (message: string): Promise<{ cpuUs: number; p99Ms: number; address: string }> => {
  const reply = once(child, 'message');
  if (message) child.send(message);
  return (await reply)[0] as { cpuUs: number; p99Ms: number; address: string };
};
try {
  const { address } = await ask('');
  console.log('| connections | calls/s | server CPU µs/call | client CPU µs/call | server loop p99 ms |');
  console.log('|---|---|---|---|---|');
  for (const connections of [1, 16]) {
    const clients = Array.from({ length: connections }, () => new RpcClient({ address, secret: 'bench' }));
    await Promise.all(clients.map((client) => client.connect()));
    const depth = connections === 1 ? 64 : 16;
    await ask('reset');
    const clientCpuAtStart = process.cpuUsage();
    let calls = 0;
    const endMs = performance.now() + seconds * 1000;
    const startMs = performance.now();
    const lane = async (client: RpcClient): Promise<void> => {
      while (performance.now() < endMs) {
        await client.call('getattr', [12345], { idempotent: true });
        calls++;
      }
    };
    await Promise.all(clients.flatMap((client) => Array.from({ length: depth }, () => lane(client))));
    const elapsedMs = performance.now() - startMs;
    const clientCpu = process.cpuUsage(clientCpuAtStart);
    const stats = await ask('report');
    const clientCpuUsPerCall = (clientCpu.user + clientCpu.system) / calls;
    console.log(
      `| ${connections} | ${Math.round((calls / elapsedMs) * 1000).toLocaleString('en-US')} | ${(stats.cpuUs / calls).toFixed(1)} | ${clientCpuUsPerCall.toFixed(1)} | ${stats.p99Ms.toFixed(1)} |`,
    );
    await Promise.all(clients.map((client) => client.close()));
  }
} finally {
  child.send('stop');
  await once(child, 'exit');
}
