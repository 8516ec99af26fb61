/**
 * fast-check arbitraries for VT streams that mix what a repaint must carry: text (wide, combining,
 * line drawing), colours and attributes, cursor moves, erases, scroll regions, saved cursors, tab
 * stops, character sets, both screens, modes, titles and hyperlinks, for a COLS × ROWS terminal.
 */
import fc from "fast-check";

export const COLS = 20;
export const ROWS = 6;

const pos = (max: number) => fc.integer({ min: 1, max });
const color = fc.oneof(
  fc.integer({ min: 30, max: 37 }).map(String),
  fc.integer({ min: 90, max: 97 }).map(String),
  fc.integer({ min: 40, max: 47 }).map(String),
  fc.integer({ min: 0, max: 255 }).map((n) => `38;5;${n}`),
  fc.integer({ min: 0, max: 255 }).map((n) => `48;5;${n}`),
  fc.tuple(fc.nat(255), fc.nat(255), fc.nat(255)).map(([r, g, b]) => `38;2;${r};${g};${b}`),
  fc.tuple(fc.nat(255), fc.nat(255), fc.nat(255)).map(([r, g, b]) => `48;2;${r};${g};${b}`),
  fc.integer({ min: 0, max: 255 }).map((n) => `58:5:${n}`),
);
const sgrAttr = fc.constantFrom("0", "1", "2", "3", "4", "4:3", "5", "7", "8", "9", "53", "22", "24", "27", "39", "49");
/** An SGR sequence. A colour goes last: xterm.js reads `38;2;r;g;b;…` with more parameters after it in odd ways. */
export const sgr = fc
  .tuple(fc.array(sgrAttr, { maxLength: 3 }), fc.option(color))
  .map(([attrs, c]) => `\x1b[${[...attrs, ...(c ? [c] : [])].join(";") || "0"}m`);

/** Pieces of a VT stream, each a feature a repaint must carry. */
export const piece = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom("hello", "wörld ", "a", "xyz ", "0123456789", "😀", "世界", "e\u0301", "│─┼", "\t") },
  { weight: 2, arbitrary: fc.constantFrom("\r\n", "\n", "\r", "\b", "\x1bD", "\x1bM", "\x1bE") },
  { weight: 1, arbitrary: fc.integer({ min: 1, max: COLS + 2 }).map((n) => "#".repeat(n)) },
  { weight: 3, arbitrary: sgr },
  { weight: 2, arbitrary: fc.tuple(pos(ROWS), pos(COLS)).map(([r, c]) => `\x1b[${r};${c}H`) },
  { weight: 1, arbitrary: fc.tuple(fc.constantFrom("A", "B", "C", "D", "G", "d", "X", "@", "P", "L", "M", "S", "T"), pos(4)).map(([f, n]) => `\x1b[${n}${f}`) },
  { weight: 1, arbitrary: fc.constantFrom("\x1b[K", "\x1b[1K", "\x1b[2K", "\x1b[J", "\x1b[1J", "\x1b[2J") },
  { weight: 1, arbitrary: fc.tuple(pos(3), pos(3)).map(([t, b]) => `\x1b[${t};${ROWS + 1 - b}r`) },
  { weight: 1, arbitrary: fc.constantFrom("\x1b[r", "\x1b7", "\x1b8", "\x1b[s", "\x1b[u") },
  { weight: 1, arbitrary: fc.constantFrom("\x1b[3g", "\x1b[g", "\x1bH", "\x1b[2I", "\x1b[Z") },
  { weight: 1, arbitrary: fc.constantFrom("\x1b(0", "\x1b(B", "\x1b)0", "\x1b(A", "\x0e", "\x0f", "\x1b*0", "\x1bn", "\x1bo") },
  { weight: 1, arbitrary: fc.constantFrom("\x1b[?1049h", "\x1b[?1049l", "\x1b[?47h", "\x1b[?47l", "\x1b[?1047h", "\x1b[?1047l") },
  {
    weight: 2,
    arbitrary: fc.constantFrom(
      "\x1b[?1h", "\x1b[?1l", "\x1b=", "\x1b>", "\x1b[?2004h", "\x1b[?2004l", "\x1b[4h", "\x1b[4l", "\x1b[?6h", "\x1b[?6l",
      "\x1b[?7l", "\x1b[?7h", "\x1b[?25l", "\x1b[?25h", "\x1b[?1000h", "\x1b[?1002h", "\x1b[?1003h", "\x1b[?1000l",
      "\x1b[?1006h", "\x1b[?1006l", "\x1b[?9h", "\x1b[?1004h", "\x1b[?45h", "\x1b[2 q", "\x1b[5 q", "\x1b[0 q", "\x1b[?12l",
    ),
  },
  { weight: 1, arbitrary: fc.constantFrom("\x1b]0;my title\x07", "\x1b]2;vi: file\x1b\\", "\x1b]1;icon\x07") },
  { weight: 1, arbitrary: fc.constantFrom("\x1b]8;;https://example.com/a\x07", "\x1b]8;id=x;https://e.org\x1b\\", "\x1b]8;;\x07") },
);

/** A stream, its chunk boundaries and a join offset (any byte, mid-sequence included). */
export const scenario = fc
  .tuple(fc.array(piece, { minLength: 1, maxLength: 60 }), fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { maxLength: 8 }), fc.double({ min: 0, max: 1, noNaN: true }))
  .map(([pieces, cutFractions, joinFraction]) => {
    const bytes = Buffer.from(pieces.join(""), "utf8");
    const join = Math.floor(joinFraction * bytes.byteLength);
    const cuts = [...new Set([...cutFractions.map((f) => Math.floor(f * bytes.byteLength)), join])].sort((a, b) => a - b);
    return { bytes, cuts, join };
  });

