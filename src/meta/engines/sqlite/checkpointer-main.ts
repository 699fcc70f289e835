// The checkpoint thread of a SQLite engine (checkpointer.ts): its own connection, one PASSIVE
// checkpoint per request, the outcome posted back.
import { parentPort, workerData } from 'node:worker_threads';
import BetterSqlite3 from 'better-sqlite3';
import type { CheckpointReply } from './checkpointer.js';

const port = parentPort;
if (!port) throw new Error('checkpointer-main.js runs as a worker thread only');
const { path } = workerData as { path: string };
const db = new BetterSqlite3(path);
// NORMAL, as the writer: the checkpoint fsyncs the log before copying it and the database
// after, so a commit it moved out of the log stays durable.
db.pragma('synchronous = NORMAL');
db.pragma('busy_timeout = 1000');

port.on('message', (message: 'checkpoint' | 'close') => {
  if (message === 'close') {
    // Closed here, not dropped with the thread: SQLite's locks are per process, and an open
    // connection left behind would keep its share of them.
    db.close();
    port.postMessage('closed');
    port.close();
    return;
  }
  let reply: CheckpointReply;
  try {
    const [row] = db.pragma('wal_checkpoint(PASSIVE)') as {
      busy: number;
      log: number;
      checkpointed: number;
    }[];
    reply = { ok: true, framesInWal: row.log, framesCheckpointed: row.checkpointed };
  } catch (error) {
    reply = { ok: false, message: error instanceof Error ? error.message : String(error) };
  }
  port.postMessage(reply);
});
