/**
 * The screen of one PTY as a person would see it: a headless xterm fed with the PTY's output.
 *
 * Parsing is the costly part (about 15–50 MB/s), far slower than a PTY can print, so it never
 * runs on the output path: chunks wait in a bounded queue and are parsed when the PTY goes quiet,
 * or when someone needs the screen (a joining client's repaint, a screenshot). During a flood the
 * queue keeps only its newest bytes, which is what the final screen is made of.
 *
 * Queued chunks are held by reference, never longer than they are among the newest
 * PENDING_MAX_BYTES pushed (or the newest chunk), and copied when parsing starts: the agent's
 * output log, which keeps the newest TAIL_KEEP_BYTES of output, may reuse older memory.
 */
import xterm from "@xterm/headless";
import type { Terminal } from "@xterm/headless";
import { serializeScreen } from "./snapshot.ts";

const EMPTY = new Uint8Array(0);

/** Lines of scrollback kept by the headless terminal. */
export const SCROLLBACK_LINES = 5_000;
/** Output waiting to be parsed, in bytes; older bytes are dropped past this. */
export const PENDING_MAX_BYTES = 1 << 20; // 1 MiB
/** Quiet time after output before parsing starts, in milliseconds. */
export const PARSE_IDLE_MS = 25;

export class ScreenState {
  readonly terminal: Terminal;
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private lastOutputAt = 0;
  private idleTimer: NodeJS.Timeout | null = null;
  private closed = false;

  constructor(cols: number, rows: number) {
    this.terminal = new xterm.Terminal({ cols, rows, scrollback: SCROLLBACK_LINES, allowProposedApi: true });
  }

  /** Queues output for parsing; O(1) on the hot path. */
  push(chunk: Buffer): void {
    this.pending.push(chunk);
    this.pendingBytes += chunk.byteLength;
    while (this.pendingBytes > PENDING_MAX_BYTES && this.pending.length > 1) {
      const dropped = this.pending.shift()!;
      this.pendingBytes -= dropped.byteLength;
    }
    this.lastOutputAt = performance.now();
    if (!this.idleTimer && !this.closed) this.armIdle(PARSE_IDLE_MS);
  }

  private armIdle(ms: number): void {
    this.idleTimer = setTimeout(() => {
      this.idleTimer = null;
      const quiet = performance.now() - this.lastOutputAt;
      if (quiet < PARSE_IDLE_MS) return this.armIdle(PARSE_IDLE_MS - quiet);
      void this.catchUp();
    }, ms);
    this.idleTimer.unref?.();
  }

  /** Hands every queued chunk to the terminal; `onParsed` runs once they are all parsed. */
  private flushPending(onParsed: () => void): void {
    if (this.pending.length > 0) this.terminal.write(Buffer.concat(this.pending, this.pendingBytes));
    this.pending = [];
    this.pendingBytes = 0;
    // Writes are parsed in order, so this callback sees exactly the bytes pushed before it.
    this.terminal.write(EMPTY, onParsed);
  }

  /** Resolves when the terminal reflects everything pushed so far. */
  catchUp(): Promise<void> {
    return new Promise((resolve) => this.flushPending(resolve));
  }

  /** The repaint bytes for the screen as of exactly the output pushed so far. */
  snapshot(): Promise<string> {
    return new Promise((resolve) => this.flushPending(() => resolve(serializeScreen(this.terminal))));
  }

  /** Resizes after the output produced at the old size has been parsed. */
  resize(cols: number, rows: number): void {
    this.flushPending(() => {
      if (!this.closed) this.terminal.resize(cols, rows);
    });
  }

  dispose(): void {
    this.closed = true;
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.terminal.dispose();
  }
}
