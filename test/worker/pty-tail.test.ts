/**
 * A PTY's last output reaches its listener before its exit, however the exit is found: node-pty's
 * timer destroying a stream that had not closed, or an EIO (after a kill) while the reader was paused.
 * Without pty-tail.ts, each of these loses what the stream or the kernel still held.
 */
import { tmpdir } from "node:os";
import type { Readable } from "node:stream";
import * as pty from "node-pty";
import { describe, expect, it } from "vitest";
import { drainable, listenWholly, slaveHoldable } from "../../worker/agent/pty-tail.ts";
import { until } from "../support/waiters.ts";

/** Starts `script` on a PTY: its output so far, and a promise of all of it and its exit once it ended. */
function start(script: string): { proc: pty.IPty; seen: () => string; ended: Promise<{ text: string; exit: { exitCode: number; signal: number } }> } {
  const proc = pty.spawn("/bin/sh", ["-c", script], { cols: 80, rows: 24, cwd: tmpdir(), env: { PATH: "/usr/bin:/bin", HOME: tmpdir() }, encoding: null });
  const chunks: Buffer[] = [];
  const seen = () => Buffer.concat(chunks).toString("utf8");
  const ended = new Promise<{ text: string; exit: { exitCode: number; signal: number } }>((resolve) =>
    listenWholly(
      proc,
      (data) => chunks.push(data),
      (exit) => resolve({ text: seen(), exit }),
    ),
  );
  return { proc, seen, ended };
}

/** Runs `script` to its end, `control` given the PTY first. */
function run(script: string, control: (proc: pty.IPty) => void = () => {}) {
  const { proc, ended } = start(script);
  control(proc);
  return ended;
}

describe("a PTY's output, all of it, before its exit", () => {
  it("finds node-pty's fields it drains through and holds a slave by (an upgrade that renames them fails here)", () => {
    const proc = pty.spawn("/bin/true", [], { cols: 80, rows: 24, env: { PATH: "/usr/bin:/bin" }, encoding: null });
    expect(drainable(proc)).toBe(true);
    expect(slaveHoldable(proc)).toBe(true);
    proc.kill();
  });

  it("gives a flowing command's whole output, then its exit code", async () => {
    const { text, exit } = await run("printf 'one\\n'; printf tail; exit 3");
    expect(text).toBe("one\r\ntail");
    expect(exit).toEqual({ exitCode: 3, signal: 0 });
  });

  it("gives what the kernel held for a reader paused from the start (node-pty's timer ends the stream), ten runs", async () => {
    for (let i = 0; i < 10; i++) {
      const { text, exit } = await run(`printf 'line-${i}\\n'; printf 'tail-${i}'`, (proc) => proc.pause());
      expect(text).toBe(`line-${i}\r\ntail-${i}`);
      expect(exit.exitCode).toBe(0);
    }
  });

  it("gives 3 KiB written just before exit to a paused reader", async () => {
    const { text } = await run("head -c 3072 /dev/zero | tr '\\0' x; printf end", (proc) => proc.pause());
    expect(text).toBe(`${"x".repeat(3072)}end`);
  });

  it("gives what a killed command printed while its reader was paused", async () => {
    const { proc, seen, ended } = start("stty -echo; printf ready; read line; printf before-kill; exec sleep 30");
    const stream = (proc as unknown as { _socket: Readable })._socket;
    // Once reading has begun, a paused stream goes on reading into its buffer: pause then, let the
    // script print, and kill it once that output is held there.
    await until("the script's first output", () => seen() === "ready" || null, { describe: () => ` (seen ${JSON.stringify(seen())})` });
    proc.pause();
    proc.write("go\n");
    await until("the output held by the paused stream", () => stream.readableLength > 0 || null);
    proc.kill("SIGKILL");
    const { text, exit } = await ended;
    expect(text).toBe("readybefore-kill");
    expect(exit.signal).toBe(9);
  });
});
