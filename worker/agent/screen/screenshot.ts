/**
 * The terminal's screen as an image (`/api/v1/terminal/screenshot`): what a person sees in a
 * terminal window, drawn cell by cell with Skia (@napi-rs/canvas) in fonts that ship as npm
 * packages, never the host's: DejaVu Sans Mono for text, UnifontEX for what it lacks (CJK, …).
 * Colours, bold/italic/underline/strikethrough/inverse/dim and the cursor follow the terminal.
 *
 * The native renderer is loaded on first use, so the agent runs without it; then screenshots
 * fail with ToolNotAvailableError, which the API reports as TOOL_NOT_AVAILABLE.
 */
import { createRequire } from "node:module";
import type { Terminal } from "@xterm/headless";
import type { SKRSContext2D } from "@napi-rs/canvas";
import { cssColor, type RGBA } from "../../../shared/colors.ts";
import { FONT_SIZE_MAX_PX, FONT_SIZE_MIN_PX } from "../../../shared/screen.ts";
import { cellColors } from "./render.ts";

export interface ScreenshotOptions {
  format: "png" | "jpeg" | "gif";
  /** Default text colour. */
  foreground: RGBA;
  /** Default background colour. */
  background: RGBA;
  /** Font size in pixels; a cell is about 0.6 × 1.2 of it. */
  fontSize: number;
}

export interface Screenshot {
  bytes: Uint8Array;
  contentType: string;
  width: number;
  height: number;
}

/** The screenshot renderer (native canvas or its fonts) could not be loaded on this host. */
export class ToolNotAvailableError extends Error {
  override readonly name = "ToolNotAvailableError";
}

/** Accepted font sizes, in pixels (shared, so the edge refuses bad ones before asking an agent). */
export { FONT_SIZE_MAX_PX, FONT_SIZE_MIN_PX };
/** Largest image drawn, in pixels (width × height): 8192 × 8192. */
export const SCREENSHOT_MAX_PIXELS = 8192 * 8192;
/** JPEG quality, 0–100. */
const JPEG_QUALITY = 90;
/** Line height as a multiple of the font size. */
const LINE_HEIGHT = 1.2;

const CONTENT_TYPES = { png: "image/png", jpeg: "image/jpeg", gif: "image/gif" } as const;

/** Font families registered from the bundled files. */
const MONO = "edgetty-mono";
const WIDE = "edgetty-wide";
const FONT_FILES: [pkgPath: string, family: string][] = [
  ["dejavu-fonts-ttf/ttf/DejaVuSansMono.ttf", MONO],
  ["dejavu-fonts-ttf/ttf/DejaVuSansMono-Bold.ttf", MONO],
  ["dejavu-fonts-ttf/ttf/DejaVuSansMono-Oblique.ttf", MONO],
  ["dejavu-fonts-ttf/ttf/DejaVuSansMono-BoldOblique.ttf", MONO],
  ["@fontsource/unifontex/files/unifontex-latin-400-normal.woff2", WIDE],
];

type CanvasModule = typeof import("@napi-rs/canvas");
let loading: Promise<CanvasModule> | null = null;

/** Loads @napi-rs/canvas and registers the bundled fonts, once. */
function loadCanvas(): Promise<CanvasModule> {
  loading ??= (async () => {
    // The canvas module loads the host's fonts at import unless told not to; we draw only with ours.
    const hadFlag = "DISABLE_SYSTEM_FONTS_LOAD" in process.env;
    process.env.DISABLE_SYSTEM_FONTS_LOAD = "1";
    let mod: CanvasModule;
    try {
      mod = await import("@napi-rs/canvas");
    } catch (err) {
      throw new ToolNotAvailableError(`screenshot renderer not available: ${(err as Error).message}`);
    } finally {
      if (!hadFlag) delete process.env.DISABLE_SYSTEM_FONTS_LOAD;
    }
    const require = createRequire(import.meta.url);
    for (const [file, family] of FONT_FILES) {
      let path: string;
      try {
        path = require.resolve(file);
      } catch {
        throw new ToolNotAvailableError(`screenshot font missing: ${file}`);
      }
      if (!mod.GlobalFonts.registerFromPath(path, family)) throw new ToolNotAvailableError(`screenshot font unreadable: ${file}`);
    }
    return mod;
  })();
  loading.catch(() => (loading = null)); // let a later call retry (e.g. after an install)
  return loading;
}

/** Draws the visible screen of `term` (not its scrollback) with the cursor, and encodes it. */
export async function renderScreenshot(term: Terminal, opts: ScreenshotOptions): Promise<Screenshot> {
  if (!(opts.fontSize >= FONT_SIZE_MIN_PX && opts.fontSize <= FONT_SIZE_MAX_PX)) {
    throw new RangeError(`fontSize must be ${FONT_SIZE_MIN_PX}-${FONT_SIZE_MAX_PX} pixels`);
  }
  const canvasModule = await loadCanvas();
  const font = (bold: boolean, italic: boolean): string =>
    `${italic ? "italic " : ""}${bold ? "bold " : ""}${opts.fontSize}px ${MONO}, ${WIDE}`;

  const probe = canvasModule.createCanvas(1, 1).getContext("2d");
  probe.font = font(false, false);
  const metrics = probe.measureText("M");
  const cellW = Math.max(1, Math.round(metrics.width));
  const cellH = Math.max(1, Math.round(opts.fontSize * LINE_HEIGHT));
  const width = cellW * term.cols;
  const height = cellH * term.rows;
  if (width * height > SCREENSHOT_MAX_PIXELS) throw new RangeError("screenshot too large: use a smaller fontSize");
  // Baseline: centre the font's box (ascent + descent) in the cell.
  const ascent = metrics.fontBoundingBoxAscent || opts.fontSize * 0.8;
  const descent = metrics.fontBoundingBoxDescent || opts.fontSize * 0.2;
  const baseline = Math.round((cellH - ascent - descent) / 2 + ascent);
  const lineWidth = Math.max(1, Math.round(opts.fontSize / 14));

  const canvas = canvasModule.createCanvas(width, height);
  const ctx = canvas.getContext("2d");
  ctx.textBaseline = "alphabetic";
  ctx.fillStyle = cssColor(opts.format === "png" ? opts.background : { ...opts.background, a: 255 });
  ctx.fillRect(0, 0, width, height);

  const theme = { fg: opts.foreground, bg: opts.background };
  const buffer = term.buffer.active;
  const cell = buffer.getNullCell();
  const cursor = cursorShape(term);
  let currentFont = "";
  for (let row = 0; row < term.rows; row++) {
    const line = buffer.getLine(buffer.baseY + row);
    if (!line) continue;
    const y = row * cellH;
    for (let col = 0; col < term.cols; col++) {
      line.getCell(col, cell);
      const w = cell.getWidth();
      if (w === 0) continue; // right half of a wide character, drawn with its left half
      const x = col * cellW;
      let { fg, bg } = cellColors(cell, theme);
      const atCursor = cursor !== null && row === buffer.cursorY && col === buffer.cursorX;
      if (atCursor && cursor === "block") [fg, bg] = [bg ?? theme.bg, fg];
      if (bg) {
        ctx.fillStyle = cssColor(bg);
        ctx.fillRect(x, y, cellW * w, cellH);
      }
      const chars = cell.getChars();
      ctx.fillStyle = cssColor(fg);
      if (chars && chars !== " ") {
        const f = font(!!cell.isBold(), !!cell.isItalic());
        if (f !== currentFont) ctx.font = currentFont = f;
        drawGlyph(ctx, chars, x, y + baseline, cellW * w, w > 1);
      }
      if (cell.isUnderline()) ctx.fillRect(x, y + baseline + lineWidth, cellW * w, lineWidth);
      if (cell.isStrikethrough()) ctx.fillRect(x, y + Math.round(baseline - ascent * 0.3), cellW * w, lineWidth);
      if (atCursor && cursor !== "block") {
        ctx.fillStyle = cssColor(theme.fg);
        if (cursor === "bar") ctx.fillRect(x, y, Math.max(2, lineWidth), cellH);
        else ctx.fillRect(x, y + cellH - Math.max(2, lineWidth), cellW * w, Math.max(2, lineWidth));
      }
    }
  }

  const encoded =
    opts.format === "jpeg" ? await canvas.encode("jpeg", JPEG_QUALITY) : opts.format === "gif" ? await canvas.encode("gif") : await canvas.encode("png");
  const bytes = new Uint8Array(encoded.buffer, encoded.byteOffset, encoded.byteLength);
  return { bytes, contentType: CONTENT_TYPES[opts.format], width, height };
}

/** Draws one cell's text; a wide character is centred in its two cells. */
function drawGlyph(ctx: SKRSContext2D, chars: string, x: number, baseline: number, boxWidth: number, wide: boolean): void {
  if (!wide) {
    ctx.fillText(chars, x, baseline);
    return;
  }
  const w = ctx.measureText(chars).width;
  ctx.fillText(chars, x + Math.max(0, (boxWidth - w) / 2), baseline);
}

/** How the cursor is drawn, or null when the program hid it. */
function cursorShape(term: Terminal): "block" | "underline" | "bar" | null {
  const service = (term as unknown as { _core?: { coreService?: { isCursorHidden?: boolean; decPrivateModes?: { cursorStyle?: string } } } })._core
    ?.coreService;
  if (service?.isCursorHidden) return null;
  const style = service?.decPrivateModes?.cursorStyle ?? term.options.cursorStyle ?? "block";
  return style === "underline" || style === "bar" ? style : "block";
}
