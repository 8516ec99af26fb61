import { describe, expect, it } from "vitest";
import { lastLines, RAW_TAIL_MAX_BYTES, RawTail } from "../../worker/raw-tail.ts";

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const text = (b: Uint8Array): string => new TextDecoder().decode(b);

describe("RawTail", () => {
  it("returns what was pushed, in order", () => {
    const t = new RawTail();
    for (const s of ["one\r\n", "two", "\r\nthree"]) t.push(enc(s));
    expect(text(t.read())).toBe("one\r\ntwo\r\nthree");
  });

  it("keeps only the newest maxBytes, cutting the oldest chunk", () => {
    const t = new RawTail(10);
    t.push(enc("abcdef"));
    t.push(enc("ghij"));
    t.push(enc("klm"));
    expect(text(t.read())).toBe("defghijklm");
    t.push(enc("0123456789ABC"));
    expect(text(t.read())).toBe("3456789ABC");
  });

  it("stays bounded over many chunks", () => {
    const t = new RawTail(1000);
    for (let i = 0; i < 10_000; i++) t.push(enc(`${i % 10}`.repeat(7)));
    expect(t.size).toBeLessThan(1000 + 7);
    expect(t.read().byteLength).toBe(1000);
    expect(text(t.read()).endsWith("9999999")).toBe(true);
  });

  it("caps at RAW_TAIL_MAX_BYTES by default", () => {
    const t = new RawTail();
    t.push(new Uint8Array(RAW_TAIL_MAX_BYTES + 5));
    expect(t.read().byteLength).toBe(RAW_TAIL_MAX_BYTES);
  });

  it("reads the last N lines", () => {
    const t = new RawTail();
    t.push(enc("a\nb\nc\nd\n"));
    expect(text(t.read(2))).toBe("c\nd\n");
    expect(text(t.read(10))).toBe("a\nb\nc\nd\n");
    expect(text(t.read(0))).toBe("");
  });
});

describe("lastLines", () => {
  it("counts an unterminated last line, not an empty one after a final newline", () => {
    expect(text(lastLines(enc("a\nb\nc"), 2))).toBe("b\nc");
    expect(text(lastLines(enc("a\nb\nc\n"), 1))).toBe("c\n");
    expect(text(lastLines(enc("\n\n"), 1))).toBe("\n");
    expect(text(lastLines(enc("only"), 3))).toBe("only");
    expect(text(lastLines(enc(""), 3))).toBe("");
  });
});
