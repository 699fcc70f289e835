import net from 'node:net';
import { clientProof, newNonce } from '../../src/rpc/auth.js';
import { MessageType, PROTOCOL_VERSION, decodePayload, encodeFrame } from '../../src/rpc/codec.js';
import { FrameDecoder } from '../../src/rpc/frame.js';

/**
 * A bare protocol speaker for tests that must send what a well-behaved client never would:
 * it authenticates like the real client, then writes whatever bytes it is given and reports
 * the messages it receives and whether the server closed the connection.
 */
export class RawClient {
  readonly messages: unknown[] = [];
  closed = false;
  private waiters: (() => void)[] = [];

  private constructor(readonly socket: net.Socket) {
    const decoder = new FrameDecoder(1 << 24, (payload) => {
      try {
        this.messages.push(decodePayload(payload));
      } catch {
        this.messages.push('undecodable');
      }
      this.wake();
    });
    socket.on('data', (chunk: Buffer) => decoder.push(chunk));
    socket.on('error', () => {});
    socket.on('close', () => {
      this.closed = true;
      this.wake();
    });
  }

  static async connect(address: string): Promise<RawClient> {
    const [host, port] = address.split(':');
    const socket = net.connect({ host, port: Number(port) });
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    return new RawClient(socket);
  }

  /** Connects and completes the handshake with `secret`. */
  static async authenticated(address: string, secret: string, clientId = 'raw-client'): Promise<RawClient> {
    const client = await RawClient.connect(address);
    const clientNonce = newNonce();
    client.write(encodeFrame([MessageType.HELLO, PROTOCOL_VERSION, clientId, clientNonce]));
    const challenge = (await client.next()) as [number, number, Buffer];
    client.write(encodeFrame([MessageType.AUTH, clientProof(secret, clientId, clientNonce, challenge[2])]));
    const ok = (await client.next()) as [number];
    if (ok[0] !== MessageType.AUTH_OK) throw new Error(`handshake failed: ${JSON.stringify(ok)}`);
    return client;
  }

  write(bytes: Buffer): void {
    if (!this.closed) this.socket.write(bytes);
  }

  /** The next message, or null when the connection closed first. */
  async next(timeoutMs = 5_000): Promise<unknown> {
    const deadline = Date.now() + timeoutMs;
    while (this.messages.length === 0) {
      if (this.closed) return null;
      if (Date.now() > deadline) throw new Error('no message from the server in time');
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, deadline - Date.now());
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    return this.messages.shift();
  }

  /** Waits for the RESULT or ERROR of request `id`; null when the connection closed first. */
  async replyTo(id: number, timeoutMs = 5_000): Promise<unknown[] | null> {
    for (;;) {
      const message = await this.next(timeoutMs);
      if (message === null) return null;
      if (Array.isArray(message) && (message[0] === 7 || message[0] === 8) && message[1] === id)
        return message;
    }
  }

  close(): void {
    this.socket.destroy();
  }

  private wake(): void {
    for (const waiter of this.waiters.splice(0)) waiter();
  }
}
