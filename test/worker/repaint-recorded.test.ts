/**
 * Recorded sessions of real full-screen programs (vim, less, top, tmux, a progress bar that
 * saves and restores the cursor), driven by keystrokes in a real PTY. Each recording is then
 * replayed with a late joiner at many points — every chunk boundary the PTY produced plus
 * byte offsets inside chunks — and the joiner (repaint + rest of the stream) must end in the
 * state of a client that saw everything.
 */
import { spawnSync } from "node:child_process";
import type { Terminal } from "@xterm/headless";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pty from "node-pty";
import { describe, expect, it } from "vitest";
import { createScreenTerminal, repaintBytes } from "../../worker/agent/screen/screen-state.ts";
import { terminalState } from "../../worker/agent/screen/terminal-state.ts";
import { Waiters } from "../support/waiters.ts";
import { which, WAIT_TIMEOUT_MS } from "./shell-harness.ts";

const COLS = 60;
const ROWS = 16;
/** Join points tried per recording, at most (chunk boundaries first, then offsets inside chunks). */
const JOINS_MAX = 40;

function term(): Terminal {
  return createScreenTerminal(COLS, ROWS, 200);
}
function write(t: Terminal, data: Uint8Array | string): Promise<void> {
  return new Promise((resolve) => t.write(data, resolve));
}

interface Step {
  /** Keys to type once `ready` holds for the screen (none for the first step: just wait). */
  keys?: string;
  ready(screen: string): boolean;
}

/** Runs `file args` in a PTY, types each step's keys once the previous step's screen is ready, and returns every output chunk. */
async function record(file: string, args: string[], steps: Step[], env: Record<string, string> = {}): Promise<Buffer[]> {
  const dir = mkdtempSync(join(tmpdir(), "edgetty-record-"));
  writeFileSync(join(dir, "file.txt"), Array.from({ length: 80 }, (_, i) => `line ${i} of the file — 日本語 ${"x".repeat(i % 50)}`).join("\n") + "\n");
  const chunks: Buffer[] = [];
  const live = term();
  const waiters = new Waiters();
  const proc = pty.spawn(file, args, {
    name: "xterm-256color", cols: COLS, rows: ROWS, cwd: dir,
    env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: dir, TERM: "xterm-256color", LANG: "C.UTF-8", ...env },
  });
  const exited = new Promise<void>((resolve) => proc.onExit(() => resolve()));
  proc.onData((d) => {
    const chunk = Buffer.from(d as unknown as Buffer);
    chunks.push(chunk);
    live.write(chunk, () => waiters.notify());
  });
  const screen = (): string => {
    const b = live.buffer.active;
    return Array.from({ length: ROWS }, (_, y) => b.getLine(b.baseY + y)?.translateToString(true) ?? "").join("\n");
  };
  try {
    for (const step of steps) {
      if (step.keys) proc.write(step.keys);
      await waiters.until(() => step.ready(screen()), `${file}: ${step.ready.toString()}`, WAIT_TIMEOUT_MS, () => `; screen:\n${screen()}`);
    }
  } finally {
    proc.kill("SIGKILL");
    await exited;
    live.dispose();
    rmSync(dir, { recursive: true, force: true });
  }
  return chunks;
}

/** Replays `chunks` with a joiner at many points; returns the join offsets where it differed. */
async function joinsThatDiffer(chunks: Buffer[]): Promise<number[]> {
  const bytes = Buffer.concat(chunks);
  const boundaries: number[] = [];
  for (let at = 0, i = 0; i < chunks.length; i++) boundaries.push((at += chunks[i]!.byteLength));
  // Every chunk boundary if few, else an even spread; plus offsets inside chunks (mid-sequence).
  const step = Math.max(1, Math.ceil(boundaries.length / (JOINS_MAX / 2)));
  const joins = new Set(boundaries.filter((_, i) => i % step === 0));
  for (let k = 1; joins.size < JOINS_MAX && k <= JOINS_MAX; k++) joins.add(Math.floor((bytes.byteLength * k) / (JOINS_MAX + 1)) + 3);

  const live = term();
  for (const c of chunks) await write(live, c);
  const expected = terminalState(live);
  live.dispose();
  const differ: number[] = [];
  for (const join of [...joins].sort((a, b) => a - b)) {
    if (join > bytes.byteLength) continue;
    const agent = term();
    const joiner = term();
    await write(agent, bytes.subarray(0, join));
    await write(joiner, repaintBytes(agent, bytes.subarray(Math.max(0, join - 4096), join)));
    await write(joiner, bytes.subarray(join));
    if (JSON.stringify(terminalState(joiner)) !== JSON.stringify(expected)) differ.push(join);
    agent.dispose();
    joiner.dispose();
  }
  return differ;
}

describe("repaints of recorded full-screen sessions, joined at many points", () => {
  it("vim: open, move, insert text, split the window", async () => {
    const chunks = await record(which("vim"), ["-N", "-u", "NONE", "-i", "NONE", "-n", "-c", "syntax on", "-c", "set number mouse=a laststatus=2", "file.txt"], [
      { ready: (s) => s.includes("line 3 of the file") },
      { keys: "10Gwi日本 inserted \x1b", ready: (s) => s.includes("inserted") },
      { keys: ":split\r", ready: (s) => (s.match(/file\.txt/g) ?? []).length >= 2 },
      { keys: "\x17jGo\x1b[Aend\x1b", ready: (s) => s.includes("end") },
    ]);
    expect(await joinsThatDiffer(chunks)).toEqual([]);
  });

  it("less: page, search, scroll back", async () => {
    const chunks = await record(which("less"), ["file.txt"], [
      { ready: (s) => s.includes("line 0 of the file") },
      { keys: " ", ready: (s) => s.includes("line 20 of the file") },
      { keys: "/line 42\r", ready: (s) => s.includes("line 42 of the file") },
      { keys: "b", ready: (s) => !s.includes("line 42 of the file") || s.includes("line 30") },
    ]);
    expect(await joinsThatDiffer(chunks)).toEqual([]);
  });

  it("top: a few refreshes", async () => {
    let refreshes = 0;
    const chunks = await record(which("top"), ["-d", "0.2"], [
      { ready: (s) => s.includes("PID") },
      { keys: "M", ready: (s) => s.includes("PID") && ++refreshes > 3 },
    ]);
    expect(await joinsThatDiffer(chunks)).toEqual([]);
  });

  it("tmux inside the terminal: status line, split pane, typing", async () => {
    const sock = `edgetty-test-${process.pid}`;
    // The tmux server outlives its client: end it however the recording ends (a timeout included).
    const killServer = () => spawnSync(which("tmux"), ["-L", sock, "kill-server"], { stdio: "ignore" });
    // Keys that come within assume-paste-time (1 ms) of the previous one are taken as pasted, and a
    // pasted prefix is typed into the pane: under load the prefix can follow the previous step's
    // Enter that closely. Every key here is typed, so none is taken as pasted.
    const confDir = mkdtempSync(join(tmpdir(), "edgetty-tmux-"));
    const conf = join(confDir, "tmux.conf");
    writeFileSync(conf, "set -g assume-paste-time 0\n");
    let chunks: Awaited<ReturnType<typeof record>>;
    try {
      chunks = await record(which("tmux"), ["-L", sock, "-f", conf, "new-session", "sh"], [
        // The status line and the shell's prompt: keys typed before the prompt are echoed ahead of it,
        // and the command's output then shares the prompt's line.
        { ready: (s) => s.includes("[0]") && /^[#$]\s*$/m.test(s) },
        // The command's output on a line of its own (the typed line also ends in "hello-from-tmux").
        { keys: "echo hello-from-tmux\r", ready: (s) => /^hello-from-tmux\s*$/m.test(s) },
        { keys: "\x02%", ready: (s) => s.includes("│") },
        { keys: "printf 'pane two\\n'\r", ready: (s) => s.includes("pane two") },
      ], { TMUX: "" });
    } finally {
      killServer();
      rmSync(confDir, { recursive: true, force: true });
    }
    expect(await joinsThatDiffer(chunks)).toEqual([]);
  });

  it("a progress bar that saves and restores the cursor", async () => {
    const script = 'printf "header\\n"; i=0; while [ $i -le 20 ]; do printf "\\0337\\033[1;40H[%-20s]\\0338" "$(printf "%${i}s" | tr " " "#")"; printf "step %d\\n" $i; i=$((i+1)); done; printf "done-bar\\n"';
    const chunks = await record("/bin/sh", ["-c", `${script}; sleep 5`], [{ ready: (s) => s.includes("done-bar") }]);
    expect(await joinsThatDiffer(chunks)).toEqual([]);
  });
});
