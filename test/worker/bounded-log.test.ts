/** The local stack's log files (worker/cli/bounded-log.ts): rotated at their cap, never larger than twice it. */
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { BoundedLog, rotateIfLarger } from "../../worker/cli/bounded-log.ts";

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "edgetty-log-"));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe("BoundedLog", () => {
  it("rotates to NAME.1 before a write would pass the cap, keeping one previous file", () => {
    const path = join(dir, "x.log");
    const log = new BoundedLog(path, 100);
    for (let i = 0; i < 25; i++) log.write(`line ${String(i).padStart(3, "0")}\n`); // 9 bytes each
    log.close();
    expect(statSync(path).size).toBeLessThanOrEqual(100);
    expect(statSync(`${path}.1`).size).toBeLessThanOrEqual(100);
    // The newest lines are in the current file, the ones before them in NAME.1.
    expect(readFileSync(path, "utf8").trimEnd().split("\n").at(-1)).toBe("line 024");
    expect(readFileSync(`${path}.1`, "utf8")).toContain("line 021");
  });

  it("appends to what an earlier run left, rotating it first when it is already too big", () => {
    const path = join(dir, "y.log");
    writeFileSync(path, "x".repeat(150));
    const log = new BoundedLog(path, 100);
    log.write("fresh\n");
    log.close();
    expect(readFileSync(path, "utf8")).toBe("fresh\n");
    expect(readFileSync(`${path}.1`, "utf8")).toBe("x".repeat(150));
  });
});

describe("rotateIfLarger", () => {
  it("moves a file over the cap aside and leaves others alone", () => {
    const big = join(dir, "big.log");
    const small = join(dir, "small.log");
    writeFileSync(big, "x".repeat(11));
    writeFileSync(small, "x".repeat(10));
    expect(rotateIfLarger(big, 10)).toBe(true);
    expect(rotateIfLarger(small, 10)).toBe(false);
    expect(rotateIfLarger(join(dir, "missing.log"), 10)).toBe(false);
    expect([existsSync(big), existsSync(`${big}.1`), existsSync(small)]).toEqual([false, true, true]);
  });
});
