/**
 * The one request/reply table each end of the control link keeps: the HostDO's for everything it
 * numbers (control requests, exec calls, tunnelled HTTP calls and proxied WebSockets), the
 * agent's for the control requests and exec calls it is answering. Ids are unique per table
 * across all kinds; each entry has a `kind` and the table counts them by kind, so each kind can
 * keep its own cap under the table's.
 */

/** First id of a fresh table is random below this, so a restarted DO never reuses a live id. */
const FIRST_ID_SPAN = 2 ** 31;

export class Correlator<E extends { kind: string }> {
  private readonly entries = new Map<number, E>();
  private readonly kinds = new Map<string, number>();
  private nextId = Math.floor(Math.random() * FIRST_ID_SPAN);

  /**
   * `max`: entries in flight at once, all kinds together. `idLimit`: ids `open` hands out stay
   * below it, wrapping to 0 (at least 2^31; a table whose ids ride in a u32 passes 2^32).
   */
  constructor(
    readonly max: number,
    private readonly idLimit: number = Number.MAX_SAFE_INTEGER,
  ) {}

  /** Entries in flight. */
  get size(): number {
    return this.entries.size;
  }

  /** Entries in flight of one kind. */
  count(kind: E["kind"]): number {
    return this.kinds.get(kind) ?? 0;
  }

  /** Registers a request this side sends, under a fresh id; null when `max` are in flight. */
  open(entry: E): number | null {
    if (this.entries.size >= this.max) return null;
    let id = this.nextFree();
    while (this.entries.has(id)) id = this.nextFree();
    this.add(id, entry);
    return id;
  }

  /** Registers a request the peer sent under its id; false if that id is in flight or the table is full. */
  accept(id: number, entry: E): boolean {
    if (this.entries.has(id) || this.entries.size >= this.max) return false;
    this.add(id, entry);
    return true;
  }

  get(id: number): E | undefined {
    return this.entries.get(id);
  }

  /** Removes `id` if `entry` (when given) is still what it holds; returns what was removed. */
  take(id: number, entry?: E): E | undefined {
    const found = this.entries.get(id);
    if (found === undefined || (entry !== undefined && found !== entry)) return undefined;
    this.entries.delete(id);
    this.kinds.set(found.kind, this.count(found.kind) - 1);
    return found;
  }

  /** Removes and returns every entry, with its id (the link went away). */
  drain(): [number, E][] {
    const all = [...this.entries];
    this.entries.clear();
    this.kinds.clear();
    return all;
  }

  private nextFree(): number {
    if (this.nextId >= this.idLimit) this.nextId = 0;
    return this.nextId++;
  }

  private add(id: number, entry: E): void {
    this.entries.set(id, entry);
    this.kinds.set(entry.kind, this.count(entry.kind) + 1);
  }
}
