/**
 * The screen model's scroll-skip (worker/agent/screen/scroll-skip.ts, printable ASCII read by 32-bit
 * words) against hostile output: DEL, C1 and stray UTF-8 bytes (0x80–0xff), C0 controls, cut
 * sequences, inside and around text floods long enough to skip, cut into chunks at any place and
 * laid at every alignment of their buffer. The model ends in the state of a terminal that parsed
 * every byte.
 */
import fc from "fast-check";
import { expect, it } from "vitest";
import { linesToForget } from "../../worker/agent/screen/scroll-skip.ts";
import { parsedAndSkipped } from "../support/skip-check.ts";
import { piece, ROWS } from "../support/vt-streams.ts";

const SCROLLBACK = 40;
const NEED = linesToForget(ROWS, SCROLLBACK);
/** Generated cases, from a fixed seed; EDGETTY_PROPERTY_SEED/_RUNS explore further. */
const RUNS = Number(process.env.EDGETTY_PROPERTY_RUNS ?? 300);
const SEED = Number(process.env.EDGETTY_PROPERTY_SEED ?? 20261130);

const rawByte = fc.integer({ min: 0, max: 255 }).map((b) => String.fromCharCode(b));
const hostile = fc.oneof(
  { weight: 10, arbitrary: fc.constantFrom("abcd", "abc", "ab", "a", "wxyz~", " !\"#", "0123456789ABCDEF", "\r\n", "\r\n", "\n", "\r", "\t", "\x07") },
  { weight: 3, arbitrary: rawByte },
  { weight: 2, arbitrary: fc.constantFrom("\x7f", "\x80", "\x9b", "\xc2\x9b", "\xc3\xa9", "\xe2\x94\x80", "\xf0\x9f\x98\x80", "\xff", "\xfe", "\xc0\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\xe2\x94", "\xf0\x9f") },
  { weight: 2, arbitrary: fc.constantFrom("\x1b[1;31m", "\x1b[m", "\x1b[0m", "\x1b[K", "\x1b[2K", "\x1b[3K", "\x1b[1;1H", "\x1b]0;t\x07", "\x1b]2;x\x1b\\", "\x1bP1$r\x1b\\", "\x1b[?25l", "\x1b(0", "\x1b(B", "\x0e", "\x0f", "\x1b", "\x1b[", "\x1b[1;", "\x18", "\x1a", "\x1b[5;10r", "\x1b[r", "\x1bD", "\x1bM", "\x08") },
);
const clean = fc.constantFrom("abcd", "abc", "ab", "a", "wxyz~", " !\"#", "0123456789ABCDEF", "\t", "\x07", "\xc3\xa9", "\x1b[1;31m", "\x1b[m", "\x1b[K", "#".repeat(23));
const line = fc.array(fc.oneof({ weight: 30, arbitrary: clean }, { weight: 1, arbitrary: hostile }), { maxLength: 8 }).map((bits) => bits.join("") + "\r\n");

const stream = fc
  .tuple(
    fc.array(fc.oneof(piece, hostile), { maxLength: 30 }),
    fc.array(line, { minLength: 1, maxLength: 5 }),
    fc.integer({ min: NEED - 10, max: NEED + 300 }),
    fc.array(fc.oneof(piece, hostile), { maxLength: 30 }),
    fc.array(fc.nat({ max: 100000 }), { maxLength: 10 }),
    fc.integer({ min: 0, max: 7 }),
  )
  .map(([prefix, lines, count, suffix, cutsRaw, shift]) => {
    const flood = Array.from({ length: count }, (_, i) => lines[i % lines.length]).join("");
    const bytes = Buffer.from(prefix.join("") + flood + suffix.join(""), "latin1");
    const cuts = [...new Set(cutsRaw.map((c) => c % (bytes.byteLength + 1)))].sort((a, b) => a - b);
    return { bytes, cuts, shift };
  });

it("skips exactly what scrolls away in floods laced with DEL, 0x80-0xff and C0 bytes, at any chunking and alignment", async () => {
  let skipped = 0;
  await fc.assert(
    fc.asyncProperty(stream, async ({ bytes, cuts, shift }) => {
      const { full, skipped: s, scrolledPast: past } = await parsedAndSkipped(bytes, cuts, { scrollback: SCROLLBACK, shift });
      if (past > 0) skipped++;
      expect(s).toEqual(full);
    }),
    { numRuns: RUNS, seed: SEED, timeout: 60_000 },
  );
  // Worth something only if the shortcut was taken.
  expect(skipped).toBeGreaterThan(RUNS / 4);
}, 300_000);
