import { existsSync } from 'node:fs';
import type { StrataConfig } from '../config/index.js';
import { mountClient, type MountedVolume } from './client.js';
import { connectRemoteMeta } from './rpc-access.js';
import { resolveClientSecret } from './secret.js';
import { VERSION } from './version.js';

export interface RemoteOptions {
  /** HOST:PORT or a Unix socket path of `strata meta serve`. */
  metaAddress: string;
  volumeName: string;
  mountpoint: string;
  secretFile?: string;
  storageUrl?: string;
  config: StrataConfig;
  log: (message: string) => void;
  /** Mounts the volume as it was at this instant (µs since the epoch), read-only. */
  asOfUs?: number;
}

/** `strata mount`: a client of a metadata service in another process (or machine). */
export async function mountRemote(options: RemoteOptions): Promise<MountedVolume> {
  if (!existsSync(options.mountpoint)) {
    throw new Error(`mount point ${options.mountpoint} does not exist; create it with mkdir -p first`);
  }
  const secret = resolveClientSecret(options.secretFile);
  const remote = await connectRemoteMeta(
    options.metaAddress,
    options.volumeName,
    secret,
    options.log,
    options.config.metaRetryMs,
  );
  return mountClient({
    meta: remote.meta,
    mountpoint: options.mountpoint,
    config: options.config,
    storageUrl: options.storageUrl,
    version: VERSION,
    log: options.log,
    closeMeta: () => remote.close(),
    onInvalidation: (listener) => remote.meta.onInvalidation(listener),
    asOfUs: options.asOfUs,
    metaCalls: remote.callStats,
  });
}
