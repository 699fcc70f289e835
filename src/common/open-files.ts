/** One cached open file: the value opened, how many uses hold it, whether it is to close. */
interface Entry<V> {
  opened: Promise<V>;
  /** Uses holding it now; a retired file closes when the last one ends. */
  users: number;
  retired: boolean;
}

/**
 * Files kept open for repeated reads, by key, the least recently used closed beyond `maxOpen`:
 * a read is then one pread instead of open + pread + close, each of them a thread-pool job. A
 * file retired (evicted, removed, replaced, failed) closes once the reads using it end; the next
 * use opens it afresh.
 */
export class OpenFileCache<V> {
  private readonly files = new Map<string, Entry<V>>();

  constructor(
    private readonly maxOpen: number,
    private readonly openFile: (key: string) => Promise<V>,
    private readonly closeFile: (opened: V) => Promise<void>,
  ) {}

  /** Files open (or opening) now. */
  get size(): number {
    return this.files.size;
  }

  /**
   * Runs `read` with the key's open file, opening it if needed. Any error (opening or reading)
   * retires the file, so a file that vanished or failed is not used again.
   */
  async use<T>(key: string, read: (opened: V) => Promise<T>): Promise<T> {
    let entry = this.files.get(key);
    if (entry) {
      // Re-inserting moves the key to the young end of the Map's order.
      this.files.delete(key);
    } else {
      const opened = this.openFile(key);
      opened.catch(() => undefined); // the use awaiting it sees the error
      entry = { opened, users: 0, retired: false };
      const oldest = this.files.keys().next();
      if (this.files.size >= this.maxOpen && !oldest.done) this.retire(oldest.value);
    }
    this.files.set(key, entry);
    entry.users++;
    try {
      return await read(await entry.opened);
    } catch (error) {
      if (this.files.get(key) === entry) this.files.delete(key);
      entry.retired = true;
      throw error;
    } finally {
      entry.users--;
      if (entry.retired && entry.users === 0) this.close(entry);
    }
  }

  /** Closes the key's file once no read uses it; the next use opens it again. */
  retire(key: string): void {
    const entry = this.files.get(key);
    if (!entry) return;
    this.files.delete(key);
    entry.retired = true;
    if (entry.users === 0) this.close(entry);
  }

  /** Retires every file (shutdown, tests). */
  retireAll(): void {
    for (const key of [...this.files.keys()]) this.retire(key);
  }

  private close(entry: Entry<V>): void {
    entry.opened.then((opened) => this.closeFile(opened)).catch(() => undefined);
  }
}
