/** The PTY host: /execute's PTYs forked by a small process of the agent's, relayed over its pipes. */
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { taggedCommand } from "../../worker/agent/launch.ts";
import { PtyHost, ptyHostProgram, type PipedProcess, type PtyProcess } from "../../worker/agent/exec/pty-host.ts";
import { PtyRun } from "../../worker/agent/exec/pty-run.ts";
import { processTree } from "../support/ndjson.ts";
import { ShellGate } from "../support/shell-gate.ts";
import { until } from "../support/waiters.ts";
import { encodeFrame, FrameReader, PTY_HOST_FRAME_MAX_BYTES, PtyHostKind, PtyHostProtocolError } from "../../worker/agent/exec/pty-host-protocol.ts";

const TAG = "0123456789abcdef.1-1.xexec";

/** Output and exit of one run, as they come. */
function collect(proc: PtyProcess): { text: () => string; exit: Promise<{ exitCode: number; signal: number }>; until: (re: RegExp) => Promise<void> } {
  let out = "";
  let waiting: { re: RegExp; resolve: () => void } | null = null;
  const exit = new Promise<{ exitCode: number; signal: number }>((resolve) =>
    proc.listen(
      (data) => {
        out += data.toString("utf8");
        if (waiting && waiting.re.test(out)) waiting.resolve();
      },
      resolve,
    ),
  );
  return {
    text: () => out,
    exit,
    until: (re) => (re.test(out) ? Promise.resolve() : new Promise((resolve) => (waiting = { re, resolve }))),
  };
}

function request(script: string, env: Record<string, string> = {}) {
  const cmd = taggedCommand("/bin/sh", ["-c", script], { PATH: "/usr/bin:/bin", ...env }, TAG);
  return { ...cmd, cwd: tmpdir(), name: "xterm-256color", cols: 80, rows: 24 };
}

/** Resolves once process `pid` is gone (signal 0 fails). */
function untilGone(pid: number, what: string): Promise<unknown> {
  return until(what, () => {
    try {
      process.kill(pid, 0);
      return null;
    } catch {
      return true;
    }
  });
}

describe("PTY host", () => {
  let dir: string;
  let host: PtyHost;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "edgetty-pty-host-"));
    const program = await ptyHostProgram(dir, null);
    expect(program).not.toBeNull();
    host = new PtyHost(Promise.resolve(program), null);
    await host.whenReady();
  });
  afterAll(() => {
    host?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it("runs a command on a PTY of its own: a terminal, merged output, the exit code and the tag", async () => {
    const proc = await host.spawn(request('test -t 1 && echo "tty:$EDGETTY_PROCESS"; echo err >&2; exit 3'));
    expect(proc.pid).not.toBe(host.pid);
    const run = collect(proc);
    expect(await run.exit).toEqual({ exitCode: 3, signal: 0 });
    expect(run.text()).toContain(`tty:${TAG}\r\n`);
    expect(run.text()).toContain("err\r\n");
  });

  it("does not hang up a command that points every descriptor away from its PTY", async () => {
    const gate = new ShellGate();
    const marker = join(dir, "redirected");
    const proc = await host.spawn(request(`exec </dev/null >/dev/null 2>&1; touch ${marker}; ${gate.wait}; exit 7`));
    const run = collect(proc);
    await until("the command to redirect its descriptors", () => existsSync(marker));
    // Hung up (SIGHUP), it would end within moments of its last slave descriptor's close.
    const early = await Promise.race([run.exit, new Promise((resolve) => setTimeout(() => resolve("still running"), 500))]);
    expect(early).toBe("still running");
    gate.open();
    expect(await run.exit).toEqual({ exitCode: 7, signal: 0 });
  });

  it("types input into the command's PTY", async () => {
    const proc = await host.spawn(request('read line; echo "got:$line"'));
    const run = collect(proc);
    proc.write(Buffer.from("abc\n"));
    expect((await run.exit).exitCode).toBe(0);
    expect(run.text()).toContain("got:abc");
  });

  it("refuses input a command does not read once its queue is full, instead of queueing it without limit", async () => {
    // Raw mode: a canonical-mode line discipline whose line buffer is full takes input and drops
    // it (so that a newline can still get through), which drained the queue under test at times.
    const proc = await host.spawn(request("stty raw -echo; echo ready; sleep 30"));
    const run = collect(proc);
    await run.until(/ready/);
    const MiB = Buffer.alloc(1 << 20, 0x61);
    try {
      // Two fill the 2 MiB queue (the kernel takes a few KiB); the others would pass it.
      expect(await Promise.all([proc.write(MiB), proc.write(MiB), proc.write(MiB)])).toEqual(["ok", "ok", "full"]);
      expect(await proc.write(MiB)).toBe("full");
      expect(await proc.write(Buffer.from("x"))).toBe("ok");
    } finally {
      process.kill(-proc.pid, "SIGKILL");
      await run.exit;
    }
    expect(await proc.write(Buffer.from("late"))).toBe("closed");
  });

  it("bounds input the same way for a PTY the agent forked itself", async () => {
    let out = "";
    const run = PtyRun.start({ command: "stty -echo; echo ready; sleep 30", cwd: tmpdir(), env: { PATH: "/usr/bin:/bin" }, shell: "/bin/sh", tag: null, onOutput: (text) => (out += text) });
    await until("the command is ready", () => out.includes("ready") || null);
    const MiB = Buffer.alloc(1 << 20, 0x61);
    try {
      expect([await run.writeInput(MiB), await run.writeInput(MiB), await run.writeInput(MiB)]).toEqual(["ok", "ok", "full"]);
      expect(await run.writeInput(Buffer.alloc((1 << 20) + 1))).toBe("too-large");
    } finally {
      run.signal("SIGKILL");
      await run.finished;
    }
    expect(await run.writeInput(Buffer.from("late"))).toBe("closed");
  });

  it("starts a command while another runs without handing it the other's PTY", async () => {
    const sleeper = await host.spawn(request("sleep 30"));
    const sleeping = collect(sleeper);
    try {
      const proc = await host.spawn(request("ls /proc/self/fd"));
      const run = collect(proc);
      await run.exit;
      // 0-2 are its PTY; `ls` adds the directory it lists.
      const fds = run.text().split(/\s+/).filter(Boolean).map(Number).sort((a, b) => a - b);
      expect(fds).toEqual([0, 1, 2, 3]);
    } finally {
      process.kill(-sleeper.pid, "SIGKILL");
      await sleeping.exit;
    }
  });

  it("lives through a SIGTERM and a SIGINT to the agent's process group: only the agent ends it", async () => {
    const proc = await host.spawn(request("echo started; sleep 30"));
    const run = { ...collect(proc), pid: proc.pid };
    await run.until(/started/);
    const pid = host.pid!;
    process.kill(pid, "SIGTERM");
    process.kill(pid, "SIGINT");
    // A round trip after the signals: a host that had ended on them would not answer it.
    const next = collect(await host.spawn(request("echo after")));
    expect((await next.exit).exitCode).toBe(0);
    expect(host.pid).toBe(pid);
    expect(run.text()).toBe("started\r\n");
    process.kill(-run.pid, "SIGKILL");
    await run.exit;
  });

  it("when the host dies, its commands end (their PTYs hang up) and a new host takes the next one", async () => {
    const proc = await host.spawn(request("echo started; sleep 30"));
    const run = collect(proc);
    await run.until(/started/);
    const first = host.pid!;
    process.kill(first, "SIGKILL");
    expect(await run.exit).toEqual({ exitCode: 0, signal: 1 });
    await host.whenReady();
    expect(host.pid).not.toBe(first);
    const next = collect(await host.spawn(request("echo again")));
    expect((await next.exit).exitCode).toBe(0);
    expect(next.text()).toContain("again");
    // The command whose PTY went away got SIGHUP from the kernel.
    await untilGone(proc.pid, "the hung-up command to end");
  });
});

describe("PTY host, commands on pipes", () => {
  let dir: string;
  let host: PtyHost;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "edgetty-pty-host-"));
    host = new PtyHost(ptyHostProgram(dir, null), null);
    await host.whenReady();
  });
  afterAll(() => {
    host?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  /** Output per stream (`stdout`/`stderr` join what came so far; `bytes` counts it) and the end of one piped run. */
  function collectPiped(proc: PipedProcess) {
    const chunks = { stdout: [] as Buffer[], stderr: [] as Buffer[] };
    const bytes = { stdout: 0, stderr: 0 };
    const out = {
      get stdout() {
        return Buffer.concat(chunks.stdout);
      },
      get stderr() {
        return Buffer.concat(chunks.stderr);
      },
    };
    const closed = new Promise<{ exitCode: number; signal: number }>((resolve) =>
      proc.listen({
        data: (stream, data) => {
          chunks[stream].push(Buffer.from(data));
          bytes[stream] += data.byteLength;
        },
        close: resolve,
      }),
    );
    return { out, bytes, closed };
  }

  function piped(script: string) {
    const { file, args, env } = request(script);
    return { file, args, env, cwd: tmpdir() };
  }

  it("runs a command on pipes: stdout and stderr apart, no terminal, its own group, the exit code and the tag", async () => {
    const proc = await host.spawnPiped(piped('test -t 1 || echo "no tty:$EDGETTY_PROCESS"; echo err >&2; ps -o pgid= -p $$; read x; echo "stdin:$?"; exit 3'));
    const run = collectPiped(proc);
    expect(await run.closed).toEqual({ exitCode: 3, signal: 0 });
    const lines = run.out.stdout.toString().split("\n");
    expect(lines[0]).toBe(`no tty:${TAG}`);
    expect(Number(lines[1])).toBe(proc.pid); // a session and group of its own
    expect(lines[2]).toBe("stdin:1"); // /dev/null: end of input at once
    expect(run.out.stderr.toString()).toBe("err\n");
  });

  it("reports a command killed by a signal, and one it cannot start", async () => {
    const killed = collectPiped(await host.spawnPiped(piped("kill -TERM $$")));
    expect(await killed.closed).toEqual({ exitCode: 0, signal: 15 });
    await expect(host.spawnPiped({ ...piped("true"), cwd: join(dir, "no-such-dir") })).rejects.toThrow(/ENOENT/);
  });

  it("stops reading a paused command (it blocks on its full pipe) and reads on after RESUME", async () => {
    /** Round trips through the host allowed for the output read before the PAUSE to arrive. */
    const SETTLE_ROUND_TRIPS_MAX = 20;
    const bytes = 20_000_000;
    const proc = await host.spawnPiped(piped(`head -c ${bytes} /dev/zero; echo done >&2`));
    proc.pause();
    const run = collectPiped(proc);
    // Blocked writing to its stdout, whose reader (the host) stopped reading: node's "pipes" are
    // socketpairs (the kernel waits in sock_alloc_send_pskb; in pipe_write for a pipe).
    const wchan = (pid: number) => {
      try {
        return readFileSync(`/proc/${pid}/wchan`, "utf8");
      } catch {
        return ""; // gone
      }
    };
    const writer = () => processTree(proc.pid).some((pid) => /sock_alloc_send|pipe_write/.test(wchan(pid)));
    await until("the command to block on its pipe", () => (writer() ? true : null));
    // What the host read before the PAUSE took hold (a socket buffer or more under load: 1.2 MB
    // once) may still be on its way. So wait for the output to settle: two round trips through
    // the host in a row that bring nothing. A host that kept reading would never settle (each
    // round trip would bring more), and would soon have sent far more than a quarter.
    let quietRoundTrips = 0;
    for (let i = 0; i < SETTLE_ROUND_TRIPS_MAX && quietRoundTrips < 2; i++) {
      const before = run.bytes.stdout;
      await collectPiped(await host.spawnPiped(piped("true"))).closed;
      quietRoundTrips = run.bytes.stdout === before ? quietRoundTrips + 1 : 0;
    }
    expect(quietRoundTrips).toBe(2);
    expect(run.bytes.stdout).toBeLessThan(bytes / 4);
    expect(writer()).toBe(true);
    expect(run.out.stderr.toString()).toBe("");
    proc.resume();
    expect(await run.closed).toEqual({ exitCode: 0, signal: 0 });
    expect(run.bytes.stdout).toBe(bytes);
    expect(run.out.stderr.toString()).toBe("done\n");
  });

  it("after a kill, closes the pipes a process that escaped the group still holds", async () => {
    // The escaped process is a new session's (setsid), holding stdout; the group's kill misses it.
    const proc = await host.spawnPiped(piped("setsid sh -c 'echo escaped:$$; exec sleep 30' & wait"));
    const run = collectPiped(proc);
    await until("the escaped process to start", () => /escaped:(\d+)/.exec(run.out.stdout.toString()));
    const escaped = Number(/escaped:(\d+)/.exec(run.out.stdout.toString())![1]);
    try {
      process.kill(-proc.pid, "SIGKILL");
      proc.drainAfterKill();
      expect(await run.closed).toEqual({ exitCode: 0, signal: 9 });
    } finally {
      process.kill(escaped, "SIGKILL");
    }
  });

  it("when the host dies, the agent ends its piped commands' groups", async () => {
    const proc = await host.spawnPiped(piped("echo started; sleep 30"));
    const run = collectPiped(proc);
    await until("the command to start", () => (run.out.stdout.toString().includes("started") ? true : null));
    process.kill(host.pid!, "SIGKILL");
    expect(await run.closed).toEqual({ exitCode: 0, signal: 9 });
    await untilGone(proc.pid, "the command to end");
    await host.whenReady();
  });
});

describe("PTY host frames", () => {
  it("are cut from a stream however it is split", () => {
    const frames = Buffer.concat([encodeFrame(PtyHostKind.DATA, 7, Buffer.from("hello")), encodeFrame(PtyHostKind.EXIT, 7, { exitCode: 0, signal: 0 })]);
    for (let cut = 1; cut < frames.length; cut++) {
      const reader = new FrameReader();
      const got = [...reader.push(frames.subarray(0, cut)), ...reader.push(frames.subarray(cut))];
      expect(got.map((f) => [f.kind, f.id, f.payload.toString()])).toEqual([
        [PtyHostKind.DATA, 7, "hello"],
        [PtyHostKind.EXIT, 7, '{"exitCode":0,"signal":0}'],
      ]);
    }
  });

  it("refuse an unknown kind, and a length over the limit before its bytes are kept", () => {
    expect(() => new FrameReader().push(Buffer.from([0x7f, 0, 0, 0, 1, 0, 0, 0, 0]))).toThrow(PtyHostProtocolError);
    const head = Buffer.alloc(9);
    head.writeUInt8(PtyHostKind.DATA, 0);
    head.writeUInt32BE(PTY_HOST_FRAME_MAX_BYTES + 1, 5);
    const reader = new FrameReader();
    expect(reader.push(head.subarray(0, 4))).toEqual([]);
    expect(() => reader.push(head.subarray(4))).toThrow(PtyHostProtocolError);
  });
});
