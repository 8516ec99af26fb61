// Flow control between the socket and xterm.js. Output goes through a pump that hands xterm.js a
// bounded amount at a time (counting bytes given to `term.write` against bytes whose callback
// fired) and holds the rest. The total backlog drives PAUSE/RESUME to the edge, which skips a
// paused client forward. If output keeps coming anyway (frames already in flight, or a replay on
// RESUME) and the held part grows past a cap, the pump drops it and asks for a resync: a fresh
// join, whose repaint (ESC c + the current screen) replaces what was dropped. So a flood (`yes`,
// `cat huge.log`) never queues unbounded work in the tab and Ctrl-C shows promptly.

/** Most output handed to xterm.js and not yet parsed, in bytes. */
export const FEED_AHEAD_BYTES = 64 * 1024;
/**
 * Backlog (handed to xterm.js and held) above which the client sends PAUSE, in bytes. Small on
 * purpose: the backlog is what stands between Ctrl-C and the prompt, and xterm.js parses
 * scrolling output at 1–3 MB/s, far less on a loaded machine.
 */
export const FLOW_HIGH_WATER_BYTES = 128 * 1024;
/** Backlog under which a paused client sends RESUME, in bytes. */
export const FLOW_LOW_WATER_BYTES = 16 * 1024;
/** Held output beyond which the pump drops it and asks for a repaint instead, in bytes. */
export const HELD_MAX_BYTES = 1024 * 1024;

export interface PumpLimits {
  feedAhead: number;
  highWater: number;
  lowWater: number;
  heldMax: number;
}

export interface PumpEvents {
  /** The backlog crossed a water mark: pause (true) or resume (false) the edge. */
  onFlow(paused: boolean): void;
  /** Held output passed its cap and was dropped: rejoin to get a repaint. */
  onOverflow(): void;
}

const DEFAULT_LIMITS: PumpLimits = {
  feedAhead: FEED_AHEAD_BYTES,
  highWater: FLOW_HIGH_WATER_BYTES,
  lowWater: FLOW_LOW_WATER_BYTES,
  heldMax: HELD_MAX_BYTES,
};

/** Feeds output to a terminal at the pace it parses, with pause/resume and overflow signals. */
export class OutputPump {
  /** Output not handed to xterm.js yet, and actions to run in stream order between it (`then`). */
  private held: (Uint8Array | (() => void))[] = [];
  private heldBytes = 0;
  private inFlight = 0;
  private pausedNow = false;
  private readonly limits: PumpLimits;

  /** `write` hands data to the terminal and calls `parsed` once the terminal has consumed it. */
  constructor(
    private readonly write: (data: Uint8Array, parsed: () => void) => void,
    private readonly events: PumpEvents,
    limits: Partial<PumpLimits> = {},
  ) {
    this.limits = { ...DEFAULT_LIMITS, ...limits };
  }

  /** Bytes received and not yet parsed (handed over or held). */
  get backlog(): number {
    return this.inFlight + this.heldBytes;
  }

  /** Whether the client currently wants the edge paused. */
  get paused(): boolean {
    return this.pausedNow;
  }

  /** Takes output from the socket, in order. */
  push(data: Uint8Array): void {
    if (data.byteLength === 0) return;
    this.held.push(data);
    this.heldBytes += data.byteLength;
    if (this.heldBytes > this.limits.heldMax) {
      this.held = [];
      this.heldBytes = 0;
      this.events.onOverflow();
    }
    this.feed();
    this.checkFlow();
  }

  /**
   * Runs `action` once everything pushed before it has been parsed, before anything pushed after
   * it is handed over (a read-only viewer's resize happens at its place in the stream). Dropped,
   * with the held output, on an overflow: the rejoin that follows brings its own INFO.
   */
  then(action: () => void): void {
    this.held.push(action);
    this.feed();
  }

  private feed(): void {
    while (this.held.length > 0 && this.inFlight < this.limits.feedAhead) {
      const next = this.held[0]!;
      if (typeof next === "function") {
        if (this.inFlight > 0) return; // after the output before it is parsed (its callback feeds again)
        this.held.shift();
        next();
        continue;
      }
      const chunk = this.held.shift() as Uint8Array;
      const n = chunk.byteLength;
      this.heldBytes -= n;
      this.inFlight += n;
      this.write(chunk, () => {
        this.inFlight -= n;
        this.feed();
        this.checkFlow();
      });
    }
  }

  private checkFlow(): void {
    if (!this.pausedNow && this.backlog > this.limits.highWater) {
      this.pausedNow = true;
      this.events.onFlow(true);
    } else if (this.pausedNow && this.backlog < this.limits.lowWater) {
      this.pausedNow = false;
      this.events.onFlow(false);
    }
  }
}
