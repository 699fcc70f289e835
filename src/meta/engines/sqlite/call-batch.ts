import type { Database, Statement } from 'better-sqlite3';

/** Per stored outcome in a `call_batch` blob: seq (6 bytes), reply length (4 bytes), then the reply. */
const ENTRY_HEADER_BYTES = 10;

interface PendingOutcome {
  client: number;
  seq: number;
  reply: Buffer;
}

/**
 * The call outcomes of one group-commit batch (at-most-once, src/meta/call-outcomes.ts), stored
 * as one `call_batch` row per client at COMMIT instead of one row per change: a row and an index
 * entry cost 6.6-6.9 µs per change (bench/RESULTS.md, session 3), most of it the B-tree work that
 * a batch of 64 changes from a few clients now does a few times. Written in the batch's own
 * transaction, so an outcome exists exactly when its change committed, as before.
 *
 * A row covers the client's sequence numbers `first_seq..last_seq` (with gaps: reads and other
 * clients' calls are not in it); a lookup reads the client's rows with `last_seq >= seq`, which
 * for a resend are the few written since the call was first sent.
 */
export class CallBatch {
  private pending: PendingOutcome[] = [];
  /** Outcomes that were pending when the running change began. */
  private changeStart = 0;

  add(client: number, seq: number, reply: Buffer): void {
    this.pending.push({ client, seq, reply });
  }

  beginChange(): void {
    this.changeStart = this.pending.length;
  }

  /** The running change rolled back: its outcomes go with it. */
  rollbackChange(): void {
    this.pending.length = this.changeStart;
  }

  /** Client numbers of outcomes not written yet: their `call_client` rows must stay. */
  pendingClients(): number[] {
    return [...new Set(this.pending.map((o) => o.client))];
  }

  reset(): void {
    this.pending = [];
    this.changeStart = 0;
  }

  /** Writes the batch's outcomes with `insert` (client, first_seq, last_seq, replies, at_us). */
  write(insert: Statement, nowUs: number): void {
    if (this.pending.length === 0) return;
    const byClient = new Map<number, PendingOutcome[]>();
    for (const outcome of this.pending) {
      const list = byClient.get(outcome.client);
      if (list) list.push(outcome);
      else byClient.set(outcome.client, [outcome]);
    }
    for (const [client, outcomes] of byClient) {
      let bytes = 0;
      let firstSeq = outcomes[0].seq;
      let lastSeq = firstSeq;
      for (const o of outcomes) {
        bytes += ENTRY_HEADER_BYTES + o.reply.length;
        if (o.seq < firstSeq) firstSeq = o.seq;
        if (o.seq > lastSeq) lastSeq = o.seq;
      }
      insert.run(client, firstSeq, lastSeq, encodeOutcomes(outcomes, bytes), nowUs);
    }
    this.reset();
  }
}

function encodeOutcomes(outcomes: PendingOutcome[], bytes: number): Buffer {
  const blob = Buffer.allocUnsafe(bytes);
  let at = 0;
  for (const o of outcomes) {
    blob.writeUIntLE(o.seq, at, 6);
    blob.writeUInt32LE(o.reply.length, at + 6);
    o.reply.copy(blob, at + ENTRY_HEADER_BYTES);
    at += ENTRY_HEADER_BYTES + o.reply.length;
  }
  return blob;
}

/** The reply stored for `seq` in a `call_batch` blob (the last one, should it be there twice). */
export function findOutcome(blob: Buffer, seq: number): Buffer | undefined {
  let found: Buffer | undefined;
  for (let at = 0; at + ENTRY_HEADER_BYTES <= blob.length;) {
    const length = blob.readUInt32LE(at + 6);
    const start = at + ENTRY_HEADER_BYTES;
    if (blob.readUIntLE(at, 6) === seq) found = blob.subarray(start, start + length);
    at = start + length;
  }
  return found;
}

/** A blob holding one outcome (moving rows of the older one-row-per-change tables over). */
export function singleOutcome(seq: number, reply: Buffer): Buffer {
  return encodeOutcomes([{ client: 0, seq, reply }], ENTRY_HEADER_BYTES + reply.length);
}

/**
 * Moves outcomes of older schemas into `call_batch`, in age order: schema 1 (`call_outcome`, text
 * client ids) through schema 2 (`call_result`, one row per change). Runs in one transaction.
 */
export function migrateCallOutcomes(db: Database, schema1Sql: string): void {
  const has = (table: string): boolean =>
    db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?").get(table) !== undefined;
  if (!has('call_outcome') && !has('call_result')) return;
  db.transaction(() => {
    if (has('call_outcome')) db.exec(schema1Sql);
    const insert = db.prepare(
      'INSERT INTO call_batch (client, first_seq, last_seq, replies, at_us) VALUES (?, ?, ?, ?, ?)',
    );
    // All at once (a statement cannot run while another iterates): ten minutes of outcomes at most.
    const rows = db.prepare('SELECT client, seq, reply, at_us FROM call_result ORDER BY rowid').all() as {
      client: number;
      seq: number;
      reply: Buffer;
      at_us: number;
    }[];
    for (const row of rows) {
      insert.run(row.client, row.seq, row.seq, singleOutcome(row.seq, row.reply), row.at_us);
    }
    db.exec('DROP TABLE call_result');
  })();
}
