/**
 * The recent output of one terminal, as ready-to-send client OUTPUT frames keyed by their byte
 * offset in the PTY's output stream. Bounded: the oldest frames drop out first. A client that
 * falls further behind than the ring reaches is repainted from a snapshot instead.
 */

/** Output kept per terminal for paused or catching-up clients, in bytes. */
export const RING_MAX_BYTES = 4 << 20; // 4 MiB

export interface RingFrame {
  /** Offset of the frame's first payload byte. */
  offset: number;
  /** A client OUTPUT frame: type byte, then payload. */
  frame: Uint8Array;
}

export function payloadLength(f: RingFrame): number {
  return f.frame.byteLength - 1;
}

export class OutputRing {
  private frames: RingFrame[] = [];
  private head = 0;
  private bytes = 0;

  constructor(private readonly maxBytes = RING_MAX_BYTES) {}

  /** Offset of the oldest byte held, or null when empty. */
  get start(): number | null {
    return this.head < this.frames.length ? this.frames[this.head]!.offset : null;
  }

  push(f: RingFrame): void {
    this.frames.push(f);
    this.bytes += f.frame.byteLength;
    while (this.bytes > this.maxBytes && this.frames.length - this.head > 1) {
      this.bytes -= this.frames[this.head]!.frame.byteLength;
      this.frames[this.head++] = undefined as never;
    }
    if (this.head > 1024 && this.head * 2 > this.frames.length) {
      this.frames = this.frames.slice(this.head);
      this.head = 0;
    }
  }

  /** Frames covering offsets from `offset` on, or null when the ring no longer reaches back. */
  from(offset: number): RingFrame[] | null {
    const start = this.start;
    if (start === null) return [];
    if (offset < start) return null;
    // Frames are contiguous and ordered: binary search for the first one ending after `offset`.
    let lo = this.head;
    let hi = this.frames.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const f = this.frames[mid]!;
      if (f.offset + payloadLength(f) <= offset) lo = mid + 1;
      else hi = mid;
    }
    return this.frames.slice(lo);
  }

  clear(): void {
    this.frames = [];
    this.head = 0;
    this.bytes = 0;
  }
}
