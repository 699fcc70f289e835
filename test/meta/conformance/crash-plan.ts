/**
 * What the crash child does with its i-th name (shared by the child and the checker): every
 * fourth is a directory; every fifth file is then renamed over the file two steps back.
 */
export const isDirStep = (i: number): boolean => i % 4 === 3;

/** The name that step i's name replaces by rename, if it does. */
export function replaceTarget(k: number, i: number): string | undefined {
  return i % 5 === 4 && !isDirStep(i) && !isDirStep(i - 2) ? `w${k}_${i - 2}` : undefined;
}

export function parseName(name: string): { k: number; i: number } {
  const m = /^w(\d+)_(\d+)$/.exec(name);
  if (!m) throw new Error(`unexpected name ${name}`);
  return { k: Number(m[1]), i: Number(m[2]) };
}
