/**
 * Colours: parsing the screenshot endpoint's `foreground` / `background` parameters (so the edge
 * can answer 400 before asking an agent) and the terminal's 256-colour palette, which the agent's
 * renderers (text → HTML, screen → image) share. Imports neither runtime.
 */

/** A colour with 8-bit channels; `a` is opacity, 255 = opaque. */
export type RGBA = { r: number; g: number; b: number; a: number };

/** The colour names the screenshot API accepts, as pure RGB primaries (as textimg draws them). */
export const NAMED_COLORS: Readonly<Record<string, RGBA>> = {
  black: { r: 0, g: 0, b: 0, a: 255 },
  red: { r: 255, g: 0, b: 0, a: 255 },
  green: { r: 0, g: 255, b: 0, a: 255 },
  yellow: { r: 255, g: 255, b: 0, a: 255 },
  blue: { r: 0, g: 0, b: 255, a: 255 },
  magenta: { r: 255, g: 0, b: 255, a: 255 },
  cyan: { r: 0, g: 255, b: 255, a: 255 },
  white: { r: 255, g: 255, b: 255, a: 255 },
};

/** Longest colour string considered, in characters; anything longer is rejected unparsed. */
const COLOR_STRING_MAX_CHARS = 64;

const TUPLE = /^\(?\s*(\d{1,3})\s*,\s*(\d{1,3})\s*,\s*(\d{1,3})\s*(?:,\s*(\d{1,3})\s*)?\)?$/;
const HEX = /^#([0-9a-f]{6})([0-9a-f]{2})?$/i;

/**
 * Parses a colour name (`red`, case-insensitive), `(R,G,B,A)`, `(R,G,B)` (opaque), the same
 * without parentheses, or `#RRGGBB[AA]`. Channels are 0–255. Returns null when `s` is none of these.
 */
export function parseColor(s: string): RGBA | null {
  if (s.length > COLOR_STRING_MAX_CHARS) return null;
  const t = s.trim().toLowerCase();
  const named = NAMED_COLORS[t];
  if (named) return { ...named };
  const tuple = TUPLE.exec(t);
  if (tuple) {
    if (t.startsWith("(") !== t.endsWith(")")) return null;
    const [r, g, b, a] = [tuple[1], tuple[2], tuple[3], tuple[4] ?? "255"].map(Number) as [number, number, number, number];
    if (r > 255 || g > 255 || b > 255 || a > 255) return null;
    return { r, g, b, a };
  }
  const hex = HEX.exec(t);
  if (hex) {
    const n = parseInt(hex[1]!, 16);
    const a = hex[2] === undefined ? 255 : parseInt(hex[2], 16);
    return { r: (n >> 16) & 0xff, g: (n >> 8) & 0xff, b: n & 0xff, a };
  }
  return null;
}

/** CSS for a colour: `#rrggbb` when opaque, `rgba(…)` otherwise. */
export function cssColor(c: RGBA): string {
  if (c.a === 255) return "#" + [c.r, c.g, c.b].map((v) => v.toString(16).padStart(2, "0")).join("");
  return `rgba(${c.r},${c.g},${c.b},${+(c.a / 255).toFixed(3)})`;
}

/** xterm.js's default 16 ANSI colours (the Tango palette), so renders match the browser client. */
const ANSI16: readonly number[] = [
  0x2e3436, 0xcc0000, 0x4e9a06, 0xc4a000, 0x3465a4, 0x75507b, 0x06989a, 0xd3d7cf,
  0x555753, 0xef2929, 0x8ae234, 0xfce94f, 0x729fcf, 0xad7fa8, 0x34e2e2, 0xeeeeec,
];

/** Colours of the 256-colour palette, built once: 16 ANSI, a 6×6×6 cube, 24 greys. */
const PALETTE_256: readonly RGBA[] = (() => {
  const out: RGBA[] = ANSI16.map((n) => rgb(n));
  const level = (i: number): number => (i === 0 ? 0 : 55 + i * 40);
  for (let i = 0; i < 216; i++) {
    out.push({ r: level(Math.floor(i / 36)), g: level(Math.floor(i / 6) % 6), b: level(i % 6), a: 255 });
  }
  for (let i = 0; i < 24; i++) {
    const v = 8 + i * 10;
    out.push({ r: v, g: v, b: v, a: 255 });
  }
  return out;
})();

/** The colour of xterm palette entry `index` (0–255); out-of-range indexes clamp. */
export function paletteColor(index: number): RGBA {
  return PALETTE_256[Math.max(0, Math.min(255, index | 0))]!;
}

/** An opaque colour from a 24-bit `0xRRGGBB` number. */
export function rgb(n: number): RGBA {
  return { r: (n >> 16) & 0xff, g: (n >> 8) & 0xff, b: n & 0xff, a: 255 };
}
