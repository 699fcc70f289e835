/**
 * The cache invalidation a metadata server pushes to its clients (RPC PUSH frame), shared by
 * the server (server/invalidations.ts) and the client (client/client.ts). Value
 * `[inos, entries, all]`: inodes whose attributes or data changed, `[parent, name]` entries
 * added, removed or repointed, and `all` when the server cannot tell what changed (a gap in
 * its change feed): then everything cached is suspect.
 */
export const INVALIDATION_TOPIC = 'meta.invalidate';
export type InvalidationWire = [number[], [number, string][], boolean];
