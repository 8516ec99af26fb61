import { describe, expect, it } from "vitest";
import { OSC_MAX_BYTES, OscScanner } from "../../worker/agent/osc.ts";

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);

function scan(chunks: (string | Uint8Array)[]): [string, string][] {
  const found: [string, string][] = [];
  const scanner = new OscScanner((code, data) => found.push([code, data]));
  for (const c of chunks) scanner.push(typeof c === "string" ? enc(c) : c);
  return found;
}

const STREAM =
  "plain \x1b[31mred\x1b[0m text\r\n" +
  "\x1b]0;my title\x07" +
  "more \x1b[?25l text \x1b]7;file://host/tmp/d\x1b\\" +
  "\x1b]633;E;echo hé;nonce\x07\x1b]633;C\x07out\x1b]633;D;0;nonce\x1b\\" +
  "\x1b]2;\x07end";
const EXPECTED: [string, string][] = [
  ["0", "my title"],
  ["7", "file://host/tmp/d"],
  ["633", "E;echo hé;nonce"],
  ["633", "C"],
  ["633", "D;0;nonce"],
  ["2", ""],
];

describe("OscScanner", () => {
  it("finds sequences ended by BEL and by ST in one chunk", () => {
    expect(scan([STREAM])).toEqual(EXPECTED);
  });

  it("finds the same sequences however the stream is split in two", () => {
    const bytes = enc(STREAM);
    for (let at = 0; at <= bytes.length; at++) {
      expect(scan([bytes.subarray(0, at), bytes.subarray(at)]), `split at ${at}`).toEqual(EXPECTED);
    }
  });

  it("finds the same sequences when fed one byte at a time", () => {
    const bytes = enc(STREAM);
    expect(scan([...bytes].map((b) => Uint8Array.of(b)))).toEqual(EXPECTED);
  });

  it("finds the same sequences in Buffers (node-pty's chunks), however split", () => {
    const bytes = Buffer.from(STREAM);
    for (let a = 0; a <= bytes.length; a++) {
      for (let b = a; b <= bytes.length; b++) {
        expect(scan([bytes.subarray(0, a), bytes.subarray(a, b), bytes.subarray(b)]), `split at ${a}, ${b}`).toEqual(EXPECTED);
      }
    }
    expect(scan([...bytes].map((b) => Buffer.of(b)))).toEqual(EXPECTED);
    expect(scan([Buffer.from("hello \x1b[1;2H\x1b(B\x1bP1$r\x1b\\ world \x1b\x1b[m")])).toEqual([]);
    expect(scan([Buffer.from("x\x1b"), Buffer.from("\x1b]2;t\x07")])).toEqual([["2", "t"]]);
    expect(scan([Buffer.from("\x1b]0;broken\x1b[31m red \x1b]0;good\x07")])).toEqual([["0", "good"]]);
  });

  it("does not depend on the caller keeping its chunk buffers", () => {
    const found: string[] = [];
    const scanner = new OscScanner((_c, d) => found.push(d));
    const buf = Buffer.alloc(64); // node-pty hands out Buffers, whose slice() is a view
    buf.set(enc("\x1b]0;abc"));
    scanner.push(buf.subarray(0, 7));
    buf.fill(0x78); // the caller reuses its buffer
    scanner.push(enc("def\x07"));
    expect(found).toEqual(["abcdef"]);
  });

  it("reports a sequence without `;` as a code with empty data", () => {
    expect(scan(["\x1b]104\x07"])).toEqual([["104", ""]]);
  });

  it("finds nothing in text and in other escape sequences", () => {
    expect(scan(["hello \x1b[1;2H\x1b(B\x1bP1$r\x1b\\ world \x1b\x1b[m"])).toEqual([]);
  });

  it("drops a sequence longer than OSC_MAX_BYTES and finds the next one", () => {
    const long = "\x1b]0;" + "x".repeat(OSC_MAX_BYTES + 10) + "\x07";
    expect(scan([long + "\x1b]2;ok\x07"])).toEqual([["2", "ok"]]);
    // The same when the long one arrives in pieces.
    const pieces = [long.slice(0, 100), long.slice(100, 3000), long.slice(3000), "\x1b]2;ok\x1b\\"];
    expect(scan(pieces)).toEqual([["2", "ok"]]);
  });

  it("keeps a sequence of exactly OSC_MAX_BYTES", () => {
    const body = "0;" + "y".repeat(OSC_MAX_BYTES - 2);
    expect(scan(["\x1b]" + body.slice(0, 1000), body.slice(1000) + "\x07"])).toEqual([["0", "y".repeat(OSC_MAX_BYTES - 2)]]);
  });

  it("abandons a sequence interrupted by another escape sequence", () => {
    expect(scan(["\x1b]0;broken\x1b[31m red \x1b]0;good\x07"])).toEqual([["0", "good"]]);
    expect(scan(["\x1b]0;broken\x1b", "]0;good\x07"])).toEqual([["0", "good"]]);
  });

  it("decodes UTF-8 split across chunks", () => {
    const bytes = enc("\x1b]0;日本\x07");
    expect(scan([bytes.subarray(0, 5), bytes.subarray(5)])).toEqual([["0", "日本"]]);
  });
});
