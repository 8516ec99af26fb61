/**
 * Finds OSC sequences (`ESC ] code ; data` ended by BEL or `ESC \`) in a PTY's output as it
 * streams, chunk by chunk. The agent reads window titles (OSC 0/2), the working directory (OSC 7)
 * and shell-integration marks (OSC 633) from it.
 *
 * It sees every output byte, so text costs one native search for `ESC ]` per chunk; only the
 * bytes of an OSC itself are looked at individually. A sequence may be split across any number
 * of chunks; one longer than OSC_MAX_BYTES is dropped (scanning resumes after its terminator).
 */

/** Longest OSC body (code, `;` and data) carried across chunks, in bytes; longer ones are dropped. */
export const OSC_MAX_BYTES = 4096; // 4 KiB

const ESC = 0x1b;
const BEL = 0x07;
const RIGHT_BRACKET = 0x5d; // ']'
const BACKSLASH = 0x5c; // '\'

/** Where the scanner is between bytes (and chunks). Plain numbers: no enum, so type stripping works. */
const State = {
  /** Plain text. */
  Text: 0,
  /** The previous byte was ESC: an OSC starts if this one is `]`. */
  Esc: 1,
  /** Inside an OSC body. */
  Body: 2,
  /** Inside an OSC body and the previous byte was ESC: `\` ends it (ST). */
  BodyEsc: 3,
  /** Inside an OSC that outgrew OSC_MAX_BYTES: skip to its end. */
  Skip: 4,
  /** Skipping, and the previous byte was ESC. */
  SkipEsc: 5,
} as const;
type State = (typeof State)[keyof typeof State];

/** Called for each complete OSC: `code` before the first `;`, `data` after it (UTF-8 decoded). */
export type OscHandler = (code: string, data: string) => void;

/** Streaming OSC finder; feed it every output chunk in order. */
export class OscScanner {
  private state: State = State.Text;
  /** Body bytes of the current OSC, as copied slices (chunks may be reused by the caller). */
  private parts: Uint8Array[] = [];
  private size = 0;
  private readonly decoder = new TextDecoder();

  constructor(private readonly onOsc: OscHandler) {}

  /** Scans the next chunk of output. Handler exceptions propagate after the scanner's state is settled. */
  push(chunk: Uint8Array): void {
    let i = 0;
    const n = chunk.length;
    while (i < n) {
      switch (this.state) {
        case State.Text: {
          const start = findOscStart(chunk, i);
          if (start >= 0) {
            i = start + 2;
            this.parts = [];
            this.size = 0;
            this.state = State.Body;
            break;
          }
          // No OSC starts in this chunk; one may start across its end.
          if (chunk[n - 1] === ESC) this.state = State.Esc;
          return;
        }
        case State.Esc:
          if (chunk[i] === RIGHT_BRACKET) {
            i++;
            this.parts = [];
            this.size = 0;
            this.state = State.Body;
          } else {
            this.state = State.Text; // another escape sequence; re-read this byte as text (it may be ESC)
          }
          break;
        case State.Body:
        case State.Skip: {
          const end = findTerminator(chunk, i);
          const stop = end < 0 ? n : end;
          if (this.state === State.Body) this.collect(chunk, i, stop);
          if (end < 0) return;
          i = end + 1;
          if (chunk[end] === BEL) this.finish();
          else this.state = this.state === State.Body ? State.BodyEsc : State.SkipEsc;
          break;
        }
        case State.BodyEsc:
        case State.SkipEsc:
          if (chunk[i] === BACKSLASH) {
            i++;
            this.finish();
          } else {
            // ESC followed by anything but `\` cancels the OSC and starts a new escape sequence.
            this.parts = [];
            this.state = State.Esc;
          }
          break;
      }
    }
  }

  private collect(chunk: Uint8Array, from: number, to: number): void {
    if (to <= from) return;
    this.size += to - from;
    if (this.size > OSC_MAX_BYTES) {
      this.parts = [];
      this.state = State.Skip;
      return;
    }
    // A copy: Buffer#slice would be a view, and the caller may reuse its buffer.
    this.parts.push(Uint8Array.prototype.slice.call(chunk, from, to));
  }

  private finish(): void {
    const skipped = this.state === State.Skip || this.state === State.SkipEsc;
    const parts = this.parts;
    this.parts = [];
    this.state = State.Text;
    if (skipped) return;
    const body = parts.length === 1 ? parts[0]! : concat(parts, this.size);
    const text = this.decoder.decode(body);
    const semi = text.indexOf(";");
    if (semi < 0) this.onOsc(text, "");
    else this.onOsc(text.slice(0, semi), text.slice(semi + 1));
  }
}

const OSC_START = Buffer.from([ESC, RIGHT_BRACKET]);

/**
 * Index of the first `ESC ]` at or after `from`, or -1. One native search over a Buffer (colour
 * escapes, ESC followed by anything else, cost nothing extra); a plain Uint8Array is searched ESC by ESC.
 */
function findOscStart(chunk: Uint8Array, from: number): number {
  if (Buffer.isBuffer(chunk)) return chunk.indexOf(OSC_START, from);
  for (let esc = chunk.indexOf(ESC, from); esc >= 0 && esc + 1 < chunk.length; esc = chunk.indexOf(ESC, esc + 1)) {
    if (chunk[esc + 1] === RIGHT_BRACKET) return esc;
  }
  return -1;
}

/** Index of the first BEL or ESC at or after `from`, or -1. */
function findTerminator(chunk: Uint8Array, from: number): number {
  const bel = chunk.indexOf(BEL, from);
  const esc = chunk.indexOf(ESC, from);
  if (bel < 0) return esc;
  if (esc < 0) return bel;
  return Math.min(bel, esc);
}

function concat(parts: Uint8Array[], size: number): Uint8Array {
  const out = new Uint8Array(size);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
