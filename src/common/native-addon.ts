import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

function findUp(start: string): string | undefined {
  for (let dir = start; ; dir = dirname(dir)) {
    if (existsSync(join(dir, 'package.json'))) return dir;
    if (dirname(dir) === dir) return undefined;
  }
}

/**
 * The repository root (where the native addons are built): the nearest directory holding
 * package.json above this file (a build in dist/), else above the working directory (a build
 * elsewhere, e.g. /tmp/dist-x, run from the repository), else $STRATA_REPO_ROOT.
 */
function repoRoot(): string {
  const root =
    findUp(dirname(fileURLToPath(import.meta.url))) ?? findUp(process.cwd()) ?? process.env.STRATA_REPO_ROOT;
  if (!root)
    throw new Error(
      'cannot find the StrataFS repository (package.json): run from it or set STRATA_REPO_ROOT',
    );
  return root;
}

/** Where `npm run build` puts the addon `native/NAME` (node-gyp's Release build). */
export function nativeAddonPath(name: string): string {
  return join(repoRoot(), 'native', name, 'build', 'Release', `${name}.node`);
}

/** Loads the addon `native/NAME`, or undefined when it is not built. */
export function loadNativeAddon<T>(name: string): T | undefined {
  const path = nativeAddonPath(name);
  return existsSync(path) ? (createRequire(import.meta.url)(path) as T) : undefined;
}
