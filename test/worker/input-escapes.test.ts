/**
 * `/execute/{id}/input`'s escape decoding (worker/agent/exec/input-escapes.ts) against Python's own
 * `input.encode("raw_unicode_escape").decode("unicode_escape")`, the reference's, on generated
 * inputs (fast-check): where Python decodes, the text must be the same; where it raises (the
 * reference's 500), ours keeps the malformed escape as typed (named cases below).
 */
import { execFileSync } from "node:child_process";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { decodeInputEscapes } from "../../worker/agent/exec/input-escapes.ts";

/** Python's round trip of each input: the decoded text, or null where it raises. */
function pythonDecodes(inputs: string[]): (string | null)[] {
  const script = [
    "import json, sys",
    "out = []",
    "for s in json.load(sys.stdin):",
    "    try: out.append(s.encode('raw_unicode_escape').decode('unicode_escape'))",
    "    except Exception: out.append(None)",
    "sys.stdout.write(json.dumps(out))",
  ].join("\n");
  // JSON carries lone surrogates as \ud800 escapes both ways; Python keeps them as such.
  return JSON.parse(execFileSync("python3", ["-c", script], { input: JSON.stringify(inputs), encoding: "utf8" })) as (string | null)[];
}

/** Pieces escapes are made of, and characters the round trip must leave alone. */
const PIECE = fc.constantFrom(
  "\\", "\\", "\\", "n", "t", "x", "u", "U", "a", "q", "'", '"', "\n", "\r",
  "0", "1", "7", "8", "9", "f", "F", "e", "E", "4", "1b", "00e9", "0001f600", "0010ffff", "00110000", "777",
  "é", "ÿ", "€", "😀", "\ud800", "\udfff", " ", "[", "A",
);

describe("input escapes", () => {
  it("decodes as Python's raw_unicode_escape → unicode_escape round trip wherever Python decodes", () => {
    const inputs = fc.sample(fc.array(PIECE, { maxLength: 24 }).map((pieces) => pieces.join("")), { numRuns: 3000, seed: 7 });
    const expected = pythonDecodes(inputs);
    let compared = 0;
    inputs.forEach((input, i) => {
      if (expected[i] === null) return;
      compared++;
      expect(decodeInputEscapes(input), JSON.stringify(input)).toBe(expected[i]);
    });
    // Most generated inputs are well formed enough for Python: the comparison is not vacuous.
    expect(compared).toBeGreaterThan(1000);
  });

  it("keeps what Python refuses as typed, and spells out a character above U+00FF after a backslash as Python does", () => {
    expect(decodeInputEscapes("keep \\q and \\x4 and trailing \\")).toBe("keep \\q and \\x4 and trailing \\");
    expect(decodeInputEscapes("\\U00110000 \\u12 \\x")).toBe("\\U00110000 \\u12 \\x");
    expect(decodeInputEscapes("\\😀 \\\\😀 \\€")).toBe("\\U0001f600 \\😀 \\u20ac");
    expect(decodeInputEscapes("a\\nb\\t\\x03\\u00e9\\101\\\nc")).toBe("a\nb\t\x03\u00e9Ac");
    expect(decodeInputEscapes("a\\nb\\t\\x03\\u00e9\\101")).toBe("a\nb\t\x03\u00e9A");
    expect(decodeInputEscapes("real\nnewline \u20ac")).toBe("real\nnewline \u20ac");
    expect(decodeInputEscapes("\\\\n")).toBe("\\n");
  });

  it("gives a MiB without a backslash back as it is, and decodes a MiB of dense escapes and characters above U+00FF", () => {
    const plain = "é中😀a".repeat(1 << 16);
    expect(decodeInputEscapes(plain)).toBe(plain);
    expect(decodeInputEscapes("ab\\n\\x03".repeat(1 << 16))).toBe("ab\n\x03".repeat(1 << 16));
    expect(decodeInputEscapes("é😀\\n\\x1b".repeat(1 << 17))).toBe("é😀\n\x1b".repeat(1 << 17));
    // Spelled out, the text is longer than the input (more than three times here).
    expect(decodeInputEscapes("\\€\\😀".repeat(1 << 16))).toBe("\\u20ac\\U0001f600".repeat(1 << 16));
  });
});
