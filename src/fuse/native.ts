import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The `native/fdpoll` addon: a libuv uv_poll_t on an fd, calling back on the main thread. */
export interface FdPoll {
  /** Starts watching `fd` for readability; `onReadable(status)` gets a negative libuv error on failure. */
  start(fd: number, onReadable: (status: number) => void): FdWatcher;
  /** Stops watching; the callback is never called afterwards. Idempotent. */
  stop(watcher: FdWatcher): void;
  ref(watcher: FdWatcher): void;
  unref(watcher: FdWatcher): void;
  /** Sets O_NONBLOCK on an fd (one handed over, not opened by us). */
  setNonBlocking(fd: number): void;
}

declare const watcherBrand: unique symbol;
export type FdWatcher = { readonly [watcherBrand]: 'FdWatcher' };

/** The repository root: the nearest directory above this file holding package.json (works from dist/ and /tmp builds). */
export function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, 'package.json'))) return dir;
    const parent = dirname(dir);
    if (parent === dir) break;
    dir = parent;
  }
  // A build outside the repo (e.g. /tmp/dist-x): fall back to the working directory.
  return process.cwd();
}

let loaded: FdPoll | undefined;

/** Loads the addon once. Throws with the command that builds it when it is missing. */
export function loadFdPoll(): FdPoll {
  if (loaded) return loaded;
  const candidates = [repoRoot(), process.cwd()].map((root) =>
    join(root, 'native', 'fdpoll', 'build', 'Release', 'fdpoll.node'),
  );
  const path = candidates.find((candidate) => existsSync(candidate));
  if (!path) {
    throw new Error(
      `native addon fdpoll not built (looked for ${candidates.join(', ')}); ` +
        'run "npx node-gyp rebuild --directory native/fdpoll" (part of "npm run build")',
    );
  }
  loaded = createRequire(import.meta.url)(path) as FdPoll;
  return loaded;
}
