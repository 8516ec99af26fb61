/**
 * Everything about a headless terminal that a repaint must reproduce, as one comparable value:
 * cells of the scrollback and screen(s) with their attributes and hyperlinks, soft wraps, the
 * cursor (incl. pending wrap and current attributes), saved cursor, scroll region, tab stops,
 * character sets, modes and title. Two terminals with equal states look and behave alike for any
 * further output. Used by the repaint tests and the bench's burst check.
 */
import type { IBuffer, Terminal } from "@xterm/headless";
import { coreOf, type Core, type CoreBuffer, type CoreCell } from "./xterm-core.ts";

/**
 * A JSON-comparable description of `term`'s state (see the module comment), with at most
 * `scrollback` lines of scrollback (a repaint carries REPAINT_SCROLLBACK_LINES).
 */
export function terminalState(term: Terminal, scrollback = Infinity): Record<string, unknown> {
  const core = coreOf(term);
  const alt = term.buffer.active.type === "alternate";
  const link = (id: number) => {
    const d = id ? core.link(id) : undefined;
    return d ? `${d.id ?? ""};${d.uri}` : "";
  };
  return {
    size: [term.cols, term.rows],
    type: term.buffer.active.type,
    normal: { lines: lines(term.buffer.normal, link, Math.max(0, term.buffer.normal.length - term.rows - scrollback)), ...bufferState(core.normal, term.cols, !alt) },
    ...(alt ? { alt: { lines: lines(term.buffer.alternate, link, 0), ...bufferState(core.alt, term.cols, true) } } : {}),
    attr: cursorAttr(core.curAttr, link),
    modes: { ...term.modes },
    cursorHidden: core.cursorHidden,
    cursorStyle: [core.cursorStyle, core.cursorBlink],
    mouseEncoding: core.mouseEncoding,
    charsets: [core.charsets.glevel, [0, 1, 2, 3].map((g) => name(core.charsets.list[g])), name(core.charsets.charset)],
    title: [core.title, core.iconName],
  };
}

/**
 * The attributes the next printed character gets. The hyperlink applies only while bg's
 * HAS_EXTENDED flag is set: DECRC clears it and leaves the link behind, and a repaint does not
 * carry that leftover. The underline style shows only with the underline flag.
 */
function cursorAttr(a: Core["curAttr"], link: (id: number) => string): unknown[] {
  const linked = a.bg & (1 << 28) ? a.extended.urlId : 0;
  return [word(a.fg, false), word(a.bg, true), a.fg & UNDERLINE ? a.extended.underlineStyle : 0, a.extended.underlineColor, link(linked)];
}

/** FgFlags.UNDERLINE: the underline style and colour only show with it (SGR 4 sets the style anew). */
const UNDERLINE = 1 << 28;

/**
 * An attribute word as it draws: the HAS_EXTENDED flag (bit 28 of bg) dropped, and palette
 * colours cut to their 8 bits (xterm.js leaves stale RGB bits above them after `38;2;…` then `31`).
 */
function word(w: number, isBg: boolean): number {
  let v = isBg ? w & ~(1 << 28) : w;
  const mode = v & 0x3000000;
  if (mode === 0x1000000 || mode === 0x2000000) v &= ~0xffff00;
  return v >>> 0;
}

function name(set: Record<string, string> | undefined): string {
  return set === undefined ? "B" : JSON.stringify(Object.entries(set).slice(0, 3));
}

function lines(buffer: IBuffer, link: (id: number) => string, from: number): string[] {
  const out: string[] = [];
  const c = buffer.getNullCell() as CoreCell;
  for (let y = from; y < buffer.length; y++) {
    const line = buffer.getLine(y)!;
    // The first line's wrap flag is left out: nothing can mark a first line as a continuation.
    let row = line.isWrapped && y > from ? "+" : "";
    let prev = "";
    for (let x = 0; x < line.length; x++) {
      line.getCell(x, c);
      const ext = c.hasExtendedAttrs() ? c.extended : undefined;
      // The HAS_EXTENDED flag (bg bit 28) only says whether `ext` is in use: compare `ext` itself.
      const attrs = `${word(c.fg, false)}/${word(c.bg, true)}/${ext ? `${c.fg & UNDERLINE ? ext.underlineStyle : 0}/${c.fg & UNDERLINE ? ext.underlineColor : 0}/${link(ext.urlId)}` : "0/0/"}`;
      row += `${attrs === prev ? "" : `{${attrs}}`}${c.getWidth() === 0 ? "" : c.getChars() || "·"}${c.getWidth() === 2 ? "²" : ""}`;
      prev = attrs;
    }
    out.push(row);
  }
  return out;
}

function bufferState(b: CoreBuffer, cols: number, active: boolean): Record<string, unknown> {
  const tabs: number[] = [];
  for (let x = 0; x < cols; x++) if (b.tabs[x]) tabs.push(x);
  return {
    ...(active ? { cursor: [b.x, b.y] } : {}),
    region: [b.scrollTop, b.scrollBottom],
    tabs: tabs.join(","),
    // As DECRC will restore it: clamped to the screen.
    saved: [Math.min(b.savedX || 0, cols - 1), Math.max(0, b.savedY - b.ybase), word(b.savedCurAttrData.fg, false), word(b.savedCurAttrData.bg, true), b.savedCharset === undefined ? "B" : JSON.stringify(Object.entries(b.savedCharset).slice(0, 3))],
  };
}
