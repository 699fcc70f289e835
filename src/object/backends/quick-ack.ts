import type { Socket } from 'node:net';
import { loadNativeAddon } from '../../common/index.js';

/** The `native/tcpopt` addon (tcpopt.c): TCP socket options Node.js does not expose. */
export interface TcpOptions {
  /** setsockopt(fd, IPPROTO_TCP, TCP_QUICKACK, 1): 0, or the errno it failed with. */
  quickAck(fd: number): number;
  /** getsockopt(TCP_QUICKACK): 1 while acknowledgements go out at once, 0 while delayed, or -errno. */
  quickAckState(fd: number): number;
}

/** Where the descriptor hides: a TCP socket's handle, or the TCP handle under a TLS one. */
interface SocketInternals {
  _handle?: { fd?: number; _parent?: { fd?: number } } | null;
}

let addon: TcpOptions | null | undefined;

/** The addon, or undefined where it is not built or `STRATA_TCP_QUICKACK=0` (for comparisons). */
export function tcpOptions(): TcpOptions | undefined {
  if (addon === undefined) {
    addon = (process.env.STRATA_TCP_QUICKACK !== '0' && loadNativeAddon<TcpOptions>('tcpopt')) || null;
  }
  return addon ?? undefined;
}

/** The socket's descriptor, or undefined (not connected, closed, not a descriptor-backed socket). */
export function socketFd(socket: Socket): number | undefined {
  const handle = (socket as unknown as SocketInternals)._handle;
  const fd = handle?.fd ?? handle?._parent?.fd;
  return fd !== undefined && fd >= 0 ? fd : undefined;
}

/** Sockets quickAck set the option on, and those where setsockopt failed (for tests). */
export const quickAckCounts = { set: 0, failed: 0 };

/**
 * Acknowledges at once what `socket` received (TCP_QUICKACK), instead of after Linux's delayed-ACK
 * timer. Called when a response's headers arrive: a store that sends the body in a second write
 * with Nagle's algorithm on holds it until the headers are acknowledged (Ceph's radosgw: a small
 * GET took 44 ms on loopback instead of 2; tcpopt.c). The option lasts until the next request is
 * sent, so each response sets it again. Does nothing without the addon; an error (a socket
 * closed meanwhile) is only counted.
 */
export function quickAck(socket: Socket | null): void {
  const options = tcpOptions();
  if (options === undefined || socket === null) return;
  const fd = socketFd(socket);
  if (fd === undefined) return;
  if (options.quickAck(fd) === 0) quickAckCounts.set++;
  else quickAckCounts.failed++;
}
