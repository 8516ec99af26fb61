/**
 * A PTY's input, bounded: input for a program that does not read it is refused, never queued
 * without limit, and every byte's fate is reported to the edge (INPUT_ACK, docs/protocol.md).
 *
 * node-pty 1.1 writes through its own `CustomWriteStream` (lib/unixTerminal.js): `write()` copies
 * the data into `_writeQueue` and writes the queue's head to the master, retrying on EAGAIN with
 * `setImmediate`, with no limit and no completion callback. node-pty has no public API for what is
 * still queued, so {@link ptyInputQueue} reads that queue's fields (`_writeStream._writeQueue`,
 * entries `{ buffer, offset }`); a test (test/worker/pty-input.test.ts) fails when an upgrade
 * changes them, instead of the bound silently going away. The same fields let a closed PTY's queue
 * be dropped: node-pty would otherwise go on retrying into the closed descriptor (EBADF), or into
 * whatever file reuses its number.
 */
import type { IPty } from "node-pty";

/**
 * Input queued for the PTY and not yet taken by the kernel, at most, in bytes (plus the frame that
 * crosses it): past it, input is refused until the program has read the queue down to
 * INPUT_BACKLOG_RESUME_BYTES. Big enough for a large paste into a program that reads.
 */
export const INPUT_BACKLOG_MAX_BYTES = 4 << 20; // 4 MiB
/** Input is accepted again once the queue is below this, in bytes. */
export const INPUT_BACKLOG_RESUME_BYTES = 1 << 20; // 1 MiB
/** Input handled but not yet acknowledged is acknowledged once it reaches this, in bytes… */
export const INPUT_ACK_EVERY_BYTES = 64 << 10; // 64 KiB
/** …or this long after the first of it, in milliseconds (typing costs one INPUT_ACK per pause, not per key). */
export const INPUT_ACK_DELAY_MS = 20;

/** The fields of node-pty 1.1's UnixTerminal this module uses. */
interface WriteStreamFields {
  _writeStream?: { _writeQueue?: { buffer: Uint8Array; offset: number }[]; dispose?: () => void };
  /** The master's read stream: destroying it closes the descriptor the write queue writes to. */
  _socket?: { destroy?: (error?: Error) => unknown };
}

/** A PTY's write queue: what is still pending, and a way to drop it. Null fields: node-pty has changed. */
export interface PtyInputQueue {
  /** Bytes written to the PTY and not yet accepted by the kernel. */
  pending(): number;
  /** Forgets what is queued and stops the retries (the PTY is closing). */
  drop(): void;
}

/**
 * The write queue of a node-pty 1.1 PTY, dropped by itself when the master is closed (the read
 * stream destroyed: EIO, node-pty's exit timer, a kill); null when `proc` does not have it. A
 * write already under way when the master closes still fails (EBADF, logged by node-pty) and
 * nothing can call it back; dropping the queue before ending the program (PtySession.kill) avoids
 * even that.
 */
export function ptyInputQueue(proc: IPty): PtyInputQueue | null {
  const fields = proc as unknown as WriteStreamFields;
  const stream = fields._writeStream;
  const queue = stream?._writeQueue;
  const socket = fields._socket;
  if (!stream || !Array.isArray(queue) || typeof stream.dispose !== "function" || typeof socket?.destroy !== "function") return null;
  const destroy = socket.destroy.bind(socket);
  socket.destroy = (error?: Error) => {
    queue.length = 0;
    stream.dispose!();
    return destroy(error);
  };
  return {
    pending() {
      let bytes = 0;
      for (const task of queue) bytes += task.buffer.byteLength - task.offset;
      return bytes;
    },
    drop() {
      queue.length = 0;
      stream.dispose!();
    },
  };
}

/**
 * Decides, frame by frame, whether input for a PTY is taken (its queue under the limit) or refused,
 * and reports runs of each to the edge as INPUT_ACKs, in order: a run is sent before the verdict
 * changes, when it reaches INPUT_ACK_EVERY_BYTES, or INPUT_ACK_DELAY_MS after it began.
 */
export class InputBacklog {
  private refusing = false;
  /** The run not yet reported: its verdict and length in bytes. */
  private run = { refused: false, bytes: 0 };
  private timer: NodeJS.Timeout | null = null;

  /** `pending` is the PTY's queue in bytes; `report` sends one INPUT_ACK. */
  constructor(
    private readonly pending: () => number,
    private readonly report: (refused: boolean, bytes: number) => void,
  ) {}

  /** True when a frame of `bytes` input may be written now; either way it is reported. */
  offer(bytes: number): boolean {
    const queued = this.pending();
    if (this.refusing && queued < INPUT_BACKLOG_RESUME_BYTES) this.refusing = false;
    else if (!this.refusing && queued >= INPUT_BACKLOG_MAX_BYTES) this.refusing = true;
    this.handled(this.refusing, bytes);
    return !this.refusing;
  }

  /** Whether input is being refused now (the program did not read the queue down yet). */
  get isRefusing(): boolean {
    return this.refusing;
  }

  private handled(refused: boolean, bytes: number): void {
    if (this.run.bytes > 0 && this.run.refused !== refused) this.flush();
    this.run.refused = refused;
    this.run.bytes += bytes;
    if (this.run.bytes >= INPUT_ACK_EVERY_BYTES) this.flush();
    else if (this.timer === null && this.run.bytes > 0) {
      this.timer = setTimeout(() => this.flush(), INPUT_ACK_DELAY_MS);
      this.timer.unref();
    }
  }

  /** Reports the run so far. */
  flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    if (this.run.bytes === 0) return;
    const { refused, bytes } = this.run;
    this.run = { refused, bytes: 0 };
    this.report(refused, bytes);
  }

  /** A new data link: what the old one did not report is gone with it (the edge starts afresh too). */
  reset(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.run = { refused: false, bytes: 0 };
  }

  dispose(): void {
    this.reset();
  }
}
