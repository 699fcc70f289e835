import { closeSync, write, writev } from 'node:fs';
import { Errno, FsError, fsError, nameByteLength, writeName, type Ino } from '../common/index.js';
import {
  fuse_notify_delete_out,
  fuse_notify_inval_entry_out,
  fuse_notify_inval_inode_out,
  fuse_out_header,
  NotifyCode,
} from './abi.js';
import { writeS64, writeU64 } from './codec.js';
import { tryLoadFdPoll } from './native.js';

// Notifications: messages we send to the kernel unasked, to keep its caches coherent
// with changes made elsewhere (other clients). An out header with unique 0 and the
// notification code in the error field, then the struct, then a NUL-terminated name.

function message(code: number, bodyBytes: number): Buffer {
  const buf = Buffer.alloc(fuse_out_header.size + bodyBytes);
  buf.writeUInt32LE(buf.length, fuse_out_header.len);
  buf.writeInt32LE(code, fuse_out_header.error);
  return buf;
}

/** Drop cached data of `ino` in [offset, offset + length) (length 0: to the end; offset -1: attributes only). */
export function invalInodeMessage(ino: Ino, offsetBytes: number, lengthBytes: number): Buffer {
  const buf = message(NotifyCode.INVAL_INODE, fuse_notify_inval_inode_out.size);
  const at = fuse_out_header.size;
  writeU64(buf, at + fuse_notify_inval_inode_out.ino, ino);
  writeS64(buf, at + fuse_notify_inval_inode_out.off, offsetBytes);
  writeS64(buf, at + fuse_notify_inval_inode_out.len, lengthBytes);
  return buf;
}

/** Drop the cached name `name` in directory `parent`. */
export function invalEntryMessage(parent: Ino, name: string): Buffer {
  const nameBytes = nameByteLength(name);
  const buf = message(NotifyCode.INVAL_ENTRY, fuse_notify_inval_entry_out.size + nameBytes + 1);
  const at = fuse_out_header.size;
  writeU64(buf, at + fuse_notify_inval_entry_out.parent, parent);
  buf.writeUInt32LE(nameBytes, at + fuse_notify_inval_entry_out.namelen);
  writeName(buf, at + fuse_notify_inval_entry_out.size, name);
  return buf; // flags and the trailing NUL stay 0
}

/** `name` (inode `child`) in `parent` was deleted elsewhere. */
export function deleteMessage(parent: Ino, child: Ino, name: string): Buffer {
  const nameBytes = nameByteLength(name);
  const buf = message(NotifyCode.DELETE, fuse_notify_delete_out.size + nameBytes + 1);
  const at = fuse_out_header.size;
  writeU64(buf, at + fuse_notify_delete_out.parent, parent);
  writeU64(buf, at + fuse_notify_delete_out.child, child);
  buf.writeUInt32LE(nameBytes, at + fuse_notify_delete_out.namelen);
  writeName(buf, at + fuse_notify_delete_out.size, name);
  return buf;
}

/** fuse_notify_store_out (linux/fuse.h): nodeid, offset, size, padding; the data follows it. */
const STORE_OUT = { size: 24, nodeid: 0, offset: 8, size_: 16 } as const;

/**
 * The header of a STORE notification: the kernel copies the `lengthBytes` that follow it into
 * the page cache of `ino` at `offsetBytes` (and grows its i_size to their end if smaller).
 * Sent with the data as a second iovec (writeStoreNotification), so the data is not copied.
 */
export function storeHeader(ino: Ino, offsetBytes: number, lengthBytes: number): Buffer {
  const buf = message(NotifyCode.STORE, STORE_OUT.size);
  buf.writeUInt32LE(buf.length + lengthBytes, fuse_out_header.len);
  const at = fuse_out_header.size;
  writeU64(buf, at + STORE_OUT.nodeid, ino);
  writeU64(buf, at + STORE_OUT.offset, offsetBytes);
  buf.writeUInt32LE(lengthBytes, at + STORE_OUT.size_);
  return buf;
}

/** Writes a STORE notification (header and data in one writev) from the libuv pool, as below. */
export function writeStoreNotification(
  fd: number,
  header: Buffer,
  data: Buffer,
  what: string,
): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    writev(fd, [header, data], (error) => {
      if (!error || error.code === 'ENOENT') resolve();
      else
        reject(
          new FsError(error.errno ? -error.errno : Errno.EIO, `notify ${what} failed: ${error.message}`),
        );
    });
  });
}

/**
 * Writes a notification from the libuv thread pool, never the main thread: the kernel
 * may hold a notification until a request on the same inode is answered, and that answer
 * must still be able to leave the main thread meanwhile.
 */
export function writeNotification(fd: number, buf: Buffer, what: string): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    write(fd, buf, 0, buf.length, null, (error) => {
      // ENOENT: the kernel has nothing cached for it, which is the goal anyway.
      if (!error || error.code === 'ENOENT') resolve();
      else
        reject(
          new FsError(error.errno ? -error.errno : Errno.EIO, `notify ${what} failed: ${error.message}`),
        );
    });
  });
}

/** The libuv pool's size in this process (UV_THREADPOOL_SIZE, read by libuv at first use; 4 by default). */
export function libuvPoolThreads(env: NodeJS.ProcessEnv = process.env): number {
  const threads = Number.parseInt(env.UV_THREADPOOL_SIZE ?? '', 10);
  return Number.isFinite(threads) && threads > 0 ? Math.min(threads, 1024) : 4;
}

/**
 * Notification writes one session keeps in flight: half the pool, at least one. A notification
 * can hold its pool thread for as long as a READ of the same pages is unanswered (NOTIFY_STORE
 * and INVAL_INODE lock each page they touch, and the kernel keeps a page locked from the READ it
 * sends until our reply), and that READ may itself need the pool (a disk-cache segment, a
 * `file:` object). Were every pool thread inside such a write, nothing could answer: the mount
 * would hang. Half the pool stays free for the data path. With one thread in the pool nothing
 * can be left free, so one notification is still allowed (and such a pool is unsafe).
 */
export function notifyThreadsFor(poolThreads: number): number {
  return Math.max(1, Math.floor(poolThreads / 2));
}

/** Notification writes a session of this process keeps in flight (notifyThreadsFor its pool). */
export function notificationSlots(env: NodeJS.ProcessEnv = process.env): number {
  return notifyThreadsFor(libuvPoolThreads(env));
}

/** A bound on notification writes in flight; the rest wait their turn in order. */
export class NotifyGate {
  private inFlight = 0;
  private readonly waiting: (() => void)[] = [];
  private readonly idleWaiters: (() => void)[] = [];

  constructor(readonly maxInFlight: number) {}

  async run<T>(write: () => Promise<T>): Promise<T> {
    if (this.inFlight < this.maxInFlight) this.inFlight++;
    // The slot is handed over by the write that frees it, so inFlight never drops in between.
    else await new Promise<void>((resolve) => this.waiting.push(resolve));
    try {
      return await write();
    } finally {
      const next = this.waiting.shift();
      if (next !== undefined) next();
      else if (--this.inFlight === 0) for (const idle of this.idleWaiters.splice(0)) idle();
    }
  }

  /** Writes started and not yet finished (for tests and status). */
  get writesInFlight(): number {
    return this.inFlight;
  }

  /** Resolves once no write is in flight (later ones may start: the owner stops them first). */
  idle(): Promise<void> {
    if (this.inFlight === 0) return Promise.resolve();
    return new Promise<void>((resolve) => this.idleWaiters.push(resolve));
  }
}

/** Writes one session's notifications: through its gate, and only while the session runs. */
export class Notifier {
  readonly gate = new NotifyGate(notificationSlots());

  constructor(
    private readonly fd: number,
    private readonly running: () => boolean,
  ) {}

  send(message: Buffer, what: string): Promise<void> {
    return this.write(what, () => writeNotification(this.fd, message, what));
  }

  store(ino: Ino, offsetBytes: number, data: Buffer): Promise<void> {
    const header = storeHeader(ino, offsetBytes, data.length);
    return this.write(`store ${ino}`, () => writeStoreNotification(this.fd, header, data, `store ${ino}`));
  }

  private write(what: string, write: () => Promise<void>): Promise<void> {
    return this.gate.run(() => {
      // Checked when the write's turn comes: the session may have ended while it waited, and the
      // number of its closed descriptor may name another file by then.
      if (!this.running()) throw fsError.ENOTCONN(`notify ${what}: the FUSE session has ended`);
      return write();
    });
  }
}

/**
 * Closes a session's /dev/fuse descriptor. Notification writes handed to the libuv pool may
 * not have started yet, and closing the number outright would let them land in whatever file
 * opens next under it (an object being written, a cache file). So while any is in flight the
 * descriptor is first pointed at /dev/null, which releases the device at once as close would,
 * and closed once they are done.
 */
export function closeDevice(fd: number, notifier: Notifier | undefined): void {
  const retire = tryLoadFdPoll()?.retireFd;
  if (notifier !== undefined && notifier.gate.writesInFlight > 0 && retire !== undefined) {
    try {
      retire(fd);
      void notifier.gate.idle().then(() => closeQuietly(fd));
      return;
    } catch {
      // the descriptor is gone already: nothing to keep
    }
  }
  closeQuietly(fd);
}

function closeQuietly(fd: number): void {
  try {
    closeSync(fd);
  } catch {
    // already closed: nothing left to release
  }
}
