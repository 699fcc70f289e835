import { connectMeta, type MetaClient } from '../meta/client/index.js';
import { startMetaServer } from '../meta/server/index.js';
import type { LocalMeta } from './meta-access.js';

/** Serves an in-process metadata service over RPC, authenticated with the volume's secret. */
export async function serveLocalMeta(
  local: LocalMeta,
  listen: { host: string; port: number },
  log: (message: string) => void,
): Promise<{ address: string; close(): Promise<void> }> {
  const host = listen.host.includes(':') ? `[${listen.host}]` : listen.host;
  const server = await startMetaServer({
    service: local.service,
    listen: `${host}:${listen.port}`,
    secret: await local.service.volumeSecret(),
    onEvent: (event) => {
      if (event.type === 'internal-error') {
        log(
          `metadata server: internal error in ${event.method}: ${(event.error as Error).stack ?? String(event.error)}`,
        );
      } else if (event.type === 'rejected') {
        log(`metadata server: rejected a client from ${event.remote}: ${event.reason}`);
      }
    },
  });
  return { address: server.address, close: () => server.close() };
}

/** Connects to `strata meta serve` and checks that it serves the volume asked for. */
export async function connectRemoteMeta(
  address: string,
  volumeName: string,
  secret: string,
  _log: (message: string) => void,
): Promise<{ meta: MetaClient; close(): Promise<void> }> {
  // A mount keeps its kernel caches coherent with what other clients change.
  const client = await connectMeta({ address, secret, invalidations: true });
  try {
    const volume = await client.volume();
    if (volume.name !== volumeName) {
      throw new Error(
        `${address} serves volume "${volume.name}", not "${volumeName}"; mount ${address}/${volume.name}`,
      );
    }
  } catch (err) {
    await client.close();
    throw err;
  }
  return { meta: client, close: () => client.close() };
}
