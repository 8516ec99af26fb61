/**
 * Serializes a headless terminal into the bytes that repaint it on a fresh client terminal:
 * what a late joiner receives as its first OUTPUT frame.
 *
 * SerializeAddon writes the cells of both buffers and a few modes. A full-screen program (vi,
 * less, top) also depends on state it leaves out, which this module adds from the terminal's
 * core: the scroll region, cursor visibility and shape, the mouse report encoding, origin mode
 * (which changes what a cursor position means), the active character set (line drawing), and an
 * absolute final cursor position. It also keeps the normal screen's last colours from leaking
 * into the alternate screen's first cells.
 */
import type { Terminal } from "@xterm/headless";
import { SerializeAddon } from "@xterm/addon-serialize";

const addons = new WeakMap<Terminal, SerializeAddon>();

const ALT_SCREEN_ON = "\x1b[?1049h\x1b[H";

/** Bytes that, written to an empty terminal of the same size, reproduce `term`'s screen. */
export function serializeScreen(term: Terminal): string {
  let addon = addons.get(term);
  if (!addon) {
    addon = new SerializeAddon();
    term.loadAddon(addon as never);
    addons.set(term, addon);
  }
  const core = coreOf(term);
  const alt = term.buffer.active.type === "alternate";
  // Reset first so a client that had stale content starts from a clean screen.
  let out = "\x1bc";
  if (!alt) {
    out += addon.serialize({ excludeModes: true });
  } else {
    // The addon ends the normal screen with the *current* (alternate screen's) colours and then
    // writes the alternate screen assuming default ones; reset in between.
    const normal = addon.serialize({ excludeModes: true, excludeAltBuffer: true });
    const both = addon.serialize({ excludeModes: true });
    if (both.startsWith(normal + ALT_SCREEN_ON)) {
      const region = scrollRegion(core?.normalBuffer, term.rows);
      // DECSTBM homes the cursor; put it back, since entering the alternate screen saves it.
      const back = region ? `\x1b[${term.buffer.normal.cursorY + 1};${term.buffer.normal.cursorX + 1}H` : "";
      out += normal + region + back + "\x1b[0m" + ALT_SCREEN_ON + both.slice(normal.length + ALT_SCREEN_ON.length);
    } else {
      out += both; // the addon's layout changed in a later version: its own output, less exact
    }
  }
  out += scrollRegion(core?.activeBuffer, term.rows);
  out += modes(term, core);
  out += cursorPosition(term, core);
  out += charset(core);
  return out;
}

/** `CSI top;bottom r` when the buffer has a scroll region other than the whole screen (it homes the cursor). */
function scrollRegion(buffer: CoreBuffer | undefined, rows: number): string {
  if (!buffer || typeof buffer.scrollTop !== "number" || typeof buffer.scrollBottom !== "number") return "";
  if (buffer.scrollTop === 0 && buffer.scrollBottom === rows - 1) return "";
  return `\x1b[${buffer.scrollTop + 1};${buffer.scrollBottom + 1}r`;
}

/** Modes the addon writes plus those it leaves out. Origin mode comes last: it homes the cursor. */
function modes(term: Terminal, core: Core | undefined): string {
  const m = term.modes;
  let out = "";
  if (m.applicationCursorKeysMode) out += "\x1b[?1h";
  if (m.applicationKeypadMode) out += "\x1b[?66h";
  if (m.bracketedPasteMode) out += "\x1b[?2004h";
  if (m.insertMode) out += "\x1b[4h";
  if (m.reverseWraparoundMode) out += "\x1b[?45h";
  if (m.sendFocusMode) out += "\x1b[?1004h";
  if (!m.wraparoundMode) out += "\x1b[?7l";
  const tracking = { none: "", x10: "\x1b[?9h", vt200: "\x1b[?1000h", drag: "\x1b[?1002h", any: "\x1b[?1003h" }[m.mouseTrackingMode];
  out += tracking;
  const encoding = core?.coreMouseService?.activeEncoding;
  if (encoding === "SGR") out += "\x1b[?1006h";
  else if (encoding === "SGR_PIXELS") out += "\x1b[?1016h";
  const service = core?.coreService;
  if (service?.isCursorHidden) out += "\x1b[?25l";
  const shape = service?.decPrivateModes?.cursorStyle;
  if (shape) {
    const blink = service.decPrivateModes?.cursorBlink !== false;
    const base = shape === "underline" ? 3 : shape === "bar" ? 5 : 1;
    out += `\x1b[${blink ? base : base + 1} q`;
  }
  if (m.originMode) out += "\x1b[?6h";
  return out;
}

/** An absolute cursor position (relative to the scroll region in origin mode). */
function cursorPosition(term: Terminal, core: Core | undefined): string {
  const b = term.buffer.active;
  const top = term.modes.originMode ? core?.activeBuffer?.scrollTop ?? 0 : 0;
  return `\x1b[${b.cursorY - top + 1};${b.cursorX + 1}H`;
}

/** Re-selects a G0/G1 line-drawing set (`ESC ( 0`) and shift state, written after all text. */
function charset(core: Core | undefined): string {
  const cs = core?._charsetService;
  if (!cs || !Array.isArray(cs._charsets)) return "";
  let out = "";
  const designators = ["(", ")", "*", "+"];
  cs._charsets.forEach((set, g) => {
    if (set && set["q"] === "\u2500" && designators[g]) out += `\x1b${designators[g]}0`;
  });
  if (cs.glevel === 1) out += "\x0e";
  return out;
}

/*
 * The parts of xterm.js's core read here, typed loosely and each checked before use: they are
 * not public API (SerializeAddon reads the core the same way), and a change in a later version
 * makes the repaint less exact rather than broken. test/worker/snapshot.test.ts pins them.
 */
interface CoreBuffer {
  scrollTop?: number;
  scrollBottom?: number;
}
interface Core {
  activeBuffer?: CoreBuffer;
  normalBuffer?: CoreBuffer;
  coreService?: { isCursorHidden?: boolean; decPrivateModes?: { cursorStyle?: string; cursorBlink?: boolean } };
  coreMouseService?: { activeEncoding?: string };
  _charsetService?: { glevel?: number; _charsets?: (Record<string, string> | undefined)[] };
}

function coreOf(term: Terminal): Core | undefined {
  const core = (term as unknown as { _core?: Record<string, unknown> })._core;
  if (!core) return undefined;
  const buffers = (core["_bufferService"] as { buffers?: { active?: CoreBuffer; normal?: CoreBuffer } } | undefined)?.buffers;
  return {
    activeBuffer: buffers?.active,
    normalBuffer: buffers?.normal,
    coreService: core["coreService"] as Core["coreService"],
    coreMouseService: core["coreMouseService"] as Core["coreMouseService"],
    _charsetService: core["_charsetService"] as Core["_charsetService"],
  };
}
