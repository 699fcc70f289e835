import { fsError, nameByteLength, type Ino } from '../common/index.js';
import {
  RENAME_WHITEOUT,
  type AsOf,
  type Caller,
  type DirEntry,
  type InodeAttr,
  type MetaApi,
  type NameRemoval,
  type SetAttrChanges,
  type StatFsInfo,
  type VolumeSettings,
} from './api.js';
import { ACL_ACCESS_XATTR } from './acl.js';
import type { InodeRow, LookupReads } from './engine.js';
import { S_IFDIR, S_IFLNK, S_IFMT, S_IFREG, isLnk, toAttr } from './attrs.js';
import * as fileOps from './file-ops.js';
import * as ns from './namespace.js';
import { createTmpfile, linkTmpfile } from './tmpfile.js';
import { R_OK, W_OK, X_OK, requireAccess } from './permissions.js';
import { getDir, getInode, requireSession } from './service-core.js';
import { MetaServiceContents } from './service-contents.js';
import { SETTING_SECRET } from './volume-keys.js';

export type { MetaServiceOptions } from './service-core.js';

/** The reply of unlink, rmdir and rename from the inodes they changed, as they are after it. */
const nameRemoval = (rows: InodeRow[]): NameRemoval => ({
  inos: rows.map((row) => row.ino),
  unnamed: rows.filter((row) => row.nlink === 0).map((row) => toAttr(row)),
});

const CAPACITY_BYTES = 2 ** 50; // object stores have no fixed size; report 1 PiB
const INODES_TOTAL = 2 ** 40;
const DOT_CURSOR = 1;
const DOTDOT_CURSOR = 2;
/** Engine cursors start at 1; shift them past "." and "..". */
const CURSOR_SHIFT = 2;

/**
 * The metadata service: every POSIX rule of `MetaApi` over an `Engine`. Each method is one
 * engine transaction (id reservation aside, which is its own).
 *
 * The calls are split by what they work on: sessions, transactions and inode numbers
 * (MetaServiceCore), what one inode holds (MetaServiceContents), and here the namespace and
 * the volume.
 */
export class MetaService extends MetaServiceContents implements MetaApi {
  // --- namespace reads ---

  async lookup(caller: Caller, parent: Ino, name: string, asOf?: AsOf): Promise<InodeAttr> {
    const t = this.checkAsOf(asOf);
    ns.checkName(name);
    const answer = async (tx: LookupReads): Promise<InodeAttr> => {
      const dir = await getDir(tx, parent, t);
      // Only a caller who is neither root nor the owner can be refused by an ACL: read it then.
      const acl =
        caller.uid !== 0 && caller.uid !== dir.uid
          ? await tx.getXattr(parent, ACL_ACCESS_XATTR, t)
          : undefined;
      requireAccess(caller, dir, X_OK, `search directory ${parent}`, acl);
      let ino: Ino;
      if (name === '.') ino = dir.ino;
      else if (name === '..') ino = dir.parent;
      else {
        const entry = await tx.lookup(parent, name, t);
        if (!entry) throw fsError.ENOENT(`no entry "${name}" in directory ${parent}`);
        ino = entry.ino;
      }
      return toAttr(await getInode(tx, ino, t));
    };
    // '..' reads the parent's parent, which one prefetched lookup does not carry.
    if (t === undefined && name !== '..' && this.engine.readLookup)
      return answer(await this.engine.readLookup(parent, name));
    return this.engine.read(answer);
  }

  async getattr(ino: Ino, asOf?: AsOf): Promise<InodeAttr> {
    const t = this.checkAsOf(asOf);
    const { engine } = this;
    if (t === undefined && engine.readInode)
      return toAttr(await getInode({ getInode: (current) => engine.readInode!(current) }, ino, t));
    return engine.read(async (tx) => toAttr(await getInode(tx, ino, t)));
  }

  async readlink(ino: Ino, asOf?: AsOf): Promise<string> {
    const t = this.checkAsOf(asOf);
    return this.engine.read(async (tx) => {
      const row = await getInode(tx, ino, t);
      if (!isLnk(row.mode) || row.target === null)
        throw fsError.EINVAL(`inode ${ino} is not a symbolic link`);
      return row.target;
    });
  }

  async readdir(
    _caller: Caller,
    dir: Ino,
    afterCursor: number,
    limit: number,
    withAttrs: boolean,
    asOf?: AsOf,
  ): Promise<DirEntry[]> {
    const t = this.checkAsOf(asOf);
    return this.engine.read(async (tx) => {
      const row = await getDir(tx, dir, t);
      const out: DirEntry[] = [];
      const withAttr = async (e: DirEntry): Promise<DirEntry> => {
        if (withAttrs) e.attr = toAttr(await getInode(tx, e.ino, t));
        return e;
      };
      if (afterCursor < DOT_CURSOR && out.length < limit) {
        out.push(await withAttr({ name: '.', ino: row.ino, type: S_IFDIR, cursor: DOT_CURSOR }));
      }
      if (afterCursor < DOTDOT_CURSOR && out.length < limit) {
        out.push(await withAttr({ name: '..', ino: row.parent, type: S_IFDIR, cursor: DOTDOT_CURSOR }));
      }
      const remaining = limit - out.length;
      if (remaining <= 0) return out;
      const entries = await tx.listDir(dir, Math.max(0, afterCursor - CURSOR_SHIFT), remaining, t);
      for (const e of entries) {
        out.push(await withAttr({ name: e.name, ino: e.ino, type: e.type, cursor: e.cursor + CURSOR_SHIFT }));
      }
      return out;
    });
  }

  async access(caller: Caller, ino: Ino, mask: number): Promise<void> {
    await this.engine.read(async (tx) => {
      const row = await getInode(tx, ino, undefined);
      if (mask === 0) return;
      const acl =
        caller.uid !== 0 && caller.uid !== row.uid ? await tx.getXattr(ino, ACL_ACCESS_XATTR) : undefined;
      requireAccess(caller, row, mask & (R_OK | W_OK | X_OK), `access inode ${ino} with mask ${mask}`, acl);
    });
  }

  // --- namespace changes ---

  async mknod(
    caller: Caller,
    parent: Ino,
    name: string,
    mode: number,
    rdev: number,
    umask: number,
  ): Promise<InodeAttr> {
    const type = mode & S_IFMT || S_IFREG;
    if (type === S_IFDIR) throw fsError.EINVAL('mknod cannot create a directory; use mkdir');
    if (type === S_IFLNK) throw fsError.EINVAL('mknod cannot create a symbolic link; use symlink');
    const ino = this.takeIno() ?? (await this.allocIno());
    return this.change(caller, async (ctx) =>
      toAttr(
        await ns.createEntry(ctx, this.settings, parent, name, {
          ino,
          mode: type | (mode & 0o7777),
          umask,
          rdev,
        }),
      ),
    );
  }

  async mkdir(caller: Caller, parent: Ino, name: string, mode: number, umask: number): Promise<InodeAttr> {
    const ino = this.takeIno() ?? (await this.allocIno());
    return this.change(caller, async (ctx) =>
      toAttr(
        await ns.createEntry(ctx, this.settings, parent, name, {
          ino,
          mode: S_IFDIR | (mode & 0o7777),
          umask,
        }),
      ),
    );
  }

  async symlink(caller: Caller, parent: Ino, name: string, target: string): Promise<InodeAttr> {
    if (target.length === 0) throw fsError.ENOENT('symlink target is empty');
    if (nameByteLength(target) >= ns.PATH_MAX_BYTES) {
      throw fsError.ENAMETOOLONG(`symlink target of ${nameByteLength(target)} bytes is over the path limit`);
    }
    const ino = this.takeIno() ?? (await this.allocIno());
    return this.change(caller, async (ctx) =>
      toAttr(
        await ns.createEntry(ctx, this.settings, parent, name, {
          ino,
          mode: S_IFLNK | 0o777,
          umask: 0,
          target,
        }),
      ),
    );
  }

  async link(caller: Caller, ino: Ino, newParent: Ino, newName: string): Promise<InodeAttr> {
    return this.change(caller, async (ctx) =>
      toAttr(await ns.link(ctx, this.settings, ino, newParent, newName)),
    );
  }

  async tmpfile(
    caller: Caller,
    sessionId: string,
    parent: Ino,
    mode: number,
    umask: number,
  ): Promise<InodeAttr> {
    const ino = this.takeIno() ?? (await this.allocIno());
    return this.change(caller, async (ctx) => {
      await requireSession(ctx.tx, sessionId);
      return toAttr(await createTmpfile(ctx, sessionId, parent, ino, mode, umask));
    });
  }

  async linkTmpfile(caller: Caller, ino: Ino, newParent: Ino, newName: string): Promise<InodeAttr> {
    return this.change(caller, async (ctx) =>
      toAttr(await linkTmpfile(ctx, this.settings, ino, newParent, newName)),
    );
  }

  async unlink(caller: Caller, parent: Ino, name: string): Promise<NameRemoval> {
    return nameRemoval([await this.change(caller, (ctx) => ns.unlink(ctx, parent, name))]);
  }

  async rmdir(caller: Caller, parent: Ino, name: string): Promise<NameRemoval> {
    return nameRemoval([await this.change(caller, (ctx) => ns.rmdir(ctx, parent, name))]);
  }

  async rename(
    caller: Caller,
    parent: Ino,
    name: string,
    newParent: Ino,
    newName: string,
    flags: number,
  ): Promise<NameRemoval> {
    // A whiteout is a new inode: its number is taken outside the transaction, as for mknod.
    const whiteoutIno = flags & RENAME_WHITEOUT ? (this.takeIno() ?? (await this.allocIno())) : undefined;
    const inodes = await this.change(caller, (ctx) =>
      ns.rename(ctx, this.settings, parent, name, newParent, newName, flags, whiteoutIno),
    );
    return nameRemoval(inodes);
  }

  async setattr(caller: Caller, ino: Ino, changes: SetAttrChanges): Promise<InodeAttr> {
    return this.change(caller, async (ctx) =>
      toAttr(await fileOps.setattr(ctx, this.settings.chunkSizeBytes, ino, changes)),
    );
  }

  // --- volume ---

  async statfs(): Promise<StatFsInfo> {
    return this.engine.read(async (tx) => ({
      capacityBytes: CAPACITY_BYTES,
      usedBytes: await tx.getCounter(ns.COUNTER_USED_BYTES),
      inodesUsed: await tx.getCounter(ns.COUNTER_INODES),
      inodesTotal: INODES_TOTAL,
    }));
  }

  async volume(): Promise<VolumeSettings> {
    return { ...this.settings };
  }

  async sync(): Promise<void> {
    // Engines without sync() commit durably already (PostgreSQL).
    await this.engine.sync?.();
  }

  /** The volume's shared secret, for the RPC server's authentication. Never part of MetaApi. */
  async volumeSecret(): Promise<string> {
    const secret = await this.engine.read((tx) => tx.getSetting(SETTING_SECRET));
    if (!secret) throw fsError.EIO(`volume "${this.settings.name}" has no secret; re-format it`);
    return secret;
  }
}
