import { fsError } from '../common/index.js';

/** Where an RPC endpoint listens or is reached: a TCP host and port, or a Unix socket path. */
export type RpcAddress = { kind: 'tcp'; host: string; port: number } | { kind: 'unix'; path: string };

/**
 * Parses `HOST:PORT`, `[V6HOST]:PORT` or a Unix socket path (anything containing a `/`).
 * Port 0 is allowed for listening (the kernel picks one; the server reports the real address).
 */
export function parseRpcAddress(text: string): RpcAddress {
  if (text.includes('/')) return { kind: 'unix', path: text };
  const match = /^\[?([^\]]*?)\]?:(\d{1,5})$/.exec(text);
  const port = match ? Number(match[2]) : NaN;
  if (!match || match[1] === '' || port > 65535) {
    throw fsError.EINVAL(
      `invalid RPC address "${text}": use HOST:PORT (e.g. 127.0.0.1:7070) or a Unix socket path (e.g. /run/strata/meta.sock)`,
    );
  }
  return { kind: 'tcp', host: match[1], port };
}

export function formatRpcAddress(address: RpcAddress): string {
  if (address.kind === 'unix') return address.path;
  return address.host.includes(':') ? `[${address.host}]:${address.port}` : `${address.host}:${address.port}`;
}

/** `A,B,C`: one or more addresses of servers of the same service. */
export function parseRpcAddressList(text: string): RpcAddress[] {
  const parts = text.split(',').map((part) => part.trim());
  if (parts.some((part) => part === '')) {
    throw fsError.EINVAL(
      `invalid server list "${text}": separate addresses with single commas, e.g. 127.0.0.1:7070,127.0.0.1:7071`,
    );
  }
  return parts.map(parseRpcAddress);
}
