import { randomBytes, randomUUID } from 'node:crypto';
import { ROOT_INO, fsError } from '../common/index.js';
import type { VolumeSettings } from './api.js';
import { recordCallOutcomes } from './call-outcomes.js';
import { S_IFDIR, newInodeRow, timespecFromUs } from './attrs.js';
import { systemClock, type Clock, type EngineOptions } from './engine.js';
import { openEngine } from './engine-registry.js';
import { COUNTER_INODES } from './namespace.js';
import { MetaService, type MetaServiceOptions } from './service.js';
import { COUNTER_INO_HI, COUNTER_SLICE_HI, SETTING_SECRET, SETTING_VOLUME } from './volume-keys.js';
import './engines/index.js';

export const DEFAULT_VOLUME_SETTINGS = {
  blockSizeBytes: 4 * 1024 * 1024,
  chunkSizeBytes: 64 * 1024 * 1024,
  historyRetentionMs: 7 * 24 * 3600 * 1000,
  encryption: false,
  storageUrl: '',
  maxLinks: 0,
} as const;

export interface FormatOptions {
  /** Wipe an existing volume instead of refusing. */
  force?: boolean;
  clock?: Clock;
  /** Owner and mode bits of the root directory (default root:root 0755). */
  rootUid?: number;
  rootGid?: number;
  rootMode?: number;
}

export type FormatSettings = Partial<Omit<VolumeSettings, 'uuid' | 'createdUs'>> & { name: string };

function validate(settings: VolumeSettings): void {
  const { blockSizeBytes, chunkSizeBytes } = settings;
  if (!Number.isSafeInteger(blockSizeBytes) || blockSizeBytes < 4096) {
    throw fsError.EINVAL(`block size ${blockSizeBytes} must be at least 4 KiB`);
  }
  if (
    !Number.isSafeInteger(chunkSizeBytes) ||
    chunkSizeBytes % blockSizeBytes !== 0 ||
    chunkSizeBytes > 2 ** 31
  ) {
    throw fsError.EINVAL(
      `chunk size ${chunkSizeBytes} must be a multiple of the block size and at most 2 GiB`,
    );
  }
  if (!(settings.historyRetentionMs >= 0)) throw fsError.EINVAL('history retention must be >= 0 ms');
  if (!(settings.maxLinks >= 0)) throw fsError.EINVAL('maxLinks must be >= 0 (0 = no limit)');
  if (!settings.name) throw fsError.EINVAL('a volume needs a name');
}

/**
 * Creates the schema and the volume (settings, secret, root directory) at `engineUrl`.
 * Refuses to touch an existing volume unless `force` (which wipes it).
 */
export async function formatVolume(
  engineUrl: string,
  settings: FormatSettings,
  options: FormatOptions = {},
): Promise<VolumeSettings> {
  const clock = options.clock ?? systemClock;
  const volume: VolumeSettings = {
    ...DEFAULT_VOLUME_SETTINGS,
    ...settings,
    uuid: randomUUID(),
    createdUs: clock.nowUs(),
  };
  validate(volume);
  const engine = await openEngine(engineUrl, { clock });
  try {
    const existing = await engine.read((tx) => tx.getSetting(SETTING_VOLUME));
    if (existing) {
      if (!options.force) {
        const name = (JSON.parse(existing) as VolumeSettings).name;
        throw fsError.EEXIST(
          `${engine.displayUrl} already holds volume "${name}"; pass force to wipe it and format again`,
        );
      }
      // Ids keep growing across a forced re-format: objects of the old volume may still sit
      // in the store under their slice ids, and must never be confused with new ones.
      const kept = await engine.read(async (tx) => [
        await tx.getCounter(COUNTER_INO_HI),
        await tx.getCounter(COUNTER_SLICE_HI),
      ]);
      await engine.wipe();
      await engine.write(async (tx) => {
        await tx.addCounter(COUNTER_INO_HI, kept[0]);
        await tx.addCounter(COUNTER_SLICE_HI, kept[1]);
      });
    }
    await engine.write(async (tx) => {
      await tx.putSetting(SETTING_VOLUME, JSON.stringify(volume));
      await tx.putSetting(SETTING_SECRET, randomBytes(32).toString('hex'));
      const now = timespecFromUs(volume.createdUs);
      const root = newInodeRow(
        ROOT_INO,
        S_IFDIR | (options.rootMode ?? 0o755),
        options.rootUid ?? 0,
        options.rootGid ?? 0,
        now,
        {
          nlink: 2,
          parent: ROOT_INO,
        },
      );
      await tx.putInode(root);
      if ((await tx.getCounter(COUNTER_INO_HI)) < ROOT_INO) await tx.addCounter(COUNTER_INO_HI, ROOT_INO);
      await tx.addCounter(COUNTER_INODES, 1 - (await tx.getCounter(COUNTER_INODES)));
    });
  } finally {
    await engine.close();
  }
  return volume;
}

export interface OpenMetaServiceOptions extends EngineOptions, Partial<Omit<MetaServiceOptions, 'clock'>> {
  engineUrl: string;
}

/** Opens the engine at `engineUrl` and the service over the volume it holds. */
export async function openMetaService(options: OpenMetaServiceOptions): Promise<MetaService> {
  const clock = options.clock ?? systemClock;
  const engine = recordCallOutcomes(await openEngine(options.engineUrl, { ...options, clock }));
  const raw = await engine.read((tx) => tx.getSetting(SETTING_VOLUME));
  if (!raw) {
    await engine.close();
    throw fsError.ENOENT(`no volume in ${engine.displayUrl}; run "strata format" first`);
  }
  const settings = JSON.parse(raw) as VolumeSettings;
  return new MetaService(engine, settings, { ...options, clock });
}
