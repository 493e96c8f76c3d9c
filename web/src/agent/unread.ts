// Unread counts per task. The server's count (contacts, at one moment) is
// the base: it covers every message up to the task's newest message id then.
// Messages pushed later with a higher id add to it; a read up to an id
// clears everything at or below it. So a message that reaches the console
// both in the server's count and by an offline pull is counted once.

interface Base {
  count: number;
  upTo: number;
}

export class UnreadCounter {
  private base = new Map<number, Base>();
  private extra = new Map<number, Set<number>>();

  /** The server counted `count` unread messages with ids up to `upTo`. */
  setBase(task: number, count: number, upTo: number): void {
    this.base.set(task, { count, upTo });
    const set = this.extra.get(task);
    if (set) for (const id of set) if (id <= upTo) set.delete(id);
  }

  /** A new unread message; returns whether the count changed. */
  add(task: number, id: number): boolean {
    const b = this.base.get(task);
    if (b && id <= b.upTo) return false;
    let set = this.extra.get(task);
    if (!set) this.extra.set(task, (set = new Set()));
    if (set.has(id)) return false;
    set.add(id);
    return true;
  }

  /**
   * Read up to `quote`. Returns false when the base is only partly covered
   * (the caller should ask the server again).
   */
  read(task: number, quote: number): boolean {
    const set = this.extra.get(task);
    if (set) for (const id of set) if (id <= quote) set.delete(id);
    const b = this.base.get(task);
    if (!b || b.count === 0) return true;
    if (quote >= b.upTo) {
      this.base.set(task, { count: 0, upTo: b.upTo });
      return true;
    }
    return false;
  }

  count(task: number): number {
    return (this.base.get(task)?.count ?? 0) + (this.extra.get(task)?.size ?? 0);
  }

  forget(task: number): void {
    this.base.delete(task);
    this.extra.delete(task);
  }
}
