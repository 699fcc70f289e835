// An engine-less RPC server (answers an InodeAttr-sized constant, like bench/meta-rpc/echo-server)
// that counts its traffic in RpcServerStats when started with `on`: the cost measured is what
// the metadata server's --metrics adds to the serving loop.
import { RpcServerStats, startRpcServer } from '../../src/rpc/index.js';

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
// The metadata server's method count, so the method lookup is as large as the real one.
const methods = ['getattr', ...Array.from({ length: 40 }, (_, i) => `method${i}`)];
const stats = process.argv[2] === 'on' ? new RpcServerStats(methods) : undefined;
const server = await startRpcServer({
  listen: '127.0.0.1:0',
  secret: 'bench',
  handler: () => Promise.resolve(attr),
  stats,
});
let cpuAtReset = process.cpuUsage();
process.send?.({ address: server.address });
process.on('message', (message: string) => {
  if (message === 'reset') {
    cpuAtReset = process.cpuUsage();
    process.send?.({ reset: true });
  } else if (message === 'report') {
    const cpu = process.cpuUsage(cpuAtReset);
    process.send?.({ cpuUs: cpu.user + cpu.system, counted: stats ? stats.latency.count(0) : 0 });
  } else if (message === 'stop') {
    void server.close().then(() => process.exit(0));
  }
});
