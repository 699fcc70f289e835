import { spawn } from 'node:child_process';
import { closeSync, constants, openSync, realpathSync } from 'node:fs';
import { resolve } from 'node:path';
import { fsError } from '../common/index.js';
import type { FileSystem } from './filesystem.js';
import { loadFdPoll } from './native.js';
import { setKernelReadahead } from './readahead.js';
import { enableKernelUring } from './ring.js';
import { FuseSession, type SessionOptions } from './session.js';

export interface MountOptions extends SessionOptions {
  /** What `df` and /proc/mounts show as the source. Default "stratafs". */
  fsName?: string;
  /** The type is `fuse.<subtype>`. Default "stratafs". */
  subtype?: string;
  /** Let users other than the mounting one in. Default true. */
  allowOther?: boolean;
  /** Let the kernel check permissions from the mode bits (and ACLs). Default true. */
  defaultPermissions?: boolean;
  readOnly?: boolean;
  /** Unmount on SIGINT/SIGTERM. Default true. */
  unmountOnSignals?: boolean;
  /**
   * Kernel readahead of the mount in bytes (its device's read_ahead_kb, readahead.ts). Default:
   * the largest READ the kernel may send (1 MiB with max_pages); 0 keeps the kernel's 128 KiB.
   */
  readaheadBytes?: number;
}

export interface MountRequest {
  mountpoint: string;
  fs: FileSystem;
  options?: MountOptions;
}

export interface CommandResult {
  code: number;
  stderr: string;
}

/** Runs a command without blocking the event loop (the kernel may need our replies meanwhile). */
export function runCommand(command: string, args: string[], fd?: number): Promise<CommandResult> {
  return new Promise((resolve) => {
    const stdio: Array<'ignore' | 'pipe' | number> = ['ignore', 'ignore', 'pipe'];
    if (fd !== undefined) stdio.push(fd);
    const child = spawn(command, args, { stdio });
    let stderr = '';
    child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.on('error', (error) => resolve({ code: -1, stderr: `${command}: ${error.message}` }));
    child.on('close', (code, signal) =>
      resolve({ code: code ?? -1, stderr: signal ? `${stderr}killed by ${signal}` : stderr }),
    );
  });
}

function canonicalPath(path: string): string {
  try {
    return realpathSync(path);
  } catch {
    return resolve(path);
  }
}

/**
 * Mounts `fs` at `mountpoint` as root: opens /dev/fuse, has mount(8) attach it (the fd is
 * the child's fd 3 and the kernel resolves `fd=3` in the mount process, which shares our
 * open file), serves the session, and resolves once INIT is answered.
 */
export async function mount(request: MountRequest): Promise<FuseSession> {
  const { mountpoint, fs } = request;
  const options = request.options ?? {};
  const fsName = options.fsName ?? 'stratafs';
  const subtype = options.subtype ?? 'stratafs';
  if (/[,\s]/.test(fsName) || /[,\s]/.test(subtype)) {
    throw fsError.EINVAL(`fsName "${fsName}" / subtype "${subtype}" must not contain commas or spaces`);
  }
  loadFdPoll(); // fail before mounting, not after: a mount nobody serves answers ENOTCONN
  if (options.ioUring) {
    // The kernel offers io_uring at INIT only while the module parameter is on.
    const log = options.logger ?? console;
    try {
      if (enableKernelUring() === 'enabled')
        log.warn('fuse: turned FUSE over io_uring on (fuse module parameter enable_uring=Y, machine-wide)');
    } catch (error) {
      log.warn(`fuse: ${(error as Error).message}; serving over /dev/fuse`);
    }
  }
  let fd: number;
  try {
    fd = openSync('/dev/fuse', constants.O_RDWR | constants.O_NONBLOCK);
  } catch (error) {
    throw fsError.EIO(
      `cannot open /dev/fuse (${(error as Error).message}); is the fuse module loaded and are we root?`,
      error,
    );
  }
  const uid = process.getuid?.() ?? 0;
  const gid = process.getgid?.() ?? 0;
  const mountOptions = [`fd=3`, `rootmode=40000`, `user_id=${uid}`, `group_id=${gid}`];
  if (options.allowOther ?? true) mountOptions.push('allow_other');
  if (options.defaultPermissions ?? true) mountOptions.push('default_permissions');
  if (options.readOnly) mountOptions.push('ro');
  // noatime: access times change only when set (utimensat), never on read; the mount says so
  // instead of the kernel's default relatime, which StrataFS does not implement.
  mountOptions.push('nosuid', 'nodev', 'noatime');
  // mountinfo names the mount by its canonical path; resolved now, while no FUSE server (this
  // process) has to answer for it.
  const canonicalMountpoint = canonicalPath(mountpoint);
  const result = await runCommand(
    'mount',
    ['-i', '-t', `fuse.${subtype}`, '-o', mountOptions.join(','), fsName, mountpoint],
    fd,
  );
  if (result.code !== 0) {
    closeSync(fd);
    throw fsError.EIO(
      `mount of ${mountpoint} failed (exit ${result.code}): ${result.stderr.trim()}; are we root, and is the directory empty and not mounted already?`,
    );
  }
  const session = new FuseSession(fd, fs, { ...options, mountpoint });
  try {
    session.start();
  } catch (error) {
    closeSync(fd);
    await runCommand('umount', ['-c', '-l', mountpoint]);
    throw error;
  }
  if (options.unmountOnSignals ?? true) session.unmountOnSignals();
  try {
    await session.ready;
  } catch (error) {
    await runCommand('umount', ['-c', '-l', mountpoint]);
    throw fsError.EIO(`FUSE session for ${mountpoint} ended before INIT: ${(error as Error).message}`, error);
  }
  const readaheadBytes = options.readaheadBytes ?? session.maxReadBytes;
  if (readaheadBytes > 0) {
    const failure = setKernelReadahead(canonicalMountpoint, subtype, readaheadBytes);
    if (failure) (options.logger ?? console).warn(`fuse: kernel readahead left at its default: ${failure}`);
  }
  return session;
}
