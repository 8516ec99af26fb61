/**
 * Answers the edge's `screen` control requests (shared/screen.ts) for one agent: the raw output
 * tail, the screen rendered as text or HTML, or a screenshot, optionally saved under the agent's
 * data folder as `screenshots/{terminal_id}/{timestamp}.{ext}`. Parameters are checked again here
 * (the agent trusts nobody); every failure is an ApiError the edge renders for its caller.
 */
import { readdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { RGBA } from "../../shared/colors.ts";
import { ApiError } from "../../shared/errors.ts";
import {
  FONT_SIZE_MAX_PX,
  FONT_SIZE_MIN_PX,
  SCREEN_REPLY_MAX_BYTES,
  SCREENSHOT_FORMATS,
  TAIL_LINES_MAX,
  type ScreenRequest,
  type ScreenResult,
  type ScreenshotFormat,
} from "../../shared/screen.ts";
import { parseTerminalId } from "../../shared/validation.ts";
import type { PtySession } from "./pty-session.ts";
import { renderHtml, renderText } from "./screen/render.ts";
import { renderScreenshot, ToolNotAvailableError } from "./screen/screenshot.ts";
import { makeDirectoriesSync } from "./make-directories.ts";

/** Screenshots kept per terminal under the data folder; the oldest are removed past this. */
export const SCREENSHOTS_KEPT_PER_TERMINAL = 100;

const EXTENSIONS: Record<ScreenshotFormat, string> = { png: "png", jpeg: "jpg", gif: "gif" };

/** What answering needs from the agent. */
export interface ScreenContext {
  sessions: ReadonlyMap<number, Pick<PtySession, "readRaw" | "withScreen">>;
  /** The agent's data folder (screenshots are saved below it). */
  dataDir: string;
  /** Clock for file names (tests pass their own). */
  now?: () => Date;
}

export async function answerScreenRequest(ctx: ScreenContext, params: unknown): Promise<ScreenResult> {
  const req = checkRequest(params);
  const session = ctx.sessions.get(req.terminal_id);
  if (!session) throw new ApiError(404, "SESSION_NOT_FOUND", "Terminal session not found");
  switch (req.kind) {
    case "raw": {
      const bytes = session.readRaw(req.tail);
      return { content_type: "application/octet-stream", body: base64(bytes), encoding: "base64" };
    }
    case "text":
    case "html": {
      const { text, truncated } = await session.withScreen((term) => {
        const render = (tail: number | undefined): string =>
          req.kind === "text" ? renderText(term, tailOption(tail)) : renderHtml(term, { ...tailOption(tail), title: `Terminal ${req.terminal_id}` });
        return withinCap(render, req.tail);
      });
      return {
        content_type: req.kind === "text" ? "text/plain; charset=utf-8" : "text/html; charset=utf-8",
        body: text,
        encoding: "utf8",
        ...(truncated ? { truncated } : {}),
      };
    }
    case "screenshot":
      return screenshot(ctx, session, req);
  }
}

async function screenshot(
  ctx: ScreenContext,
  session: Pick<PtySession, "withScreen">,
  req: Extract<ScreenRequest, { kind: "screenshot" }>,
): Promise<ScreenResult> {
  let shot;
  try {
    // The visible screen only: no scrollback to copy.
    shot = await session.withScreen(
      (term) =>
        renderScreenshot(term, {
          format: req.format,
          foreground: req.foreground,
          background: req.background,
          fontSize: req.fontsize,
        }),
      0,
    );
  } catch (error) {
    if (error instanceof ToolNotAvailableError) {
      throw new ApiError(500, "TOOL_NOT_AVAILABLE", `Screenshot tool not available: ${error.message}`);
    }
    if (error instanceof RangeError) throw new ApiError(400, "INVALID_PARAMETERS", error.message);
    throw error;
  }
  if (shot.bytes.byteLength > SCREEN_REPLY_MAX_BYTES) {
    throw new ApiError(413, "SCREENSHOT_TOO_LARGE", `The screenshot exceeds ${SCREEN_REPLY_MAX_BYTES} bytes; use a smaller fontsize or format=jpeg`);
  }
  const path = req.save ? saveScreenshot(ctx, req.terminal_id, req.format, shot.bytes) : undefined;
  return {
    content_type: shot.contentType,
    body: base64(shot.bytes),
    encoding: "base64",
    width: shot.width,
    height: shot.height,
    ...(path ? { path } : {}),
  };
}

/** Writes the image as `screenshots/{id}/{YYYY-MM-DD_HH-MM-SS}.{ext}` (UTC) and prunes old ones. */
function saveScreenshot(ctx: ScreenContext, terminalId: number, format: ScreenshotFormat, bytes: Uint8Array): string {
  const dir = join(ctx.dataDir, "screenshots", String(terminalId));
  const stamp = (ctx.now?.() ?? new Date()).toISOString().slice(0, 19).replace("T", "_").replaceAll(":", "-");
  try {
    makeDirectoriesSync(dir, 0o700);
    let path = "";
    for (let n = 1; ; n++) {
      path = join(dir, `${stamp}${n === 1 ? "" : `_${n}`}.${EXTENSIONS[format]}`);
      try {
        writeFileSync(path, bytes, { flag: "wx", mode: 0o600 });
        break;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== "EEXIST" || n >= SCREENSHOTS_KEPT_PER_TERMINAL) throw error;
      }
    }
    const files = readdirSync(dir).sort();
    for (const old of files.slice(0, Math.max(0, files.length - SCREENSHOTS_KEPT_PER_TERMINAL))) rmSync(join(dir, old), { force: true });
    return path;
  } catch (error) {
    throw new ApiError(500, "SAVE_FAILED", `Could not save the screenshot under ${dir}: ${(error as Error).message}; retry with save=false`);
  }
}

/** Renders, cutting to the newest lines (halving) until the text fits in one reply. */
function withinCap(render: (tail: number | undefined) => string, tail: number | undefined): { text: string; truncated: boolean } {
  let text = render(tail);
  let lines = tail ?? text.split("\n").length;
  let truncated = false;
  while (Buffer.byteLength(text) > SCREEN_REPLY_MAX_BYTES) {
    if (lines <= 1) throw new ApiError(413, "OUTPUT_TOO_LARGE", `The rendered output exceeds ${SCREEN_REPLY_MAX_BYTES} bytes`);
    lines = Math.floor(lines / 2);
    text = render(lines);
    truncated = true;
  }
  return { text, truncated };
}

function tailOption(tail: number | undefined): { tail?: number } {
  return tail === undefined ? {} : { tail };
}

function base64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("base64");
}

// --- checking the request ------------------------------------------------------------------------

function invalid(message: string): ApiError {
  return new ApiError(400, "INVALID_PARAMETERS", message);
}

function isChannel(v: unknown): v is number {
  return typeof v === "number" && Number.isInteger(v) && v >= 0 && v <= 255;
}

function checkColor(v: unknown, name: string): RGBA {
  const c = v as Partial<RGBA> | null;
  if (typeof c !== "object" || c === null || !isChannel(c.r) || !isChannel(c.g) || !isChannel(c.b) || !isChannel(c.a)) {
    throw invalid(`${name} must be an RGBA colour`);
  }
  return { r: c.r, g: c.g, b: c.b, a: c.a };
}

/** The request in `params`, checked; throws a 400 ApiError naming what is wrong. */
export function checkRequest(params: unknown): ScreenRequest {
  if (typeof params !== "object" || params === null) throw invalid("screen request must be an object");
  const p = params as Record<string, unknown>;
  const terminalId = parseTerminalId(p["terminal_id"]);
  if (terminalId === null) throw new ApiError(400, "INVALID_TERMINAL_ID", "Terminal ID must be numeric 1-65535");
  const kind = p["kind"];
  if (kind === "raw" || kind === "text" || kind === "html") {
    const tail = p["tail"];
    if (tail === undefined || tail === null) return { terminal_id: terminalId, kind };
    if (typeof tail !== "number" || !Number.isInteger(tail) || tail < 0 || tail > TAIL_LINES_MAX) {
      throw invalid(`tail must be an integer 0-${TAIL_LINES_MAX}`);
    }
    return { terminal_id: terminalId, kind, tail };
  }
  if (kind === "screenshot") {
    const format = p["format"];
    if (!(SCREENSHOT_FORMATS as readonly unknown[]).includes(format)) throw invalid(`format must be one of ${SCREENSHOT_FORMATS.join(", ")}`);
    const fontsize = p["fontsize"];
    if (typeof fontsize !== "number" || !Number.isInteger(fontsize) || fontsize < FONT_SIZE_MIN_PX || fontsize > FONT_SIZE_MAX_PX) {
      throw invalid(`fontsize must be an integer ${FONT_SIZE_MIN_PX}-${FONT_SIZE_MAX_PX}`);
    }
    if (typeof p["save"] !== "boolean") throw invalid("save must be a boolean");
    return {
      terminal_id: terminalId,
      kind,
      format: format as ScreenshotFormat,
      foreground: checkColor(p["foreground"], "foreground"),
      background: checkColor(p["background"], "background"),
      fontsize,
      save: p["save"],
    };
  }
  throw invalid("kind must be raw, text, html or screenshot");
}
