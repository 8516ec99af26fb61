/**
 * The terminal's content as a document: plain text (for `/raw?format=text|download`) and a
 * standalone HTML page with colours and styles (for `/raw?format=html`), read from the headless
 * terminal's buffer so escape sequences are already resolved. Both show the active buffer (the
 * alternate screen while a full-screen program runs), scrollback first, in logical lines: rows the
 * terminal soft-wrapped are joined back into the line the program printed.
 */
import type { IBuffer, IBufferCell, IBufferLine, Terminal } from "@xterm/headless";
import { cssColor, paletteColor, rgb, type RGBA } from "../../../shared/colors.ts";

/** Default colours of the HTML page (xterm.js's defaults, as the browser client shows them). */
export const DEFAULT_FOREGROUND: RGBA = { r: 255, g: 255, b: 255, a: 255 };
export const DEFAULT_BACKGROUND: RGBA = { r: 0, g: 0, b: 0, a: 255 };

export interface RenderTextOptions {
  /** Only the last N lines (after trailing blank lines are trimmed). */
  tail?: number;
}

export interface RenderHtmlOptions extends RenderTextOptions {
  /** The page title. */
  title?: string;
  foreground?: RGBA;
  background?: RGBA;
}

/** Scrollback and screen as plain text: one line per logical line, trailing blanks trimmed. */
export function renderText(term: Terminal, opts: RenderTextOptions = {}): string {
  const buffer = term.buffer.active;
  return selectLines(buffer, opts.tail)
    .map((rows) => rows.map((y) => buffer.getLine(y)?.translateToString(true) ?? "").join("").trimEnd())
    .join("\n");
}

/** Scrollback and screen as a standalone HTML page, with 16/256/true colours and text styles. */
export function renderHtml(term: Terminal, opts: RenderHtmlOptions = {}): string {
  const buffer = term.buffer.active;
  const theme = { fg: opts.foreground ?? DEFAULT_FOREGROUND, bg: opts.background ?? DEFAULT_BACKGROUND };
  const cell = buffer.getNullCell();
  const body = selectLines(buffer, opts.tail)
    .map((rows) => rows.map((y, i) => rowHtml(buffer, y, cell, theme, i === rows.length - 1)).join(""))
    .join("\n");
  return [
    "<!DOCTYPE html>",
    '<html><head><meta charset="utf-8">',
    `<title>${escapeHtml(opts.title ?? "Terminal")}</title>`,
    "<style>",
    `html,body{margin:0;background:${cssColor(theme.bg)};color:${cssColor(theme.fg)}}`,
    'pre{margin:0;padding:12px;font:14px/1.25 "DejaVu Sans Mono",Menlo,Consolas,monospace;white-space:pre-wrap;overflow-wrap:anywhere}',
    ".b{font-weight:bold}.i{font-style:italic}.u{text-decoration:underline}.s{text-decoration:line-through}",
    ".u.s{text-decoration:underline line-through}.k{animation:k 1s steps(1) infinite}@keyframes k{50%{opacity:0}}",
    "</style></head><body><pre>",
    body,
    "</pre></body></html>",
    "",
  ].join("\n");
}

/** Resolved colours of one cell: `bg` is null where the default background shows through. */
export interface CellColors {
  fg: RGBA;
  bg: RGBA | null;
}

/**
 * The colours a person sees for `cell`, as xterm.js draws them: bold makes the first 8 palette
 * colours bright, inverse swaps foreground and background, dim halves the foreground towards the
 * background, invisible draws the foreground in the background colour.
 */
export function cellColors(cell: IBufferCell, theme: { fg: RGBA; bg: RGBA }): CellColors {
  let fg: RGBA | null = null;
  if (cell.isFgRGB()) fg = rgb(cell.getFgColor());
  else if (cell.isFgPalette()) {
    const i = cell.getFgColor();
    fg = paletteColor(cell.isBold() && i < 8 ? i + 8 : i);
  }
  let bg: RGBA | null = null;
  if (cell.isBgRGB()) bg = rgb(cell.getBgColor());
  else if (cell.isBgPalette()) bg = paletteColor(cell.getBgColor());
  if (cell.isInverse()) [fg, bg] = [bg ?? theme.bg, fg ?? theme.fg];
  const shownFg = fg ?? theme.fg;
  const under = bg ?? theme.bg;
  if (cell.isInvisible()) return { fg: under, bg };
  if (cell.isDim()) return { fg: mix(shownFg, under), bg };
  return { fg: shownFg, bg };
}

/** Row indexes of each logical line to show: trailing blank lines trimmed, then the last `tail`. */
function selectLines(buffer: IBuffer, tail: number | undefined): number[][] {
  const lines: number[][] = [];
  for (let y = 0; y < buffer.length; y++) {
    const line = buffer.getLine(y);
    const last = lines[lines.length - 1];
    if (line?.isWrapped && last) last.push(y);
    else lines.push([y]);
  }
  const blank = (rows: number[]): boolean => rows.every((y) => (buffer.getLine(y)?.translateToString(true) ?? "").trim() === "");
  while (lines.length && blank(lines[lines.length - 1]!)) lines.pop();
  if (tail === undefined) return lines;
  return tail > 0 ? lines.slice(-tail) : [];
}

/** One row as HTML spans; the last row of a logical line drops its trailing default blanks. */
function rowHtml(buffer: IBuffer, y: number, cell: IBufferCell, theme: { fg: RGBA; bg: RGBA }, isLast: boolean): string {
  const line = buffer.getLine(y);
  if (!line) return "";
  const end = isLast ? contentEnd(line, cell) : line.length;
  let html = "";
  let runKey = "";
  let runText = "";
  const flush = (): void => {
    if (runText) html += runKey ? `<span${runKey}>${escapeHtml(runText)}</span>` : escapeHtml(runText);
    runText = "";
  };
  for (let x = 0; x < end; x++) {
    line.getCell(x, cell);
    if (cell.getWidth() === 0) continue; // the right half of a wide character
    const key = spanAttributes(cell, theme);
    if (key !== runKey) {
      flush();
      runKey = key;
    }
    runText += cell.getChars() || " ";
  }
  flush();
  return html;
}

/** Columns up to the last one with a character or a coloured background. */
function contentEnd(line: IBufferLine, cell: IBufferCell): number {
  for (let x = line.length - 1; x >= 0; x--) {
    line.getCell(x, cell);
    if ((cell.getChars() !== "" && cell.getChars() !== " ") || !cell.isBgDefault() || cell.isInverse()) return x + 1;
  }
  return 0;
}

function spanAttributes(cell: IBufferCell, theme: { fg: RGBA; bg: RGBA }): string {
  if (cell.isAttributeDefault()) return "";
  const { fg, bg } = cellColors(cell, theme);
  const classes = [
    cell.isBold() ? "b" : "",
    cell.isItalic() ? "i" : "",
    cell.isUnderline() ? "u" : "",
    cell.isStrikethrough() ? "s" : "",
    cell.isBlink() ? "k" : "",
  ].filter(Boolean).join(" ");
  const style = [sameColor(fg, theme.fg) ? "" : `color:${cssColor(fg)}`, bg ? `background:${cssColor(bg)}` : ""].filter(Boolean).join(";");
  return (classes ? ` class="${classes}"` : "") + (style ? ` style="${style}"` : "");
}

function sameColor(a: RGBA, b: RGBA): boolean {
  return a.r === b.r && a.g === b.g && a.b === b.b && a.a === b.a;
}

/** Halfway between two colours (for dim text). */
function mix(a: RGBA, b: RGBA): RGBA {
  return { r: (a.r + b.r) >> 1, g: (a.g + b.g) >> 1, b: (a.b + b.b) >> 1, a: a.a };
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"]/g, (c) => (c === "&" ? "&amp;" : c === "<" ? "&lt;" : c === ">" ? "&gt;" : "&quot;"));
}
