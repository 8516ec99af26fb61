/**
 * The screen of one PTY as a person would see it: a headless xterm fed with every byte of the
 * PTY's output, and the repaint a late joiner gets from it.
 *
 * Nothing is dropped before it is parsed. Each sealed frame's payload is handed to the terminal
 * as it is sent; xterm.js parses queued writes in slices of about 12 ms, yielding to I/O in
 * between, so the parser stays current while output flows without holding up the output path
 * for long. Parsing (about 25–50 MB/s) is slower than a PTY can print, so unparsed output is
 * bounded: past PARSE_BACKLOG_MAX_BYTES the session pauses the PTY, exactly as it does for
 * unacknowledged output, and the output log keeps every frame the parser has not finished with
 * (xterm.js holds the payloads by reference).
 *
 * A repaint is serialized from this already-current parser (after at most the backlog is
 * parsed). Repaints cost CPU on the agent's one thread (about 50 ms for a full 5,000-line
 * scrollback), so their share of the time is capped: a request that follows the previous
 * repaint closely waits until that share is respected, and requests that wait together get the
 * same repaint.
 */
import xterm from "@xterm/headless";
import type { Terminal } from "@xterm/headless";
import { Unicode11Addon } from "@xterm/addon-unicode11";
import { UNICODE_VERSION } from "../../../shared/screen.ts";
import { serializeScreen } from "./snapshot.ts";
import { guardParser, parserState } from "./xterm-core.ts";

const EMPTY = new Uint8Array(0);

/** Lines of scrollback kept by the headless terminal. */
export const SCROLLBACK_LINES = 5_000;
/**
 * Output handed to the parser and not yet parsed, in bytes; the PTY is paused past this (a burst
 * up to about this size flows at full speed and is parsed after it)…
 */
export const PARSE_BACKLOG_MAX_BYTES = 8 << 20; // 8 MiB
/** …and may resume once the backlog is below this, in bytes. */
export const PARSE_BACKLOG_RESUME_BYTES = 2 << 20; // 2 MiB
/**
 * The newest output remembered for an escape sequence (or UTF-8 character) cut by a repaint's
 * offset, in bytes: the repaint ends with its start, so the joiner's parser is mid-sequence too.
 * A longer unfinished sequence (a huge OSC) is left out of the repaint.
 */
export const PARTIAL_SEQUENCE_MAX_BYTES = 4 << 10; // 4 KiB
/** Largest share of the agent's time spent serializing repaints, as a fraction. */
export const REPAINT_TIME_SHARE = 0.15;
/** Longest a repaint request is held back to respect that share, in milliseconds. */
export const REPAINT_DELAY_MAX_MS = 250;

/**
 * A headless terminal configured as every screen model and client is (Unicode version,
 * scrollback), hardened against xterm.js faults: program output must never crash the agent.
 */
export function createScreenTerminal(cols: number, rows: number, scrollback = SCROLLBACK_LINES, log: (line: string) => void = () => {}): Terminal {
  const terminal = new xterm.Terminal({ cols, rows, scrollback, allowProposedApi: true, logLevel: "off" });
  terminal.loadAddon(new Unicode11Addon() as never);
  terminal.unicode.activeVersion = UNICODE_VERSION;
  guardParser(terminal, log);
  return terminal;
}

/**
 * The repaint for `term` as parsed so far: the serialized state, then the start of an escape
 * sequence or UTF-8 character the parser is in the middle of, taken from `recent` (the newest
 * bytes it was fed).
 */
export function repaintBytes(term: Terminal, recent: Uint8Array): Buffer {
  const screen = Buffer.from(serializeScreen(term), "utf8");
  const state = parserState(term);
  let from = recent.byteLength;
  if (state.inSequence) {
    const esc = recent.lastIndexOf(0x1b);
    if (esc >= 0) from = esc;
  } else if (state.utf8Pending > 0) {
    from = Math.max(0, recent.byteLength - state.utf8Pending);
  }
  return from < recent.byteLength ? Buffer.concat([screen, recent.subarray(from)]) : screen;
}

/** Repaint bytes and the count of output bytes they cover. */
export interface Repaint {
  bytes: Buffer;
  offset: number;
}

export class ScreenState {
  readonly terminal: Terminal;
  /** Bytes handed to the terminal, and bytes it has parsed. */
  private written = 0;
  private parsed = 0;
  /** The newest PARTIAL_SEQUENCE_MAX_BYTES fed (a copy), for repaints cut mid-sequence. */
  private readonly recent = Buffer.alloc(PARTIAL_SEQUENCE_MAX_BYTES);
  private recentBytes = 0;
  /** Repaint requests waiting for the same serialization. */
  private waiting: ((repaint: Repaint) => void)[] = [];
  private repaintTimer: NodeJS.Timeout | null = null;
  private lastRepaintEnd = -Infinity;
  private lastRepaintCostMs = 0;
  private closed = false;

  /** `onParsed(bytes)` runs each time the parser finishes a chunk, with the total parsed. */
  constructor(cols: number, rows: number, private readonly onParsed: (parsed: number) => void = () => {}, log: (line: string) => void = () => {}) {
    this.terminal = createScreenTerminal(cols, rows, SCROLLBACK_LINES, log);
  }

  /** Output handed to the parser and not parsed yet, in bytes. */
  get backlog(): number {
    return this.written - this.parsed;
  }

  /**
   * Hands output to the parser. `chunk` is held by reference until parsed: the caller keeps it
   * unchanged until `onParsed` has reported it.
   */
  push(chunk: Uint8Array): void {
    if (this.closed || chunk.byteLength === 0) return;
    this.written += chunk.byteLength;
    this.terminal.write(chunk, () => {
      this.remember(chunk);
      this.parsed += chunk.byteLength;
      this.onParsed(this.parsed);
    });
  }

  private remember(chunk: Uint8Array): void {
    const cap = PARTIAL_SEQUENCE_MAX_BYTES;
    if (chunk.byteLength >= cap) {
      this.recent.set(chunk.subarray(chunk.byteLength - cap));
      this.recentBytes = cap;
      return;
    }
    const keep = Math.min(this.recentBytes, cap - chunk.byteLength);
    this.recent.copyWithin(0, this.recentBytes - keep, this.recentBytes);
    this.recent.set(chunk, keep);
    this.recentBytes = keep + chunk.byteLength;
  }

  /** Resolves when the terminal reflects everything pushed so far. */
  catchUp(): Promise<void> {
    return new Promise((resolve) => this.terminal.write(EMPTY, resolve));
  }

  /**
   * A repaint covering at least the output pushed so far; `offset` says exactly how much (the
   * bytes pushed since the start, i.e. the stream offset when every byte of the stream is pushed).
   * Requests that wait together share one serialization.
   */
  snapshot(): Promise<Repaint> {
    return new Promise((resolve) => this.terminal.write(EMPTY, () => this.queueRepaint(resolve)));
  }

  private queueRepaint(resolve: (repaint: Repaint) => void): void {
    if (this.closed) return resolve({ bytes: Buffer.alloc(0), offset: this.parsed });
    this.waiting.push(resolve);
    if (this.repaintTimer) return;
    const since = performance.now() - this.lastRepaintEnd;
    const due = Math.min(REPAINT_DELAY_MAX_MS, this.lastRepaintCostMs / REPAINT_TIME_SHARE - this.lastRepaintCostMs - since);
    if (due <= 0) return this.repaintNow();
    this.repaintTimer = setTimeout(() => {
      this.repaintTimer = null;
      // Output may have arrived meanwhile: serialize once it is parsed too. Everyone waiting
      // asked at an offset at or before this one, and the edge accepts a repaint that covers more.
      this.terminal.write(EMPTY, () => this.repaintNow());
    }, due);
  }

  private repaintNow(): void {
    const waiting = this.waiting;
    this.waiting = [];
    if (waiting.length === 0) return;
    const started = performance.now();
    // Called from a parse callback: the terminal holds exactly the first `parsed` bytes.
    const bytes = this.closed ? Buffer.alloc(0) : repaintBytes(this.terminal, this.recent.subarray(0, this.recentBytes));
    const repaint = { bytes, offset: this.parsed };
    this.lastRepaintEnd = performance.now();
    this.lastRepaintCostMs = this.lastRepaintEnd - started;
    for (const resolve of waiting) resolve(repaint);
  }

  /** Resizes after the output produced at the old size has been parsed. */
  resize(cols: number, rows: number): void {
    this.terminal.write(EMPTY, () => {
      if (!this.closed) this.terminal.resize(cols, rows);
    });
  }

  dispose(): void {
    this.closed = true;
    if (this.repaintTimer) clearTimeout(this.repaintTimer);
    this.repaintNow();
    this.terminal.dispose();
  }
}
