/**
 * Python `re` patterns carried over to JavaScript for `/files/grep` (worker/agent/files/python-regex.ts):
 * each case is a pattern as Python reads it, with lines it must and must not match.
 */
import { describe, expect, it } from "vitest";
import { fromPythonRegex } from "../../worker/agent/files/python-regex.ts";

function compiled(pattern: string): RegExp {
  const { source, flags } = fromPythonRegex(pattern);
  return new RegExp(source, flags);
}

describe("fromPythonRegex", () => {
  const cases: [pattern: string, matches: string[], misses: string[]][] = [
    ["(?i)todo", ["a TODO here", "todo"], ["to do"]],
    ["(?im)^fixme", ["FIXME: x"], ["a fixme"]],
    ["(?s)a.b", ["a\nb"], []],
    ["(?P<word>ab)c(?P=word)", ["abcab"], ["abcba"]],
    ["\\Ahello", ["hello world"], ["say hello"]],
    ["world\\Z", ["hello world"], ["world peace"]],
    ["x = {", ["x = {a}"], ["x = "]],
    ["[^]a]", ["b"], ["]", "a"]],
    ["a{2}", ["caab"], ["cab"]],
    ["a{,2}b", ["b", "aab"], []],
    ["x{1,}y", ["xxy"], ["y"]],
    ["}", ["}"], ["{"]],
    ["a]", ["a]"], ["a"]],
    ["[]a]+z", ["]az"], ["bz"]],
    ["[{}]", ["{", "}"], ["x"]],
    ["\\{\\}", ["{}"], ["{"]],
    ["\\d+\\.\\d+", ["v1.25"], ["v1"]],
  ];
  for (const [pattern, matches, misses] of cases) {
    it(`reads ${JSON.stringify(pattern)} as Python does`, () => {
      const re = compiled(pattern);
      for (const line of matches) expect(re.test(line), line).toBe(true);
      for (const line of misses) expect(re.test(line), line).toBe(false);
    });
  }

  it("keeps what JavaScript reads the same way unchanged", () => {
    // `\\A` is an escaped backslash and an A, not Python's `\A`.
    for (const p of ["a+b*c?", "(x|y)", "[^a-z]", "\\bword\\b", "a{2,3}", "\\\\A", "(?:ab)+", "(?=x)y", "\\w+@\\w+"]) {
      expect(fromPythonRegex(p)).toEqual({ source: p, flags: "u" });
    }
  });

  it("refuses verbose patterns and leaves broken ones for the caller's 400", () => {
    expect(() => fromPythonRegex("(?x) a b")).toThrow(SyntaxError);
    expect(() => compiled("(unclosed")).toThrow(SyntaxError);
  });
});
