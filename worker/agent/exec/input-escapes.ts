/**
 * The reference turns literal escape sequences in `POST /execute/{id}/input` into characters
 * (models often send `\n` or `\x03` as text): `input.encode("raw_unicode_escape")
 * .decode("unicode_escape")`. This module reproduces that round trip. Where Python would raise
 * (a lone trailing backslash, `\x` without two hex digits) the reference answers 500; here the
 * malformed sequence is kept as typed.
 */

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

const HEX = /^[0-9a-fA-F]+$/;

/** Step one: characters above U+00FF become `\uXXXX`/`\UXXXXXXXX` text, as raw_unicode_escape does. */
function rawUnicodeEscape(s: string): string {
  let out = "";
  for (const ch of s) {
    const cp = ch.codePointAt(0)!;
    if (cp <= 0xff) out += ch;
    else if (cp <= 0xffff) out += `\\u${cp.toString(16).padStart(4, "0")}`;
    else out += `\\U${cp.toString(16).padStart(8, "0")}`;
  }
  return out;
}

/** Reads `n` hex digits at `i`, or null. */
function hexAt(s: string, i: number, n: number): number | null {
  const digits = s.slice(i, i + n);
  return digits.length === n && HEX.test(digits) ? parseInt(digits, 16) : null;
}

/** Python's `unicode_escape` decoding of a string whose characters are all ≤ U+00FF. */
function unicodeEscape(s: string): string {
  let out = "";
  let i = 0;
  while (i < s.length) {
    const ch = s[i]!;
    if (ch !== "\\" || i + 1 >= s.length) {
      out += ch;
      i++;
      continue;
    }
    const next = s[i + 1]!;
    if (next in SIMPLE) {
      out += SIMPLE[next];
      i += 2;
    } else if (next === "\n") {
      i += 2; // backslash-newline is a line continuation
    } else if (next >= "0" && next <= "7") {
      let j = i + 1;
      while (j < s.length && j < i + 4 && s[j]! >= "0" && s[j]! <= "7") j++;
      out += String.fromCodePoint(parseInt(s.slice(i + 1, j), 8));
      i = j;
    } else if (next === "x" || next === "u" || next === "U") {
      const n = next === "x" ? 2 : next === "u" ? 4 : 8;
      const cp = hexAt(s, i + 2, n);
      if (cp === null || cp > 0x10ffff) {
        out += ch;
        i++;
      } else {
        out += String.fromCodePoint(cp);
        i += 2 + n;
      }
    } else {
      out += ch; // unknown escape: Python keeps the backslash
      i++;
    }
  }
  return out;
}

/** The text the reference writes to stdin for `input`. */
export function decodeInputEscapes(input: string): string {
  return unicodeEscape(rawUnicodeEscape(input));
}
