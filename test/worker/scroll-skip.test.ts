/**
 * The screen model's shortcut (worker/agent/screen/scroll-skip.ts) as a property: for generated
 * streams — any VT prefix, a run of text lines around the length that lets its head be skipped,
 * any suffix — cut into random chunks, the model that skips ends in exactly the state of a
 * terminal that parsed every byte.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { createScreenTerminal, PENDING_MAX_BYTES, ScreenState, SCROLLBACK_LINES } from "../../worker/agent/screen/screen-state.ts";
import { linesToForget, planFeed } from "../../worker/agent/screen/scroll-skip.ts";
import { terminalState } from "../../worker/agent/screen/terminal-state.ts";
import { parsedAndSkipped } from "../support/skip-check.ts";
import { COLS, piece, ROWS, sgr } from "../support/vt-streams.ts";

/** Generated cases, from a fixed seed; EDGETTY_PROPERTY_SEED/_RUNS explore further. */
const RUNS = Number(process.env.EDGETTY_PROPERTY_RUNS ?? 300);
const SEED = Number(process.env.EDGETTY_PROPERTY_SEED ?? 20261130);
/** The property's terminals keep a short scrollback, so a case reaches the shortcut in ~60 lines. */
const SCROLLBACK = 40;
const NEED = linesToForget(ROWS, SCROLLBACK);
/** The agent's real scrollback, for the planner's own test. */
const NEED_REAL = linesToForget(ROWS, SCROLLBACK_LINES);

/** Pieces of line text, and a few that are not (so runs end and restart inside the flood). */
const lineBit = fc.oneof(
  { weight: 24, arbitrary: fc.constantFrom("text ", "wörld", "😀", "世界", "e\u0301", "\t", "│─┼", "#".repeat(COLS + 3), "\x07") },
  { weight: 8, arbitrary: sgr },
  { weight: 3, arbitrary: fc.constantFrom("\x1b[K", "\x1b[0K", "\x1b[1K", "\x1b[2K") },
  { weight: 1, arbitrary: fc.constantFrom("\x1b[?25l", "\x1b]0;t\x07", "\x1b[H", "\x1b[2;4r", "\b", "\x1b[3K", "\x1b[?1049h", "\x1b[?1049l", "\xc2\x9b") },
);
const line = fc.tuple(fc.array(lineBit, { maxLength: 5 }), fc.constantFrom("\r\n", "\r\n", "\r\n", "\n", "\r")).map(([bits, end]) => bits.join("") + end);

const stream = fc
  .tuple(
    fc.array(piece, { maxLength: 40 }),
    fc.array(line, { minLength: 1, maxLength: 6 }),
    fc.integer({ min: NEED - 30, max: NEED + 400 }),
    fc.array(piece, { maxLength: 40 }),
    fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { maxLength: 6 }),
  )
  .map(([prefix, lines, count, suffix, cutFractions]) => {
    const flood = Array.from({ length: count }, (_, i) => lines[i % lines.length]).join("");
    const bytes = Buffer.from(prefix.join("") + flood + suffix.join(""), "utf8");
    const cuts = [...new Set(cutFractions.map((f) => Math.floor(f * bytes.byteLength)))].sort((a, b) => a - b);
    return { bytes, cuts };
  });

/** The state after parsing every byte, and after the screen model (which may skip) took them in `cuts` chunks. */
function both(bytes: Buffer, cuts: number[], scrollback = SCROLLBACK_LINES) {
  return parsedAndSkipped(bytes, cuts, { scrollback });
}

describe("scroll-skip", () => {
  it("a model that skips what scrolls away ends in the state of one that parsed every byte", async () => {
    let skippedCases = 0;
    await fc.assert(
      fc.asyncProperty(stream, async ({ bytes, cuts }) => {
        const { full, skipped, scrolledPast } = await both(bytes, cuts, SCROLLBACK);
        if (scrolledPast > 0) skippedCases++;
        expect(skipped).toEqual(full);
      }),
      { numRuns: RUNS, seed: SEED, timeout: 30_000 },
    );
    // The property is only worth something if the shortcut was taken.
    expect(skippedCases).toBeGreaterThan(RUNS / 4);
  }, 300_000);

  it("parses only the newest lines of a long text flood, in the alternate screen too", async () => {
    const head = "\x1b[?1049h\x1b[?1000h\x1b[?1006h\x1b]2;flood\x07";
    const body = "burst \x1b[1;32mline\x1b[0m with colour ünïcödé\r\n".repeat(60_000);
    const bytes = Buffer.from(head + body + "\x1b[1;31mend", "utf8");
    const { full, skipped, scrolledPast } = await both(bytes, [1000, 500_000, 1_000_000, 2_000_000]);
    expect(skipped).toEqual(full);
    expect(scrolledPast).toBeGreaterThan(bytes.byteLength * 0.8);
  });

  it("keeps a text flood past the queue's bound cheap and exact: only its tail is parsed, nothing is dropped", async () => {
    const screen = new ScreenState(80, 24);
    const full = createScreenTerminal(80, 24);
    const frame = Buffer.from("\x1b[4:3m\x1b[38;5;200mcoloured\x1b[24m and plain text ünïcödé\r\n".repeat(5000), "utf8");
    let pushed = 0;
    let written: Promise<void> = Promise.resolve();
    while (pushed < 20e6) {
      // A frame per turn of the event loop, as the PTY delivers them.
      await new Promise((resolve) => setImmediate(resolve));
      screen.push(frame);
      pushed += frame.byteLength;
    }
    for (let at = 0; at < pushed; at += frame.byteLength) written = written.then(() => new Promise<void>((resolve) => full.write(frame, resolve)));
    await written;
    await screen.catchUp();
    expect(terminalState(screen.terminal)).toEqual(terminalState(full));
    // Cheap by work, not by time: all but the tail was skipped by the scan, never parsed. (How much
    // may wait is bounded by the PTY's pause on the backlog, screen-queue.test.ts; how fast the scan
    // keeps up depends on the machine's load, so it is no test's business here.)
    expect(screen.scrolledPastBytes).toBeGreaterThan(pushed - 2 * PENDING_MAX_BYTES);
    screen.dispose();
    full.dispose();
  });

  it("does not skip a run the parser is inside an escape sequence at", async () => {
    // An unterminated OSC swallows the text that follows: none of it may be skipped.
    const bytes = Buffer.from("\x1b]2;" + "x\r\n".repeat(NEED_REAL + 100) + "\x07after", "latin1");
    const { full, skipped, scrolledPast } = await both(bytes, []);
    expect(skipped).toEqual(full);
    expect(scrolledPast).toBe(0);
  });

  it("plans the same whether it reads the output a byte or a word at a time", () => {
    // One-byte chunks are always read a byte at a time (scroll-skip.ts passes printable ASCII by
    // 32-bit words only inside chunks of four bytes or more): they are the plan's oracle for the
    // same bytes in one chunk at each alignment, and cut at random.
    const boundary = [0x00, 0x07, 0x09, 0x0a, 0x0d, 0x1b, 0x1f, 0x20, 0x41, 0x5b, 0x6d, 0x7e, 0x7f, 0x80, 0xc3, 0xa9, 0xff];
    const text = fc.oneof(
      { weight: 6, arbitrary: fc.constantFrom("abcd", "the quick brown fox ", "0123456789~ !", "\r\n", "\r\n", "\n", "\x1b[1;31m", "\x1b[K", "é") },
      { weight: 2, arbitrary: fc.constantFrom(...boundary).map((b) => String.fromCharCode(b)) },
    );
    const rows = 2;
    const scrollback = 3;
    fc.assert(
      fc.property(fc.array(text, { minLength: 20, maxLength: 300, size: "max" }), fc.integer({ min: 0, max: 3 }), fc.array(fc.nat({ max: 64 }), { maxLength: 8 }), (pieces, shift, cutAt) => {
        const bytes = Buffer.from(pieces.join(""), "latin1");
        const byByte = planFeed(Array.from(bytes, (b, i) => ({ offset: i, bytes: Uint8Array.of(b) })), rows, scrollback);
        const shifted = new Uint8Array(bytes.byteLength + 4).subarray(shift, shift + bytes.byteLength);
        shifted.set(bytes);
        expect(planFeed([{ offset: 0, bytes: shifted }], rows, scrollback)).toEqual(byByte);
        const cuts = [...new Set(cutAt.map((c) => Math.min(c * 7, bytes.byteLength)))].sort((a, b) => a - b);
        const chunks = [0, ...cuts].map((from, k, all) => ({ offset: from, bytes: shifted.subarray(from, all[k + 1] ?? bytes.byteLength) })).filter((c) => c.bytes.byteLength > 0);
        expect(planFeed(chunks, rows, scrollback)).toEqual(byByte);
      }),
      { numRuns: RUNS * 3, seed: SEED },
    );
  });

  it("plans a skip only past enough lines, cut at a carriage return", () => {
    const lines = (n: number) => Buffer.from("abc\r\n".repeat(n), "latin1");
    expect(planFeed([{ offset: 0, bytes: lines(NEED_REAL - 1) }], ROWS, SCROLLBACK_LINES)).toEqual([{ t: "parse", from: 0, to: (NEED_REAL - 1) * 5 }]);
    const steps = planFeed([{ offset: 10, bytes: lines(NEED_REAL + 2) }], ROWS, SCROLLBACK_LINES);
    expect(steps[0]).toMatchObject({ t: "skip", from: 10, to: 10 + 2 * 5 + 3 });
    expect(steps[1]).toEqual({ t: "parse", from: 10 + 2 * 5 + 3, to: 10 + (NEED_REAL + 2) * 5 });
  });
});
