/**
 * The escape sequences a repaint (snapshot.ts) writes for one cell's attributes (SGR from
 * xterm.js's attribute words) and for the terminal-wide state: modes, window title and icon
 * name, character sets. Each one is what a fresh terminal needs to reach that state.
 */
import type { Terminal } from "@xterm/headless";
import { charsetFinal, type Charset, type Core, type CoreCell } from "./xterm-core.ts";

export const ESC = "\x1b";
export const CSI = "\x1b[";

// Colour modes of xterm.js's attribute words (Attributes.CM_*), and the colour bits.
const CM_MASK = 0x3000000;
const CM_P16 = 0x1000000;
const CM_P256 = 0x2000000;
const CM_RGB = 0x3000000;
const RGB_MASK = 0xffffff;

/** SGR for xterm.js attribute words (FgFlags/BgFlags in their high bits) from a reset. */
export function sgr(fg: number, bg: number, ext: CoreCell["extended"] | undefined): string {
  const p = ["0"];
  color(p, fg, 30, 90, 38);
  color(p, bg, 40, 100, 48);
  // FgFlags: INVERSE 1<<26, BOLD 1<<27, UNDERLINE 1<<28, BLINK 1<<29, INVISIBLE 1<<30, STRIKETHROUGH 1<<31.
  // BgFlags: ITALIC 1<<26, DIM 1<<27, OVERLINE 1<<30.
  if (fg & (1 << 27)) p.push("1");
  if (bg & (1 << 27)) p.push("2");
  if (bg & (1 << 26)) p.push("3");
  if (fg & (1 << 28)) {
    const style = ext?.underlineStyle ?? 1;
    p.push(style > 1 ? `4:${style}` : "4");
  }
  if (fg & (1 << 29)) p.push("5");
  if (fg & (1 << 26)) p.push("7");
  if (fg & (1 << 30)) p.push("8");
  if (fg & (1 << 31)) p.push("9");
  if (bg & (1 << 30)) p.push("53");
  const uc = ext?.underlineColor ?? 0;
  if (uc & CM_MASK) {
    const mode = uc & CM_MASK;
    p.push(mode === CM_RGB ? `58:2::${(uc >> 16) & 255}:${(uc >> 8) & 255}:${uc & 255}` : `58:5:${uc & 255}`);
  }
  return `${CSI}${p.join(";")}m`;
}

function color(p: string[], word: number, base: number, bright: number, extended: number): void {
  const mode = word & CM_MASK;
  const c = mode === CM_RGB ? word & RGB_MASK : word & 0xff;
  if (mode === CM_P16) p.push(String(c < 8 ? base + c : bright + c - 8));
  else if (mode === CM_P256) p.push(`${extended};5;${c & 255}`);
  else if (mode === CM_RGB) p.push(`${extended};2;${(c >> 16) & 255};${(c >> 8) & 255};${c & 255}`);
}

/** The modes a repaint leaves on (a fresh terminal starts with them off, and auto-wrap on). */
export function modes(term: Terminal, core: Core): string {
  const m = term.modes;
  let out = "";
  if (m.applicationCursorKeysMode) out += `${CSI}?1h`;
  if (m.applicationKeypadMode) out += `${CSI}?66h`;
  if (m.bracketedPasteMode) out += `${CSI}?2004h`;
  if (m.insertMode) out += `${CSI}4h`;
  if (m.reverseWraparoundMode) out += `${CSI}?45h`;
  if (m.sendFocusMode) out += `${CSI}?1004h`;
  if (!m.wraparoundMode) out += `${CSI}?7l`;
  out += { none: "", x10: `${CSI}?9h`, vt200: `${CSI}?1000h`, drag: `${CSI}?1002h`, any: `${CSI}?1003h` }[m.mouseTrackingMode];
  if (core.mouseEncoding === "SGR") out += `${CSI}?1006h`;
  else if (core.mouseEncoding === "SGR_PIXELS") out += `${CSI}?1016h`;
  if (core.cursorHidden) out += `${CSI}?25l`;
  if (core.cursorStyle) {
    const base = core.cursorStyle === "underline" ? 3 : core.cursorStyle === "bar" ? 5 : 1;
    out += `${CSI}${core.cursorBlink === false ? base + 1 : base} q`;
  } else if (core.cursorBlink !== undefined) {
    out += `${CSI}?12${core.cursorBlink ? "h" : "l"}`;
  }
  return out;
}

/** OSC 2 / OSC 1 for the window title and icon name (control characters dropped). */
export function title(core: Core): string {
  const clean = (s: string) => s.replace(/[\x00-\x1f\x7f-\x9f]/g, "");
  if (core.title && core.title === core.iconName) return `\x1b]0;${clean(core.title)}\x07`;
  let out = "";
  if (core.title) out += `\x1b]2;${clean(core.title)}\x07`;
  if (core.iconName) out += `\x1b]1;${clean(core.iconName)}\x07`;
  return out;
}

/** Designates G0–G3 and shifts the active one in; written after all text. */
export function charsets(core: Core): string {
  const { list, glevel } = core.charsets;
  const designators = ["(", ")", "*", "+"];
  let out = "";
  list.forEach((set: Charset, g: number) => {
    const final = charsetFinal(set);
    if (set !== undefined && final && designators[g]) out += `${ESC}${designators[g]}${final}`;
  });
  if (glevel === 1) out += "\x0e";
  else if (glevel === 2) out += `${ESC}n`;
  else if (glevel === 3) out += `${ESC}o`;
  return out;
}
