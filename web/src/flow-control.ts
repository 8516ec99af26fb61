// Flow control between the socket and xterm.js: counts bytes handed to `term.write` against bytes
// whose write callback has fired (parsed into the buffer), and asks the edge to pause while the
// backlog is high. The edge skips a paused client forward and repaints it from a snapshot when it
// resumes, so a flood (`yes`, `cat huge.log`) never queues unbounded work in the tab.

/**
 * Unparsed backlog above which the client sends PAUSE, in bytes. Small on purpose: the backlog
 * is what stands between Ctrl-C and the prompt, and xterm.js parses scrolling output like `yes`
 * at only a few hundred KiB/s on a slow machine (software WebGL), so 128 KiB keeps that under
 * half a second. Output this fast is skipped by the edge anyway (repainted on RESUME).
 */
export const FLOW_HIGH_WATER_BYTES = 128 * 1024;
/** Backlog under which a paused client sends RESUME, in bytes. */
export const FLOW_LOW_WATER_BYTES = 16 * 1024;

/** Tracks the written-but-unparsed backlog and reports pause/resume transitions. */
export class RenderBacklog {
  private written = 0;
  private parsed = 0;
  private pausedNow = false;

  constructor(
    private readonly onChange: (paused: boolean) => void,
    private readonly highWater = FLOW_HIGH_WATER_BYTES,
    private readonly lowWater = FLOW_LOW_WATER_BYTES,
  ) {}

  /** Bytes written to the terminal but not yet parsed by it. */
  get backlog(): number {
    return this.written - this.parsed;
  }

  /** Whether the client currently wants the edge paused. */
  get paused(): boolean {
    return this.pausedNow;
  }

  /** Call with the size of each chunk passed to `term.write`. */
  wrote(bytes: number): void {
    this.written += bytes;
    if (!this.pausedNow && this.backlog > this.highWater) {
      this.pausedNow = true;
      this.onChange(true);
    }
  }

  /** Call from the write callback with the same size. */
  rendered(bytes: number): void {
    this.parsed += bytes;
    if (this.pausedNow && this.backlog < this.lowWater) {
      this.pausedNow = false;
      this.onChange(false);
    }
  }
}
