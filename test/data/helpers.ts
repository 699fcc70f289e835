import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FileObjectStore } from '../../src/object/backends/file.js';

/** Temporary directories for one test file, removed by `cleanup` (call it in an after hook). */
export function tempDirs(): { make: () => Promise<string>; cleanup: () => Promise<void> } {
  const dirs: string[] = [];
  return {
    make: async () => {
      const dir = await mkdtemp(join(tmpdir(), 'strata-data-'));
      dirs.push(dir);
      return dir;
    },
    cleanup: async () => {
      for (const dir of dirs.splice(0)) await rm(dir, { recursive: true, force: true });
    },
  };
}

export async function fileStore(dir: string): Promise<FileObjectStore> {
  return new FileObjectStore(dir);
}

/** The seed of a randomized test: STRATA_SEED when given, else fresh; printed so a failure can be replayed. */
export function testSeed(name: string): number {
  const seed = process.env.STRATA_SEED
    ? Number(process.env.STRATA_SEED)
    : Math.floor(Math.random() * 2 ** 31);
  console.log(`# ${name}: seed ${seed} (replay with STRATA_SEED=${seed})`);
  return seed;
}

export const isLongProfile = process.env.STRATA_TEST_PROFILE === 'long';
