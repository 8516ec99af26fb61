/**
 * Python `re` patterns for JavaScript's RegExp: `GET /files/grep` takes its `query` as the
 * reference does, with Python's syntax (the reference compiles it with `re.compile`), and the
 * models that call `grep_search` write Python regexes — `(?i)todo` or `(?P<name>…)` are common.
 *
 * Written here because no kept npm library translates Python's dialect (the regex libraries on npm
 * are for JavaScript's own). What it rewrites, outside character classes and escapes:
 *
 * | Python | JavaScript |
 * | --- | --- |
 * | `(?aiLmsux)` at the start (global flags) | the flags `i`, `m`, `s` (`a`, `L`, `u` dropped; `x` refused) |
 * | `(?P<name>…)`, `(?P=name)` | `(?<name>…)`, `\k<name>` |
 * | `\A`, `\Z` | `^`, `$` (grep matches line by line, where they mean the same) |
 * | `{`, `}` not part of a quantifier, a lone `]`, a `]` first in a class | escaped: literal in Python, an error or an empty class in JavaScript |
 *
 * Anything else is passed as is; what JavaScript still refuses is the caller's 400.
 */

/** A Python pattern as a JavaScript RegExp source and flags (`u` always). Throws SyntaxError for what cannot be carried over. */
export function fromPythonRegex(pattern: string): { source: string; flags: string } {
  let flags = "u";
  let i = 0;
  const global = /^\(\?([aiLmsux]+)\)/.exec(pattern);
  if (global) {
    for (const f of new Set(global[1]!)) {
      if (f === "x") throw new SyntaxError("verbose patterns ((?x)) are not supported");
      if (f === "i" || f === "m" || f === "s") flags += f;
    }
    i = global[0].length;
  }
  let out = "";
  while (i < pattern.length) {
    const c = pattern[i]!;
    if (c === "\\") {
      const next = pattern[i + 1];
      out += next === "A" ? "^" : next === "Z" ? "$" : pattern.slice(i, i + 2);
      i += 2;
    } else if (c === "[") {
      const end = classEnd(pattern, i);
      // A `]` first in a class is literal in Python; JavaScript reads `[]` as an empty class.
      out += pattern.slice(i, end).replace(/^(\[\^?)\]/, "$1\\]");
      i = end;
    } else if (pattern.startsWith("(?P<", i)) {
      out += "(?<";
      i += 4;
    } else if (pattern.startsWith("(?P=", i)) {
      const close = pattern.indexOf(")", i);
      if (close < 0) throw new SyntaxError("missing ), unterminated name");
      out += `\\k<${pattern.slice(i + 4, close)}>`;
      i = close + 1;
    } else if (c === "{") {
      const quantifier = /^\{(\d*)(,\d*)?\}/.exec(pattern.slice(i));
      // `{m}`, `{m,}`, `{m,n}` and Python's `{,n}` (JavaScript writes it `{0,n}`); anything else is text.
      if (quantifier && out !== "" && (quantifier[1] !== "" || quantifier[2] !== undefined)) {
        out += quantifier[1] === "" ? `{0${quantifier[2]}}` : quantifier[0];
        i += quantifier[0].length;
      } else {
        out += "\\{";
        i++;
      }
    } else if (c === "}" || c === "]") {
      out += `\\${c}`;
      i++;
    } else {
      out += c;
      i++;
    }
  }
  return { source: out, flags };
}

/** Index just past the character class that opens at `start` (a `]` first in it is literal, as in Python); the pattern's end if it never closes. */
function classEnd(pattern: string, start: number): number {
  let i = start + 1;
  if (pattern[i] === "^") i++;
  if (pattern[i] === "]") i++;
  while (i < pattern.length) {
    if (pattern[i] === "\\") i += 2;
    else if (pattern[i] === "]") return i + 1;
    else i++;
  }
  return pattern.length;
}
