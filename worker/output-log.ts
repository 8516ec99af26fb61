/**
 * The agent's record of one PTY's output stream, addressed by byte offset: what the edge has not
 * yet acknowledged (kept for resending after a dropped link), and the chunks waiting to be
 * coalesced into the next frame. The PTY is paused while too much is unacknowledged, so memory
 * stays bounded whatever the program prints.
 */

/** Output the edge may leave unacknowledged before the PTY is paused, in bytes. */
export const UNACKED_MAX_BYTES = 4 << 20; // 4 MiB
/** The PTY resumes once unacknowledged output falls below this, in bytes. */
export const UNACKED_RESUME_BYTES = 1 << 20; // 1 MiB

export class OutputLog {
  /** Offset just past the last byte produced. */
  end = 0;
  /** Everything below this offset was acknowledged by the edge (and dropped here). */
  acked = 0;
  private chunks: Buffer[] = [];
  private chunksStart = 0;

  /** Bytes produced but not yet acknowledged. */
  get unacked(): number {
    return this.end - this.acked;
  }

  append(chunk: Buffer): void {
    this.chunks.push(chunk);
    this.end += chunk.byteLength;
  }

  /** The edge holds everything below `offset`. */
  ack(offset: number): void {
    if (offset <= this.acked) return;
    this.acked = Math.min(offset, this.end);
    while (this.chunks.length > 0 && this.chunksStart + this.chunks[0]!.byteLength <= this.acked) {
      this.chunksStart += this.chunks.shift()!.byteLength;
    }
  }

  /** The retained bytes from `offset` to the end, as chunks (the first may be a slice). */
  since(offset: number): Buffer[] {
    const out: Buffer[] = [];
    let at = this.chunksStart;
    for (const chunk of this.chunks) {
      const next = at + chunk.byteLength;
      if (next > offset) out.push(at >= offset ? chunk : chunk.subarray(offset - at));
      at = next;
    }
    return out;
  }
}
