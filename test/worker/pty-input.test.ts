/**
 * A PTY's input is bounded (worker/agent/pty-input.ts): node-pty's write queue is found and
 * measured (an upgrade that changes it fails here), input past INPUT_BACKLOG_MAX_BYTES for a
 * program that does not read is refused and reported in order, and a closed PTY's queue is dropped
 * rather than retried into a closed descriptor.
 */
import fs from "node:fs";
import { tmpdir } from "node:os";
import * as pty from "node-pty";
import { afterEach, describe, expect, it } from "vitest";
import {
  INPUT_ACK_EVERY_BYTES,
  INPUT_BACKLOG_MAX_BYTES,
  INPUT_BACKLOG_RESUME_BYTES,
  InputBacklog,
  ptyInputQueue,
  WRITE_RETRY_MAX_MS,
} from "../../worker/agent/pty-input.ts";
import { listenWholly } from "../../worker/agent/pty-tail.ts";
import { until } from "../support/waiters.ts";

const spawned: pty.IPty[] = [];
afterEach(() => {
  for (const proc of spawned.splice(0)) {
    try {
      proc.kill("SIGKILL");
    } catch {
      // already gone
    }
  }
});

/** `script` on a PTY, its input not echoed. */
function spawn(script: string): pty.IPty {
  const proc = pty.spawn("/bin/sh", ["-c", `stty -echo raw; ${script}`], { cols: 80, rows: 24, cwd: tmpdir(), env: { PATH: "/usr/bin:/bin", HOME: tmpdir() }, encoding: null });
  spawned.push(proc);
  return proc;
}

describe("a PTY's input queue", () => {
  it("reads node-pty's write queue: what a program that does not read leaves pending (an upgrade that changes it fails here)", async () => {
    const proc = spawn("echo ready; exec sleep 60");
    const queue = ptyInputQueue(proc);
    expect(queue).not.toBeNull();
    expect(queue!.pending()).toBe(0);
    // Written once the PTY is raw: before `stty` ran, the canonical line discipline took (and
    // dropped) far more, as much as the shell's start-up under load let it (200 KB seen in CI).
    let out = "";
    proc.onData((data) => (out += data.toString()));
    await until("raw mode", () => out.includes("ready") || null);
    proc.write(Buffer.alloc(1 << 20, 0x61));
    // The kernel takes a few KiB; the rest stays queued, counted.
    await until("the kernel to take what it can", () => queue!.pending() < 1 << 20 || null);
    expect(queue!.pending()).toBeGreaterThan((1 << 20) - (64 << 10));
  });

  it("goes back to zero once a program reads its input", async () => {
    const proc = spawn("exec cat > /dev/null");
    const queue = ptyInputQueue(proc)!;
    proc.write(Buffer.alloc(2 << 20, 0x61));
    await until("the queue to drain", () => queue.pending() === 0 || null);
  });

  it("backs off while the program does not read, instead of retrying the write in a busy loop", async () => {
    const proc = spawn("echo ready; exec sleep 60");
    const queue = ptyInputQueue(proc)!;
    let out = "";
    proc.onData((data) => (out += data.toString()));
    await until("raw mode", () => out.includes("ready") || null);
    const fsWriteSync = fs.writeSync;
    const at: number[] = [];
    fs.writeSync = ((...args: unknown[]) => {
      at.push(performance.now());
      return (fsWriteSync as (...args: unknown[]) => number)(...args);
    }) as typeof fs.writeSync;
    try {
      proc.write(Buffer.alloc(100_000, 0x61));
      // Backing off, the writer's retries spread out to WRITE_RETRY_MAX_MS apart within a few
      // writes; node-pty's own retry (setImmediate) never leaves such a gap (14 000 writes in 500 ms).
      const gapReached = () => at.length > 1 && at[at.length - 1]! - at[at.length - 2]! >= WRITE_RETRY_MAX_MS / 2;
      await until("retries spread out while the program does not read", () => gapReached() || null);
      expect(queue.pending()).toBeGreaterThan(0);
      expect(at.length).toBeLessThan(20);
    } finally {
      fs.writeSync = fsWriteSync;
    }
  });

  it("is dropped before a kill, so no write is retried into the closed descriptor (EBADF)", async () => {
    const proc = spawn("exec sleep 60");
    const queue = ptyInputQueue(proc)!;
    const errors: unknown[] = [];
    const consoleError = console.error;
    console.error = (...args: unknown[]) => errors.push(args);
    // The writer writes with fs.writeSync: count its writes, and those after the drop (the retries
    // back off at most WRITE_RETRY_MAX_MS apart, and the exit comes later than that).
    const fsWriteSync = fs.writeSync;
    let writes = 0;
    let writesAfterDrop = 0;
    let dropped = false;
    fs.writeSync = ((...args: unknown[]) => {
      writes++;
      if (dropped) writesAfterDrop++;
      return (fsWriteSync as (...args: unknown[]) => number)(...args);
    }) as typeof fs.writeSync;
    try {
      const exited = new Promise<void>((resolve) => listenWholly(proc, () => {}, () => resolve()));
      proc.write(Buffer.alloc(1 << 20, 0x61));
      await until("input queued", () => queue.pending() > 0 || null);
      // As PtySession.kill does (a DELETE): the queue goes first, then the program.
      queue.drop();
      dropped = true;
      expect(queue.pending()).toBe(0);
      proc.kill("SIGKILL");
      await exited;
      expect(queue.pending()).toBe(0);
      expect(writes).toBeGreaterThan(0); // the count saw the writer's writes
      expect(writesAfterDrop).toBe(0);
      expect(errors).toEqual([]);
    } finally {
      fs.writeSync = fsWriteSync;
      console.error = consoleError;
    }
  });

  it("writes nothing once the master is closed, even before node-pty has seen the close (its number may be another file's by then)", async () => {
    // Paused (the agent's flow control, or the host's PAUSE), the read stream never sees the EIO:
    // node-pty destroys it 200 ms after the exit, which closes the master at once, but marks the
    // terminal closed (its write a no-op) only on the stream's 'close', at the end of that turn of
    // the event loop. Input arriving in between (the edge's INPUT in the poll phase) must not be
    // written to the descriptor's number: a PTY spawned or a socket opened meanwhile has it.
    const proc = spawn("head -c 3000 /dev/zero; exit 0");
    proc.pause();
    const fd = (proc as unknown as { _fd: number })._fd;
    const queue = ptyInputQueue(proc)!;
    const socket = (proc as unknown as { _socket: { destroy: (error?: Error) => unknown } })._socket;
    const destroy = socket.destroy.bind(socket);
    const fsWriteSync = fs.writeSync;
    let closed = false;
    let closedBy: Error | undefined | null = null;
    const writesAfterClose: number[] = [];
    fs.writeSync = ((...args: unknown[]) => {
      if (closed && args[0] === fd) writesAfterClose.push(fd);
      return (fsWriteSync as (...args: unknown[]) => number)(...args);
    }) as typeof fs.writeSync;
    try {
      const written = new Promise<void>((resolve) => {
        socket.destroy = (error?: Error) => {
          const result = destroy(error);
          closed = true;
          closedBy = error;
          setImmediate(() => {
            proc.write("typed after the close");
            resolve();
          });
          return result;
        };
      });
      const exited = new Promise<void>((resolve) => listenWholly(proc, () => {}, () => resolve()));
      await written;
      await exited;
      // node-pty's exit timer, not an EIO (after which node-pty's write is a no-op at once): else
      // this test would prove nothing.
      expect(closedBy).toBeUndefined();
      expect(writesAfterClose).toEqual([]);
      expect(queue.pending()).toBe(0);
    } finally {
      fs.writeSync = fsWriteSync;
    }
  });
});

describe("InputBacklog", () => {
  it("refuses input past INPUT_BACKLOG_MAX_BYTES until the queue is under INPUT_BACKLOG_RESUME_BYTES, and reports every byte in order", () => {
    let pending = 0;
    const reports: [boolean, number][] = [];
    const backlog = new InputBacklog(() => pending, (refused, bytes) => reports.push([refused, bytes]));
    expect(backlog.offer(100)).toBe(true);
    pending = INPUT_BACKLOG_MAX_BYTES;
    expect(backlog.offer(200)).toBe(false);
    expect(backlog.offer(300)).toBe(false);
    pending = INPUT_BACKLOG_RESUME_BYTES; // not yet under the resume mark
    expect(backlog.offer(400)).toBe(false);
    pending = INPUT_BACKLOG_RESUME_BYTES - 1;
    expect(backlog.offer(INPUT_ACK_EVERY_BYTES)).toBe(true);
    backlog.flush();
    expect(reports).toEqual([
      [false, 100],
      [true, 900],
      [false, INPUT_ACK_EVERY_BYTES],
    ]);
    backlog.dispose();
  });

  it("acknowledges typing once it pauses, not key by key", async () => {
    const reports: [boolean, number][] = [];
    const backlog = new InputBacklog(() => 0, (refused, bytes) => reports.push([refused, bytes]));
    for (let i = 0; i < 5; i++) backlog.offer(1);
    expect(reports).toEqual([]);
    await until("the ack after the pause", () => reports.length > 0 || null);
    expect(reports).toEqual([[false, 5]]);
    backlog.dispose();
  });
});
