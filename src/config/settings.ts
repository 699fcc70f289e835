import { parseDurationMs, parseSizeBytes } from '../common/index.js';

/**
 * Every tunable of a StrataFS client process, in one table: name, unit, default, the
 * flag and environment variable that set it, and its valid range. The CLI builds its
 * options from this table and `strata status` prints it, so a setting is added in one place.
 */
export type SettingKind = 'size' | 'duration' | 'count' | 'text' | 'flag';

export interface SettingSpec<K extends SettingKind = SettingKind> {
  kind: K;
  /** Long flag without dashes, e.g. "cache-size". */
  flag: string;
  /** Environment variable, e.g. "STRATA_CACHE_SIZE". */
  env: string;
  /** One line for --help. */
  description: string;
  /** Default, in the text form a user would type ("512M", "1s", "8"). */
  defaultText: string;
  /** Inclusive bounds after parsing (bytes, ms or count). */
  min?: number;
  max?: number;
}

const GiB = 1024 ** 3;
const MiB = 1024 ** 2;

export const settingSpecs = {
  memoryBytes: {
    kind: 'size',
    flag: 'memory',
    env: 'STRATA_MEMORY',
    description:
      "memory budget of the mount shared by write buffers, read cache and readahead (and, in strata up, the metadata engine's page caches)",
    defaultText: '512M',
    min: 32 * MiB,
    max: 1024 * GiB,
  },
  cacheDir: {
    kind: 'text',
    flag: 'cache-dir',
    env: 'STRATA_CACHE_DIR',
    description: 'directory of the local disk cache of blocks ("" disables the disk cache)',
    defaultText: '',
  },
  cacheSizeBytes: {
    kind: 'size',
    flag: 'cache-size',
    env: 'STRATA_CACHE_SIZE',
    description: 'size limit of the local disk cache',
    defaultText: '10G',
    min: 0,
    max: 1024 ** 5,
  },
  blockSizeBytes: {
    kind: 'size',
    flag: 'block-size',
    env: 'STRATA_BLOCK_SIZE',
    description: 'block (object) size for a new volume; fixed once the volume exists',
    defaultText: '4M',
    min: 64 * 1024,
    max: 64 * MiB,
  },
  retentionMs: {
    kind: 'duration',
    flag: 'retention',
    env: 'STRATA_RETENTION',
    description: 'how long a new volume keeps metadata history for time travel',
    defaultText: '7d',
    min: 0,
    max: 3650 * 86_400_000,
  },
  attrTimeoutMs: {
    kind: 'duration',
    flag: 'attr-timeout',
    env: 'STRATA_ATTR_TIMEOUT',
    description: 'how long the kernel may cache file attributes',
    defaultText: '1s',
    min: 0,
    max: 3_600_000,
  },
  entryTimeoutMs: {
    kind: 'duration',
    flag: 'entry-timeout',
    env: 'STRATA_ENTRY_TIMEOUT',
    description: 'how long the kernel may cache name lookups',
    defaultText: '1s',
    min: 0,
    max: 3_600_000,
  },
  uploadsInFlight: {
    kind: 'count',
    flag: 'uploads',
    env: 'STRATA_UPLOADS',
    description: 'block uploads in flight per mount',
    defaultText: '16',
    min: 1,
    max: 1024,
  },
  storeRetryMs: {
    kind: 'duration',
    flag: 'store-retry',
    env: 'STRATA_STORE_RETRY',
    description: 'how long an object store request is retried (store down, throttled) before EIO',
    defaultText: '60s',
    min: 0,
    max: 86_400_000,
  },
  metaRetryMs: {
    kind: 'duration',
    flag: 'meta-retry',
    env: 'STRATA_META_RETRY',
    description:
      'how long calls wait for an unreachable metadata server (restart, failover, network) before EIO',
    defaultText: '60s',
    min: 0,
    max: 86_400_000,
  },
  heartbeatIntervalMs: {
    kind: 'duration',
    flag: 'heartbeat',
    env: 'STRATA_HEARTBEAT',
    description: 'how often the mount tells the metadata service it is alive',
    defaultText: '10s',
    min: 100,
    max: 3_600_000,
  },
  compactSlicesThreshold: {
    kind: 'count',
    flag: 'compact-slices',
    env: 'STRATA_COMPACT_SLICES',
    description: 'a chunk with at least this many slices is compacted in the background (0 = never)',
    defaultText: '64',
    min: 0,
    max: 100_000,
  },
  lockRetryMaxMs: {
    kind: 'duration',
    flag: 'lock-retry-max',
    env: 'STRATA_LOCK_RETRY_MAX',
    description: 'longest pause between retries of a blocking lock request',
    defaultText: '200ms',
    min: 1,
    max: 60_000,
  },
  ioUring: {
    kind: 'flag',
    flag: 'io-uring',
    env: 'STRATA_IO_URING',
    description:
      'serve FUSE requests over io_uring (Linux 6.14+; turns on the fuse module parameter enable_uring; falls back to /dev/fuse when the kernel refuses)',
    defaultText: 'false',
  },
  // Default and range as src/fuse/session-options.ts has them (config may import only common;
  // test/cli/config.test.ts checks that the two agree).
  fuseSpinUs: {
    kind: 'count',
    flag: 'fuse-spin-us',
    env: 'STRATA_FUSE_SPIN_US',
    description:
      'microseconds the FUSE loop polls for the next request once all are answered, before sleeping (0 = never; it stops by itself while the CPU is contended)',
    defaultText: '50',
    min: 0,
    max: 1000,
  },
} satisfies Record<string, SettingSpec>;

export type SettingName = keyof typeof settingSpecs;

type ValueOf<K extends SettingKind> = K extends 'text' ? string : K extends 'flag' ? boolean : number;

/** The one typed, validated configuration object of a client process. */
export type StrataConfig = { -readonly [N in SettingName]: ValueOf<(typeof settingSpecs)[N]['kind']> };

/** Parses one setting from its text form; `what` names where it came from, e.g. "--memory". */
export function parseSetting(name: SettingName, text: string, what: string): string | number | boolean {
  const spec: SettingSpec = settingSpecs[name];
  let value: number;
  switch (spec.kind) {
    case 'text':
      return text;
    case 'flag':
      if (!['true', 'false', '1', '0', 'yes', 'no'].includes(text.toLowerCase())) {
        throw new Error(`invalid ${what} "${text}": use true or false`);
      }
      return ['true', '1', 'yes'].includes(text.toLowerCase());
    case 'size':
      value = parseSizeBytes(text, what);
      break;
    case 'duration':
      value = parseDurationMs(text, what);
      break;
    case 'count':
      if (!/^\s*\d+\s*$/.test(text)) throw new Error(`invalid ${what} "${text}": use a whole number`);
      value = Number(text);
      break;
  }
  if ((spec.min !== undefined && value < spec.min) || (spec.max !== undefined && value > spec.max)) {
    throw new Error(
      `invalid ${what} "${text}": must be between ${describeBound(spec, spec.min)} and ${describeBound(spec, spec.max)}`,
    );
  }
  return value;
}

function describeBound(spec: SettingSpec, bound: number | undefined): string {
  if (bound === undefined) return 'unbounded';
  if (spec.kind === 'size') {
    for (const [unit, bytes] of [
      ['T', 1024 ** 4],
      ['G', GiB],
      ['M', MiB],
      ['K', 1024],
    ] as const) {
      if (bound >= bytes && bound % bytes === 0) return `${bound / bytes}${unit}`;
    }
  }
  if (spec.kind === 'duration') return bound % 1000 === 0 ? `${bound / 1000}s` : `${bound}ms`;
  return String(bound);
}
