/**
 * Typeahead for a new shell: input that arrives before the shell is ready is held back, because
 * shells flush typeahead while they set up the terminal. The gate opens when the shell printed
 * something and then went quiet for INPUT_GATE_QUIET_MS, when a prompt marker says so (shell
 * integration calls `open()`), or INPUT_GATE_MAX_MS after the start, whichever comes first; then
 * everything held goes to the shell in order and later input passes straight through.
 */

/**
 * The shell counts as ready once it printed something and then went quiet for this long, in
 * milliseconds (or a prompt marker says so, when shell integration is on)…
 */
export const INPUT_GATE_QUIET_MS = 60;
/**
 * …or, whatever it printed, this long after it started, in milliseconds: a hard cap, never pushed
 * back by output (a shell that prints without pause would otherwise hold typeahead for ever).
 */
export const INPUT_GATE_MAX_MS = 2_000;
/**
 * Input held back before the shell is ready, in bytes. Input beyond it is never dropped: the gate
 * opens early and everything held goes to the shell in order (a paste that big is not typeahead
 * a shell could flush by accident; losing it would be worse).
 */
export const INPUT_GATE_MAX_BYTES = 1 << 20; // 1 MiB

export class InputGate {
  /** Input waiting for the shell to be ready; null once it is. */
  private held: Buffer[] | null = [];
  private heldBytes = 0;
  /** Opens the gate once the shell went quiet after printing (reset by each output chunk). */
  private quietTimer: NodeJS.Timeout | null = null;
  /** Opens the gate INPUT_GATE_MAX_MS after the start, whatever the shell prints. */
  private maxTimer: NodeJS.Timeout | null = null;

  /**
   * `deliver` writes to the shell; `closed()` says the shell is gone (held input is then
   * dropped); `log` explains an early opening; `maxMs` is the hard cap (INPUT_GATE_MAX_MS).
   */
  constructor(
    private readonly deliver: (data: Buffer) => void,
    private readonly closed: () => boolean,
    private readonly log: (line: string) => void,
    maxMs = INPUT_GATE_MAX_MS,
  ) {
    this.maxTimer = setTimeout(() => this.open(), maxMs);
    this.maxTimer.unref();
  }

  /** Input for the shell: written now, or held (a copy) until the gate opens. */
  write(data: Buffer): void {
    if (this.held === null) {
      this.deliver(data);
      return;
    }
    this.held.push(Buffer.from(data));
    this.heldBytes += data.byteLength;
    if (this.heldBytes > INPUT_GATE_MAX_BYTES) {
      this.log(`${this.heldBytes} bytes typed ahead (over ${INPUT_GATE_MAX_BYTES}); passing them to the shell now`);
      this.open();
    }
  }

  /** The shell printed something: while closed, the gate opens after it goes quiet. */
  onOutput(): void {
    if (this.held === null) return;
    if (this.quietTimer) clearTimeout(this.quietTimer);
    this.quietTimer = setTimeout(() => this.open(), INPUT_GATE_QUIET_MS);
    this.quietTimer.unref();
  }

  /** The shell is ready for input: release what was typed ahead. */
  open(): void {
    if (this.held === null) return;
    const held = this.held;
    this.held = null;
    this.heldBytes = 0;
    this.dispose();
    if (this.closed()) return;
    for (const data of held) this.deliver(data);
  }

  /** Stops the gate's timers (the shell exited, or the session is disposed). */
  dispose(): void {
    if (this.quietTimer) clearTimeout(this.quietTimer);
    if (this.maxTimer) clearTimeout(this.maxTimer);
    this.quietTimer = null;
    this.maxTimer = null;
  }
}
