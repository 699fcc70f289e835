// Entry point of the metadata worker thread: owns the engine, answers batched calls.
import { parentPort, workerData } from 'node:worker_threads';
import { Errno, isFsError } from '../../common/index.js';
import { openMetaService, type OpenMetaServiceOptions } from '../volume.js';
import { REMOTE_METHODS, asBuffer, type CallMessage, type ReplyMessage } from './protocol.js';

const port = parentPort!;
const options = workerData as OpenMetaServiceOptions;
const allowed = new Set<string>(REMOTE_METHODS);

async function main(): Promise<void> {
  const service = await openMetaService(options);
  const remote = service as unknown as Record<string, (...args: unknown[]) => Promise<unknown>>;
  let replies: ReplyMessage[] = [];
  let flushArmed = false;
  // Replies go back in batches, one message per event-loop turn: a message costs more
  // than the calls it carries.
  const flush = () => {
    flushArmed = false;
    const out = replies;
    replies = [];
    port.postMessage(out);
  };
  const reply = (r: ReplyMessage) => {
    replies.push(r);
    if (!flushArmed) {
      flushArmed = true;
      setImmediate(flush);
    }
  };
  port.on('message', (message: CallMessage[] | 'close') => {
    if (message === 'close') {
      void service.close().then(() => port.postMessage('closed'));
      return;
    }
    for (const call of message) {
      const fn = allowed.has(call.method) ? remote[call.method] : undefined;
      if (typeof fn !== 'function') {
        reply({
          id: call.id,
          ok: false,
          errno: Errno.ENOSYS,
          message: `no method ${call.method}`,
          internal: true,
        });
        continue;
      }
      fn.apply(service, call.args.map(asBuffer)).then(
        (value) => reply({ id: call.id, ok: true, value }),
        (error: unknown) =>
          reply(
            isFsError(error)
              ? { id: call.id, ok: false, errno: error.errno, message: error.message, internal: false }
              : {
                  id: call.id,
                  ok: false,
                  errno: Errno.EIO,
                  message: error instanceof Error ? (error.stack ?? error.message) : String(error),
                  internal: true,
                },
          ),
      );
    }
  });
  port.postMessage('ready');
}

main().catch((error: unknown) => {
  port.postMessage({
    startupError: isFsError(error) ? [error.errno, error.message] : [Errno.EIO, String(error)],
  });
});
