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
 * meanwhile. The pass jumps from backslash to backslash and copies the text between in slices.
 */

/** The one-character escapes of `unicode_escape`, by the character after the backslash. */
const SIMPLE: Record<string, string> = {
  "\\": "\\",
  "'": "'",
  '"': '"',
  a: "\x07",
  b: "\b",
  f: "\f",
  n: "\n",
  r: "\r",
  t: "\t",
  v: "\v",
};

/** Hex digits an escape takes, by its letter. */
const HEX_DIGITS: Record<string, number> = { x: 2, u: 4, U: 8 };

const isOctal = (c: number) => c >= 0x30 && c <= 0x37;
const isHex = (c: number) => (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x46) || (c >= 0x61 && c <= 0x66);

/**
 * What raw_unicode_escape writes for the code point `cp` above U+00FF, without its backslash:
 * `uXXXX` or `UXXXXXXXX`, lowercase hex.
 */
function spelledOut(cp: number): string {
  return cp <= 0xffff ? `u${cp.toString(16).padStart(4, "0")}` : `U${cp.toString(16).padStart(8, "0")}`;
}

/**
 * The escape at `input[at]` (a backslash): the text it stands for and where the input goes on,
 * or null when it is none (the backslash is kept as typed).
 */
function escapeAt(input: string, at: number): { text: string; next: number } | null {
  const next = input[at + 1];
  if (next === undefined) return null;
  const simple = SIMPLE[next];
  if (simple !== undefined) return { text: simple, next: at + 2 };
  if (next === "\n") return { text: "", next: at + 2 }; // backslash-newline: a line continuation
  const cp = input.codePointAt(at + 1)!;
  // raw_unicode_escape spelled this character out after the backslash: `\\` then `uXXXX` as text.
  if (cp > 0xff) return { text: `\\${spelledOut(cp)}`, next: at + 1 + (cp > 0xffff ? 2 : 1) };
  if (isOctal(cp)) {
    let end = at + 2;
    while (end < at + 4 && isOctal(input.charCodeAt(end))) end++;
    return { text: String.fromCodePoint(parseInt(input.slice(at + 1, end), 8)), next: end };
  }
  const digits = HEX_DIGITS[next];
  if (digits === undefined) return null;
  const end = at + 2 + digits;
  for (let i = at + 2; i < end; i++) if (!isHex(input.charCodeAt(i))) return null;
  const value = parseInt(input.slice(at + 2, end), 16);
  // Past U+10FFFF Python raises; kept as typed (its digits hold no backslash to decode).
  return value > 0x10ffff ? null : { text: String.fromCodePoint(value), next: end };
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
  const parts: string[] = [];
  let copied = 0;
  while (at >= 0) {
    const escape = escapeAt(input, at);
    if (escape === null) {
      at = input.indexOf("\\", at + 1);
      continue;
    }
    parts.push(input.slice(copied, at), escape.text);
    copied = escape.next;
    at = input.indexOf("\\", copied);
  }
  parts.push(input.slice(copied));
  return parts.join("");
}
