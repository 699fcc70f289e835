import { hostname } from 'node:os';
import { fsError, type Ino } from '../common/index.js';
import type { AttrReply, Entry } from '../fuse/index.js';
import type { InodeAttr, MetaApi, VolumeSettings } from '../meta/api.js';
import { toFuseAttr } from './attr.js';
import { CallerResolver } from './caller.js';
import type { VfsOptions } from './options.js';
import { OpenDirs } from './open-dirs.js';
import { SpecialNodes } from './special-nodes.js';
import { OpenFiles } from './open-files.js';
import type { DataPath } from '../data/index.js';

/**
 * What every part of the VFS (see Vfs) shares: the mount's session with the metadata service,
 * the per-inode state of open files, directories and special nodes, and the entry and
 * attribute replies built from the service's attributes.
 */
export abstract class VfsSession {
  private sessionIdValue: string | null = null;
  private volumeSettings: VolumeSettings | null = null;
  private heartbeatTimer: NodeJS.Timeout | null = null;
  protected readonly openFiles: OpenFiles;
  protected readonly openDirs: OpenDirs;
  protected readonly specialNodes = new SpecialNodes();
  protected readonly callers = new CallerResolver();

  constructor(
    protected readonly meta: MetaApi,
    private readonly data: DataPath,
    protected readonly options: VfsOptions,
  ) {
    this.openFiles = new OpenFiles(meta, data, options);
    this.openDirs = new OpenDirs(meta);
  }

  /**
   * The metadata server says other mounts changed these inodes (`all`: it cannot tell which).
   * Files open here stop trusting where their data lived: a program that takes a lock after the
   * other mount's write and reads through a descriptor it kept open (SQLite) must see the write.
   */
  changedElsewhere(inos: readonly Ino[], all: boolean): void {
    if (all) this.openFiles.changedElsewhereAll();
    else for (const ino of inos) this.openFiles.changedElsewhere(ino);
  }

  /** Registers this mount with the metadata service and starts the heartbeat. */
  async start(): Promise<VolumeSettings> {
    const { sessionId, volume } = await this.meta.openSession({
      hostname: hostname(),
      mountpoint: this.options.mountpoint,
      pid: process.pid,
      version: this.options.version,
    });
    this.sessionIdValue = sessionId;
    this.volumeSettings = volume;
    this.openFiles.setVolume(volume);
    this.heartbeatTimer = setInterval(() => {
      this.meta.heartbeat(sessionId).catch((err: unknown) => {
        this.options.log(`session heartbeat failed: ${(err as Error).message}; will retry`);
      });
    }, this.options.heartbeatIntervalMs);
    this.heartbeatTimer.unref();
    return volume;
  }

  /** Commits everything still pending and closes the session. Safe to call more than once. */
  async stop(): Promise<void> {
    if (this.heartbeatTimer) clearInterval(this.heartbeatTimer);
    this.heartbeatTimer = null;
    await this.openFiles.flushAll();
    const sessionId = this.sessionIdValue;
    this.sessionIdValue = null;
    if (sessionId !== null) await this.meta.closeSession(sessionId);
  }

  get volume(): VolumeSettings {
    if (this.volumeSettings === null) throw fsError.EIO('the VFS was used before start()');
    return this.volumeSettings;
  }

  protected get sessionId(): string {
    if (this.sessionIdValue === null) throw fsError.ENOTCONN('the mount has no metadata session');
    return this.sessionIdValue;
  }

  async destroy(): Promise<void> {
    await this.openFiles.flushAll();
  }

  protected entry(attr: InodeAttr): Entry {
    this.specialNodes.note(attr);
    return {
      attr: toFuseAttr(this.openFiles.withPending(attr)),
      generation: attr.generation,
      entryTimeoutMs: this.options.entryTimeoutMs,
      attrTimeoutMs: this.options.attrTimeoutMs,
    };
  }

  protected attrReply(attr: InodeAttr): AttrReply {
    this.specialNodes.note(attr);
    return {
      attr: toFuseAttr(this.openFiles.withPending(attr)),
      attrTimeoutMs: this.options.attrTimeoutMs,
    };
  }
}
