import { defaultSecretFile } from './secret.js';
import { formatIfMissing, openLocalMeta } from './meta-access.js';

export interface FormatOptions {
  engineUrl: string;
  storageUrl: string;
  name: string;
  blockSizeBytes: number;
  retentionMs: number;
  secretFile?: string;
}

/** `strata format`: creates the volume and writes the client secret file (mode 0600). */
export async function formatNewVolume(
  options: FormatOptions,
): Promise<{ uuid: string; secretFile: string; engineDescription: string }> {
  const secretFile = options.secretFile ?? defaultSecretFile(options.engineUrl);
  if (secretFile === undefined) {
    throw new Error(
      `give --secret-file PATH: there is no default place for the secret of ${redactUrl(options.engineUrl)}`,
    );
  }
  const created = await formatIfMissing({ ...options, secretFile });
  if (!created) {
    throw new Error(
      `${redactUrl(options.engineUrl)} already holds a volume; use another engine URL or remove it first`,
    );
  }
  const local = await openLocalMeta(options.engineUrl);
  try {
    const volume = await local.meta.volume();
    return { uuid: volume.uuid, secretFile, engineDescription: redactUrl(options.engineUrl) };
  } finally {
    await local.close();
  }
}

/** Engine URLs may carry a password (postgres://user:pw@host/db): never print it. */
export function redactUrl(url: string): string {
  return url.replace(/(\/\/[^:/@]+):[^@/]*@/, '$1:***@');
}
