import type { Statement } from 'better-sqlite3';

/**
 * Integer numbers for the RPC client ids that key stored call outcomes (`call_client`), kept in
 * memory once known. A number handed out by a change that rolls back is forgotten with it (its
 * row went with the savepoint), and all are forgotten when a batch is lost or clients are pruned:
 * the next use reads or creates the row again.
 */
export class CallClients {
  private readonly nums = new Map<string, number>();
  /** Client ids the running change inserted. */
  private readonly added: string[] = [];

  constructor(
    private readonly find: Statement,
    private readonly insert: Statement,
    /** Called before the insert (it changes SQLite: the engine opens the change's savepoint). */
    private readonly beforeInsert: () => void,
  ) {}

  /** The client's number; creates its row in the running change the first time. */
  num(clientId: string): number {
    let num = this.nums.get(clientId);
    if (num === undefined) {
      num = this.find.get(clientId) as number | undefined;
      if (num === undefined) {
        this.beforeInsert();
        num = this.insert.get(clientId) as number;
        this.added.push(clientId);
      }
      this.nums.set(clientId, num);
    }
    return num;
  }

  beginChange(): void {
    this.added.length = 0;
  }

  rollbackChange(): void {
    for (const clientId of this.added) this.nums.delete(clientId);
    this.added.length = 0;
  }

  forgetAll(): void {
    this.nums.clear();
    this.added.length = 0;
  }
}
