import { statfsSync } from 'node:fs';
import { dirname } from 'node:path';
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

/**
 * SQLite's "database or disk is full" while opening the engine, said so that the user knows
 * what to do: opening writes (the schema check runs in a write transaction, WAL recovery), so a
 * volume whose metadata disk filled up cannot start until some space is freed there.
 */
function openFailure(engineUrl: string, err: unknown): unknown {
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code !== 'string' || !engineUrl.startsWith('sqlite:')) return err;
  // Creating the shared-memory file on a full disk is "disk I/O error" (SQLITE_IOERR_*): tell
  // it from a failing disk by the free space left.
  const full =
    code === 'SQLITE_FULL' ||
    (code.startsWith('SQLITE_IOERR') && noSpaceLeft(engineUrl.slice('sqlite:'.length)));
  if (!full) return err;
  return new Error(
    `cannot open the metadata database ${engineUrl}: the disk holding it is full (${String(err)}); ` +
      `free some space on it and start again (nothing was lost)`,
    { cause: err },
  );
}

function noSpaceLeft(databasePath: string): boolean {
  try {
    return statfsSync(dirname(databasePath)).bavail === 0;
  } catch {
    return false;
  }
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
    throw openFailure(volume.engineUrl, err);
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
  const service = await openMetaService({ engineUrl, background: true }).catch((err: unknown) => {
    throw openFailure(engineUrl, err);
  });
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
