// RPC layer alone: a server whose handler answers an InodeAttr-sized constant, so the cost
// measured is framing, codec, dispatch and sockets, without an engine behind them.
import { startRpcServer } from '../../src/rpc/index.js';
import { LoopDelayProbe } from '../common/loop-delay.js';

const attr = {
  ino: 12345,
  mode: 0o100644,
  uid: 1000,
  gid: 1000,
  nlink: 1,
  sizeBytes: 4096,
  rdev: 0,
  atime: { sec: 1_764_000_000, nsec: 123_456_789 },
  mtime: { sec: 1_764_000_000, nsec: 123_456_789 },
  ctime: { sec: 1_764_000_000, nsec: 123_456_789 },
  generation: 0,
};
const delay = new LoopDelayProbe();
delay.enable();
const server = await startRpcServer({
  listen: process.argv[2] ?? '127.0.0.1:0',
  secret: 'bench',
  handler: () => Promise.resolve(attr),
});
let cpuAtReset = process.cpuUsage();
process.send?.({ address: server.address });
process.on('message', (message: string) => {
  if (message === 'reset') {
    delay.reset();
    cpuAtReset = process.cpuUsage();
    process.send?.({ reset: true });
  } else if (message === 'report') {
    const cpu = process.cpuUsage(cpuAtReset);
    process.send?.({ cpuUs: cpu.user + cpu.system, p99Ms: delay.percentileMs(99) });
  } else if (message === 'stop') {
    void server.close().then(() => process.exit(0));
  }
});
