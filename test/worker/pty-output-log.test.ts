import { describe, expect, it } from "vitest";
import { decodeAgentFrame } from "../../shared/links/data.ts";
import { ServerOp } from "../../shared/links/client.ts";
import {
  FRAME_PAYLOAD_MAX_BYTES,
  lastLines,
  PtyOutputLog,
  SLAB_BYTES,
  SPARE_SLABS,
  TAIL_KEEP_BYTES,
  UNACKED_MAX_BYTES,
  type SealedFrame,
} from "../../worker/agent/pty-output-log.ts";

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const text = (b: Uint8Array): string => new TextDecoder().decode(b);

/** Decodes OUTPUT frames into [offset, text] pairs. */
function decoded(frames: Uint8Array[]): [number, string][] {
  return frames.map((bytes) => {
    const f = decodeAgentFrame(bytes);
    if (f.t !== "output") throw new Error(`not an OUTPUT frame: ${f.t}`);
    expect(f.frame[0]).toBe(ServerOp.OUTPUT);
    return [f.offset, text(f.frame.subarray(1))];
  });
}

/** Byte `i` of a long test stream: a pattern with no period, so misplaced or overwritten bytes show. */
const patternByte = (i: number): number => Math.imul(i ^ (i >>> 15), 0x2c1b3c6d) >>> 24;
function pattern(from: number, length: number): Uint8Array {
  const out = new Uint8Array(length);
  for (let i = 0; i < length; i++) out[i] = patternByte(from + i);
  return out;
}

/** Byte-for-byte equality without a per-element diff (the buffers here are megabytes). */
function expectBytes(actual: Uint8Array, expected: Uint8Array): void {
  expect(actual.byteLength).toBe(expected.byteLength);
  expect(Buffer.compare(actual, expected)).toBe(0);
}

describe("PtyOutputLog", () => {
  it("seals what was appended into OUTPUT frames addressed by offset", () => {
    const sealed: SealedFrame[] = [];
    const log = new PtyOutputLog((f) => sealed.push(f));
    log.append(enc("one "));
    log.append(enc("two"));
    expect(log.end).toBe(7);
    expect(log.sealedEnd).toBe(0);
    expect(log.framesFrom(0)).toEqual([]);
    log.seal();
    log.seal(); // nothing new: no empty frame
    log.append(enc(" three"));
    log.seal();
    expect(sealed.map((f) => [f.offset, text(f.payload)])).toEqual([
      [0, "one two"],
      [7, " three"],
    ]);
    expect(decoded(log.framesFrom(0))).toEqual([
      [0, "one two"],
      [7, " three"],
    ]);
    expect(log.framesFrom(0)[0]).toBe(sealed[0]!.frame); // sent as kept, not copied
  });

  it("cuts frames at FRAME_PAYLOAD_MAX_BYTES, whatever the chunk sizes", () => {
    const log = new PtyOutputLog();
    const total = FRAME_PAYLOAD_MAX_BYTES * 2 + 100;
    log.append(pattern(0, 1000));
    log.append(pattern(1000, total - 1000));
    expect(log.sealedEnd).toBe(FRAME_PAYLOAD_MAX_BYTES * 2);
    log.seal();
    const frames = log.framesFrom(0).map((b) => decodeAgentFrame(b));
    expect(frames.map((f) => (f.t === "output" ? [f.offset, f.frame.byteLength - 1] : null))).toEqual([
      [0, FRAME_PAYLOAD_MAX_BYTES],
      [FRAME_PAYLOAD_MAX_BYTES, FRAME_PAYLOAD_MAX_BYTES],
      [FRAME_PAYLOAD_MAX_BYTES * 2, 100],
    ]);
    expectBytes(log.tail(), pattern(0, total));
  });

  it("resends from any offset, re-encoding only a frame the offset cuts", () => {
    const log = new PtyOutputLog();
    for (const s of ["abc", "def", "ghi"]) {
      log.append(enc(s));
      log.seal();
    }
    expect(decoded(log.framesFrom(3))).toEqual([
      [3, "def"],
      [6, "ghi"],
    ]);
    expect(decoded(log.framesFrom(4))).toEqual([
      [4, "ef"],
      [6, "ghi"],
    ]);
    expect(log.framesFrom(9)).toEqual([]);
    log.ack(4);
    expect(log.unacked).toBe(5);
    expect(decoded(log.framesFrom(4))).toEqual([
      [4, "ef"],
      [6, "ghi"],
    ]);
  });

  it("keeps unacknowledged output and the newest TAIL_KEEP_BYTES, and no more", () => {
    const log = new PtyOutputLog();
    const chunk = 64 << 10;
    const total = TAIL_KEEP_BYTES * 3;
    for (let at = 0; at < total; at += chunk) {
      log.append(pattern(at, chunk));
      log.seal();
    }
    // Nothing acknowledged: everything is still there to resend.
    expect(log.unacked).toBe(total);
    expect(log.framesFrom(0).length).toBe(total / chunk);
    log.ack(total - chunk);
    expect(log.unacked).toBe(chunk);
    expectBytes(log.tail(), pattern(total - TAIL_KEEP_BYTES, TAIL_KEEP_BYTES));
    expect(decoded(log.framesFrom(total - chunk)).map(([offset]) => offset)).toEqual([total - chunk]);
  });

  it("reuses slabs under a long stream without touching output still kept", () => {
    const sealed: SealedFrame[] = [];
    const log = new PtyOutputLog((f) => sealed.push(f));
    const memory = new Set<ArrayBufferLike>();
    const total = 64 << 20; // 64 MiB
    let at = 0;
    let size = 1;
    while (at < total) {
      // Uneven chunks and frames, with the edge acknowledging about 1 MiB behind.
      size = (size * 31 + 17) % 9000 || 1;
      log.append(pattern(at, size));
      at += size;
      if (size % 3 === 0) log.seal();
      log.ack(log.sealedEnd - (1 << 20));
      for (const f of sealed.splice(0)) memory.add(f.frame.buffer);
      expect(log.unacked).toBeLessThan(UNACKED_MAX_BYTES);
    }
    log.seal();
    // Memory in use stays a few slabs, however long the stream.
    const keptSlabs = Math.ceil((TAIL_KEEP_BYTES + (1 << 20)) / (SLAB_BYTES - FRAME_PAYLOAD_MAX_BYTES)) + 1;
    expect(memory.size).toBeLessThanOrEqual(keptSlabs + SPARE_SLABS + 1);
    // And what is still kept is intact: the unacknowledged frames and the tail.
    const resend = decoded(log.framesFrom(log.acked));
    expect(resend[0]![0]).toBe(log.acked);
    const unacked = Buffer.concat(log.framesFrom(log.acked).map((b) => b.subarray(10)));
    expectBytes(unacked, pattern(log.acked, at - log.acked));
    expectBytes(log.tail(), pattern(at - TAIL_KEEP_BYTES, TAIL_KEEP_BYTES));
  });

  it("reads the last N lines of the tail", () => {
    const log = new PtyOutputLog();
    log.append(enc("a\nb\nc\nd\n"));
    expect(text(log.tail(2))).toBe(""); // not sealed yet
    log.seal();
    expect(text(log.tail(2))).toBe("c\nd\n");
    expect(text(log.tail(10))).toBe("a\nb\nc\nd\n");
    expect(text(log.tail(0))).toBe("");
  });

  it("keeps a tail of at least one whole frame", () => {
    expect(TAIL_KEEP_BYTES).toBeGreaterThanOrEqual(FRAME_PAYLOAD_MAX_BYTES);
  });
});

describe("lastLines", () => {
  it("counts an unterminated last line, not an empty one after a final newline", () => {
    expect(text(lastLines(enc("a\nb\nc"), 2))).toBe("b\nc");
    expect(text(lastLines(enc("a\nb\nc\n"), 1))).toBe("c\n");
    expect(text(lastLines(enc("\n\n"), 1))).toBe("\n");
    expect(text(lastLines(enc("only"), 3))).toBe("only");
    expect(text(lastLines(enc(""), 3))).toBe("");
  });
});
