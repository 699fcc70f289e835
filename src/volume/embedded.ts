import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { StrataConfig } from '../config/index.js';
import { addGcPass, emptyGcTotals } from '../metrics/index.js';
import { SQLITE_ENGINE_CACHE_BYTES } from '../meta/index.js';
import { backgroundGcEnv, type BackgroundGc } from '../ops/index.js';
import { mountClient, type MountedVolume } from './client.js';
import { claimEngine, type EngineClaim } from './engine-lock.js';
import { formatIfMissing, openLocalMeta } from './meta-access.js';
import { serveLocalMeta, type LocalMetaServer } from './rpc-access.js';
import { startServiceGc } from './server-gc.js';
import { VERSION } from './version.js';

export interface EmbeddedOptions {
  dataDir: string;
  mountpoint: string;
  /** Object store for a new volume; default file:DATA_DIR/objects. Later runs use it as an override. */
  storageUrl?: string;
  /** Also serve the metadata over RPC here (other clients `strata mount` it). */
  listen?: { host: string; port: number };
  volumeName: string;
  config: StrataConfig;
  log: (message: string) => void;
}

/**
 * `strata up`: the embedded default. The volume lives in DATA_DIR (SQLite engine in
 * meta.db, objects under objects/), is created on first run, and its metadata service runs
 * in this process: the VFS calls it directly, with no RPC in between.
 */
export async function startEmbedded(options: EmbeddedOptions): Promise<MountedVolume> {
  const { dataDir } = options;
  if (!existsSync(options.mountpoint)) {
    throw new Error(`mount point ${options.mountpoint} does not exist; create it with mkdir -p first`);
  }
  mkdirSync(join(dataDir, 'objects'), { recursive: true });
  const engineUrl = `sqlite:${join(dataDir, 'meta.db')}`;
  const defaultStorage = `file:${join(dataDir, 'objects')}`;
  const claim = await claimEngine(
    engineUrl,
    'Stop it first, or mount the volume it serves (strata up --listen or strata meta serve, then strata mount)',
  );
  try {
    return await startClaimed(options, engineUrl, defaultStorage, claim);
  } catch (err) {
    await claim.release();
    throw err;
  }
}

async function startClaimed(
  options: EmbeddedOptions,
  engineUrl: string,
  defaultStorage: string,
  claim: EngineClaim,
): Promise<MountedVolume> {
  const { dataDir, config, log } = options;
  const created = await formatIfMissing({
    engineUrl,
    storageUrl: options.storageUrl ?? defaultStorage,
    name: options.volumeName,
    blockSizeBytes: config.blockSizeBytes,
    retentionMs: config.retentionMs,
    secretFile: join(dataDir, 'meta.db.secret'),
  });
  if (created) log(`created volume "${options.volumeName}" in ${dataDir}`);
  const local = await openLocalMeta(engineUrl);
  let server: LocalMetaServer | null = null;
  try {
    if (options.listen) server = await serveLocalMeta(local, options.listen, log);
  } catch (err) {
    await local.close();
    throw err;
  }
  const gc: { collector?: BackgroundGc } = {};
  const volume = await mountClient({
    // With other clients on the server, this mount's changes are pushed to them and theirs
    // invalidate this mount's kernel caches, as between two `strata mount` processes.
    meta: server?.meta ?? local.meta,
    onInvalidation: server ? (listener) => server?.onInvalidation(listener) : undefined,
    mountpoint: options.mountpoint,
    config,
    storageUrl: options.storageUrl,
    version: VERSION,
    log,
    // One budget for the process: the engine's page caches are memory the mount's is not.
    sharedMemoryBytes: SQLITE_ENGINE_CACHE_BYTES,
    closeMeta: async () => {
      await gc.collector?.stop();
      await server?.close();
      await local.close();
      await claim.release();
    },
  });
  // Garbage collection runs beside the engine that owns the volume (src/ops/gc-background.ts).
  const gcTotals = emptyGcTotals();
  try {
    gc.collector = await startServiceGc(local.service, {
      storageUrl: options.storageUrl,
      timing: backgroundGcEnv(),
      log,
      onPass: (report) => addGcPass(gcTotals, report),
    });
  } catch (err) {
    await volume.stop();
    throw err;
  }
  return server === null
    ? { ...volume, gcTotals }
    : {
        ...volume,
        gcTotals,
        metaAddress: server.address,
        metaServerStats: server.stats ?? undefined,
        stop: volume.stop,
      };
}
