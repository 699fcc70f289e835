import type { Engine } from '../engine.js';
import {
  CHANGE_CHANNEL,
  ChangeFeed,
  PostgresEngine,
  parsePostgresUrl,
  type MetaChange,
} from '../engines/postgres/index.js';
import { MetaService } from '../service.js';
import { INVALIDATION_TOPIC, type InvalidationWire } from '../invalidation.js';
import type { ThreadedMetaService } from './worker-service.js';

// Cache invalidations the metadata server pushes to its clients (format: ../invalidation.ts).

/** `PUSH` sender of the RPC server. */
type Push = (topic: string, value: unknown, exceptClientId?: string) => void;

interface Batch {
  inos: Set<number>;
  entries: Map<string, [number, string]>;
  all: boolean;
}

const newBatch = (): Batch => ({ inos: new Set(), entries: new Map(), all: false });

/**
 * Collects invalidations and pushes them once per event-loop turn: a burst of creates in one
 * directory becomes one frame per client, not one per create. Changes made through this server
 * are not pushed to the client that made them: its kernel learned them from the reply.
 */
export class InvalidationPusher {
  /** Keyed by the client to leave out ('' = nobody). */
  private readonly batches = new Map<string, Batch>();
  private scheduled = false;

  constructor(private readonly push: Push) {}

  /**
   * Invalidations a successful call implies, from its method and arguments, and for unlink,
   * rmdir and rename from its result (NameRemoval): the inodes whose link count or ctime moved,
   * which other names of them (hard links) show.
   */
  noteCall(clientId: string, method: string, args: unknown[], result?: unknown): void {
    // Taken only by a change: a read must not leave an empty batch behind to be pushed.
    let batch: Batch | undefined;
    const ino = (value: unknown): void => {
      if (typeof value === 'number') (batch ??= this.batchOf(clientId)).inos.add(value);
    };
    const entry = (parent: unknown, name: unknown): void => {
      if (typeof parent === 'number' && typeof name === 'string') {
        batch ??= this.batchOf(clientId);
        batch.entries.set(`${parent}/${name}`, [parent, name]);
        batch.inos.add(parent); // its mtime, ctime, size and readdir listing
      }
    };
    switch (method) {
      case 'mknod':
      case 'mkdir':
      case 'symlink':
        entry(args[1], args[2]);
        break;
      case 'unlink':
      case 'rmdir':
        entry(args[1], args[2]);
        removedInos(result, ino);
        break;
      case 'link':
      case 'linkTmpfile':
        entry(args[2], args[3]);
        ino(args[1]);
        break;
      case 'rename':
        entry(args[1], args[2]);
        entry(args[3], args[4]);
        removedInos(result, ino);
        break;
      case 'setattr':
      case 'setxattr':
      case 'removexattr':
      case 'commitWrites':
      case 'fallocate':
        ino(args[1]);
        break;
      case 'copyFileRange':
        ino(args[3]);
        break;
      default:
        return; // reads, sessions, opens, locks and compaction change nothing others cache
    }
    this.schedule();
  }

  /** A change another server committed (PostgreSQL change feed): everybody hears of it. */
  noteRemote(change: MetaChange): void {
    const batch = this.batchOf('');
    if (change.invalidateAll) batch.all = true;
    for (const ino of change.inos) batch.inos.add(ino);
    for (const { parent, name } of change.entries) batch.entries.set(`${parent}/${name}`, [parent, name]);
    this.schedule();
  }

  private batchOf(clientId: string): Batch {
    let batch = this.batches.get(clientId);
    if (batch === undefined) {
      batch = newBatch();
      this.batches.set(clientId, batch);
    }
    return batch;
  }

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => this.flush());
  }

  private flush(): void {
    this.scheduled = false;
    for (const [clientId, batch] of this.batches) {
      const value: InvalidationWire = [[...batch.inos], [...batch.entries.values()], batch.all];
      this.push(INVALIDATION_TOPIC, value, clientId === '' ? undefined : clientId);
    }
    this.batches.clear();
  }
}

/**
 * The inode numbers of a NameRemoval. Read with care: a retry answered from the call's stored
 * outcome has none (these calls store no reply: call-outcomes.ts), nor has any other MetaApi.
 */
function removedInos(result: unknown, each: (ino: unknown) => void): void {
  const inos = (result as { inos?: unknown } | null | undefined)?.inos;
  if (Array.isArray(inos)) for (const ino of inos as unknown[]) each(ino);
}

/**
 * Subscribes to the changes other servers of the volume commit, when the engine has a change
 * feed (PostgreSQL); SQLite has one server per file, which sees every change itself. Returns the
 * closer, or undefined when there is nothing to follow.
 */
export async function followOtherServers(
  service: unknown,
  onChange: (change: MetaChange) => void,
): Promise<(() => Promise<void>) | undefined> {
  let feed: ChangeFeed;
  let ownOrigin: string | undefined;
  if (service instanceof MetaService) {
    const engine: Engine = service.engine;
    if (!(engine instanceof PostgresEngine)) return undefined;
    feed = await engine.subscribeChanges();
    ownOrigin = engine.originId;
  } else if (isThreaded(service) && /^postgres(ql)?:/i.test(service.engineUrl)) {
    feed = await ChangeFeed.start({
      connectionString: parsePostgresUrl(service.engineUrl).connectionString,
      channel: CHANGE_CHANNEL,
    });
    ownOrigin = service.originId;
  } else {
    return undefined;
  }
  const listener = (change: MetaChange): void => {
    if (change.originId !== ownOrigin) onChange(change);
  };
  feed.on('change', listener);
  feed.on('error', () => undefined); // the feed reconnects by itself and then reports a gap
  const owned = !(service instanceof MetaService); // the engine closes a feed it handed out
  return async () => {
    feed.off('change', listener);
    if (owned) await feed.close();
  };
}

function isThreaded(service: unknown): service is ThreadedMetaService {
  return typeof (service as Partial<ThreadedMetaService>).engineUrl === 'string';
}
