// Child process of the FUSE frame fuzzer: serves the real FuseSession (decoder,
// opcode table, dispatcher) over fd 3, a SOCK_SEQPACKET socket standing in for
// /dev/fuse (seqpacket-relay.c), with the in-memory test file system behind it.
// Any uncaught error ends this process, which the fuzzer reports as a crash.
import { FuseSession, type FuseLogger } from '../../src/fuse/index.js';
import { MemFs } from '../fuse/memfs.js';

const FUSE_FD = 3;

let errorsLogged = 0;
// Malformed frames are expected to be logged; thousands of lines would only slow the
// run, so they are counted, and printed only with STRATA_FUZZ_LOG=1 (when debugging).
const verbose = process.env.STRATA_FUZZ_LOG === '1';
const logger: FuseLogger = {
  debug: () => undefined,
  warn: (message) => {
    if (verbose) process.stderr.write(`${message}\n`);
  },
  error: (message) => {
    errorsLogged++;
    if (verbose) process.stderr.write(`${message}\n`);
  },
};

const session = FuseSession.fromFd(FUSE_FD, new MemFs({ entryTimeoutMs: 0, attrTimeoutMs: 0 }), { logger });
process.on('SIGTERM', () => {
  process.stderr.write(`fuzz target: ${errorsLogged} errors logged\n`);
  session.close();
  process.exit(0);
});
