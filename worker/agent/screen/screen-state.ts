/**
 * The screen of one PTY as a person would see it: a headless xterm fed with every byte of the
 * PTY's output, and the repaint a late joiner gets from it.
 *
 * It runs in the agent's screen thread (screen-worker.ts; screen-thread.ts feeds it), off the
 * output path. Parsing (about 25–50 MB/s) is far slower than a PTY can print, so output waits in
 * a queue (by reference: the caller hands over chunks it no longer touches) and is handed to the
 * parser when the PTY has been quiet for PARSE_IDLE_MS, at
 * once when someone needs the screen (a joiner's repaint, a screenshot), or when the queue
 * passes PENDING_MAX_BYTES. Nothing is dropped: every byte reaches the parser, except heads of
 * text runs that later lines provably scroll out of the terminal entirely (scroll-skip.ts), which
 * is what keeps a flood of text cheap to follow. Output the parser has not caught up with is
 * bounded by pausing the PTY (`backlog`, PARSE_BACKLOG_MAX_BYTES; pty-session.ts).
 *
 * A repaint is serialized from this already-current parser (after at most the backlog is
 * parsed, which the shortcut keeps to the newest few thousand lines of a text flood). Repaints
 * still cost CPU on a machine whose cores the output path shares, so their share of the time is
 * capped (RepaintShare, applied by screen-thread.ts's ScreenModel): a request that follows the
 * previous repaint closely waits until that share is respected, and requests that wait together
 * get the same repaint.
 */
import xterm from "@xterm/headless";
import type { Terminal } from "@xterm/headless";
import { Unicode11Addon } from "@xterm/addon-unicode11";
import { UNICODE_VERSION } from "../../../shared/screen.ts";
import { serializeScreen } from "./snapshot.ts";
import { linesToForget, planFeed, slices, type FeedStep, type OutputChunk } from "./scroll-skip.ts";
import { coreOf, guardParser, parserState } from "./xterm-core.ts";

const EMPTY = new Uint8Array(0);

/** Lines of scrollback kept by the headless terminal. */
export const SCROLLBACK_LINES = 5_000;
/** Output queued for the parser, in bytes; past this the queue is handed to the parser at once. */
export const PENDING_MAX_BYTES = 8 << 20; // 8 MiB
/**
 * Output pushed but not parsed yet (queued, or handed to xterm.js), in bytes: past this the PTY
 * is paused (pty-session.ts) until the parser is back under PARSE_BACKLOG_RESUME_BYTES. Also
 * keeps xterm.js's own write queue far below the 50 MB at which it throws output away.
 */
export const PARSE_BACKLOG_MAX_BYTES = 16 << 20; // 16 MiB
export const PARSE_BACKLOG_RESUME_BYTES = 4 << 20; // 4 MiB
/** Quiet time after output before the queue is parsed, in milliseconds. */
export const PARSE_IDLE_MS = 25;
/**
 * The newest output remembered for an escape sequence (or UTF-8 character) cut by a repaint's
 * offset, in bytes: the repaint ends with its start, so the joiner's parser is mid-sequence too.
 * A longer unfinished sequence (a huge OSC) is left out of the repaint.
 */
export const PARTIAL_SEQUENCE_MAX_BYTES = 4 << 10; // 4 KiB
/** Largest share of the agent's time spent making repaints (parsing the queue, serializing), as a fraction. */
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

/**
 * The repaints' share of the agent's time: repaints may take at most REPAINT_TIME_SHARE of it, so
 * a repaint that closely follows the previous one waits (at most REPAINT_DELAY_MAX_MS). Callers
 * waiting together are let through together (and then share one repaint).
 */
export class RepaintShare {
  private waiters: (() => void)[] = [];
  private timer: NodeJS.Timeout | null = null;
  private lastEnd = -Infinity;
  private lastCostMs = 0;

  /** Resolves when a repaint may start. */
  slot(): Promise<void> {
    return new Promise((resolve) => {
      this.waiters.push(resolve);
      if (this.timer) return;
      const since = performance.now() - this.lastEnd;
      const due = Math.min(REPAINT_DELAY_MAX_MS, this.lastCostMs / REPAINT_TIME_SHARE - this.lastCostMs - since);
      if (due <= 0) return this.open();
      this.timer = setTimeout(() => {
        this.timer = null;
        this.open();
      }, due);
    });
  }

  /** A repaint started at `startedAt` (performance.now()) is done now: its cost sets the next wait. */
  made(startedAt: number): void {
    this.lastEnd = performance.now();
    this.lastCostMs = this.lastEnd - startedAt;
  }

  /** Lets every waiter through (the terminal is going away). */
  dispose(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.open();
  }

  private open(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const resolve of waiters) resolve();
  }
}

/** Repaint bytes and the count of output bytes they cover. */
export interface Repaint {
  bytes: Buffer;
  offset: number;
}

export class ScreenState {
  readonly terminal: Terminal;
  /** Stream bytes handed to the terminal (or planned for it), and stream bytes it has parsed (or provably need not). */
  private written = 0;
  private parsed = 0;
  /** Frames waiting for the parser, oldest first (by reference), and their size in bytes. */
  private pending: OutputChunk[] = [];
  private pendingBytes = 0;
  /** True while a feed plan waits on a check in the parser (see `runSteps`). */
  private feeding = false;
  /** A drain was asked for while feeding (of everything, or keeping the tail): run it once the plan is done. */
  private drainAgain: "all" | "tail" | null = null;
  /** Callbacks waiting for the parser to reach the end of the current feed plan. */
  private afterFeed: (() => void)[] = [];
  private lastOutputAt = 0;
  private idleTimer: NodeJS.Timeout | null = null;
  /** Stream bytes not parsed cell by cell because later lines provably scrolled them away. */
  scrolledPastBytes = 0;
  /** The newest PARTIAL_SEQUENCE_MAX_BYTES fed (a copy), for repaints cut mid-sequence. */
  private readonly recent = Buffer.alloc(PARTIAL_SEQUENCE_MAX_BYTES);
  private recentBytes = 0;
  /** Repaint requests waiting for the same serialization. */
  private waiting: ((repaint: Repaint) => void)[] = [];
  /** The height the terminal has or is about to get (a resize waits for earlier output). */
  private rows: number;
  private closed = false;

  /**
   * `onParsed(bytes)` runs each time the parser finishes a chunk, with the total parsed.
   * `scrollback` is in lines (tests use short ones to reach the shortcut quickly).
   */
  constructor(
    cols: number,
    rows: number,
    private readonly onParsed: (parsed: number) => void = () => {},
    log: (line: string) => void = () => {},
    private readonly scrollback = SCROLLBACK_LINES,
  ) {
    this.terminal = createScreenTerminal(cols, rows, scrollback, log);
    this.rows = rows;
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
    this.pending.push({ offset: this.written + this.pendingBytes, bytes: chunk });
    this.pendingBytes += chunk.byteLength;
    if (this.pendingBytes > PENDING_MAX_BYTES) return this.drain(true);
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

  /**
   * Hands the queued frames to the parser, skipping what provably scrolls away (scroll-skip.ts).
   * With `keepTail` (the queue overflowed, nobody needs the screen yet), output after the last
   * skip stays queued when it is small — for a text flood, the newest few thousand lines, which
   * the next overflow's skip will likely cover — so a flood nobody watches costs only the scan.
   */
  private drain(keepTail = false): void {
    if (this.closed || this.pending.length === 0) return;
    if (this.feeding) {
      this.drainAgain = this.drainAgain === "all" || !keepTail ? "all" : "tail";
      return;
    }
    const chunks = this.pending;
    const start = chunks[0]!.offset;
    const end = start + this.pendingBytes;
    // The taller of the current and a pending size: a taller screen needs more lines to forget.
    const steps = planFeed(chunks, Math.max(this.rows, this.terminal.rows), this.scrollback);
    let feedTo = end;
    if (keepTail) {
      const lastSkip = steps.findLastIndex((step) => step.t === "skip");
      if (lastSkip >= 0 && end - steps[lastSkip]!.to <= PENDING_MAX_BYTES / 2) {
        feedTo = steps[lastSkip]!.to;
        steps.length = lastSkip + 1;
      }
    }
    this.pending = [];
    let offset = feedTo;
    for (const bytes of slices(chunks, feedTo, end)) {
      this.pending.push({ offset, bytes });
      offset += bytes.byteLength;
    }
    this.pendingBytes = end - feedTo;
    this.written += feedTo - start;
    this.feeding = true;
    this.runSteps(chunks, steps, 0);
  }

  /**
   * Feeds `steps[i…]`. A skip needs the parser's state right before it, so the rest of the plan
   * is fed from a write callback at that point (xterm.js runs it after parsing everything
   * written before, and before anything written after); meanwhile `feeding` holds back anything
   * else that would write to the terminal.
   */
  private runSteps(chunks: OutputChunk[], steps: FeedStep[], i: number): void {
    for (; i < steps.length; i++) {
      const step = steps[i]!;
      if (step.t === "parse") {
        for (const bytes of slices(chunks, step.from, step.to)) this.feed(bytes);
        continue;
      }
      const next = i + 1;
      this.terminal.write(EMPTY, () => {
        if (this.closed) return;
        if (this.mayScrollPast(step.lines)) {
          if (step.sgr.byteLength > 0) this.terminal.write(step.sgr);
          this.scrolledPastBytes += step.to - step.from;
          this.parsed += step.to - step.from;
          this.onParsed(this.parsed);
        } else {
          for (const bytes of slices(chunks, step.from, step.to)) this.feed(bytes);
        }
        this.runSteps(chunks, steps, next);
      });
      return;
    }
    this.feeding = false;
    if (this.drainAgain) {
      const keepTail = this.drainAgain === "tail";
      this.drainAgain = null;
      this.drain(keepTail);
      if (this.feeding) return;
    }
    const waiting = this.afterFeed;
    this.afterFeed = [];
    for (const callback of waiting) this.terminal.write(EMPTY, callback);
  }

  /** What scroll-skip.ts cannot see in the bytes: the parser is between sequences, the scroll region is the whole screen, and `lines` LFs are enough for this height. */
  private mayScrollPast(lines: number): boolean {
    const state = parserState(this.terminal);
    if (state.inSequence || state.utf8Pending > 0) return false;
    const buffer = coreOf(this.terminal).active;
    if (buffer.scrollTop !== 0 || buffer.scrollBottom !== this.terminal.rows - 1) return false;
    return lines >= linesToForget(this.terminal.rows, this.terminal.options.scrollback ?? 0);
  }

  /** Parses `bytes`, the next stream bytes. */
  private feed(bytes: Uint8Array): void {
    this.terminal.write(bytes, () => {
      this.remember(bytes);
      this.parsed += bytes.byteLength;
      this.onParsed(this.parsed);
    });
  }

  /** Runs `callback` once the terminal reflects everything handed to it so far. */
  private whenFed(callback: () => void): void {
    if (this.feeding) this.afterFeed.push(callback);
    else this.terminal.write(EMPTY, callback);
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
    return new Promise((resolve) => this.whenFed(resolve));
  }

  /**
   * The repaint of exactly the output pushed so far: `offset` is the bytes pushed since the start
   * (the stream offset when every byte of the stream is pushed). Requests made before it is
   * serialized share one serialization (and so may cover a little more, never less).
   */
  snapshot(): Promise<Repaint> {
    if (this.closed) return Promise.resolve({ bytes: Buffer.alloc(0), offset: this.parsed });
    this.drain();
    return new Promise((resolve) => {
      this.waiting.push(resolve);
      this.whenFed(() => this.repaintNow());
    });
  }

  private repaintNow(): void {
    const waiting = this.waiting;
    this.waiting = [];
    if (waiting.length === 0) return;
    // Called from a parse callback: the terminal holds exactly the first `parsed` bytes.
    const bytes = this.closed ? Buffer.alloc(0) : repaintBytes(this.terminal, this.recent.subarray(0, this.recentBytes));
    const repaint = { bytes, offset: this.parsed };
    for (const resolve of waiting) resolve(repaint);
  }

  /** Resizes after the output produced at the old size has been parsed. */
  resize(cols: number, rows: number): void {
    this.drain();
    this.rows = rows;
    this.whenFed(() => {
      if (!this.closed) this.terminal.resize(cols, rows);
    });
  }

  dispose(): void {
    this.closed = true;
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.pending = [];
    // Nothing more will be parsed: whoever waits gets an answer now (an empty repaint).
    const waiting = this.afterFeed;
    this.afterFeed = [];
    for (const callback of waiting) callback();
    this.repaintNow();
    this.terminal.dispose();
  }
}
