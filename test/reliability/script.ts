// Replay scripts: a failing sequence as text a person can read, commit as a
// regression seed, and rerun against any pair of directories.
//
//   # free-form comment lines
//   #! users 2001:2001:2100 2002:2002:2100     (identities 1..n)
//   #! plant append-ignored                   (self-tests only)
//   0 open 0 a rw+creat 0644                  (executor request lines, in order)
import { formatIdentity, parseIdentity, type Identity } from './executor.js';

export interface Script {
  ops: readonly string[];
  users: readonly Identity[];
  plant?: string;
  comment?: readonly string[];
}

export function formatScript(script: Script): string {
  const lines = ['# StrataFS differential replay script'];
  for (const c of script.comment ?? []) lines.push(`# ${c}`);
  if (script.users.length > 0) lines.push(`#! users ${script.users.map(formatIdentity).join(' ')}`);
  if (script.plant) lines.push(`#! plant ${script.plant}`);
  lines.push(...script.ops);
  return `${lines.join('\n')}\n`;
}

export function parseScript(text: string): Script {
  const ops: string[] = [];
  const comment: string[] = [];
  let users: Identity[] = [];
  let plant: string | undefined;
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '') continue;
    if (line.startsWith('#!')) {
      const [key, ...values] = line.slice(2).trim().split(/\s+/);
      if (key === 'users') users = values.map(parseIdentity);
      else if (key === 'plant') plant = values[0];
      else throw new Error(`unknown script directive "${line}" (expected "#! users" or "#! plant")`);
    } else if (line.startsWith('#')) {
      comment.push(line.slice(1).trim());
    } else {
      ops.push(line);
    }
  }
  return { ops, users, plant, comment };
}
