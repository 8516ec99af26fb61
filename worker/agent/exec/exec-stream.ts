/**
 * The consumer side of a streamed run (`POST /execute?stream=true`): events queue here as the
 * command produces them and are taken in batches (or one by one with `for await`). The queue is
 * bounded: past STREAM_QUEUE_MAX_CHARS the command's pipes are paused, so a slow reader makes
 * the command wait instead of growing memory; below half of it they resume.
 */
import type { StreamEvent } from "../../../shared/open-terminal.ts";

/** Queued stream output, in characters of `data`, before the command's pipes are paused. */
export const STREAM_QUEUE_MAX_CHARS = 256 * 1024; // 256 Ki characters

/** What the stream needs from the run behind it. */
export interface StreamControl {
  pause(): void;
  resume(): void;
  /** Kill the command (the reader went away). */
  cancel(): void;
}

const sizeOf = (e: StreamEvent) => (typeof e.data === "string" ? e.data.length : 0) + 32;

export class ExecStream implements AsyncIterable<StreamEvent> {
  private queue: StreamEvent[] = [];
  private queuedChars = 0;
  private paused = false;
  private ended = false;
  private wake: (() => void) | null = null;

  constructor(
    private readonly control: StreamControl,
    private readonly maxChars = STREAM_QUEUE_MAX_CHARS,
  ) {}

  /** Producer: one more event. */
  push(event: StreamEvent): void {
    if (this.ended) return;
    this.queue.push(event);
    this.queuedChars += sizeOf(event);
    if (!this.paused && this.queuedChars > this.maxChars) {
      this.paused = true;
      this.control.pause();
    }
    this.notify();
  }

  /** Producer: no more events (the exit event was the last). */
  end(): void {
    this.ended = true;
    this.notify();
  }

  /**
   * Waits for at least one event, then takes everything queued up to `maxChars` (always at
   * least one event). An empty array means the stream is over.
   */
  async take(maxChars = Infinity): Promise<StreamEvent[]> {
    while (this.queue.length === 0 && !this.ended) {
      await new Promise<void>((resolve) => (this.wake = resolve));
    }
    let n = 0;
    let chars = 0;
    while (n < this.queue.length && (n === 0 || chars + sizeOf(this.queue[n]!) <= maxChars)) {
      chars += sizeOf(this.queue[n]!);
      n++;
    }
    const batch = this.queue.splice(0, n);
    this.queuedChars -= chars;
    if (this.paused && this.queuedChars <= this.maxChars / 2) {
      this.paused = false;
      this.control.resume();
    }
    return batch;
  }

  /** Reader: stop; kills the command and drops what is queued. */
  cancel(): void {
    if (this.ended && this.queue.length === 0) return;
    this.queue = [];
    this.queuedChars = 0;
    this.ended = true;
    this.control.cancel();
    this.notify();
  }

  async *[Symbol.asyncIterator](): AsyncIterator<StreamEvent> {
    try {
      for (;;) {
        const batch = await this.take();
        if (batch.length === 0) return;
        yield* batch;
      }
    } finally {
      // A reader that stops early (break, throw) cancels the command; after the end it is a no-op.
      this.cancel();
    }
  }

  private notify(): void {
    const wake = this.wake;
    this.wake = null;
    wake?.();
  }
}
