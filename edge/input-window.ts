/**
 * Input on its way to the agent: what the hub sent and the agent has not acknowledged (INPUT_ACK),
 * kept below INPUT_IN_FLIGHT_MAX_BYTES so a client flooding input at a program that does not read
 * it cannot grow the Durable Object's memory. Who sent each run is kept, so input the agent
 * refused is reported to its sender.
 *
 * The agent's acknowledgements are trusted for nothing: an ack never takes the count below zero
 * nor covers more than was sent. Until the agent says it acknowledges input (HELLO `input_acks`,
 * or its first INPUT_ACK after the DO woke), there is no window: an older agent works as before.
 */
import { INPUT_IN_FLIGHT_MAX_BYTES } from "../shared/links/data.ts";

/**
 * Runs of input from different senders in flight at most (consecutive frames of one sender share
 * a run): past it input is refused as if the window were full. Bounds the bookkeeping when
 * writers alternate keystroke by keystroke.
 */
export const INPUT_IN_FLIGHT_MAX_RUNS = 1024;

export class InputWindow<S> {
  /** True once the agent is known to acknowledge input. */
  private acking = false;
  /** Input sent and not acknowledged, in bytes (the sum of `runs`). */
  private inFlight = 0;
  /** Who sent what is in flight, oldest first. */
  private runs: { sender: S; bytes: number }[] = [];

  /** Bytes in flight (for tests and stats). */
  get bytes(): number {
    return this.inFlight;
  }

  /** A new agent link (or a woken DO): nothing is in flight; `acking` says whether it acknowledges input. */
  reset(acking: boolean): void {
    this.acking = acking;
    this.inFlight = 0;
    this.runs = [];
  }

  /** True when `bytes` of input from `sender` may go to the agent now (then counted in flight). */
  take(sender: S, bytes: number): boolean {
    if (!this.acking) return true;
    const last = this.runs.at(-1);
    const newRun = last?.sender !== sender;
    if (this.inFlight + bytes > INPUT_IN_FLIGHT_MAX_BYTES || (newRun && this.runs.length >= INPUT_IN_FLIGHT_MAX_RUNS)) return false;
    this.inFlight += bytes;
    if (newRun) this.runs.push({ sender, bytes });
    else last.bytes += bytes;
    return true;
  }

  /**
   * The agent handled the next `bytes` of input, all accepted or all `refused`. Returns how many
   * refused bytes each sender had (empty when none were refused). More than is in flight counts
   * as what is in flight.
   */
  ack(refused: boolean, bytes: number): Map<S, number> {
    this.acking = true;
    const bySender = new Map<S, number>();
    let left = Math.min(bytes, this.inFlight);
    this.inFlight -= left;
    while (left > 0) {
      const run = this.runs[0]!;
      const n = Math.min(run.bytes, left);
      if (refused) bySender.set(run.sender, (bySender.get(run.sender) ?? 0) + n);
      run.bytes -= n;
      left -= n;
      if (run.bytes === 0) this.runs.shift();
    }
    return bySender;
  }
}
