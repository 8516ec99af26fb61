import { describe, expect, it } from "vitest";
import { createScreenTerminal } from "../../worker/agent/screen/screen-state.ts";

describe("xterm.js workarounds in the agent's terminals", () => {
  it("survives ESC[1J in the bottom-right cell (xterm.js 6.0.0 throws there) and erases the screen", async () => {
    const logged: string[] = [];
    const t = createScreenTerminal(20, 6, 10, (line) => logged.push(line));
    // Without the workaround this write's callback never runs: the parser throws from its timer.
    await new Promise<void>((resolve) => t.write("top line\x1b[6;20HX\x1b[6;20H\x1b[1Jafter", resolve));
    expect(t.buffer.active.getLine(0)!.translateToString(true)).toBe("");
    expect(t.buffer.active.getLine(5)!.translateToString(true)).toBe(`${" ".repeat(19)}a`);
    expect(logged).toEqual([]);
    t.dispose();
  });

  it("keeps ESC[1J elsewhere as it was", async () => {
    const t = createScreenTerminal(20, 6, 10);
    await new Promise<void>((resolve) => t.write("row one\r\nrow two\x1b[2;3H\x1b[1J", resolve));
    expect(t.buffer.active.getLine(0)!.translateToString(true)).toBe("");
    expect(t.buffer.active.getLine(1)!.translateToString(true)).toBe("    two");
    t.dispose();
  });
});
