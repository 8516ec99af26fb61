/**
 * The agent's record of one PTY's output stream, addressed by byte offset.
 *
 * Output is copied once, into the frame it will travel in. Chunks from the PTY are appended to an
 * open OUTPUT frame laid out in a slab; `seal()` closes that frame (it is also sealed when it
 * reaches FRAME_PAYLOAD_MAX_BYTES). A sealed frame is sent as is and kept while the edge has not
 * acknowledged it (for resending after a dropped link) or while it holds some of the newest
 * TAIL_KEEP_BYTES (the raw download). (The screen model gets a copy of each sealed payload.)
 * Slabs whose frames are all dropped are reused. Under a flood the agent therefore allocates
 * nothing per chunk that outlives it, which keeps the garbage collector out of the output path.
 *
 * The PTY is paused while too much is unacknowledged, so memory stays bounded whatever the
 * program prints: about UNACKED_MAX_BYTES plus a slab, and SPARE_SLABS more.
 */
import { encodeOutput, OUTPUT_FRAME_OVERHEAD, writeOutputHeader } from "../../shared/links/data.ts";

/** Output the edge may leave unacknowledged before the PTY is paused, in bytes. */
export const UNACKED_MAX_BYTES = 4 << 20; // 4 MiB
/** The PTY resumes once unacknowledged output falls below this, in bytes. */
export const UNACKED_RESUME_BYTES = 1 << 20; // 1 MiB
/** The newest output kept after the edge acknowledged it (raw downloads), in bytes. */
export const TAIL_KEEP_BYTES = 2 << 20; // 2 MiB
/** Largest output payload of one frame, in bytes. */
export const FRAME_PAYLOAD_MAX_BYTES = 256 << 10; // 256 KiB
/** Frames are laid out back to back in slabs of this size, in bytes. */
export const SLAB_BYTES = 1 << 20; // 1 MiB
/** Emptied slabs kept for reuse, per log. */
export const SPARE_SLABS = 2;

const NEWLINE = 0x0a;

/** A closed run of output, ready for the data link. */
export interface SealedFrame {
  /** Stream offset of the payload's first byte. */
  readonly offset: number;
  /** The whole OUTPUT frame. */
  readonly frame: Buffer;
  /** The output bytes in it (a view into `frame`). */
  readonly payload: Buffer;
}

interface Slab {
  readonly bytes: Buffer;
  /** Where the next frame starts. */
  used: number;
  /** Stream offset just past the last payload sealed into this slab. */
  end: number;
}

export class PtyOutputLog {
  /** Offset just past the last byte appended. */
  end = 0;
  /** Offset just past the last sealed byte; output from here to `end` is in the open frame. */
  sealedEnd = 0;
  /** Everything below this offset was acknowledged by the edge. */
  acked = 0;
  /** Frames kept, oldest first, from index `head`. */
  private frames: SealedFrame[] = [];
  private head = 0;
  /** Slabs holding kept frames, oldest first; the last one takes new frames. */
  private readonly slabs: Slab[] = [];
  private readonly spares: Buffer[] = [];

  /** `onSeal` sees every sealed frame, in stream order (the frame's slab is reused once it is dropped). */
  constructor(private readonly onSeal: (frame: SealedFrame) => void = () => {}) {}

  /** Bytes produced but not yet acknowledged. */
  get unacked(): number {
    return this.end - this.acked;
  }

  /** Copies `chunk` into the open frame, sealing frames that fill up on the way. */
  append(chunk: Uint8Array): void {
    let from = 0;
    while (from < chunk.byteLength) {
      const slab = this.end === this.sealedEnd ? this.slabForNewFrame() : this.slabs[this.slabs.length - 1]!;
      const open = this.end - this.sealedEnd;
      const take = Math.min(chunk.byteLength - from, FRAME_PAYLOAD_MAX_BYTES - open);
      slab.bytes.set(take === chunk.byteLength ? chunk : chunk.subarray(from, from + take), slab.used + OUTPUT_FRAME_OVERHEAD + open);
      this.end += take;
      from += take;
      if (open + take === FRAME_PAYLOAD_MAX_BYTES) this.seal();
    }
  }

  /** Closes the open frame, if it holds any output. */
  seal(): void {
    const length = this.end - this.sealedEnd;
    if (length === 0) return;
    const slab = this.slabs[this.slabs.length - 1]!;
    const frame = slab.bytes.subarray(slab.used, slab.used + OUTPUT_FRAME_OVERHEAD + length);
    writeOutputHeader(frame, this.sealedEnd);
    const sealed: SealedFrame = { offset: this.sealedEnd, frame, payload: frame.subarray(OUTPUT_FRAME_OVERHEAD) };
    this.frames.push(sealed);
    slab.used += frame.byteLength;
    slab.end = this.end;
    this.sealedEnd = this.end;
    this.onSeal(sealed);
    this.dropOld();
  }

  /** The edge holds everything below `offset`. */
  ack(offset: number): void {
    if (offset <= this.acked) return;
    this.acked = Math.min(offset, this.sealedEnd);
    this.dropOld();
  }

  /**
   * The sealed output from `offset` on, as OUTPUT frames: the kept frames themselves, except a
   * first one that `offset` cuts, which is encoded afresh. Normally `offset` is near the end, so
   * the search runs from there. `offset` must not be below `acked`.
   */
  framesFrom(offset: number): Uint8Array[] {
    let i = this.frames.length;
    while (i > this.head && frameEnd(this.frames[i - 1]!) > offset) i--;
    const out: Uint8Array[] = [];
    for (; i < this.frames.length; i++) {
      const f = this.frames[i]!;
      if (f.offset >= offset) {
        out.push(f.frame);
      } else {
        const rest = f.payload.subarray(offset - f.offset);
        out.push(encodeOutput(offset, [rest], rest.byteLength));
      }
    }
    return out;
  }

  /** A copy of the newest TAIL_KEEP_BYTES of sealed output; with `lines`, only its last that many lines. */
  tail(lines?: number): Uint8Array {
    const kept = this.head < this.frames.length ? this.sealedEnd - this.frames[this.head]!.offset : 0;
    const out = new Uint8Array(Math.min(TAIL_KEEP_BYTES, kept));
    // Copy newest first, from the end, so a frame straddling the cut is cut at its start.
    let at = out.byteLength;
    for (let i = this.frames.length - 1; i >= this.head && at > 0; i--) {
      const payload = this.frames[i]!.payload;
      const take = Math.min(payload.byteLength, at);
      out.set(payload.subarray(payload.byteLength - take), at - take);
      at -= take;
    }
    return lines === undefined ? out : lastLines(out, lines);
  }

  /** The slab the next frame goes in: the current one if a whole frame fits, else a fresh one. */
  private slabForNewFrame(): Slab {
    const current = this.slabs[this.slabs.length - 1];
    if (current && current.bytes.byteLength - current.used >= OUTPUT_FRAME_OVERHEAD + FRAME_PAYLOAD_MAX_BYTES) return current;
    const slab: Slab = { bytes: this.spares.pop() ?? Buffer.allocUnsafeSlow(SLAB_BYTES), used: 0, end: this.sealedEnd };
    this.slabs.push(slab);
    return slab;
  }

  /** Drops frames that are acknowledged and older than the kept tail; reuses emptied slabs. */
  private dropOld(): void {
    const below = Math.min(this.acked, this.sealedEnd - TAIL_KEEP_BYTES);
    while (this.head < this.frames.length && frameEnd(this.frames[this.head]!) <= below) this.head++;
    // Compact once the dropped prefix is as long as what is left, so dropping stays amortised O(1).
    if (this.head > 64 && this.head * 2 > this.frames.length) {
      this.frames = this.frames.slice(this.head);
      this.head = 0;
    }
    // A slab is free once every frame in it is dropped; the newest one still takes frames.
    while (this.slabs.length > 1 && this.slabs[0]!.end <= below) {
      const { bytes } = this.slabs.shift()!;
      if (this.spares.length < SPARE_SLABS) this.spares.push(bytes);
    }
  }
}

function frameEnd(f: SealedFrame): number {
  return f.offset + f.payload.byteLength;
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
