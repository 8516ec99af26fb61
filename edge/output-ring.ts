/**
 * The recent output of one terminal, as ready-to-send client OUTPUT frames keyed by their byte
 * offset in the PTY's output stream. Bounded: the oldest frames drop out first. A client that
 * falls further behind than the ring reaches is repainted from a snapshot instead.
 *
 * While a snapshot is on its way the ring is pinned at the offset it was asked at: the repaint
 * covers output up to some later offset S, and the frames from S on must still be here when it
 * arrives, even under a flood. The pin holds at most PIN_MAX_BYTES.
 */

/** Output kept per terminal for paused or catching-up clients, in bytes. */
export const RING_MAX_BYTES = 1 << 20; // 1 MiB
/** Output a pin may hold beyond RING_MAX_BYTES while a snapshot is on its way, in bytes. */
export const PIN_MAX_BYTES = 16 << 20; // 16 MiB

export interface RingFrame {
  /** Offset of the frame's first payload byte. */
  offset: number;
  /** A client OUTPUT frame: type byte, then payload. */
  frame: Uint8Array;
}

export function payloadLength(f: RingFrame): number {
  return f.frame.byteLength - 1;
}

/**
 * Gives a frame's memory back now. Each OUTPUT frame arrives as its own `ArrayBuffer`, which V8
 * frees only at its next full collection, started once about 64 MB outside its heap have piled up
 * (docs/architecture.md, "workerd's memory under a flood"); detaching the buffer
 * (`ArrayBuffer.prototype.transfer(0)`) drops it at once. Only for a frame nothing refers to any
 * more: the ring evicts (or clears) frames that every live client has been sent (sends copy or
 * keep their own reference), and its callers read the frames it returns without waiting.
 */
function release(frame: Uint8Array): void {
  const buffer = frame.buffer;
  if (!(buffer instanceof ArrayBuffer) || buffer.detached) return;
  try {
    buffer.transfer(0);
  } catch {
    // Not detachable (a buffer the runtime keeps): the collector frees it in its own time.
  }
}

export class OutputRing {
  private frames: RingFrame[] = [];
  private head = 0;
  private bytes = 0;
  private pinnedAt: number | null = null;

  constructor(
    private readonly maxBytes = RING_MAX_BYTES,
    private readonly pinMaxBytes = PIN_MAX_BYTES,
  ) {}

  /** Keeps every frame that ends after `offset` (within PIN_MAX_BYTES) until `unpin()`. */
  pin(offset: number): void {
    this.pinnedAt = offset;
  }

  unpin(): void {
    this.pinnedAt = null;
  }

  private evictable(f: RingFrame): boolean {
    if (this.bytes > this.pinMaxBytes) return true;
    return this.pinnedAt === null || f.offset + payloadLength(f) <= this.pinnedAt;
  }

  /** Offset of the oldest byte held, or null when empty. */
  get start(): number | null {
    return this.head < this.frames.length ? this.frames[this.head]!.offset : null;
  }

  push(f: RingFrame): void {
    this.frames.push(f);
    this.bytes += f.frame.byteLength;
    while (this.bytes > this.maxBytes && this.frames.length - this.head > 1 && this.evictable(this.frames[this.head]!)) {
      const evicted = this.frames[this.head]!;
      this.bytes -= evicted.frame.byteLength;
      this.frames[this.head++] = undefined as never;
      release(evicted.frame);
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

  /** Lets go of every frame (their memory given back, as on eviction). */
  clear(): void {
    for (let i = this.head; i < this.frames.length; i++) release(this.frames[i]!.frame);
    this.pinnedAt = null;
    this.frames = [];
    this.head = 0;
    this.bytes = 0;
  }
}
