import { Errno, isFsError } from '../common/index.js';
import {
  formatVolume,
  openMetaService,
  type MetaApi,
  type MetaService,
  type VolumeSettings,
} from '../meta/index.js';
import '../meta/engines/sqlite/register.js';
import { writeSecretFile } from './secret.js';

/**
 * Everything the composition root asks of the metadata side, in one file: format a volume,
 * open the service in-process, serve it over RPC, connect to a remote one.
 */
export interface LocalMeta {
  readonly meta: MetaApi;
  readonly service: MetaService;
  close(): Promise<void>;
}

export interface NewVolume {
  engineUrl: string;
  storageUrl: string;
  name: string;
  blockSizeBytes: number;
  retentionMs: number;
  /** Where the client secret goes (mode 0600). */
  secretFile: string;
}

/** Formats the volume unless the engine already holds one; true when it was created now. */
export async function formatIfMissing(volume: NewVolume): Promise<boolean> {
  try {
    await formatVolume(volume.engineUrl, {
      name: volume.name,
      storageUrl: volume.storageUrl,
      blockSizeBytes: volume.blockSizeBytes,
      historyRetentionMs: volume.retentionMs,
    });
  } catch (err) {
    if (isFsError(err) && err.errno === Errno.EEXIST) return false;
    throw err;
  }
  const local = await openLocalMeta(volume.engineUrl);
  try {
    writeSecretFile(volume.secretFile, await local.service.volumeSecret());
  } finally {
    await local.close();
  }
  return true;
}

/** The metadata service in this process, over the engine at `engineUrl`. */
export async function openLocalMeta(engineUrl: string): Promise<LocalMeta> {
  const service = await openMetaService({ engineUrl, background: true });
  return { meta: service, service, close: () => service.close() };
}

export interface VolumeStatus {
  volume: VolumeSettings;
  statfs: { usedBytes: number; inodesUsed: number };
  sessions: {
    sessionId: string;
    hostname: string;
    mountpoint: string;
    pid: number;
    version: string;
    heartbeatUs: number;
  }[];
}

/** What `strata status` shows of a volume: settings, usage, sessions. Never the secret. */
export async function volumeStatus(engineUrl: string): Promise<VolumeStatus> {
  const local = await openMetaService({ engineUrl, background: false });
  try {
    const sessions = await local.engine.read((tx) => tx.listSessions());
    return {
      volume: await local.volume(),
      statfs: await local.statfs(),
      sessions: sessions.map((s) => ({ sessionId: s.sessionId, ...s.info, heartbeatUs: s.heartbeatUs })),
    };
  } finally {
    await local.close();
  }
}
