/**
 * Exact shortcuts for the screen model: output that later output is certain to scroll away
 * entirely need not be parsed cell by cell.
 *
 * Why it is exact. Take a run of output made only of *line text* — printable ASCII, TAB, BEL,
 * well-formed UTF-8 for code points from U+00A0 (never a C1 control), CR, LF, SGR (`CSI Pm m`)
 * and erase-in-line (`CSI K`, `CSI 0/1/2 K`) — that starts with the parser in its ground state
 * and the scroll region covering the whole screen. Line text changes nothing but the cells of the
 * cursor's line, the cursor's position and pending wrap, and (SGR) the attributes of what is
 * printed next. Now cut such a run at a CR followed, still inside the run, by at least
 * 2 × rows + scrollback LFs: after the CR the cursor's column and pending wrap no longer depend on
 * what came before; within rows − 1 LFs the cursor reaches the bottom row, whatever row it was
 * on; and the rows + scrollback + 1 LFs after that scroll every line that existed before the
 * cut, and the one the cursor was on, out of the buffer. So the terminal ends in the same state
 * whether it parsed the run's head (before the cut) or only its SGRs: the attributes are the one
 * thing the head leaves behind. SGRs only assign fields and flags, so replaying the last
 * occurrence of each distinct SGR of the head, in their order, from its last full reset on,
 * gives the same attributes as all of them (see headSgr). The caller checks the preconditions the bytes cannot show (ground state, no pending
 * UTF-8 byte, a full-screen scroll region, the screen's height) in the parser itself, right
 * before the head, and parses the head after all when one fails.
 *
 * For a text flood this turns parsing megabytes into parsing the newest few thousand lines and
 * scanning the rest once (printable ASCII four bytes at a time, ~0.5 ns a byte; other bytes one at
 * a time, ~1.5 ns; against ~30 ns a byte for xterm.js).
 * test/worker/scroll-skip.test.ts checks the claim as a property against parsing everything.
 */

/** A run of output at a stream offset (a sealed frame's payload). */
export interface OutputChunk {
  offset: number;
  bytes: Uint8Array;
}

/** Distinct SGR sequences replayed for one skipped head; a head with more is parsed instead. */
export const SKIP_SGR_MAX = 256;
/** Longest SGR or EL sequence recognised as line text, in bytes (longer ones end the run). */
const SEQUENCE_MAX_BYTES = 64;

/** One step of feeding queued output to the parser, in stream order. */
export type FeedStep =
  /** Parse [from, to). */
  | { t: "parse"; from: number; to: number }
  /**
   * [from, to) is the head of a run of line text: if the parser's state allows (see the file
   * comment; `lines` LFs follow the cut inside the run), feed only `sgr` instead of it.
   */
  | { t: "skip"; from: number; to: number; lines: number; sgr: Uint8Array };

/** LFs that must follow the cut, for a screen of `rows` rows keeping `scrollback` lines. */
export function linesToForget(rows: number, scrollback: number): number {
  return 2 * rows + scrollback;
}

const enum S {
  Ground,
  Esc,
  Csi,
  Utf8,
  /** Inside a sequence that is not line text, until it ends. */
  OtherEsc,
  OtherCsi,
  /** An OSC, DCS, SOS, PM or APC string, until BEL or ST. */
  OtherString,
}

/**
 * Plans how to feed `chunks` (contiguous, in stream order) to a screen of `rows` rows and
 * `scrollback` lines: parse steps covering every byte, except heads of line-text runs that may be
 * skipped. The run in progress at the end counts up to the end (output after it cannot undo what
 * the cut guarantees).
 */
export function planFeed(chunks: readonly OutputChunk[], rows: number, scrollback: number): FeedStep[] {
  if (chunks.length === 0) return [];
  const start = chunks[0]!.offset;
  const last = chunks[chunks.length - 1]!;
  const end = last.offset + last.bytes.byteLength;
  const need = linesToForget(rows, scrollback);
  // For each of the newest `need` LFs of the current run: the last CR before it in the run.
  const crBefore = new Float64Array(need);
  const steps: FeedStep[] = [];
  let parsedTo = start;
  let runStart = start;
  let inRun = true;
  let lfCount = 0;
  let lastCr = -1;

  /** The current run ended (at a byte that is not line text): plan its head's skip, if any. */
  const endRun = () => {
    if (inRun && lfCount >= need) {
      const cut = crBefore[(lfCount - need) % need]!;
      if (cut > runStart) {
        const sgr = headSgr(chunks, runStart, cut);
        if (sgr) {
          if (runStart > parsedTo) steps.push({ t: "parse", from: parsedTo, to: runStart });
          steps.push({ t: "skip", from: runStart, to: cut, lines: need, sgr });
          parsedTo = cut;
        }
      }
    }
    inRun = false;
    lfCount = 0;
    lastCr = -1;
  };
  const startRun = (at: number) => {
    inRun = true;
    runStart = at;
  };

  let state = S.Ground;
  let seqLen = 0;
  let csiParams = 0; // parameter bytes seen
  let csiFirst = 0; // the first parameter byte
  let utf8Left = 0;
  let utf8Lo = 0x80;
  let utf8Hi = 0xbf;
  for (const chunk of chunks) {
    const bytes = chunk.bytes;
    const base = chunk.offset;
    const n = bytes.length;
    // The chunk as 32-bit words from its first 4-byte-aligned byte (`lead` bytes in), to pass
    // printable ASCII four bytes at a time.
    const lead = (4 - (bytes.byteOffset & 3)) & 3;
    const words = n >= lead + 4 ? new Uint32Array(bytes.buffer, bytes.byteOffset + lead, (n - lead) >>> 2) : null;
    const wordsEnd = words ? lead + words.length * 4 : 0;
    for (let i = 0; i < n; i++) {
      let b = bytes[i]!;
      if (state === S.Ground) {
        // The common case, kept tight: printable ASCII, CR and LF.
        while (true) {
          if (b >= 0x20 && b <= 0x7e) {
            // At a word boundary: pass the whole words of printable ASCII that follow.
            if (words !== null && i >= lead && ((i - lead) & 3) === 3 && i + 1 < wordsEnd) {
              const next = lead + 4 * printableWordsEnd(words, (i + 1 - lead) >>> 2);
              if (next === n) {
                i = n;
                break;
              }
              i = next - 1;
            }
          } else if (b === 0x0a) {
            crBefore[lfCount % need] = lastCr;
            lfCount++;
          } else if (b === 0x0d) {
            lastCr = base + i;
          } else break;
          if (++i === n) break;
          b = bytes[i]!;
        }
        if (i === n) break;
      }
      switch (state) {
        case S.Ground: // not printable ASCII, CR or LF (the loop above took those)
          if (b === 0x09 || b === 0x07) continue;
          if (b === 0x1b) {
            state = S.Esc;
            continue;
          }
          if (b >= 0xc2 && b <= 0xf4) {
            state = S.Utf8;
            utf8Left = b < 0xe0 ? 1 : b < 0xf0 ? 2 : 3;
            utf8Lo = b === 0xc2 || b === 0xe0 ? 0xa0 : b === 0xf0 ? 0x90 : 0x80;
            utf8Hi = b === 0xed ? 0x9f : b === 0xf4 ? 0x8f : 0xbf;
            continue;
          }
          // Any other control, DEL, a stray UTF-8 byte: not line text.
          endRun();
          startRun(base + i + 1);
          continue;
        case S.Esc:
          if (b === 0x5b) {
            state = S.Csi;
            seqLen = 2;
            csiParams = 0;
            csiFirst = 0;
            continue;
          }
          endRun();
          if (b === 0x1b) continue; // ESC ESC: the second one starts afresh
          if (b === 0x5d || b === 0x50 || b === 0x58 || b === 0x5e || b === 0x5f) state = S.OtherString;
          else if (b >= 0x20 && b <= 0x2f) state = S.OtherEsc;
          else {
            state = S.Ground;
            startRun(base + i + 1);
          }
          continue;
        case S.Csi:
          if (++seqLen <= SEQUENCE_MAX_BYTES) {
            if ((b >= 0x30 && b <= 0x39) || b === 0x3b || b === 0x3a) {
              if (csiParams++ === 0) csiFirst = b;
              continue;
            }
            if (b === 0x6d || (b === 0x4b && (csiParams === 0 || (csiParams === 1 && csiFirst <= 0x32)))) {
              state = S.Ground;
              if (!inRun) startRun(base + i + 1);
              continue;
            }
          }
          endRun();
          state = S.OtherCsi;
          i--; // look at this byte again as part of a sequence that is not line text
          continue;
        case S.Utf8:
          if (b >= utf8Lo && b <= utf8Hi) {
            utf8Lo = 0x80;
            utf8Hi = 0xbf;
            if (--utf8Left === 0) {
              state = S.Ground;
              if (!inRun) startRun(base + i + 1);
            }
            continue;
          }
          endRun();
          state = S.Ground;
          if (b === 0x1b) state = S.Esc;
          else startRun(base + i + 1);
          continue;
        case S.OtherEsc:
          if (b >= 0x20 && b <= 0x2f) continue;
          if (b === 0x1b) state = S.Esc;
          else {
            state = S.Ground;
            startRun(base + i + 1);
          }
          continue;
        case S.OtherCsi:
          if (b >= 0x40 && b <= 0x7e) {
            state = S.Ground;
            startRun(base + i + 1);
          } else if (b === 0x1b) state = S.Esc;
          continue;
        case S.OtherString:
          if (b === 0x07) {
            state = S.Ground;
            startRun(base + i + 1);
          } else if (b === 0x1b) state = S.Esc; // ESC \ ends it (and starts no run until it is done)
          continue;
      }
    }
  }
  endRun();
  if (parsedTo < end) steps.push({ t: "parse", from: parsedTo, to: end });
  return steps;
}

/**
 * The index of the first of `words` from `w` on that holds a byte under 0x20 or over 0x7e (not
 * printable ASCII), or `words.length`. Two bit tricks per word ("Bit Twiddling Hacks",
 * hasless/hasmore), exact for these bounds: `(x - 0x20202020) & ~x & 0x80808080` is non-zero
 * exactly when a byte is under 0x20, `((x + 0x01010101) | x) & 0x80808080` exactly when one is
 * over 0x7e (a carry out of a byte happens only from 0xff, which the OR already shows).
 */
function printableWordsEnd(words: Uint32Array, w: number): number {
  for (; w < words.length; w++) {
    const x = words[w]!;
    if (((x - 0x20202020) & ~x & 0x80808080) !== 0 || (((x + 0x01010101) | x) & 0x80808080) !== 0) break;
  }
  return w;
}

/**
 * The SGRs that give the attributes [from, to) leaves behind, concatenated: the last occurrence
 * of each distinct SGR, in stream order, from the last full reset (`CSI m`, `CSI 0 m`) on — a
 * reset sets every attribute an SGR can set (xterm.js keeps only the hyperlink and underline
 * offset, which SGRs never change), so what came before it does not matter. Found scanning
 * backwards from `to` (coloured output resets every line, so this is short). Null when there are
 * more than SKIP_SGR_MAX distinct ones.
 */
function headSgr(chunks: readonly OutputChunk[], from: number, to: number): Uint8Array | null {
  const found: string[] = []; // newest first
  const seen = new Set<string>();
  scan: for (let c = chunks.length - 1; c >= 0; c--) {
    const { bytes, offset } = chunks[c]!;
    const lo = Math.max(0, from - offset);
    let at = Math.min(bytes.byteLength, to - offset);
    while (at > lo) {
      const esc = bytes.lastIndexOf(0x1b, at - 1);
      if (esc < lo) break;
      at = esc;
      const sequence = sequenceAt(chunks, c, esc);
      if (sequence.charCodeAt(sequence.length - 1) !== 0x6d) continue; // erase-in-line
      if (seen.has(sequence)) continue;
      seen.add(sequence);
      found.push(sequence);
      if (sequence === "\x1b[m" || sequence === "\x1b[0m") break scan;
      if (found.length > SKIP_SGR_MAX) return null;
    }
  }
  let length = 0;
  for (const sequence of found) length += sequence.length;
  const out = new Uint8Array(length);
  let at = 0;
  for (let i = found.length - 1; i >= 0; i--) {
    const sequence = found[i]!;
    for (let k = 0; k < sequence.length; k++) out[at++] = sequence.charCodeAt(k);
  }
  return out;
}

/** The SGR or EL sequence starting at `chunks[c].bytes[i]` (planFeed found it complete), as latin1. */
function sequenceAt(chunks: readonly OutputChunk[], c: number, i: number): string {
  let out = "";
  for (; c < chunks.length; c++, i = 0) {
    const bytes = chunks[c]!.bytes;
    for (; i < bytes.byteLength; i++) {
      const b = bytes[i]!;
      out += String.fromCharCode(b);
      if (b === 0x6d || b === 0x4b) return out;
    }
  }
  return out;
}

/** The bytes of [from, to) as views into `chunks` (no copy). */
export function slices(chunks: readonly OutputChunk[], from: number, to: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (const chunk of chunks) {
    const cEnd = chunk.offset + chunk.bytes.byteLength;
    if (cEnd <= from) continue;
    if (chunk.offset >= to) break;
    const lo = Math.max(0, from - chunk.offset);
    const hi = Math.min(chunk.bytes.byteLength, to - chunk.offset);
    out.push(lo === 0 && hi === chunk.bytes.byteLength ? chunk.bytes : chunk.bytes.subarray(lo, hi));
  }
  return out;
}
