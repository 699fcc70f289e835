import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';

/** Where `strata format` keeps the RPC secret of a SQLite engine: next to its database file. */
export function defaultSecretFile(engineUrl: string): string | undefined {
  const match = /^sqlite:(.+)$/.exec(engineUrl);
  return match ? `${match[1].replace(/^\/\/(?=\/)/, '')}.secret` : undefined;
}

/** Writes the volume secret for clients, readable by the owner only. */
export function writeSecretFile(path: string, secret: string): void {
  writeFileSync(path, `${secret}\n`, { mode: 0o600 });
  // The mode of writeFileSync applies only to a new file: tighten an existing one too.
  chmodSync(path, 0o600);
}

export function readSecretFile(path: string): string {
  let text: string;
  try {
    text = readFileSync(path, 'utf8').trim();
  } catch (err) {
    throw new Error(
      `cannot read the secret file ${path}: ${(err as Error).message}; copy it from the machine where \`strata format\` ran`,
      { cause: err },
    );
  }
  if (text === '')
    throw new Error(`the secret file ${path} is empty; copy it from the machine where \`strata format\` ran`);
  return text;
}

/** The secret a client presents: --secret-file, else STRATA_SECRET, else the engine's default file. */
export function resolveClientSecret(secretFile: string | undefined, fallbackFile?: string): string {
  if (secretFile !== undefined) return readSecretFile(secretFile);
  const fromEnv = process.env.STRATA_SECRET;
  if (fromEnv !== undefined && fromEnv !== '') return fromEnv;
  if (fallbackFile !== undefined && existsSync(fallbackFile)) return readSecretFile(fallbackFile);
  throw new Error(
    'no secret to authenticate with: pass --secret-file PATH (the file `strata format` printed) or set STRATA_SECRET',
  );
}
