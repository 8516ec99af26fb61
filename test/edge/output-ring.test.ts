/**
 * The TerminalDO's output ring (edge/output-ring.ts), in workerd: bounded to RING_MAX_BYTES, pinned
 * while a repaint is on its way, and giving each evicted frame's memory back at once (detached),
 * instead of leaving it to V8's next full collection.
 */
import { describe, expect, it } from "vitest";
import { OutputRing, PIN_MAX_BYTES, RING_MAX_BYTES, type RingFrame } from "../../edge/output-ring.ts";

const FRAME_PAYLOAD_BYTES = 256 << 10; // 256 KiB, the agent's largest frame

/** A frame as the DO receives it: its own ArrayBuffer (a header before it, as on the data link). */
function frameAt(offset: number, payload = FRAME_PAYLOAD_BYTES): RingFrame {
  const message = new ArrayBuffer(9 + 1 + payload);
  const frame = new Uint8Array(message, 9);
  frame[0] = 0x00; // OUTPUT
  frame.fill(offset & 0xff, 1);
  return { offset, frame };
}

/** Whether the frame's memory was given back (its buffer detached). */
const detached = (f: RingFrame): boolean => (f.frame.buffer as ArrayBuffer).detached;

function pushFrames(ring: OutputRing, count: number, from = 0): RingFrame[] {
  const frames: RingFrame[] = [];
  for (let i = 0; i < count; i++) {
    const f = frameAt(from + i * FRAME_PAYLOAD_BYTES);
    ring.push(f);
    frames.push(f);
  }
  return frames;
}

describe("OutputRing", () => {
  it("keeps the newest RING_MAX_BYTES and gives the evicted frames' memory back at once", () => {
    const ring = new OutputRing();
    const frames = pushFrames(ring, 12); // 3 MiB
    const kept = ring.from(ring.start!)!;
    expect(kept.reduce((n, f) => n + f.frame.byteLength, 0)).toBeLessThanOrEqual(RING_MAX_BYTES);
    const evicted = frames.slice(0, frames.length - kept.length);
    expect(evicted.length).toBeGreaterThan(0);
    for (const f of evicted) expect(detached(f)).toBe(true);
    // What the ring still holds is intact, and what it hands out reads as sent.
    for (const f of kept) {
      expect(detached(f)).toBe(false);
      expect(f.frame.byteLength).toBe(1 + FRAME_PAYLOAD_BYTES);
      expect(f.frame[1]).toBe(f.offset & 0xff);
    }
    expect(ring.from(0)).toBeNull(); // no longer reaches back
  });

  it("releases nothing a pin holds, up to PIN_MAX_BYTES, and the pinned frames once evicted", () => {
    expect(PIN_MAX_BYTES).toBeGreaterThan(4 << 20); // what this test pushes while pinned
    const ring = new OutputRing();
    ring.pin(0);
    const frames = pushFrames(ring, 16); // 4 MiB, all after the pin
    for (const f of frames) expect(detached(f)).toBe(false);
    expect(ring.from(0)).toHaveLength(16);
    ring.unpin();
    pushFrames(ring, 1, 16 * FRAME_PAYLOAD_BYTES);
    const kept = ring.from(ring.start!)!;
    for (const f of frames.slice(0, 17 - kept.length)) expect(detached(f)).toBe(true);
  });

  it("gives every frame's memory back when cleared (an output gap, the session's end)", () => {
    const ring = new OutputRing();
    ring.pin(0);
    const frames = pushFrames(ring, 3);
    ring.clear();
    for (const f of frames) expect(detached(f)).toBe(true);
    expect(ring.start).toBeNull();
  });

  it("evicts a frame whose buffer cannot be detached without throwing, and leaves it as it is", () => {
    const ring = new OutputRing();
    // A WebAssembly memory's buffer refuses transfer(): the stand-in for a runtime-owned buffer.
    const memory = new WebAssembly.Memory({ initial: 5 }); // 320 KiB
    const wasmFrame: RingFrame = { offset: 0, frame: new Uint8Array(memory.buffer, 0, 1 + FRAME_PAYLOAD_BYTES) };
    wasmFrame.frame.fill(7);
    ring.push(wasmFrame);
    expect(() => pushFrames(ring, 8, FRAME_PAYLOAD_BYTES)).not.toThrow();
    expect(ring.start).toBeGreaterThan(0); // evicted
    expect(memory.buffer.detached).toBe(false);
    expect(wasmFrame.frame[FRAME_PAYLOAD_BYTES]).toBe(7);
  });
});
