// Keystrokes typed while the terminal is reconnecting wait here, bounded, and are sent in order
// once the edge has accepted the new connection. Input that does not fit is refused, never
// dropped silently: the caller tells the user.

/** Most input held while disconnected, in bytes (a few screens of typing or a short paste). */
export const INPUT_QUEUE_MAX_BYTES = 16 * 1024;

/** A bounded FIFO of input chunks. */
export class InputQueue {
  private chunks: Uint8Array[] = [];
  private size = 0;

  constructor(private readonly maxBytes = INPUT_QUEUE_MAX_BYTES) {}

  /** Bytes waiting. */
  get bytes(): number {
    return this.size;
  }

  /** Queues `data`; returns false (and queues nothing) when it would pass the cap. */
  push(data: Uint8Array): boolean {
    if (this.size + data.byteLength > this.maxBytes) return false;
    this.chunks.push(data);
    this.size += data.byteLength;
    return true;
  }

  /** Removes and returns everything queued, oldest first. */
  drain(): Uint8Array[] {
    const out = this.chunks;
    this.chunks = [];
    this.size = 0;
    return out;
  }
}
