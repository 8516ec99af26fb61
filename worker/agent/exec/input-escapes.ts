/**
 * The reference turns literal escape sequences in `POST /execute/{id}/input` into characters
 * (models often send `\n` or `\x03` as text): `input.encode("raw_unicode_escape")
 * .decode("unicode_escape")`. This module reproduces that round trip. Where Python would raise
 * (a lone trailing backslash, `\x` without two hex digits) the reference answers 500; here the
 * malformed sequence is kept as typed. `\N{name}` is kept as typed too (no Unicode name table).
 *
 * By hand, in one pass: no library decodes Python's escapes, and the two steps done literally
 * (characters above U+00FF spelled out as `\uXXXX`, then every escape decoded, each by a regular
 * expression's callback) cost 300 ms per MiB of emoji and newlines, the agent's thread held
 * meanwhile. The pass jumps from backslash to backslash and writes UTF-16 code units into one
 * growing array, read back as a string at the end: no string or object per escape (a first
 * version that joined a slice per escape took 90–150 ms per MiB of dense escapes).
 */

/** The one-character escapes of `unicode_escape`: the code unit each stands for, by the ASCII code after the backslash (-1: none). */
const SIMPLE = new Int16Array(128).fill(-1);
for (const [after, unit] of [["\\", 0x5c], ["'", 0x27], ['"', 0x22], ["a", 0x07], ["b", 0x08], ["f", 0x0c], ["n", 0x0a], ["r", 0x0d], ["t", 0x09], ["v", 0x0b]] as const) {
  SIMPLE[after.charCodeAt(0)] = unit;
}

/** Hex digits an escape takes after its letter (`x`, `u`, `U`); 0 for any other character. */
const hexDigitsAfter = (c: number) => (c === 0x78 ? 2 : c === 0x75 ? 4 : c === 0x55 ? 8 : 0);
/** The value of a hex digit, or -1 (also for NaN, past the input's end). */
const hexValue = (c: number) => (c >= 0x30 && c <= 0x39 ? c - 0x30 : c >= 0x41 && c <= 0x46 ? c - 0x37 : c >= 0x61 && c <= 0x66 ? c - 0x57 : -1);
const isOctal = (c: number) => c >= 0x30 && c <= 0x37;
/** Code units per `String.fromCharCode` call when reading the result back (well under engines' argument limits). */
const READ_BACK_UNITS = 8192;

/** UTF-16 code units appended in order (lone surrogates kept), read back as one string. */
class CodeUnits {
  private units: Uint16Array;
  private length = 0;

  constructor(capacity: number) {
    this.units = new Uint16Array(Math.max(16, capacity));
  }

  /** Makes room for `count` more units. */
  private reserve(count: number): void {
    if (this.length + count <= this.units.length) return;
    const grown = new Uint16Array(Math.max(this.units.length * 2, this.length + count));
    grown.set(this.units.subarray(0, this.length));
    this.units = grown;
  }

  unit(unit: number): void {
    this.reserve(1);
    this.units[this.length++] = unit;
  }

  codePoint(cp: number): void {
    if (cp <= 0xffff) return this.unit(cp);
    this.reserve(2);
    this.units[this.length++] = 0xd800 + ((cp - 0x10000) >> 10);
    this.units[this.length++] = 0xdc00 + ((cp - 0x10000) & 0x3ff);
  }

  /** `text[from..to)`, unit by unit. */
  range(text: string, from: number, to: number): void {
    this.reserve(to - from);
    for (let i = from; i < to; i++) this.units[this.length++] = text.charCodeAt(i);
  }

  toString(): string {
    const parts: string[] = [];
    for (let at = 0; at < this.length; at += READ_BACK_UNITS) {
      parts.push(String.fromCharCode.apply(null, this.units.subarray(at, Math.min(this.length, at + READ_BACK_UNITS)) as unknown as number[]));
    }
    return parts.join("");
  }
}

/**
 * What raw_unicode_escape writes for the code point `cp` above U+00FF, without its backslash:
 * `uXXXX` or `UXXXXXXXX`, lowercase hex.
 */
function spelledOut(cp: number): string {
  return cp <= 0xffff ? `u${cp.toString(16).padStart(4, "0")}` : `U${cp.toString(16).padStart(8, "0")}`;
}

/**
 * Decodes the escape at `input[at]` (a backslash) into `out` and returns where the input goes on,
 * or returns -1 and writes nothing when it is none (the backslash is kept as typed).
 */
function decodeEscape(input: string, at: number, out: CodeUnits): number {
  const c = input.charCodeAt(at + 1);
  if (Number.isNaN(c)) return -1; // a trailing backslash
  const simple = c < 128 ? SIMPLE[c]! : -1;
  if (simple >= 0) {
    out.unit(simple);
    return at + 2;
  }
  if (c === 0x0a) return at + 2; // backslash-newline: a line continuation
  if (c > 0xff) {
    // raw_unicode_escape spelled this character out after the backslash: `\\` then `uXXXX` as text.
    const cp = input.codePointAt(at + 1)!;
    const text = `\\${spelledOut(cp)}`;
    out.range(text, 0, text.length);
    return at + 1 + (cp > 0xffff ? 2 : 1);
  }
  if (isOctal(c)) {
    let value = c - 0x30;
    let end = at + 2;
    for (; end < at + 4 && isOctal(input.charCodeAt(end)); end++) value = value * 8 + input.charCodeAt(end) - 0x30;
    out.unit(value);
    return end;
  }
  const digits = hexDigitsAfter(c);
  if (digits === 0) return -1;
  let value = 0;
  for (let i = at + 2; i < at + 2 + digits; i++) {
    const digit = hexValue(input.charCodeAt(i));
    if (digit < 0) return -1;
    value = value * 16 + digit;
  }
  // Past U+10FFFF Python raises; kept as typed (its digits hold no backslash to decode).
  if (value > 0x10ffff) return -1;
  out.codePoint(value);
  return at + 2 + digits;
}

/**
 * The text the reference writes to stdin for `input`: each escape decoded, everything else
 * (characters above U+00FF included, which the round trip spells out and decodes back) as it is.
 * Linear in the input's length.
 */
export function decodeInputEscapes(input: string): string {
  let at = input.indexOf("\\");
  // Without a backslash the round trip gives the input back unchanged.
  if (at < 0) return input;
  const out = new CodeUnits(input.length);
  let copied = 0;
  while (at >= 0) {
    out.range(input, copied, at);
    copied = at;
    const next = decodeEscape(input, at, out);
    if (next >= 0) copied = next;
    at = input.indexOf("\\", next >= 0 ? next : at + 1);
  }
  out.range(input, copied, input.length);
  return out.toString();
}
