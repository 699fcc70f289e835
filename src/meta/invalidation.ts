/**
 * The cache invalidation a metadata server pushes to its clients (RPC PUSH frame), shared by
 * the server (server/invalidations.ts) and the client (client/client.ts). Value
 * `[inos, entries, all]`: inodes whose attributes or data changed, `[parent, name]` entries
 * added, removed or repointed, and `all` when the server cannot tell what changed (a gap in
 * its change feed): then everything cached is suspect.
 */
import type { Ino } from '../common/index.js';

export const INVALIDATION_TOPIC = 'meta.invalidate';
export type InvalidationWire = [number[], [number, string][], boolean];

/**
 * What other clients' changes made stale in this client's caches, as its server pushes it:
 * inodes whose attributes or data changed, directory entries added, removed or repointed, and
 * `all` when everything cached is suspect.
 */
export interface MetaInvalidation {
  inos: Ino[];
  entries: { parent: Ino; name: string }[];
  all: boolean;
}

/** The PUSH value `[inos, [parent, name][], all]` (server/invalidations.ts); undefined if malformed. */
export function decodeInvalidation(value: unknown): MetaInvalidation | undefined {
  if (!Array.isArray(value) || value.length !== 3) return undefined;
  const [inos, entries, all] = value as unknown[];
  if (!Array.isArray(inos) || !Array.isArray(entries) || typeof all !== 'boolean') return undefined;
  const out: MetaInvalidation = { inos: [], entries: [], all };
  for (const ino of inos) if (Number.isSafeInteger(ino) && (ino as number) > 0) out.inos.push(ino as Ino);
  for (const entry of entries) {
    if (!Array.isArray(entry)) continue;
    const [parent, name] = entry as unknown[];
    if (Number.isSafeInteger(parent) && typeof name === 'string')
      out.entries.push({ parent: parent as Ino, name });
  }
  return out;
}
