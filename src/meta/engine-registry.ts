import { fsError } from '../common/index.js';
import type { Engine, EngineOpener, EngineOptions, EngineReader, EngineReaderOpener } from './engine.js';

// One opener per URL scheme; the service never names a backend.
const openers = new Map<string, EngineOpener>();

/** Makes `scheme:` URLs (e.g. "sqlite", "postgres") open with `opener`. */
export function registerEngine(scheme: string, opener: EngineOpener): void {
  openers.set(scheme, opener);
}

// Engines whose committed state another thread of the process may read directly (SQLite).
const readers = new Map<string, EngineReaderOpener>();

export function registerReader(scheme: string, opener: EngineReaderOpener): void {
  readers.set(scheme, opener);
}

/** A read-only view of the volume at `url` from this thread, or undefined if its engine has none. */
export async function openEngineReader(url: string): Promise<EngineReader | undefined> {
  return readers.get(engineScheme(url))?.(url);
}

export function engineScheme(url: string): string {
  const colon = url.indexOf(':');
  return colon > 0 ? url.slice(0, colon).toLowerCase() : '';
}

/** Opens the engine for `url` ("sqlite:/path/meta.db", "postgres://..."). */
export async function openEngine(url: string, options: EngineOptions = {}): Promise<Engine> {
  const scheme = engineScheme(url);
  const opener = openers.get(scheme) ?? (scheme === 'postgresql' ? openers.get('postgres') : undefined);
  if (!opener) {
    const known = [...openers.keys()].join(', ') || 'none';
    throw fsError.EINVAL(`unknown metadata engine "${scheme}" in "${url}"; known schemes: ${known}`);
  }
  return opener(url, options);
}
