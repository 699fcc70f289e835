const sizeSuffixes: Record<string, number> = {
  '': 1,
  b: 1,
  k: 1024,
  kb: 1000,
  kib: 1024,
  m: 1024 ** 2,
  mb: 1000 ** 2,
  mib: 1024 ** 2,
  g: 1024 ** 3,
  gb: 1000 ** 3,
  gib: 1024 ** 3,
  t: 1024 ** 4,
  tb: 1000 ** 4,
  tib: 1024 ** 4,
};

/**
 * Parses a human-readable size such as "512M", "10G", "4KiB" or "1000" into bytes.
 * Bare suffixes (K, M, G, T) are binary, as `dd` and most storage tools read them.
 */
export function parseSizeBytes(text: string, what = 'size'): number {
  const match = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(text);
  const multiplier = match ? sizeSuffixes[match[2].toLowerCase()] : undefined;
  if (!match || multiplier === undefined) {
    throw new Error(`invalid ${what} "${text}": use a number with an optional unit, e.g. 512M, 10G, 4KiB`);
  }
  const bytes = Math.round(Number(match[1]) * multiplier);
  if (!Number.isSafeInteger(bytes)) throw new Error(`invalid ${what} "${text}": too large`);
  return bytes;
}

const durationUnits: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** Parses a duration such as "500ms", "30s", "10m", "7d" into milliseconds. A bare number is seconds. */
export function parseDurationMs(text: string, what = 'duration'): number {
  const match = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$/.exec(text);
  if (!match)
    throw new Error(`invalid ${what} "${text}": use a number with a unit, e.g. 500ms, 30s, 10m, 7d`);
  return Math.round(Number(match[1]) * durationUnits[match[2] ?? 's']);
}

/** Formats a byte count for people: 1536 -> "1.5 KiB". */
export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let value = bytes;
  let unit = 0;
  while (Math.abs(value) >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${bytes} B` : `${value.toFixed(1)} ${units[unit]}`;
}
