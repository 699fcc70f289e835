// Child process for the object-store fault tests: a full StrataFS client stack
// (metadata service in-process, data path, VFS, FUSE) whose object store is the
// file backend wrapped in fault injection, then in the normal retry policy, so
// applications on the mount should see neither the faults nor their effects.
//
//   node serve-faulty.js DATA_DIR MOUNTPOINT SEED ERROR_RATE TRUNCATE_RATE
//
// Prints "ready" once mounted; on SIGTERM unmounts and prints one JSON line with
// the fault statistics, then exits.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { resolveConfig } from '../../src/config/index.js';
import { createDataPath } from '../../src/data/index.js';
import { mount } from '../../src/fuse/index.js';
import { formatVolume, openMetaService } from '../../src/meta/index.js';
import '../../src/meta/engines/sqlite/register.js';
import { openObjectStore, withFaults, withRetry } from '../../src/object/index.js';
import { Vfs } from '../../src/vfs/index.js';

const [dataDir, mountpoint, seedText, errorRateText, truncateRateText] = process.argv.slice(2);
if (!truncateRateText) {
  console.error('usage: serve-faulty.js DATA_DIR MOUNTPOINT SEED ERROR_RATE TRUNCATE_RATE');
  process.exit(2);
}
const { config } = resolveConfig();
const objects = join(dataDir, 'objects');
mkdirSync(objects, { recursive: true });
const engineUrl = `sqlite:${join(dataDir, 'meta.db')}`;
await formatVolume(engineUrl, { name: 'faulty', storageUrl: `file:${objects}` });
const meta = await openMetaService({ engineUrl });
const volume = await meta.volume();
const faulty = withFaults(await openObjectStore(`file:${objects}`, { retry: false }), {
  seed: Number(seedText),
  errorRate: Number(errorRateText),
  truncateRate: Number(truncateRateText),
});
const store = withRetry(faulty);
const data = createDataPath({
  store,
  blockSizeBytes: volume.blockSizeBytes,
  chunkSizeBytes: volume.chunkSizeBytes,
  // A small budget so reads go back to the (faulty) store instead of memory.
  memoryBudgetBytes: 24 * 1024 * 1024,
  maxInFlightUploads: config.uploadsInFlight,
  allocateSliceIds: (count) => meta.allocateSliceIds(count),
});
const vfs = new Vfs(meta, data, {
  attrTimeoutMs: config.attrTimeoutMs,
  entryTimeoutMs: config.entryTimeoutMs,
  lockRetryMaxMs: config.lockRetryMaxMs,
  heartbeatIntervalMs: config.heartbeatIntervalMs,
  compactSlicesThreshold: config.compactSlicesThreshold,
  mountpoint,
  version: 'reliability-faults',
  log: (message) => process.stderr.write(`${message}\n`),
});
await vfs.start();
const session = await mount({
  mountpoint,
  fs: vfs,
  options: { fsName: 'strata:faulty', unmountOnSignals: false },
});
process.stdout.write('ready\n');
process.on('SIGTERM', () => {
  void (async () => {
    await session.unmount().catch(() => session.close());
    await vfs.stop();
    await data.close();
    await store.close();
    await meta.close();
    process.stdout.write(`${JSON.stringify(faulty.stats)}\n`);
    process.exit(0);
  })();
});
