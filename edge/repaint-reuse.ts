/**
 * The TerminalHub's last repaint, kept for joiners that follow it closely: a joiner repainted from
 * it, then sent the output that followed it from the ring, receives exactly what a client
 * repainted at that offset received, without a round trip to the agent. A resize changes the
 * screen without output, so it drops the snapshot, and a snapshot asked for before a resize is
 * never kept (the size epoch).
 */

/**
 * A joiner is repainted from the last snapshot, without asking the agent, while at most this much
 * output has followed it (sent after the repaint, from the ring), in bytes: joins to a quiet or
 * slow terminal then cost the agent nothing and wait for nothing.
 */
export const REPAINT_REUSE_REPLAY_MAX_BYTES = 256 << 10; // 256 KiB
/** A snapshot larger than this is not kept for reuse, in bytes. */
export const REPAINT_REUSE_MAX_BYTES = 1 << 20; // 1 MiB

/** A snapshot (a client OUTPUT frame) and the output offset it covers. */
export interface KeptRepaint {
  frame: Uint8Array;
  offset: number;
}

export class RepaintReuse {
  private kept: KeptRepaint | null = null;
  private sizeEpoch = 0;
  private requestEpoch = 0;

  /** A snapshot is being asked for now (at the current size). */
  requested(): void {
    this.requestEpoch = this.sizeEpoch;
  }

  /** The snapshot asked for last arrived: kept unless a resize came since or it is too large. */
  arrived(frame: Uint8Array, offset: number): void {
    this.kept = this.requestEpoch === this.sizeEpoch && frame.byteLength <= REPAINT_REUSE_MAX_BYTES ? { frame, offset } : null;
  }

  /** The kept snapshot when at most REPAINT_REUSE_REPLAY_MAX_BYTES of output followed it (`received`: the output's end). */
  usable(received: number | null): KeptRepaint | null {
    const kept = this.kept;
    return kept && received !== null && received - kept.offset <= REPAINT_REUSE_REPLAY_MAX_BYTES ? kept : null;
  }

  /** The PTY's size changed (or is about to): the screen changed without output. */
  sizeChanged(): void {
    this.sizeEpoch++;
    this.kept = null;
  }

  /** The output's continuity broke (a gap, an agent link change, the end): nothing is kept. */
  drop(): void {
    this.kept = null;
  }
}
