/**
 * Serializes a headless terminal into the bytes that repaint it on a fresh client terminal of the
 * same size: what a late joiner receives as its first OUTPUT frame. Written to an empty
 * terminal, then followed by the rest of the stream, the repaint leaves that terminal in the
 * state of one that saw the stream from the start (test/worker/repaint-property.test.ts checks
 * this as a property over generated streams).
 *
 * What it carries: every cell of the scrollback and both screens (characters incl. wide and
 * combining ones, colours, attributes, underline style and colour, hyperlinks, soft wraps, erased
 * cells' background), the cursor (position, pending wrap, attributes, open hyperlink), each
 * screen's saved cursor (DECSC), scroll region and tab stops, the character sets G0–G3 and
 * which is shifted in, the modes (application cursor/keypad, bracketed paste, insert, origin,
 * auto-wrap, reverse wrap, focus, mouse tracking and encoding, cursor style and visibility) and
 * the window title and icon name. SerializeAddon covers a subset of the cells and modes; this
 * writer is ours so every part above is exact.
 *
 * Known limits: while the normal screen is active, the (cleared) alternate screen's saved cursor
 * is not carried; a saved cursor whose row has scrolled into the scrollback comes back on the top
 * row (as xterm.js restores it anyway); a cursor in the pending-wrap state over an erased last
 * cell gets a space there.
 */
import type { IBufferLine, Terminal } from "@xterm/headless";
import { charsetFinal, coreOf, parserState, type Core, type CoreBuffer, type CoreCell } from "./xterm-core.ts";
import { charsets, CSI, ESC, modes, sgr, title } from "./sequences.ts";

const OSC8_CLOSE = "\x1b]8;;\x1b\\";

/**
 * Scrollback lines a repaint carries, at most. A joiner gets the screen and this much history
 * (about 80 KB of text): sending the whole 5,000-line scrollback to every joiner made joins during
 * a flood cost more than the flood.
 */
export const REPAINT_SCROLLBACK_LINES = 1_000;

/**
 * Bytes that, written to an empty terminal of the same size, reproduce `term`'s state (with at
 * most `scrollback` lines of its scrollback).
 */
export function serializeScreen(term: Terminal, scrollback = REPAINT_SCROLLBACK_LINES): string {
  const core = coreOf(term);
  const w = new Writer(term, core);
  // Reset first so a client that had stale content starts from a clean terminal.
  w.out.push(`${ESC}c`);
  const alt = term.buffer.active.type === "alternate";
  w.lines(term.buffer.normal, Math.max(0, term.buffer.normal.length - term.rows - scrollback));
  w.bufferState(core.normal);
  if (alt) {
    // 47 (unlike 1049) switches without saving the cursor, so the normal screen's DECSC stays ours.
    w.out.push(`${CSI}0m${CSI}?47h${CSI}H`);
    w.lines(term.buffer.alternate, 0);
    w.bufferState(core.alt);
  }
  const m = term.modes;
  const top = m.originMode ? core.active.scrollTop : 0;
  // Origin mode homes the cursor, and the cursor is then addressed inside the scroll region.
  if (m.originMode) w.out.push(`${CSI}?6h`);
  // The cursor before the modes: placing it in the pending-wrap state prints a cell, which
  // insert mode or a line-drawing character set would disturb.
  w.cursor(term.buffer.active, core.active, top);
  w.out.push(modes(term, core), title(core), charsets(core));
  const { charset, list, glevel } = core.charsets;
  if (charset !== list[glevel] && charset === core.active.savedCharset) {
    // Only DECRC makes the active set differ from the one shifted in: do the same, then put the
    // cursor back (DECRC moved it).
    w.out.push(`${ESC}8`);
    w.cursor(term.buffer.active, core.active, top);
  }
  // The hyperlink applies only while the HAS_EXTENDED flag (bg bit 28) is set (DECRC clears it
  // and leaves the link behind); the underline colour is kept either way, as SGR 58 keeps it.
  const ext = core.curAttr.extended;
  w.attrs(core.curAttr.fg, core.curAttr.bg, { underlineStyle: ext.underlineStyle, underlineColor: ext.underlineColor, urlId: core.curAttr.bg & (1 << 28) ? ext.urlId : 0 }, true);
  w.rejoin(term.buffer.active, core.active, top, m.insertMode);
  return w.out.join("");
}

/** Writes cells, tracking the client's attributes and open hyperlink to send only changes. */
class Writer {
  readonly out: string[] = [];
  private readonly cols: number;
  private readonly cell: CoreCell;
  private readonly peek: CoreCell;
  /** The attribute key the client has now; null when unknown. */
  private sgrKey: string | null = null;
  /** The hyperlink id the client has open (0: none). */
  private urlId = 0;

  constructor(private readonly term: Terminal, private readonly core: Core) {
    this.cols = term.cols;
    this.cell = term.buffer.normal.getNullCell() as CoreCell;
    this.peek = term.buffer.normal.getNullCell() as CoreCell;
  }

  /** Every line of `buffer` from line `from`, top to bottom, scrolling as the original did. */
  lines(buffer: Terminal["buffer"]["normal"], from: number): void {
    let cursor = 0; // the client's cursor column on the current row; `cols` is pending wrap
    for (let y = from; y < buffer.length; y++) {
      const line = buffer.getLine(y)!;
      let start = 0;
      if (y > from) {
        const prev = buffer.getLine(y - 1)!;
        if (line.isWrapped) start = this.wrapInto(prev, line, cursor);
        else if (this.wideRemains(prev)) {
          // What a wide character that did not fit leaves, on a row the next one no longer
          // continues: wrap one there, then erase the new row (EL at column 0 clears its wrap flag).
          prev.getCell(this.cols - 1, this.cell);
          this.out.push(`${CSI}${this.cols}G`);
          this.attrs(this.cell.fg, this.cell.bg, this.cell.hasExtendedAttrs() ? this.cell.extended : undefined, false);
          this.out.push(`${WIDE_PLACEHOLDER}\r`);
          this.reset();
          this.out.push(`${CSI}K`);
        } else this.out.push("\r\n");
      }
      const next = y + 1 < buffer.length ? buffer.getLine(y + 1) : undefined;
      cursor = this.row(line, start, !!next?.isWrapped, !!next);
    }
    this.reset();
  }

  /**
   * Moves onto `line` so that it is marked as a soft-wrapped continuation: by printing past the
   * end of the previous row. If that row's last cell is empty, a placeholder is printed there and
   * erased again after the wrap; if this row's first cell is empty, likewise. Returns the column
   * the cursor is left at, every cell before it written.
   */
  private wrapInto(prev: IBufferLine, line: IBufferLine, cursor: number): number {
    const c = this.cell;
    let fixPrev = cursor < this.cols;
    if (fixPrev && this.wideWraps(prev, line)) {
      // A wide character that did not fit left the last cell empty in its attributes: do the same.
      this.out.push(`${CSI}${this.cols}G`);
      fixPrev = false;
    } else if (fixPrev) {
      this.out.push(`${CSI}${this.cols}G`);
      this.reset();
      this.out.push(" ");
    }
    line.getCell(0, c);
    let at = 0;
    if (c.getWidth() > 0 && c.getChars() !== "") {
      this.print(c);
      at = c.getWidth();
    } else {
      this.reset();
      this.out.push(" \b");
      this.erase(c, 1);
    }
    if (fixPrev) {
      prev.getCell(this.cols - 1, c);
      this.out.push(`${CSI}A${CSI}${this.cols}G`);
      this.erase(c, 1);
      this.out.push(`${CSI}B${CSI}${at + 1}G`);
    }
    return at;
  }

  /** Whether `prev` ends in an empty cell with a foreground (erasing never leaves one: a wide character did). */
  private wideRemains(prev: IBufferLine): boolean {
    prev.getCell(this.cols - 1, this.peek);
    return this.peek.getChars() === "" && this.peek.getWidth() === 1 && this.peek.fg !== 0;
  }

  /** Whether `prev` ends in the empty cell a wide character leaves when it wraps onto `line`. */
  private wideWraps(prev: IBufferLine, line: IBufferLine): boolean {
    const c = this.cell;
    prev.getCell(this.cols - 1, c);
    if (c.getChars() !== "" || c.getWidth() !== 1) return false;
    const key = attrKey(c.fg, c.bg, c) + ":" + (c.hasExtendedAttrs() ? c.extended.urlId : 0);
    line.getCell(0, c);
    return c.getWidth() === 2 && attrKey(c.fg, c.bg, c) + ":" + (c.hasExtendedAttrs() ? c.extended.urlId : 0) === key;
  }

  /**
   * Writes one row's cells from column `start`, where the cursor is; returns the cursor's column.
   * An empty last cell with colours is left to `wrapInto` when the next row continues this one.
   * An empty cell with a neighbour's attributes is what overwriting half of a wide character
   * leaves: it is made the same way (a wide placeholder, then the neighbour over half of it).
   */
  private row(line: IBufferLine, start: number, nextWrapped: boolean, hasNext: boolean): number {
    const c = this.cell;
    const peek = this.peek;
    const cols = this.cols;
    let cursor = start;
    let skip = 0; // cells to move over before the next character
    let orphanBefore = false; // the cell before this one is the left half's remains
    const move = (n: number) => {
      if (n > 0) this.out.push(`${CSI}${n}C`);
      cursor += n;
    };
    for (let x = start; x < cols; x++) {
      line.getCell(x, c);
      const width = c.getWidth();
      if (width === 0) continue; // the right half of a wide character
      if (c.getChars() === "") {
        if ((c.fg === 0 && c.bg === 0) || (x === cols - 1 && (nextWrapped || (hasNext && c.fg !== 0)))) {
          skip++;
          continue;
        }
        if (x + 1 < cols && line.getCell(x + 1, peek) && isOrphanOf(c, peek)) {
          skip++;
          orphanBefore = true;
          continue;
        }
        // Erased cells keep the eraser's background: erase again with it (ECH leaves the cursor).
        let run = 1;
        const key = attrKey(c.fg, c.bg, undefined);
        while (x + run < cols) {
          line.getCell(x + run, peek);
          if (peek.getChars() !== "" || peek.getWidth() !== 1 || attrKey(peek.fg, peek.bg, undefined) !== key) break;
          run++;
        }
        move(skip);
        this.erase(c, run);
        skip = run;
        x += run - 1;
        continue;
      }
      if (orphanBefore && width === 1) {
        move(skip - 1);
        this.out.push(`${WIDE_PLACEHOLDER}${CSI}${x + 1}G`); // CHA: CUB from a pending wrap lands short
        this.print(c);
        cursor = x + 1;
        skip = 0;
        orphanBefore = false;
        continue;
      }
      move(skip);
      skip = 0;
      orphanBefore = false;
      if (x < cursor) {
        // Over the right half of the wide character before: only auto-wrap off does this, printing
        // at the last column. Do the same.
        if (cursor === cols && x === cols - 1) {
          this.out.push(`${CSI}?7l`);
          this.print(c);
          this.out.push(`${CSI}?7h`);
        }
        continue;
      }
      if (width === 1 && x + 1 < cols && !(nextWrapped && x + 1 === cols - 1) && line.getCell(x + 1, peek) && isOrphanOf(peek, c)) {
        this.out.push(`${WIDE_PLACEHOLDER}${CSI}${x + 1}G`);
        this.print(c);
        cursor += 1;
        skip = 1;
        x++;
        continue;
      }
      this.print(c);
      cursor += width;
    }
    return cursor;
  }

  /** Prints the character of a cell with its attributes. */
  private print(c: CoreCell): void {
    this.attrs(c.fg, c.bg, c.hasExtendedAttrs() ? c.extended : undefined, false);
    this.out.push(c.getChars());
  }

  /** Erases `n` cells at the cursor with the attributes of empty cell `c` (ECH keeps the background). */
  private erase(c: CoreCell, n: number): void {
    this.attrs(c.fg, c.bg, undefined, false);
    this.out.push(`${CSI}${n}X`);
  }

  /** Makes the client's attributes (and open hyperlink) those given. */
  attrs(fg: number, bg: number, ext: CoreCell["extended"] | undefined, final: boolean): void {
    const key = attrKey(fg, bg, ext ? { extended: ext } : undefined);
    if (key !== this.sgrKey || final) {
      this.out.push(sgr(fg, bg, ext));
      this.sgrKey = key;
    }
    const urlId = ext?.urlId ?? 0;
    if (urlId !== this.urlId || (final && urlId)) {
      const data = urlId ? this.core.link(urlId) : undefined;
      this.out.push(data ? `\x1b]8;${data.id ? `id=${data.id}` : ""};${data.uri}\x1b\\` : OSC8_CLOSE);
      this.urlId = data ? urlId : 0;
    }
  }

  /** Default attributes and no hyperlink. */
  reset(): void {
    if (this.sgrKey !== "0:0") this.out.push(`${CSI}0m`);
    this.sgrKey = "0:0";
    if (this.urlId) this.out.push(OSC8_CLOSE);
    this.urlId = 0;
  }

  /** A buffer's tab stops, scroll region and saved cursor (DECSC), after its cells. */
  bufferState(b: CoreBuffer): void {
    const cols = this.cols;
    let tabs = "";
    let isDefault = true;
    for (let x = 0; x < cols; x++) {
      const set = !!b.tabs[x];
      if (set !== (x % 8 === 0)) isDefault = false;
      if (set) tabs += `${CSI}${x + 1}G${ESC}H`;
    }
    if (!isDefault) this.out.push(`${CSI}3g`, tabs);
    const rows = this.term.rows;
    if (b.scrollTop !== 0 || b.scrollBottom !== rows - 1) this.out.push(`${CSI}${b.scrollTop + 1};${b.scrollBottom + 1}r`);
    // DECSC: position (DECRC clamps to the screen), colours, and the GL character set.
    const y = Math.max(0, b.savedY - b.ybase);
    const x = Math.min(b.savedX || 0, cols - 1);
    this.out.push(`${CSI}${y + 1};${x + 1}H`);
    this.attrs(b.savedCurAttrData.fg, b.savedCurAttrData.bg, undefined, true);
    const final = charsetFinal(b.savedCharset);
    this.out.push(`${ESC}(${final ?? "B"}\x0f${ESC}7${ESC}(B`);
    this.reset();
  }

  /** Puts the cursor where the buffer has it, in the pending-wrap state if it is there. */
  cursor(api: Terminal["buffer"]["active"], b: CoreBuffer, top: number): void {
    const cols = this.cols;
    if (b.x < cols) {
      this.out.push(`${CSI}${b.y - top + 1};${b.x + 1}H`);
      return;
    }
    // Pending wrap: print the last cell again, which leaves the cursor just past it.
    if (this.reprint(api, b, cols - 1, top)) return this.reset();
    // The last cell is empty. A blank row: print there, then erase the row (EL keeps the cursor).
    const line = api.getLine(b.ybase + b.y);
    const c = this.cell;
    line?.getCell(0, c);
    const key = attrKey(c.fg, c.bg, undefined);
    let blank = !!line;
    for (let x = 0; blank && x < cols; x++) {
      line!.getCell(x, c);
      blank = c.getChars() === "" && attrKey(c.fg, c.bg, undefined) === key;
    }
    this.out.push(`${CSI}${b.y - top + 1};${cols}H`);
    if (blank) {
      this.attrs(c.fg, c.bg, undefined, false);
      this.out.push(` ${CSI}2K`);
    } else if (api.type === "normal") {
      // Make the pending wrap on the alternate screen and bring it back: switching screens
      // carries the cursor over, and the normal screen's cells stay as they are.
      this.reset();
      this.out.push(`${CSI}?47h${CSI}${b.y + 1};${cols}H ${CSI}?47l`);
    } else {
      this.reset();
      this.out.push(" "); // inexact: a space where the empty cell was
    }
    this.reset();
  }

  /** Prints the character before the cursor again, last, so a combining mark that follows joins it. */
  rejoin(api: Terminal["buffer"]["active"], b: CoreBuffer, top: number, insertMode: boolean): void {
    if (insertMode || b.x === 0 || parserState(this.term).joinState === 0) return;
    // The character was printed with the current attributes, which are already set.
    this.reprint(api, b, Math.min(b.x, this.cols) - 1, top, true);
  }

  /** Prints the character in column `x` of the cursor's row again (from its first cell if wide). */
  private reprint(api: Terminal["buffer"]["active"], b: CoreBuffer, x: number, top: number, keepAttrs = false): boolean {
    const line = api.getLine(b.ybase + b.y);
    if (!line) return false;
    const c = this.cell;
    line.getCell(x, c);
    if (c.getWidth() === 0 && x > 0) line.getCell(--x, c);
    if (c.getChars() === "") return false;
    this.out.push(`${CSI}${b.y - top + 1};${x + 1}H`);
    if (keepAttrs) this.out.push(c.getChars());
    else this.print(c);
    return true;
  }
}

/** A wide character printed where half of it will be overwritten (U+3000 IDEOGRAPHIC SPACE). */
const WIDE_PLACEHOLDER = "\u3000";

/** Whether `empty` is an empty cell in `printed`'s attributes (hyperlink included), not default ones. */
function isOrphanOf(empty: CoreCell, printed: CoreCell): boolean {
  if (empty.getChars() !== "" || empty.getWidth() !== 1 || (empty.fg === 0 && empty.bg === 0)) return false;
  if (printed.getChars() === "" || printed.getWidth() !== 1) return false;
  return fullKey(empty) === fullKey(printed);
}

function fullKey(c: CoreCell): string {
  return `${attrKey(c.fg, c.bg, c)}:${c.hasExtendedAttrs() ? c.extended.urlId : 0}`;
}

/** A comparable key for a cell's (or the cursor's) attributes, hyperlink excluded. */
function attrKey(fg: number, bg: number, cell: { extended?: CoreCell["extended"]; hasExtendedAttrs?(): number | boolean } | undefined): string {
  const ext = cell && (!cell.hasExtendedAttrs || cell.hasExtendedAttrs()) ? cell.extended : undefined;
  return ext && (ext.underlineStyle || ext.underlineColor) ? `${fg}:${bg}:${ext.underlineStyle}:${ext.underlineColor}` : `${fg}:${bg}`;
}
