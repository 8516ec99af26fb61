/**
 * The screen model's bounded queue: past PENDING_MAX_BYTES the queue goes to the parser at once
 * (nothing is dropped), the backlog the PTY is paused on covers what waits, and a flood of any
 * length, modes set before it, repaints at the full offset with the state of a terminal that
 * parsed every byte.
 */
import { describe, expect, it } from "vitest";
import { createScreenTerminal, PENDING_MAX_BYTES, ScreenState } from "../../worker/agent/screen/screen-state.ts";
import { terminalState } from "../../worker/agent/screen/terminal-state.ts";

const bytes = (s: string) => Buffer.from(s, "latin1");

describe("ScreenState queue", () => {
  it("hands a long flood to the parser past its bound and repaints at the full offset, exactly", async () => {
    const screen = new ScreenState(80, 24);
    const reference = createScreenTerminal(80, 24);
    const frame = 256 << 10; // 256 KiB, as the output log seals them
    let pushed = 0;
    const push = (b: Buffer) => {
      screen.push(b);
      reference.write(b);
      pushed += b.byteLength;
    };
    push(bytes("\x1b[?1049h\x1b[?1000h\x1b[?2004h"));
    // Lines with a control byte that is not line text (BS), so nothing can be skipped.
    const line = bytes("x".repeat(78) + "\b\r\n");
    const filler = Buffer.concat(Array.from({ length: Math.ceil(frame / line.byteLength) }, () => line));
    while (pushed < PENDING_MAX_BYTES * 2) push(filler);
    expect(screen.backlog).toBe(pushed);
    push(bytes("\x1b[Hthe end"));

    const repaint = await screen.snapshot();
    expect(repaint.offset).toBe(pushed);
    expect(screen.scrolledPastBytes).toBe(0);
    expect(screen.backlog).toBe(0);
    await new Promise<void>((resolve) => reference.write("", resolve));
    expect(terminalState(screen.terminal)).toEqual(terminalState(reference));
    expect(screen.terminal.buffer.active.getLine(0)!.translateToString(true)).toMatch(/^the end/);
    screen.dispose();
    reference.dispose();
  });

  it("resizes after the output produced at the old size", async () => {
    const screen = new ScreenState(20, 5);
    const reference = createScreenTerminal(20, 5);
    const text = bytes("0123456789".repeat(5) + "\r\nnext");
    screen.push(text);
    screen.resize(10, 5);
    await new Promise<void>((resolve) => reference.write(text, resolve));
    reference.resize(10, 5);
    await screen.catchUp();
    expect(terminalState(screen.terminal)).toEqual(terminalState(reference));
    screen.dispose();
    reference.dispose();
  });
});
