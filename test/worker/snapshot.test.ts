import type { Terminal } from "@xterm/headless";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pty from "node-pty";
import { describe, expect, it } from "vitest";
import { serializeScreen } from "../../worker/agent/screen/snapshot.ts";
import { Waiters } from "../support/waiters.ts";
import { createScreenTerminal } from "../../worker/agent/screen/screen-state.ts";
import { terminalState } from "../../worker/agent/screen/terminal-state.ts";
import { which, WAIT_TIMEOUT_MS } from "./shell-harness.ts";

const COLS = 40;
const ROWS = 12;

function term(): Terminal {
  return createScreenTerminal(COLS, ROWS, 100);
}
function write(t: Terminal, data: string): Promise<void> {
  return new Promise((resolve) => t.write(data, resolve));
}

/** Everything about a terminal that a repaint must carry (see terminal-state.ts). */
const state = terminalState;

/** Repaints `a` into a fresh terminal, checks they match, then that they stay alike under `more`. */
async function expectExactRepaint(a: Terminal, more: string[]): Promise<void> {
  const b = term();
  await write(b, serializeScreen(a));
  expect(state(b)).toEqual(state(a));
  for (const data of more) {
    await write(a, data);
    await write(b, data);
    expect(state(b)).toEqual(state(a));
  }
}

// What vi prints to start, draw and enter insert mode (abridged from a real capture).
const VI_START =
  "\x1b[?1049h\x1b[22;0;0t\x1b[?1h\x1b=\x1b[H\x1b[2J\x1b[?2004h\x1b[?1002h\x1b[?1006h\x1b[1;11r\x1b[?25l" +
  "\x1b[1;1Hfirst line of the file\x1b[2;1H\x1b[1;31mhello\x1b[0m \x1b[4mworld\x1b[24m 世界" +
  Array.from({ length: 8 }, (_, i) => `\x1b[${i + 3};1H\x1b[94m~\x1b[0m`).join("") +
  "\x1b[12;1H\x1b[1m-- INSERT --\x1b[0m\x1b[12;30H1,1\x1b[2 q\x1b[1;1H\x1b[?25h\x1b[38;2;10;200;30m";

describe("serializeScreen", () => {
  it("repaints a shell screen with colours, wide characters and scrollback", async () => {
    const a = term();
    for (let i = 0; i < 30; i++) await write(a, `line ${i} \x1b[3${i % 8}mcolour\x1b[0m \x1b[48;5;${i}mbg\x1b[0m 日本語\r\n`);
    await write(a, "a long line that wraps ".repeat(3) + "\r\n$ \x1b[7minv\x1b[27m");
    await expectExactRepaint(a, ["typed\r\nnext line\r\n", "\x1b[2J\x1b[Hcleared"]);
  });

  it("repaints vi's alternate screen, modes, scroll region and cursor, and returns to the shell after it", async () => {
    const a = term();
    await write(a, "$ echo before\r\nbefore\r\n$ vi file\r\n");
    await write(a, VI_START);
    await expectExactRepaint(a, [
      "x\x1b[Kmore typing\r\n\x1bM", // typing, then a reverse index at the top of the region
      "\x1b[11;1H\r\n\r\n", // scroll inside the region
      "\x1b[?1049l\x1b[?1l\x1b>\x1b[?1002l\x1b[?1006l\x1b[r\x1b[0 q$ after vi\r\n", // quit vi
    ]);
  });

  it("repaints a hidden cursor, origin mode, insert mode and a line-drawing character set", async () => {
    const a = term();
    await write(a, "\x1b[?25l\x1b[3;9r\x1b[?6h\x1b[4h\x1b[?7l\x1b(0lqqk\x1b[2;1Hx  x\x1b[5;3H");
    await expectExactRepaint(a, ["lqk\r\nabc\r\n\r\n\r\n\r\n\r\n\r\n\r\n", "\x1b(B\x1b[?6l\x1b[1;1Hplain"]);
  });

  it("starts with a full reset, so a client's stale screen does not show through", () => {
    expect(serializeScreen(term()).startsWith("\x1bc")).toBe(true);
  });
});

/**
 * Runs a real full-screen program in a PTY, feeds a headless terminal with its output, and once
 * `ready` holds for its screen, repaints that exact state into a second terminal and compares.
 */
async function repaintOfRealProgram(file: string, args: string[], ready: (screen: string) => boolean): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "edgetty-repaint-"));
  writeFileSync(join(dir, "file.sh"), Array.from({ length: 40 }, (_, i) => `echo "line ${i}" # comment ${i}`).join("\n") + "\n");
  const a = term();
  const proc = pty.spawn(file, [...args, join(dir, "file.sh")], {
    name: "xterm-256color", cols: COLS, rows: ROWS, cwd: dir,
    env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: dir, TERM: "xterm-256color", LANG: "C.UTF-8" },
  });
  const exited = new Promise<void>((resolve) => proc.onExit(() => resolve()));
  const screen = (): string => {
    const b = a.buffer.active;
    return Array.from({ length: ROWS }, (_, y) => b.getLine(b.baseY + y)?.translateToString(true) ?? "").join("\n");
  };
  // Re-check `ready` after each chunk the headless terminal has parsed.
  const parsed = new Waiters();
  proc.onData((d) => a.write(d, () => parsed.notify()));
  try {
    await parsed.until(() => ready(screen()), "the program's screen", WAIT_TIMEOUT_MS, () => `; screen:\n${screen()}`);
    // The snapshot and the expected state, taken at the same instant.
    const snapshot = serializeScreen(a);
    const expected = state(a);
    const b = term();
    await write(b, snapshot);
    expect(state(b)).toEqual(expected);
  } finally {
    proc.kill("SIGKILL");
    await exited;
    rmSync(dir, { recursive: true, force: true });
  }
}

describe("serializeScreen with real full-screen programs", () => {
  it("repaints vim (alternate screen, syntax colours, mouse mode, cursor) exactly", async () => {
    await repaintOfRealProgram(
      which("vim"),
      ["-N", "-u", "NONE", "-i", "NONE", "-n", "-c", "syntax on", "-c", "set number mouse=a", "-c", "5"],
      (screen) => screen.includes("line 5") && /file\.sh/.test(screen),
    );
  });

  it("repaints less exactly", async () => {
    await repaintOfRealProgram(which("less"), [], (screen) => screen.includes("line 0") && screen.includes("file.sh"));
  });
});
