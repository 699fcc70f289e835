import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { createDataPath, type DataPath } from '../../src/data/index.js';
import type { RequestContext } from '../../src/fuse/index.js';
import {
  formatVolume,
  openMetaService,
  type MetaApi,
  type MetaService,
  type OpenMetaServiceOptions,
} from '../../src/meta/index.js';
import '../../src/meta/engines/sqlite/register.js';
import { openObjectStore, type ObjectStore } from '../../src/object/index.js';
import { Vfs, type VfsOptions } from '../../src/vfs/index.js';

/** A caller as the FUSE layer passes one: root, this process. */
export function rootContext(): RequestContext {
  return { uid: 0, gid: 0, pid: process.pid, umask: 0o022, unique: 1n, signal: new AbortController().signal };
}

/**
 * A volume on the real metadata service (SQLite) and data path, in a directory of its own, for
 * VFS tests that need no kernel: each mount is a Vfs called as the FUSE layer calls it.
 */
export class VfsTestVolume {
  private readonly dataPaths: DataPath[] = [];
  private readonly mounts: Vfs[] = [];

  private constructor(
    readonly dir: string,
    readonly meta: MetaService,
    readonly store: ObjectStore,
  ) {}

  /** 1 MiB chunks of 64 KiB blocks; `service` adds to the service's options (session timeout). */
  static async open(
    name: string,
    service: Omit<OpenMetaServiceOptions, 'engineUrl'> = {},
  ): Promise<VfsTestVolume> {
    const dir = mkdtempSync(`/tmp/strata-vfs-${name}-`);
    const engineUrl = `sqlite:${join(dir, 'meta.db')}`;
    await formatVolume(engineUrl, {
      name,
      storageUrl: `file:${join(dir, 'objects')}`,
      blockSizeBytes: 64 * 1024,
      chunkSizeBytes: 1024 * 1024,
    });
    const meta = await openMetaService({ ...service, engineUrl });
    const store = await openObjectStore(`file:${join(dir, 'objects')}`);
    return new VfsTestVolume(dir, meta, store);
  }

  /** A started mount over `api` (the service itself unless the test wraps it). */
  async mount(api: MetaApi = this.meta, options: Partial<VfsOptions> = {}): Promise<Vfs> {
    const volume = await this.meta.volume();
    const data = createDataPath({
      store: this.store,
      blockSizeBytes: volume.blockSizeBytes,
      chunkSizeBytes: volume.chunkSizeBytes,
      memoryBudgetBytes: 64 * 1024 * 1024,
      allocateSliceIds: (n: number) => this.meta.allocateSliceIds(n),
    });
    this.dataPaths.push(data);
    const vfs = new Vfs(api, data, {
      attrTimeoutMs: 1000,
      entryTimeoutMs: 1000,
      lockRetryMaxMs: 20,
      heartbeatIntervalMs: 3_600_000,
      compactSlicesThreshold: 0,
      mountpoint: this.dir,
      version: 'test',
      log: () => undefined,
      ...options,
    });
    await vfs.start();
    this.mounts.push(vfs);
    return vfs;
  }

  /** Stops every mount, then the data paths, the store and the service; removes the directory. */
  async close(): Promise<void> {
    for (const vfs of this.mounts) await vfs.stop().catch(() => undefined);
    for (const data of this.dataPaths) await data.close();
    await this.store.close();
    await this.meta.close();
    rmSync(this.dir, { recursive: true, force: true });
  }
}
