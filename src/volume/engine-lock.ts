import { createHash } from 'node:crypto';
import { realpathSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { basename, dirname, resolve } from 'node:path';
import { engineScheme } from '../meta/index.js';

/**
 * One writer per SQLite volume. Two processes serving one database (a second `strata up` on
 * the same DATA_DIR, a `meta serve` beside it, `strata gc` next to an idle server) would each
 * hand out directory-entry cursors from a counter it keeps in memory (the same cursors twice:
 * readdir skips or repeats entries), and answer reads from caches the other's changes never
 * invalidate. Inode and slice ids are reserved inside write transactions and stay unique.
 *
 * The claim is an abstract Unix socket named after the database's real path: binding it
 * fails while another process holds it, and the kernel releases it when that process ends,
 * however it ends (no stale lock file after kill -9). It covers processes of one network
 * namespace, i.e. one host or container; PostgreSQL takes several writers and needs none.
 */
export interface EngineClaim {
  release(): Promise<void>;
}

const NO_CLAIM: EngineClaim = { release: () => Promise.resolve() };

/** `advice` ends the refusal: what the user should do instead. */
export async function claimEngine(engineUrl: string, advice: string): Promise<EngineClaim> {
  if (engineScheme(engineUrl) !== 'sqlite') return NO_CLAIM;
  const path = resolve(engineUrl.slice('sqlite:'.length));
  let dir: string;
  try {
    dir = realpathSync(dirname(path));
  } catch {
    return NO_CLAIM; // no such directory: opening the engine reports it
  }
  const key = createHash('sha256')
    .update(`${dir}/${basename(path)}`)
    .digest('hex')
    .slice(0, 40);
  const server: Server = createServer();
  try {
    await new Promise<void>((done, fail) => {
      server.once('error', fail);
      server.listen(`\0stratafs-sqlite-${key}`, () => done());
    });
  } catch (err) {
    server.close();
    if ((err as NodeJS.ErrnoException).code === 'EADDRINUSE') {
      throw new Error(
        `another StrataFS process (strata up, strata meta serve or strata gc) has ${path} in use: ` +
          `a SQLite volume takes one writer. ${advice}`,
      );
    }
    throw err;
  }
  server.unref();
  return { release: () => new Promise((done) => server.close(() => done())) };
}
