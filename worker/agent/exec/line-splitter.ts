/**
 * Turns one pipe's bytes into output records the way the reference reads its pipes: one record
 * per line, newline kept, decoded as UTF-8 with replacement (multi-byte characters split across
 * reads are reassembled). Two bounds the reference lacks: a line longer than LINE_MAX_CHARS is
 * cut into several records, and a partial line (a prompt such as `Password: `) is emitted after
 * PARTIAL_LINE_FLUSH_MS without more output, so it shows up before its newline does.
 */
import { StringDecoder } from "node:string_decoder";

/** Longest record, in UTF-16 units; longer lines are split. */
export const LINE_MAX_CHARS = 64 * 1024;
/** Quiet time after which a partial line is emitted as it is. */
export const PARTIAL_LINE_FLUSH_MS = 50;

export class LineSplitter {
  private readonly decoder = new StringDecoder("utf8");
  private pending = "";
  private timer: NodeJS.Timeout | undefined;
  private ended = false;

  constructor(
    private readonly emit: (data: string) => void,
    private readonly maxChars = LINE_MAX_CHARS,
    private readonly flushMs = PARTIAL_LINE_FLUSH_MS,
  ) {}

  push(chunk: Buffer): void {
    if (this.ended) return;
    let text = this.pending + this.decoder.write(chunk);
    this.pending = "";
    let start = 0;
    for (;;) {
      const nl = text.indexOf("\n", start);
      if (nl === -1) break;
      this.emitBounded(text.slice(start, nl + 1));
      start = nl + 1;
    }
    text = text.slice(start);
    while (text.length >= this.maxChars) {
      const cut = cutPoint(text, this.maxChars);
      this.emit(text.slice(0, cut));
      text = text.slice(cut);
    }
    this.pending = text;
    this.arm();
  }

  /** The pipe closed: emit whatever is left. */
  end(): void {
    if (this.ended) return;
    this.ended = true;
    clearTimeout(this.timer);
    const rest = this.pending + this.decoder.end();
    this.pending = "";
    if (rest !== "") this.emitBounded(rest);
  }

  private emitBounded(line: string): void {
    while (line.length > this.maxChars) {
      const cut = cutPoint(line, this.maxChars);
      this.emit(line.slice(0, cut));
      line = line.slice(cut);
    }
    this.emit(line);
  }

  private arm(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.pending === "") return;
    this.timer = setTimeout(() => {
      const partial = this.pending;
      this.pending = "";
      if (partial !== "") this.emit(partial);
    }, this.flushMs);
  }
}

/** Where to cut `s` at most `max` units in without splitting a surrogate pair. */
function cutPoint(s: string, max: number): number {
  const c = s.charCodeAt(max - 1);
  return c >= 0xd800 && c <= 0xdbff ? max - 1 : max;
}
