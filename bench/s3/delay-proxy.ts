// A TCP proxy that holds every chunk for a fixed time in each direction: the WAN latency of the
// S3 benchmark, because this kernel has no netem (CONFIG_NET_SCH_NETEM is not set). Rate limits
// stay in the kernel (tbf on the veth, see netns.sh). Each request/response exchange pays two
// delays, as over a real link; TCP's own window dynamics are not emulated (the proxy buffers up
// to `windowBytes` per direction, a bit more than the 1 Gbit x 20 ms bandwidth-delay product).
// The proxy ends the TCP connection, so radosgw's acknowledgements come from it, not from the
// client: radosgw sends a response body only once its headers are acknowledged (Nagle), Linux
// delays the proxy's ACK up to 40 ms, and every tool pays that on small GETs here (64 ms per
// 4 KiB GET instead of 23); a client's own TCP_QUICKACK (src/object/backends/quick-ack.ts)
// cannot show on this bench. bench/RESULTS.md, S3 backend, session 18.
//
//   node delay-proxy.js LISTEN_HOST:PORT TARGET_HOST:PORT DELAY_MS
import net from 'node:net';
import { flagError, parseFlags } from '../common/args.js';

const USAGE = `Usage: node delay-proxy.js LISTEN_HOST:PORT TARGET_HOST:PORT DELAY_MS`;
const { positionals } = parseFlags(USAGE, { allowPositionals: true });
const [listenArg, targetArg, delayArg] = positionals;
if (!listenArg || !targetArg || !delayArg || positionals.length > 3)
  flagError('takes three arguments: LISTEN_HOST:PORT TARGET_HOST:PORT DELAY_MS');
const split = (text: string) => {
  const i = text.lastIndexOf(':');
  return { host: text.slice(0, i), port: Number(text.slice(i + 1)) };
};
const listen = split(listenArg);
const target = split(targetArg);
const delayMs = Number(delayArg);
const windowBytes = 8 * 1024 * 1024;

/** Copies `from` to `to`, each chunk `delayMs` late, pausing `from` while a window's worth is in transit. */
function delayedPipe(from: net.Socket, to: net.Socket): void {
  let inTransitBytes = 0;
  from.on('data', (chunk: Buffer) => {
    inTransitBytes += chunk.length;
    if (inTransitBytes > windowBytes) from.pause();
    // Timers of equal duration fire in creation order, so chunks keep their order.
    setTimeout(() => {
      inTransitBytes -= chunk.length;
      if (!to.destroyed) to.write(chunk);
      if (inTransitBytes <= windowBytes && from.isPaused()) from.resume();
    }, delayMs);
  });
  from.on('end', () => setTimeout(() => to.end(), delayMs));
  from.on('error', () => setTimeout(() => to.destroy(), delayMs));
  from.on('close', () => setTimeout(() => to.destroy(), delayMs + 1));
}

const server = net.createServer({ noDelay: true }, (client) => {
  const upstream = net.connect({ host: target.host, port: target.port, noDelay: true });
  delayedPipe(client, upstream);
  delayedPipe(upstream, client);
});
server.listen(listen.port, listen.host, () => {
  console.error(`delay-proxy: ${listenArg} -> ${targetArg}, +${delayMs} ms each way`);
});
for (const signal of ['SIGTERM', 'SIGINT'] as const) process.on(signal, () => process.exit(0));
