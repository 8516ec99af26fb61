/**
 * The screen model's bounded queue: a flood longer than PENDING_MAX_BYTES skips its oldest frames
 * but keeps the modes they set, and the repaint still covers every byte pushed.
 */
import { describe, expect, it } from "vitest";
import { modeSequences, PENDING_MAX_BYTES, ScreenState } from "../../worker/agent/screen/screen-state.ts";

const bytes = (s: string) => Buffer.from(s, "latin1");

describe("modeSequences", () => {
  it("keeps DEC private modes, keypad, cursor style, scroll region, charsets and titles in order", () => {
    const chunk = bytes("a\x1b[?1049hb\x1b[31mc\x1b[?1000;1006h\x1b=\x1b[3 q\x1b[2;20r\x1b(0\x0e\x1b]2;t\x07\x1b[Hd");
    expect(modeSequences(chunk).toString("latin1")).toBe("\x1b[?1049h\x1b[?1000;1006h\x1b=\x1b[3 q\x1b[2;20r\x1b(0\x0e\x1b]2;t\x07");
  });

  it("is empty for plain text", () => {
    expect(modeSequences(bytes("just text\r\n".repeat(10))).byteLength).toBe(0);
  });
});

describe("ScreenState queue", () => {
  it("skips the oldest output past its bound, keeps its modes, and repaints at the full offset", async () => {
    const screen = new ScreenState(80, 24);
    const frame = 256 << 10; // 256 KiB, as the output log seals them
    let pushed = 0;
    const push = (b: Buffer) => {
      screen.push(b);
      pushed += b.byteLength;
    };
    push(bytes("\x1b[?1049h\x1b[?1000h\x1b[?2004h"));
    const line = bytes("x".repeat(79) + "\r\n");
    const filler = Buffer.concat(Array.from({ length: Math.ceil(frame / line.byteLength) }, () => line));
    while (pushed < PENDING_MAX_BYTES * 2) push(filler);
    push(bytes("\x1b[Hthe end"));
    expect(screen.skippedBytes).toBeGreaterThan(0);

    const repaint = await screen.snapshot();
    expect(repaint.offset).toBe(pushed);
    expect(screen.terminal.buffer.active.type).toBe("alternate");
    expect(screen.terminal.modes.mouseTrackingMode).toBe("vt200");
    expect(screen.terminal.modes.bracketedPasteMode).toBe(true);
    expect(screen.terminal.buffer.active.getLine(0)!.translateToString(true)).toMatch(/^the end/);
    screen.dispose();
  });
});
