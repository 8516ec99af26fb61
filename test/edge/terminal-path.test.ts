/** The terminals proxy's path sanitising: decode until stable, refuse traversal and odd characters. */
import { describe, expect, it } from "vitest";
import { PATH_DECODE_MAX_ROUNDS, sanitizeTerminalPath } from "../../shared/terminal-path.ts";

function encodeTimes(text: string, times: number): string {
  let out = text;
  for (let i = 0; i < times; i++) out = encodeURIComponent(out);
  return out;
}

describe("sanitizeTerminalPath", () => {
  it("passes ordinary paths through without the leading slash and keeps a trailing slash", () => {
    expect(sanitizeTerminalPath("api/config")).toBe("api/config");
    expect(sanitizeTerminalPath("/files/list")).toBe("files/list");
    expect(sanitizeTerminalPath("api/terminals/")).toBe("api/terminals/");
    expect(sanitizeTerminalPath("files//read")).toBe("files/read");
    expect(sanitizeTerminalPath("a%20b/c%2Fd")).toBe("a b/c/d");
    expect(sanitizeTerminalPath("caf%C3%A9")).toBe("café");
    expect(sanitizeTerminalPath("v1.2/x..y/.hidden")).toBe("v1.2/x..y/.hidden");
  });

  it("refuses plain, encoded and multiply encoded traversal", () => {
    for (const bad of ["..", "../etc/passwd", "a/../../b", "a/..", "%2e%2e/x", "%2E%2E%2Fx", "%252e%252e%252fx", encodeTimes("../x", 5)]) {
      expect(sanitizeTerminalPath(bad), bad).toBeNull();
    }
  });

  it("refuses . segments and empty paths", () => {
    for (const bad of [".", "./x", "a/./b", "%2e", "", "/", "//"]) expect(sanitizeTerminalPath(bad), bad).toBeNull();
  });

  it("refuses backslashes, query and fragment characters and control characters, however encoded", () => {
    for (const bad of ["a\\b", "%5c..%5cx", "%255c", "a%3Fb", "a%23b", "a?b", "a#b", "a%00b", "a%0ab", "%7f", "a%C2%85b", "a\tb"]) {
      expect(sanitizeTerminalPath(bad), bad).toBeNull();
    }
  });

  it("fails closed on malformed escapes and on paths still encoded after the last round", () => {
    expect(sanitizeTerminalPath("100%")).toBeNull();
    expect(sanitizeTerminalPath("%E0%A4%A")).toBeNull();
    expect(sanitizeTerminalPath(encodeTimes("a b", PATH_DECODE_MAX_ROUNDS - 1))).toBe("a b");
    expect(sanitizeTerminalPath(encodeTimes("a b", PATH_DECODE_MAX_ROUNDS + 1))).toBeNull();
  });

  it("refuses over-long paths", () => {
    expect(sanitizeTerminalPath("a/".repeat(5000))).toBeNull();
  });
});
