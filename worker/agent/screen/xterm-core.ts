/**
 * Typed access to the parts of xterm.js's core (version 6) that a repaint needs and the public
 * API does not expose: saved cursors, tab stops, scroll regions, character sets, the cursor's
 * current attributes and hyperlink, the window title. SerializeAddon reads the core the same
 * way. Each field is checked where it is read; test/worker/repaint-property.test.ts pins them,
 * so an xterm.js upgrade that moves one fails there rather than in a user's terminal.
 */
import xterm from "@xterm/headless";
import { guardEraseAbove, type XtermLike } from "../../../shared/xterm-workarounds.ts";
import type { IBufferCell, Terminal } from "@xterm/headless";

/** One of the terminal's two buffers, as the core holds it. */
export interface CoreBuffer {
  x: number;
  y: number;
  ybase: number;
  scrollTop: number;
  scrollBottom: number;
  savedX: number;
  savedY: number;
  savedCurAttrData: { fg: number; bg: number };
  /** The GL character set saved by DECSC (undefined: US ASCII). */
  savedCharset: Charset | undefined;
  /** Tab stops: column → true. */
  tabs: Record<number, boolean | undefined>;
}

/** A character set: a translation table, or undefined for US ASCII. */
export type Charset = Record<string, string> | undefined;

/** The cell fields behind the public getters: colours with flag bits, and extended attributes. */
export interface CoreCell extends IBufferCell {
  fg: number;
  bg: number;
  extended: { underlineStyle: number; underlineColor: number; urlId: number };
  hasExtendedAttrs(): number | boolean;
}

export interface Core {
  normal: CoreBuffer;
  alt: CoreBuffer;
  active: CoreBuffer;
  /** The attributes the next printed character gets. */
  curAttr: { fg: number; bg: number; extended: { underlineStyle: number; underlineColor: number; urlId: number } };
  charsets: { glevel: number; charset: Charset; list: Charset[] };
  cursorHidden: boolean;
  cursorStyle: string | undefined;
  cursorBlink: boolean | undefined;
  mouseEncoding: string;
  title: string;
  iconName: string;
  /** The URI and optional `id=` parameter of a hyperlink id found in a cell. */
  link(urlId: number): { uri: string; id?: string } | undefined;
}

/** Reads the core of an @xterm/headless 6 terminal; throws if its layout is not the expected one. */
export function coreOf(term: Terminal): Core {
  const core = (term as unknown as { _core?: Record<string, any> })._core;
  const buffers = core?.["_bufferService"]?.buffers;
  const input = core?.["_inputHandler"];
  const charsets = core?.["_charsetService"];
  const coreService = core?.["coreService"];
  if (!core || !buffers?.normal || !buffers.alt || !input?._curAttrData || !charsets || !Array.isArray(charsets._charsets) || !coreService) {
    throw new Error("xterm.js core layout not recognised: the repaint needs @xterm/headless 6");
  }
  const links = core["_oscLinkService"];
  return {
    normal: buffers.normal,
    alt: buffers.alt,
    active: buffers.active,
    curAttr: input._curAttrData,
    charsets: { glevel: charsets.glevel, charset: charsets.charset, list: charsets._charsets },
    cursorHidden: !!coreService.isCursorHidden,
    cursorStyle: coreService.decPrivateModes?.cursorStyle,
    cursorBlink: coreService.decPrivateModes?.cursorBlink,
    mouseEncoding: String(core["coreMouseService"]?.activeEncoding ?? "DEFAULT"),
    title: String(input._windowTitle ?? ""),
    iconName: String(input._iconName ?? ""),
    link: (urlId) => links?.getLinkData?.(urlId),
  };
}

/** `ESC ( x` final bytes of the character sets xterm.js knows, for designating them again. */
const CHARSET_FINALS = "0AB4C5RQKYE6ZH7=";
let charsetFinals: Map<Charset, string> | null = null;

/** The designator final byte for a character set object (xterm.js shares one object per set). */
export function charsetFinal(set: Charset): string | undefined {
  if (set === undefined) return "B";
  if (!charsetFinals) {
    charsetFinals = new Map();
    const probe = new xterm.Terminal({ cols: 2, rows: 1, allowProposedApi: true, logLevel: "off" });
    const core = (probe as unknown as { _core: { writeSync(d: string): void; _charsetService: { _charsets: Charset[] } } })._core;
    for (const final of CHARSET_FINALS) {
      core.writeSync(`\x1b(${final}`);
      const got = core._charsetService._charsets[0];
      if (got !== undefined && !charsetFinals.has(got)) charsetFinals.set(got, final);
    }
    probe.dispose();
  }
  return charsetFinals.get(set);
}


/**
 * Where the parser stands: inside an escape sequence (not in the ground state), and how many
 * bytes of an unfinished UTF-8 character it holds.
 */
export function parserState(term: Terminal): { inSequence: boolean; utf8Pending: number; joinState: number } {
  const input = (term as unknown as { _core?: { _inputHandler?: Record<string, any> } })._core?._inputHandler;
  const state = input?.["_parser"]?.currentState;
  const interim: Uint8Array | undefined = input?.["_utf8Decoder"]?.interim;
  let utf8Pending = 0;
  if (interim) for (const b of interim) if (b) utf8Pending++;
  // Non-zero right after a print: a following combining mark joins the character before the cursor.
  const joinState = Number(input?.["_parser"]?.precedingJoinState ?? 0);
  return { inSequence: typeof state === "number" && state !== 0, utf8Pending, joinState };
}

/**
 * Keeps xterm.js faults from crashing the process: the known one (shared/xterm-workarounds.ts) is
 * avoided, and any other throw from the parser is logged and skips the rest of that chunk.
 */
export function guardParser(term: Terminal, log: (line: string) => void): void {
  guardEraseAbove(term as unknown as XtermLike);
  const writeBuffer = (term as unknown as { _core?: { _writeBuffer?: { _action?: (...a: unknown[]) => unknown } } })._core?._writeBuffer;
  const action = writeBuffer?._action;
  if (!writeBuffer || typeof action !== "function") return;
  writeBuffer._action = (...args: unknown[]) => {
    try {
      return action(...args);
    } catch (error) {
      log(`screen model: xterm.js failed parsing output (${(error as Error).message}); skipped the rest of a chunk`);
      return undefined;
    }
  };
}
