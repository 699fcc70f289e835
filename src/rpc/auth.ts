import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * Challenge-response authentication with a shared secret that never crosses the wire.
 * The client proves it holds the secret by MACing the server's fresh nonce (so a recorded
 * proof cannot be replayed); the server then proves the same to the client over the client's
 * nonce, so a client never talks to an impostor that merely accepts everything.
 */
export const NONCE_BYTES = 32;

export type RpcSecret = string | Buffer;

export function newNonce(): Buffer {
  return randomBytes(NONCE_BYTES);
}

function proof(
  secret: RpcSecret,
  role: string,
  clientId: string,
  clientNonce: Buffer,
  serverNonce: Buffer,
): Buffer {
  return createHmac('sha256', secret)
    .update(`strata-rpc-v1 ${role}\0${clientId}\0`)
    .update(clientNonce)
    .update(serverNonce)
    .digest();
}

export function clientProof(
  secret: RpcSecret,
  clientId: string,
  clientNonce: Buffer,
  serverNonce: Buffer,
): Buffer {
  return proof(secret, 'client', clientId, clientNonce, serverNonce);
}

export function serverProof(
  secret: RpcSecret,
  clientId: string,
  clientNonce: Buffer,
  serverNonce: Buffer,
): Buffer {
  return proof(secret, 'server', clientId, clientNonce, serverNonce);
}

/** Constant-time comparison that also accepts values of the wrong type or length (returns false). */
export function proofMatches(expected: Buffer, received: unknown): boolean {
  return (
    Buffer.isBuffer(received) && received.length === expected.length && timingSafeEqual(expected, received)
  );
}
