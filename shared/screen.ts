/**
 * What the edge may ask an agent about a terminal's output and screen (the `screen` control op):
 * the raw output tail, the screen as text or HTML, or a screenshot. The edge validates the public
 * query (`/api/v1/terminal/raw`, `/screenshot`) into a ScreenRequest; the agent checks it again.
 * Binary bodies travel base64 in the JSON reply, so every reply has a byte cap.
 */
import type { RGBA } from "./colors.ts";

export const RAW_FORMATS = ["download", "text", "html"] as const;
export type RawFormat = (typeof RAW_FORMATS)[number];

export const SCREENSHOT_FORMATS = ["png", "jpeg", "gif"] as const;
export type ScreenshotFormat = (typeof SCREENSHOT_FORMATS)[number];

/** Accepted screenshot font sizes, in pixels (worker/agent/screen/screenshot.ts enforces them too). */
export const FONT_SIZE_MIN_PX = 6;
export const FONT_SIZE_MAX_PX = 96;
export const FONT_SIZE_DEFAULT_PX = 20;

/**
 * The Unicode version that decides character widths everywhere a screen is modelled: the agent's
 * headless terminal (repaints, text, HTML, screenshots) and the web client's xterm.js. Both load
 * @xterm/addon-unicode11; a mismatch puts wide characters (emoji) in different cells.
 */
export const UNICODE_VERSION = "11";

/** Largest `tail` accepted, in lines (more than any buffer holds). */
export const TAIL_LINES_MAX = 1_000_000;

/**
 * Largest body an agent puts in one reply, in bytes before base64. The raw tail (2 MiB) always
 * fits; a text or HTML render that would not is cut to its newest lines and marked `truncated`.
 */
export const SCREEN_REPLY_MAX_BYTES = 4 << 20; // 4 MiB

export type ScreenRequest =
  | { terminal_id: number; kind: "raw" | "text" | "html"; tail?: number }
  | {
      terminal_id: number;
      kind: "screenshot";
      format: ScreenshotFormat;
      foreground: RGBA;
      background: RGBA;
      fontsize: number;
      /** Keep a copy under the agent's data folder. */
      save: boolean;
    };

export interface ScreenResult {
  content_type: string;
  /** The body: base64 when `encoding` says so (raw bytes, images), else the text itself. */
  body: string;
  encoding: "base64" | "utf8";
  /** Older lines were left out to keep the reply under SCREEN_REPLY_MAX_BYTES. */
  truncated?: boolean;
  /** Where the agent saved the screenshot, on its host. */
  path?: string;
  width?: number;
  height?: number;
}
