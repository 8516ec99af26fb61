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

/** Characters above U+00FF, one code point at a time. */
const ABOVE_LATIN1 = /[^\u0000-\u00ff]/gu;
/** The escapes `unicode_escape` decodes; a backslash matching none is kept as typed. */
const ESCAPE = /\\(?:([\\'"abfnrtv])|(\n)|([0-7]{1,3})|x([0-9a-fA-F]{2})|u([0-9a-fA-F]{4})|U([0-9a-fA-F]{8}))/g;

/** Step one: characters above U+00FF become `\uXXXX`/`\UXXXXXXXX` text, as raw_unicode_escape does. */
function rawUnicodeEscape(s: string): string {
  return s.replace(ABOVE_LATIN1, (ch) => {
    const cp = ch.codePointAt(0)!;
    return cp <= 0xffff ? `\\u${cp.toString(16).padStart(4, "0")}` : `\\U${cp.toString(16).padStart(8, "0")}`;
  });
}

/** Python's `unicode_escape` decoding of a string whose characters are all ≤ U+00FF. */
function unicodeEscape(s: string): string {
  return s.replace(ESCAPE, (match, simple?: string, newline?: string, octal?: string, x?: string, u?: string, U?: string) => {
    if (simple !== undefined) return SIMPLE[simple]!;
    if (newline !== undefined) return ""; // backslash-newline is a line continuation
    if (octal !== undefined) return String.fromCodePoint(parseInt(octal, 8));
    const cp = parseInt((x ?? u ?? U)!, 16);
    // Past U+10FFFF Python raises; kept as typed (its digits hold no backslash to decode).
    return cp > 0x10ffff ? match : String.fromCodePoint(cp);
  });
}

/**
 * The text the reference writes to stdin for `input`. Linear (regular expressions, no
 * character-by-character string building): a 1 MiB `/input` must not hold the agent's thread.
 */
export function decodeInputEscapes(input: string): string {
  // Without a backslash the round trip gives the input back unchanged.
  if (!input.includes("\\")) return input;
  return unicodeEscape(rawUnicodeEscape(input));
}
