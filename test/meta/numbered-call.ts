import type { FsError } from '../../src/common/index.js';
import { ClientConnection } from '../../src/rpc/client-connection.js';
import { parseRpcAddress } from '../../src/rpc/index.js';

/** What a raw numbered call came back with. */
export interface Outcome {
  ok: boolean;
  value?: unknown;
  error?: FsError;
}

/** One request on a raw connection, numbered as the RPC client would number it. */
export async function sendNumbered(
  address: string,
  secret: string,
  clientId: string,
  seq: number,
  isRetry: boolean,
  method: string,
  args: unknown[],
): Promise<Outcome> {
  const connection = await ClientConnection.open({
    address: parseRpcAddress(address),
    secret,
    clientId,
    connectTimeoutMs: 5_000,
    maxFrameBytes: 8 << 20,
  });
  try {
    return await new Promise<Outcome>((resolve) => {
      connection.send(
        {
          method,
          args,
          seq,
          isRetry,
          requestId: 0,
          onResult: (value) => resolve({ ok: true, value }),
          onError: (error) => resolve({ ok: false, error }),
        },
        seq,
      );
    });
  } finally {
    connection.close();
  }
}
