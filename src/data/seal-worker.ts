// The thread that seals large blocks for BlockSealer (sealer.ts): it receives a block's memory
// (transferred, not copied), writes the checksum trailer into it and hands it back.
import { parentPort } from 'node:worker_threads';
import { sealBlock } from './block-format.js';
import type { SealReady, SealReply, SealRequest } from './sealer.js';

const port = parentPort;
if (port === null) throw new Error('seal-worker.js runs as a worker thread of the data path');
port.on('message', (request: SealRequest) => {
  let reply: SealReply;
  try {
    sealBlock(Buffer.from(request.memory, request.offset), request.block);
    reply = { id: request.id, memory: request.memory };
  } catch (error) {
    reply = { id: request.id, memory: request.memory, error: String(error) };
  }
  port.postMessage(reply, [request.memory]);
});
// Loaded and listening: only now may blocks' memory come here (sealer.ts, `starting`).
port.postMessage({ ready: true } satisfies SealReady);
