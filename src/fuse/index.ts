export {
  type FileSystem,
  type RequestContext,
  type FuseAttr,
  type Entry,
  type NegativeEntry,
  type AttrReply,
  type OpenReply,
  type CreateReply,
  type StatFs,
  type DirEntryOut,
  type SetAttrIn,
  type SetTime,
  type FileLock,
  type LentBytes,
  type InitInfo,
  DirentType,
  direntTypeOfMode,
  LockType,
  RenameFlags,
  SeekWhence,
  WriteFlags,
} from './filesystem.js';
export { FuseSession, type SessionOptions, type SessionHandoff, type FuseLogger } from './session.js';
export { DEFAULT_POLL_SPIN_US, MAX_POLL_SPIN_US } from './session-options.js';
export { mount, type MountOptions, type MountRequest } from './mount.js';
export { releaseFreedMemory } from './native.js';
export { notificationSlots } from './notify.js';
