/**
 * The newest bytes of one PTY's output stream, as the program wrote them, for
 * `GET /api/v1/terminal/raw?format=download`. The output log keeps only what the edge has not
 * acknowledged, so this keeps its own bounded tail: chunks are held by reference (no copy on the
 * output path) and the oldest are dropped once the tail outgrows RAW_TAIL_MAX_BYTES.
 */

/** Raw output kept per terminal, in bytes; older output is dropped first. */
export const RAW_TAIL_MAX_BYTES = 2 << 20; // 2 MiB

const NEWLINE = 0x0a;

export class RawTail {
  private chunks: Uint8Array[] = [];
  /** Index of the oldest live chunk in `chunks` (dropped ones are compacted away in batches). */
  private head = 0;
  private bytes = 0;

  constructor(private readonly maxBytes = RAW_TAIL_MAX_BYTES) {}

  /** Bytes held. */
  get size(): number {
    return this.bytes;
  }

  /** Keeps `chunk` (by reference: the caller must not reuse its memory). O(1) amortised. */
  push(chunk: Uint8Array): void {
    if (chunk.byteLength === 0) return;
    this.chunks.push(chunk);
    this.bytes += chunk.byteLength;
    while (this.bytes - this.chunks[this.head]!.byteLength >= this.maxBytes) {
      this.bytes -= this.chunks[this.head]!.byteLength;
      this.head++;
    }
    // Compact once the dropped prefix is as long as what is left, so shifting stays amortised O(1).
    if (this.head > 64 && this.head * 2 > this.chunks.length) {
      this.chunks = this.chunks.slice(this.head);
      this.head = 0;
    }
  }

  /** The tail as one buffer of at most `maxBytes`; with `lines`, only the last that many lines. */
  read(lines?: number): Uint8Array {
    const live = this.chunks.slice(this.head);
    const total = Math.min(this.bytes, this.maxBytes);
    const out = new Uint8Array(total);
    // Copy newest first, from the end, so a chunk straddling the cap is cut at its start.
    let at = total;
    for (let i = live.length - 1; i >= 0 && at > 0; i--) {
      const c = live[i]!;
      const take = Math.min(c.byteLength, at);
      out.set(c.subarray(c.byteLength - take), at - take);
      at -= take;
    }
    return lines === undefined ? out : lastLines(out, lines);
  }
}

/**
 * The last `n` lines of `bytes`: a final line without a newline counts, a trailing newline
 * does not start another line.
 */
export function lastLines(bytes: Uint8Array, n: number): Uint8Array {
  if (n <= 0) return bytes.subarray(bytes.byteLength);
  let end = bytes.byteLength;
  if (end > 0 && bytes[end - 1] === NEWLINE) end--;
  let from = end - 1;
  for (let seen = 0; from >= 0; from--) {
    from = bytes.lastIndexOf(NEWLINE, from);
    if (from < 0 || ++seen === n) break;
  }
  return from < 0 ? bytes : bytes.subarray(from + 1);
}
