import type { MetaApi } from '../api.js';

/** Everything the worker answers: the metadata API plus the server-side extras. */
export interface WorkerRemote extends MetaApi {
  volumeSecret(): Promise<string>;
  expireSessions(): Promise<string[]>;
  pruneHistory(): Promise<number>;
}

export type RemoteMethod = keyof WorkerRemote;

export interface CallMessage {
  id: number;
  method: RemoteMethod;
  args: unknown[];
}

export type ReplyMessage =
  | { id: number; ok: true; value: unknown }
  | { id: number; ok: false; errno: number; message: string; internal: boolean };

export const REMOTE_METHODS: readonly RemoteMethod[] = [
  'openSession',
  'heartbeat',
  'closeSession',
  'lookup',
  'getattr',
  'readlink',
  'readdir',
  'access',
  'mknod',
  'mkdir',
  'symlink',
  'link',
  'unlink',
  'rmdir',
  'rename',
  'setattr',
  'open',
  'release',
  'setxattr',
  'getxattr',
  'listxattr',
  'removexattr',
  'allocateSliceIds',
  'readSlices',
  'commitWrites',
  'fallocate',
  'copyFileRange',
  'replaceChunkSlices',
  'getlk',
  'setlk',
  'statfs',
  'volume',
  'volumeSecret',
  'expireSessions',
  'pruneHistory',
];

/** Structured clone turns a Buffer into a plain Uint8Array: give it its Buffer face back. */
export function asBuffer(value: unknown): unknown {
  return value instanceof Uint8Array && !Buffer.isBuffer(value)
    ? Buffer.from(value.buffer, value.byteOffset, value.byteLength)
    : value;
}
