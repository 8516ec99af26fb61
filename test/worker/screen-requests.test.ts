import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { ApiError } from "../../shared/errors.ts";
import { PtyOutputLog } from "../../worker/agent/pty-output-log.ts";
import { ScreenState } from "../../worker/agent/screen/screen-state.ts";
import { answerScreenRequest, checkRequest, SCREENSHOTS_KEPT_PER_TERMINAL, type ScreenContext } from "../../worker/agent/screen-requests.ts";

const BLUE = { r: 0, g: 0, b: 255, a: 255 };
const WHITE = { r: 255, g: 255, b: 255, a: 255 };

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});

function context(output: string): ScreenContext {
  const log = new PtyOutputLog();
  const screen = new ScreenState(40, 6);
  const bytes = Buffer.from(output);
  log.append(bytes);
  log.seal();
  screen.push(bytes);
  const dataDir = mkdtempSync(join(tmpdir(), "edgetty-screen-"));
  cleanups.push(() => {
    screen.dispose();
    rmSync(dataDir, { recursive: true, force: true });
  });
  const session = {
    readRaw: (lines?: number) => log.tail(lines),
    withScreen: async <T>(use: (term: typeof screen.terminal) => T | Promise<T>) => {
      await screen.catchUp();
      return use(screen.terminal);
    },
  };
  return { sessions: new Map([[7, session]]), dataDir, now: () => new Date("2025-01-15T10:30:45.123Z") };
}

async function refusal(p: Promise<unknown>): Promise<ApiError> {
  try {
    await p;
  } catch (error) {
    if (error instanceof ApiError) return error;
    throw error;
  }
  throw new Error("no error");
}

describe("answerScreenRequest", () => {
  it("returns the raw bytes base64, optionally the last lines", async () => {
    const ctx = context("one\r\n\x1b[31mtwo\x1b[0m\r\nthree");
    const all = await answerScreenRequest(ctx, { terminal_id: 7, kind: "raw" });
    expect(all).toMatchObject({ content_type: "application/octet-stream", encoding: "base64" });
    expect(Buffer.from(all.body, "base64").toString()).toBe("one\r\n\x1b[31mtwo\x1b[0m\r\nthree");
    const tail = await answerScreenRequest(ctx, { terminal_id: 7, kind: "raw", tail: 1 });
    expect(Buffer.from(tail.body, "base64").toString()).toBe("three");
  });

  it("renders text and HTML of the screen as it is now", async () => {
    const ctx = context("one\r\n\x1b[31mtwo\x1b[0m\r\nthree");
    const text = await answerScreenRequest(ctx, { terminal_id: 7, kind: "text" });
    expect(text).toEqual({ content_type: "text/plain; charset=utf-8", body: "one\ntwo\nthree", encoding: "utf8" });
    expect((await answerScreenRequest(ctx, { terminal_id: 7, kind: "text", tail: 2 })).body).toBe("two\nthree");
    const html = await answerScreenRequest(ctx, { terminal_id: 7, kind: "html" });
    expect(html.content_type).toBe("text/html; charset=utf-8");
    expect(html.body).toContain('<span style="color:#cc0000">two</span>');
    expect(html.body).toContain("<title>Terminal 7</title>");
  });

  it("draws a screenshot and saves it as screenshots/{id}/{timestamp}.{ext}, keeping the newest", async () => {
    const ctx = context("hello");
    const dir = join(ctx.dataDir, "screenshots", "7");
    mkdirSync(dir, { recursive: true });
    for (let i = 0; i < SCREENSHOTS_KEPT_PER_TERMINAL; i++) writeFileSync(join(dir, `2020-01-01_00-00-${String(i).padStart(3, "0")}.png`), "");
    const shot = await answerScreenRequest(ctx, {
      terminal_id: 7, kind: "screenshot", format: "png", foreground: WHITE, background: BLUE, fontsize: 20, save: true,
    });
    expect(shot).toMatchObject({ content_type: "image/png", encoding: "base64", width: 40 * 12, height: 6 * 24 });
    expect(shot.path).toBe(join(dir, "2025-01-15_10-30-45.png"));
    const files = readdirSync(dir);
    expect(files).toHaveLength(SCREENSHOTS_KEPT_PER_TERMINAL);
    expect(files).toContain("2025-01-15_10-30-45.png");
    expect(files).not.toContain("2020-01-01_00-00-000.png");
    const again = await answerScreenRequest(ctx, {
      terminal_id: 7, kind: "screenshot", format: "jpeg", foreground: WHITE, background: BLUE, fontsize: 20, save: true,
    });
    expect(again.path).toBe(join(dir, "2025-01-15_10-30-45.jpg"));
    const third = await answerScreenRequest(ctx, {
      terminal_id: 7, kind: "screenshot", format: "jpeg", foreground: WHITE, background: BLUE, fontsize: 20, save: true,
    });
    expect(third.path).toBe(join(dir, "2025-01-15_10-30-45_2.jpg"));
    const unsaved = await answerScreenRequest(ctx, {
      terminal_id: 7, kind: "screenshot", format: "gif", foreground: WHITE, background: BLUE, fontsize: 20, save: false,
    });
    expect(unsaved.path).toBeUndefined();
    expect(Buffer.from(unsaved.body, "base64").subarray(0, 4).toString("latin1")).toBe("GIF8");
  });

  it("answers 404 for a session it does not run", async () => {
    const ctx = context("");
    const e = await refusal(answerScreenRequest(ctx, { terminal_id: 8, kind: "text" }));
    expect([e.status, e.code]).toEqual([404, "SESSION_NOT_FOUND"]);
  });
});

describe("checkRequest", () => {
  const shot = { terminal_id: 1, kind: "screenshot", format: "png", foreground: WHITE, background: BLUE, fontsize: 20, save: true };

  it("accepts well-formed requests", () => {
    expect(checkRequest({ terminal_id: "5", kind: "raw" })).toEqual({ terminal_id: 5, kind: "raw" });
    expect(checkRequest(shot)).toEqual(shot);
  });

  it("refuses anything else with a 400 naming the problem", () => {
    const cases: [unknown, string][] = [
      [null, "INVALID_PARAMETERS"],
      [{ terminal_id: 0, kind: "raw" }, "INVALID_TERMINAL_ID"],
      [{ terminal_id: 1, kind: "pdf" }, "INVALID_PARAMETERS"],
      [{ terminal_id: 1, kind: "text", tail: -1 }, "INVALID_PARAMETERS"],
      [{ terminal_id: 1, kind: "text", tail: 1.5 }, "INVALID_PARAMETERS"],
      [{ ...shot, format: "bmp" }, "INVALID_PARAMETERS"],
      [{ ...shot, fontsize: 500 }, "INVALID_PARAMETERS"],
      [{ ...shot, foreground: { r: 256, g: 0, b: 0, a: 255 } }, "INVALID_PARAMETERS"],
      [{ ...shot, background: "blue" }, "INVALID_PARAMETERS"],
      [{ ...shot, save: "yes" }, "INVALID_PARAMETERS"],
    ];
    for (const [params, code] of cases) {
      let error: unknown;
      try {
        checkRequest(params);
      } catch (e) {
        error = e;
      }
      expect(error, JSON.stringify(params)).toBeInstanceOf(ApiError);
      expect((error as ApiError).code, JSON.stringify(params)).toBe(code);
    }
  });
});
