/**
 * A background process's output: the newest entries that fit PROCESS_OUTPUT_MAX_BYTES and
 * PROCESS_OUTPUT_MAX_ENTRIES, oldest dropped first. Entries keep their absolute index (the
 * reference's `offset`/`next_offset` count entries since the process started), so readers holding
 * an offset stay correct after drops and learn through `truncated` that they missed some.
 */
import type { OutputEntry } from "../../../shared/open-terminal.ts";

/** Output kept per process, in UTF-8 bytes of `data`. */
export const PROCESS_OUTPUT_MAX_BYTES = 1 << 20; // 1 MiB
/** Entries kept per process (the reference's old OPEN_TERMINAL_MAX_OUTPUT_LINES default). */
export const PROCESS_OUTPUT_MAX_ENTRIES = 10_000;

/** A slice of the log, as `GET /execute/{id}/status` answers it. */
export interface OutputSlice {
  output: OutputEntry[];
  next_offset: number;
  truncated: boolean;
}

export class ProcessOutputLog {
  private entries: OutputEntry[] = [];
  private head = 0; // index in `entries` of the oldest kept entry
  private bytes = 0;
  /** Entries dropped so far: the absolute index of the oldest kept entry. */
  private dropped = 0;

  constructor(
    private readonly maxBytes = PROCESS_OUTPUT_MAX_BYTES,
    private readonly maxEntries = PROCESS_OUTPUT_MAX_ENTRIES,
  ) {}

  /** Entries ever appended: the `next_offset` of a reader that has seen everything. */
  get total(): number {
    return this.dropped + this.entries.length - this.head;
  }

  /** True once any entry has been dropped. */
  get lostAny(): boolean {
    return this.dropped > 0;
  }

  append(type: OutputEntry["type"], data: string): void {
    this.entries.push({ type, data });
    this.bytes += Buffer.byteLength(data);
    while (this.entries.length - this.head > 1 && (this.bytes > this.maxBytes || this.entries.length - this.head > this.maxEntries)) {
      this.bytes -= Buffer.byteLength(this.entries[this.head]!.data);
      this.head++;
      this.dropped++;
    }
    // Compact once the dead prefix outweighs the live part, so the array stays O(kept).
    if (this.head > 1024 && this.head * 2 > this.entries.length) {
      this.entries = this.entries.slice(this.head);
      this.head = 0;
    }
  }

  /**
   * Entries from absolute index `offset` on; with `tail`, only the last `tail` of those.
   * `truncated` is true when the answer leaves out entries at or after `offset` (dropped by the
   * caps, or cut by `tail`), as the reference sets it when `tail` cuts.
   */
  read(offset = 0, tail: number | null = null): OutputSlice {
    const total = this.total;
    const from = Math.max(offset, this.dropped);
    let output = from >= total ? [] : this.entries.slice(this.head + (from - this.dropped));
    let truncated = from > offset && offset < total;
    if (tail !== null && output.length > tail) {
      output = output.slice(output.length - tail);
      truncated = true;
    }
    // The reference's quirk, kept for its callers: from the start with `tail`, `truncated` says
    // that `tail` entries came back (there may have been more), whether or not any were cut.
    if (tail !== null && offset === 0 && output.length === tail) truncated = true;
    return { output, next_offset: total, truncated };
  }

}

/** Text kept per stream for a synchronous run's `stdout`/`stderr`, in UTF-16 units. */
export const SYNC_OUTPUT_MAX_CHARS = 1 << 20; // 1 Mi characters per stream

/**
 * The newest SYNC_OUTPUT_MAX_CHARS of one stream, for v0.1.4's `stdout`/`stderr` strings (which
 * the reference returned whole; a bounded tail keeps a 50 MB command from costing 50 MB here).
 */
export class TailText {
  private parts: string[] = [];
  private length = 0;

  constructor(private readonly maxChars = SYNC_OUTPUT_MAX_CHARS) {}

  append(s: string): void {
    this.parts.push(s);
    this.length += s.length;
    while (this.length > this.maxChars) {
      const first = this.parts[0]!;
      const excess = this.length - this.maxChars;
      if (first.length <= excess) {
        this.parts.shift();
        this.length -= first.length;
      } else {
        this.parts[0] = first.slice(excess);
        this.length -= excess;
      }
    }
    if (this.parts.length > 1024) this.parts = [this.parts.join("")];
  }

  toString(): string {
    return this.parts.join("");
  }
}
