import xterm from "@xterm/headless";
import type { Terminal } from "@xterm/headless";
import { createCanvas, loadImage } from "@napi-rs/canvas";
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { describe, expect, it } from "vitest";
import type { RGBA } from "../../shared/colors.ts";
import { renderScreenshot, ToolNotAvailableError, type ScreenshotOptions } from "../../worker/agent/screen/screenshot.ts";

const COLS = 30;
const ROWS = 6;
const FONT_SIZE = 20;
// DejaVu Sans Mono advances 0.602 em; cells are rounded to whole pixels, lines are 1.2 em.
const CELL_W = 12;
const CELL_H = 24;

const WHITE: RGBA = { r: 255, g: 255, b: 255, a: 255 };
const BACKGROUND: RGBA = { r: 10, g: 20, b: 30, a: 255 };

async function written(data: string): Promise<Terminal> {
  const t = new xterm.Terminal({ cols: COLS, rows: ROWS, allowProposedApi: true });
  await new Promise<void>((resolve) => t.write(data, resolve));
  return t;
}

function shot(t: Terminal, opts: Partial<ScreenshotOptions> = {}) {
  return renderScreenshot(t, { format: "png", foreground: WHITE, background: BACKGROUND, fontSize: FONT_SIZE, ...opts });
}

/** Decodes a PNG and returns a pixel reader. */
async function decode(bytes: Uint8Array): Promise<{ width: number; height: number; at(x: number, y: number): RGBA }> {
  const img = await loadImage(Buffer.from(bytes));
  const canvas = createCanvas(img.width, img.height);
  const ctx = canvas.getContext("2d");
  ctx.drawImage(img, 0, 0);
  const data = ctx.getImageData(0, 0, img.width, img.height).data;
  return {
    width: img.width,
    height: img.height,
    at: (x, y) => {
      const i = (y * img.width + x) * 4;
      return { r: data[i]!, g: data[i + 1]!, b: data[i + 2]!, a: data[i + 3]! };
    },
  };
}

/** The pixel at the centre of cell (col, row). */
const centre = (col: number, row: number): [number, number] => [col * CELL_W + CELL_W / 2, row * CELL_H + CELL_H / 2];

describe("renderScreenshot", () => {
  it("draws a PNG of cols × rows cells with background pixels of the requested colour", async () => {
    const t = await written("$ echo hi\r\nhi\r\n\x1b[?25l");
    const s = await shot(t);
    expect(s.contentType).toBe("image/png");
    expect([s.width, s.height]).toEqual([COLS * CELL_W, ROWS * CELL_H]);
    const img = await decode(s.bytes);
    expect([img.width, img.height]).toEqual([s.width, s.height]);
    expect(img.at(s.width - 1, s.height - 1)).toEqual(BACKGROUND);
    expect(img.at(...centre(20, 0))).toEqual(BACKGROUND);
    // The text is there: some pixels of the first cell ('$') are not background.
    let ink = 0;
    for (let y = 0; y < CELL_H; y++) for (let x = 0; x < CELL_W; x++) if (img.at(x, y).r > 100) ink++;
    expect(ink).toBeGreaterThan(5);
  });

  it("paints ANSI, 256 and true colours, and inverse", async () => {
    const t = await written("\x1b[41m \x1b[0m\x1b[48;5;21m \x1b[0m\x1b[48;2;1;200;3m \x1b[0m\x1b[38;2;9;8;7m\x1b[7m \x1b[0m\x1b[?25l");
    const img = await decode((await shot(t)).bytes);
    expect(img.at(...centre(0, 0))).toEqual({ r: 0xcc, g: 0, b: 0, a: 255 });
    expect(img.at(...centre(1, 0))).toEqual({ r: 0, g: 0, b: 255, a: 255 });
    expect(img.at(...centre(2, 0))).toEqual({ r: 1, g: 200, b: 3, a: 255 });
    expect(img.at(...centre(3, 0))).toEqual({ r: 9, g: 8, b: 7, a: 255 });
  });

  it("draws the text in the requested foreground and a full block as a solid cell", async () => {
    const fg: RGBA = { r: 0, g: 255, b: 0, a: 255 };
    const img = await decode((await shot(await written("█\x1b[?25l"), { foreground: fg })).bytes);
    expect(img.at(...centre(0, 0))).toEqual(fg);
  });

  it("draws the cursor as a block where it is, and not when it is hidden", async () => {
    const t = await written("ab");
    const shown = await decode((await shot(t)).bytes);
    expect(shown.at(...centre(2, 0))).toEqual(WHITE);
    await new Promise<void>((resolve) => t.write("\x1b[?25l", resolve));
    const hidden = await decode((await shot(t)).bytes);
    expect(hidden.at(...centre(2, 0))).toEqual(BACKGROUND);
  });

  it("draws a wide CJK character across two cells", async () => {
    const img = await decode((await shot(await written("日\x1b[?25l"))).bytes);
    const inkIn = (col: number): number => {
      let n = 0;
      for (let y = 0; y < CELL_H; y++) for (let x = col * CELL_W; x < (col + 1) * CELL_W; x++) if (img.at(x, y).r > 100) n++;
      return n;
    };
    expect(inkIn(0)).toBeGreaterThan(10);
    expect(inkIn(1)).toBeGreaterThan(10);
    expect(inkIn(2)).toBe(0);
  });

  it("encodes JPEG and GIF", async () => {
    const t = await written("hello");
    const jpeg = await shot(t, { format: "jpeg" });
    expect(jpeg.contentType).toBe("image/jpeg");
    expect([...jpeg.bytes.subarray(0, 3)]).toEqual([0xff, 0xd8, 0xff]);
    const gif = await shot(t, { format: "gif" });
    expect(gif.contentType).toBe("image/gif");
    expect(Buffer.from(gif.bytes.subarray(0, 6)).toString("latin1")).toMatch(/^GIF8[79]a$/);
    expect([gif.width, gif.height]).toEqual([COLS * CELL_W, ROWS * CELL_H]);
  });

  it("refuses a font size outside the accepted range", async () => {
    const t = await written("x");
    await expect(shot(t, { fontSize: 0 })).rejects.toThrow(RangeError);
    await expect(shot(t, { fontSize: 1000 })).rejects.toThrow(RangeError);
  });

  it("names the error for a missing renderer", () => {
    const err = new ToolNotAvailableError("no canvas");
    expect(err).toBeInstanceOf(Error);
    expect(err.name).toBe("ToolNotAvailableError");
  });
});

describe("without the native renderer", () => {
  it("loads the module, and screenshots fail with ToolNotAvailableError", () => {
    const dir = mkdtempSync(join(tmpdir(), "edgetty-nocanvas-"));
    try {
      // A resolve hook that makes @napi-rs/canvas unloadable, as on a host where it did not install.
      writeFileSync(join(dir, "hooks.mjs"), `export async function resolve(s, c, next) { if (s === "@napi-rs/canvas") throw new Error("not installed"); return next(s, c); }\n`);
      writeFileSync(join(dir, "register.mjs"), `import { register } from "node:module"; register(${JSON.stringify(pathToFileURL(join(dir, "hooks.mjs")).href)});\n`);
      const headless = pathToFileURL(createRequire(import.meta.url).resolve("@xterm/headless")).href;
      const screenshot = new URL("../../worker/agent/screen/screenshot.ts", import.meta.url).href;
      writeFileSync(join(dir, "probe.mts"), `
        const headless = await import(${JSON.stringify(headless)});
        const xterm = headless.Terminal ? headless : headless.default;
        const m = await import(${JSON.stringify(screenshot)});
        const t = new xterm.Terminal({ cols: 10, rows: 2, allowProposedApi: true });
        const c = { r: 0, g: 0, b: 0, a: 255 };
        try { await m.renderScreenshot(t, { format: "png", foreground: c, background: c, fontSize: 20 }); console.log("rendered"); }
        catch (e) { console.log(e instanceof m.ToolNotAvailableError ? "tool-not-available" : "other: " + e); }
      `);
      const out = execFileSync(process.execPath, ["--import", join(dir, "register.mjs"), "--import", "tsx", join(dir, "probe.mts")], {
        encoding: "utf8",
        timeout: 20_000,
      });
      expect(out.trim()).toBe("tool-not-available");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
