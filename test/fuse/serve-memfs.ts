// Test helper process: mounts a MemFs at argv[2] and serves it until unmounted or
// signalled (SIGINT/SIGTERM unmount cleanly). Prints "ready" once INIT is answered.
// Flags: --direct-io, --timeouts-zero, --writeback, --no-locks (see MemFsOptions.locks),
// --io-uring (serve through FUSE over io_uring, see SessionOptions.ioUring), --spin-us N
// (SessionOptions.pollSpinUs). With STRATA_PRINT_SPINS set it prints the session's poll
// counts (FuseSession.pollSpins) to stderr once unmounted.
import { mount } from '../../src/fuse/index.js';
import { MemFs } from './memfs.js';

const [mountpoint, ...flags] = process.argv.slice(2);
if (!mountpoint) {
  console.error(
    'usage: serve-memfs.js MOUNTPOINT [--direct-io] [--timeouts-zero] [--writeback] [--no-locks] [--io-uring] [--spin-us N]',
  );
  process.exit(2);
}
const zero = flags.includes('--timeouts-zero');
const spinAt = flags.indexOf('--spin-us');
const fs = new MemFs({
  directIo: flags.includes('--direct-io'),
  entryTimeoutMs: zero ? 0 : 1000,
  attrTimeoutMs: zero ? 0 : 1000,
  locks: !flags.includes('--no-locks'),
});
const session = await mount({
  mountpoint,
  fs,
  options: {
    writebackCache: flags.includes('--writeback'),
    ioUring: flags.includes('--io-uring'),
    pollSpinUs: spinAt >= 0 ? Number(flags[spinAt + 1]) : undefined,
    unmountOnSignals: true,
  },
});
process.stdout.write(session.usesIoUring ? 'io_uring\nready\n' : 'ready\n');
await session.closed;
process.stdout.write('unmounted\n');
if (process.env.STRATA_PRINT_SPINS) console.error(`poll spins: ${JSON.stringify(session.pollSpins)}`);
