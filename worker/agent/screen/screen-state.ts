/**
 * The screen of one PTY as a person would see it: a headless xterm fed with every byte of the
 * PTY's output, and the repaint a late joiner gets from it.
 *
 * Parsing (about 25–50 MB/s) is far slower than a PTY can print, so it stays off the output path:
 * sealed frames wait in a queue (by reference; the output log keeps a frame until it is parsed or
 * skipped, see `parsedTo`) and are handed to the parser when the PTY has been quiet for
 * PARSE_IDLE_MS, or at once when someone needs the screen (a joiner's repaint, a screenshot).
 * Parsing every byte as it arrives instead caps a flood at the parser's speed (measured: 0.30× a
 * raw PTY read against 0.71× in the same minutes).
 *
 * The queue is bounded: past PENDING_MAX_BYTES its oldest frame is not parsed whole, only its
 * mode-setting sequences are (`modeSequences`: the alternate screen, mouse reporting, bracketed
 * paste and the other DEC private modes, keypad mode, cursor style, scroll region, character
 * sets, resets, the title). So a burst of up to PENDING_MAX_BYTES repaints exactly; a longer
 * flood repaints with every mode right and the cells of its newest PENDING_MAX_BYTES, which for
 * scrolling output is the whole visible screen.
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
/** Output queued for the parser, in bytes; past this the oldest frame is skipped (modes kept). */
export const PENDING_MAX_BYTES = 8 << 20; // 8 MiB
/** Quiet time after output before the queue is parsed, in milliseconds. */
export const PARSE_IDLE_MS = 25;
/** Longest OSC title body kept from a skipped frame, in bytes. */
const SKIPPED_TITLE_MAX_BYTES = 4096;

/**
 * Sequences that set modes rather than cells: DEC private modes (CSI ? Pm h/l), keypad modes and
 * full reset (ESC = / ESC > / ESC c), cursor style (CSI Ps SP q), scroll region (CSI Pt;Pb r),
 * soft reset (CSI ! p), character set designations and shifts, and the title (OSC 0/1/2).
 */
const MODE_SEQUENCE = new RegExp(
  [
    "\\x1b\\[\\?[0-9;]*[hl]",
    "\\x1b[=>c]",
    "\\x1b\\[[0-9]* q",
    "\\x1b\\[[0-9;]*r",
    "\\x1b\\[!p",
    "\\x1b[()*+][0-9A-Za-z]",
    "[\\x0e\\x0f]",
    `\\x1b\\][012];[^\\x07\\x1b]{0,${SKIPPED_TITLE_MAX_BYTES}}(?:\\x07|\\x1b\\\\)`,
  ].join("|"),
  "g",
);

/** The mode-setting sequences of `chunk` (see MODE_SEQUENCE) in stream order, concatenated. */
export function modeSequences(chunk: Uint8Array): Buffer {
  if (chunk.indexOf(0x1b) < 0 && chunk.indexOf(0x0e) < 0 && chunk.indexOf(0x0f) < 0) return Buffer.alloc(0);
  // latin1 maps each byte to one character and back, so sequences keep their exact bytes.
  const found = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength).toString("latin1").match(MODE_SEQUENCE);
  return found ? Buffer.from(found.join(""), "latin1") : Buffer.alloc(0);
}

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
  /** Stream bytes handed to the terminal, and stream bytes it has parsed (or skipped over). */
  private written = 0;
  private parsed = 0;
  /** Frames waiting for the parser, oldest first (by reference), and their size in bytes. */
  private pending: Uint8Array[] = [];
  private pendingBytes = 0;
  private lastOutputAt = 0;
  private idleTimer: NodeJS.Timeout | null = null;
  /** Stream bytes skipped rather than parsed whole because the queue was full. */
  skippedBytes = 0;
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

  /** Output not parsed yet (queued or in the parser), in bytes. */
  get backlog(): number {
    return this.written + this.pendingBytes - this.parsed;
  }

  /**
   * Queues output for the parser; O(1) on the output path. `chunk` is held by reference until
   * `onParsed` has reported it: the caller keeps it unchanged until then.
   */
  push(chunk: Uint8Array): void {
    if (this.closed || chunk.byteLength === 0) return;
    this.pending.push(chunk);
    this.pendingBytes += chunk.byteLength;
    while (this.pendingBytes > PENDING_MAX_BYTES && this.pending.length > 1) {
      const skipped = this.pending.shift()!;
      this.pendingBytes -= skipped.byteLength;
      this.skippedBytes += skipped.byteLength;
      this.feed(skipped, modeSequences(skipped));
    }
    this.lastOutputAt = performance.now();
    if (!this.idleTimer) this.armIdle(PARSE_IDLE_MS);
  }

  private armIdle(ms: number): void {
    this.idleTimer = setTimeout(() => {
      this.idleTimer = null;
      const quiet = performance.now() - this.lastOutputAt;
      if (quiet < PARSE_IDLE_MS) return this.armIdle(PARSE_IDLE_MS - quiet);
      this.drain();
    }, ms);
  }

  /** Hands every queued frame to the parser. */
  private drain(): void {
    const queued = this.pending;
    this.pending = [];
    this.pendingBytes = 0;
    for (const chunk of queued) this.feed(chunk, chunk);
  }

  /** Parses `fed` for the stream bytes of `chunk` (the same bytes, or a skipped frame's modes). */
  private feed(chunk: Uint8Array, fed: Uint8Array): void {
    this.written += chunk.byteLength;
    this.terminal.write(fed, () => {
      if (fed === chunk) this.remember(chunk);
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
    this.drain();
    return new Promise((resolve) => this.terminal.write(EMPTY, resolve));
  }

  /**
   * A repaint covering at least the output pushed so far; `offset` says exactly how much (the
   * bytes pushed since the start, i.e. the stream offset when every byte of the stream is pushed).
   * Requests that wait together share one serialization.
   */
  snapshot(): Promise<Repaint> {
    this.drain();
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
      this.drain();
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
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.pending = [];
    this.repaintNow();
    this.terminal.dispose();
  }
}
