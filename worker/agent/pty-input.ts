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
 *
 * Its writer is replaced too (`_processWriteQueue`, same queue): node-pty retries a write the
 * kernel refuses (EAGAIN: the program is not reading) with `setImmediate`, which holds a core at
 * 100% for as long as the program does not read (one `/execute/{id}/input` to a raw-mode program
 * that sleeps was enough). Here the first retry is immediate (a large paste into a program that
 * reads stays fast) and the next ones wait WRITE_RETRY_FIRST_MS, doubling to WRITE_RETRY_MAX_MS.
 * Writes are made on the agent's thread, never on libuv's thread pool (node-pty's way): a
 * keystroke reaches the program without two thread hand-offs, and no write is under way when the
 * master is closed nor made after it, so none can land in a PTY or file opened meanwhile under the
 * same number.
 */
import fs from "node:fs";
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

/** After EAGAIN, the wait before the second retry, in ms (the first is immediate)… */
export const WRITE_RETRY_FIRST_MS = 1;
/** …doubled on each refusal up to this, in ms: how late input reaches a program that starts reading again. */
export const WRITE_RETRY_MAX_MS = 50;

/** The fields of node-pty 1.1's UnixTerminal this module uses. */
interface WriteStreamFields {
  _writeStream?: { _fd?: number; _writeQueue?: { buffer: Uint8Array; offset: number }[]; _processWriteQueue?: () => void; dispose?: () => void };
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
 * The write queue of a node-pty 1.1 PTY, written by this module's writer (backing off while the
 * program does not read) and dropped by itself when the master is closed (the read stream
 * destroyed: EIO, node-pty's exit timer, a kill); null when `proc` does not have these fields.
 * Call right after spawning, before the first write.
 */
export function ptyInputQueue(proc: IPty): PtyInputQueue | null {
  const fields = proc as unknown as WriteStreamFields;
  const stream = fields._writeStream;
  const queue = stream?._writeQueue;
  const socket = fields._socket;
  const fd = stream?._fd;
  if (!stream || !Array.isArray(queue) || typeof fd !== "number" || typeof stream._processWriteQueue !== "function" || typeof stream.dispose !== "function" || typeof socket?.destroy !== "function") {
    return null;
  }
  let retry: NodeJS.Timeout | NodeJS.Immediate | null = null;
  /**
   * The master is closed (its read stream destroyed). node-pty makes the terminal's write a no-op
   * only on the stream's 'close', at the end of that turn of the event loop or later (after a
   * destroy without an error: node-pty's exit timer, a paused stream); input written in between
   * must not reach the descriptor's number, which a PTY spawned or a socket opened meanwhile has.
   */
  let closed = false;
  /** The next wait after EAGAIN, in ms; 0: retry at once. */
  let wait = 0;
  const cancelRetry = () => {
    if (retry) {
      clearTimeout(retry as NodeJS.Timeout);
      clearImmediate(retry as NodeJS.Immediate);
    }
    retry = null;
  };
  // Written on this thread: node-pty opens the master non-blocking, so a write never waits, it
  // takes what the kernel has room for or fails with EAGAIN. node-pty's own fs.write goes through
  // libuv's thread pool, two thread hand-offs per keystroke: measured 2.6 ms at p99 from an INPUT
  // frame to its echo being read, on a busy 2-core host, against 1.2 ms for a raw PTY.
  const writeNext = (): void => {
    retry = null;
    if (closed) queue.length = 0;
    while (queue.length > 0) {
      const task = queue[0]!;
      let written: number;
      try {
        written = fs.writeSync(fd, task.buffer, task.offset);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== "EAGAIN") {
          queue.length = 0; // the PTY is gone (EIO, EBADF): nothing more can be written
          return;
        }
        retry = wait === 0 ? setImmediate(writeNext) : setTimeout(writeNext, wait);
        wait = wait === 0 ? WRITE_RETRY_FIRST_MS : Math.min(wait * 2, WRITE_RETRY_MAX_MS);
        return;
      }
      wait = 0;
      task.offset += written;
      if (task.offset >= task.buffer.byteLength) queue.shift();
    }
  };
  // node-pty's write() queues the data and calls this when the queue was empty.
  stream._processWriteQueue = writeNext;
  stream.dispose = cancelRetry;
  const destroy = socket.destroy.bind(socket);
  socket.destroy = (error?: Error) => {
    closed = true;
    queue.length = 0;
    cancelRetry();
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
      cancelRetry();
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
