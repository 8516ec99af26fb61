/**
 * The posix_spawn helper (native/pty_spawn.c through worker/agent/pty-spawn.ts): node-pty's PTYs,
 * spawned without fork(2), must look to the program exactly as forkpty's did.
 */
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as pty from "node-pty";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ptySpawnAddonPath, ptySpawnMode, spawnOnPipes, spawnsWithoutLeaks, usePosixSpawn, type PipedChild } from "../../worker/agent/pty-spawn.ts";

const ENV = { PATH: "/usr/bin:/bin", EDGETTY_TEST_VALUE: "a b=c" };

/** Runs `script` under /bin/sh on a PTY; its output (without the \r of \r\n) and exit. */
function run(script: string, options: { cwd?: string; input?: string } = {}): Promise<{ out: string; exitCode: number; signal: number }> {
  return new Promise((resolve) => {
    const p = pty.spawn("/bin/sh", ["-c", script], { name: "xterm-256color", cols: 80, rows: 24, cwd: options.cwd ?? "/", env: ENV, encoding: "utf8" });
    let out = "";
    p.onData((data) => {
      out += data;
      if (options.input && out.includes("ready")) {
        p.write(options.input);
        options.input = undefined;
      }
    });
    p.onExit(({ exitCode, signal }) => resolve({ out: out.replace(/\r\n/g, "\n"), exitCode, signal: signal ?? 0 }));
  });
}

describe.runIf(process.platform === "linux")("PTYs spawned with posix_spawn", () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "edgetty-pty-spawn-"));
    // `npm install` builds the helper wherever node-pty builds: its absence here is a broken build.
    const addon = ptySpawnAddonPath();
    expect(addon, "native/build/Release/edgetty_pty_spawn.node (scripts/build-native.mjs)").not.toBeNull();
    expect(usePosixSpawn(addon!)).toEqual({ mode: "posix_spawn" });
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("is in force (node-pty's native module is where pty-spawn.ts looks)", () => {
    expect(ptySpawnMode()).toBe("posix_spawn");
  });

  it("makes the PTY the session's controlling terminal, as forkpty does", async () => {
    const { out, exitCode } = await run('tty; test -t 0 && test -t 1 && test -t 2 && echo all-tty; echo "ids $$ $(ps -o sid= -p $$) $(ps -o tpgid= -p $$)"; exit 7');
    expect(exitCode).toBe(7);
    expect(out).toMatch(/^\/dev\/pts\/\d+\n/);
    expect(out).toContain("all-tty\n");
    // A session of its own, whose foreground process group is the shell's.
    const [, pid, sid, tpgid] = /ids (\d+) +(\d+) +(\d+)/.exec(out)!;
    expect(sid).toBe(pid);
    expect(tpgid).toBe(pid);
  });

  it("delivers Ctrl-C typed into the PTY to the foreground program as SIGINT", async () => {
    const { signal } = await run("echo ready; exec sleep 30", { input: "\x03" });
    expect(signal).toBe(2);
  });

  it("leaves no signal ignored or blocked, passes the environment and the working directory", async () => {
    // exec, not a child grep reading /proc/$$: dash blocks every signal around its own forks, and a
    // child that reads the shell's status before the shell unblocks them sees them all blocked.
    // exec keeps the mask and the ignored signals the shell was started with.
    const { out } = await run('echo "value=$EDGETTY_TEST_VALUE"; pwd; exec grep -E "^Sig(Ign|Blk)" /proc/self/status', { cwd: dir });
    expect(out).toContain("SigIgn:\t0000000000000000\n");
    expect(out).toContain("SigBlk:\t0000000000000000\n");
    expect(out).toContain("value=a b=c\n");
    expect(out).toContain(`${dir}\n`);
  });

  it("reports a program killed by a signal, and applies the terminal's size and resizes", async () => {
    expect((await run("kill -TERM $$")).signal).toBe(15);
    const p = pty.spawn("/bin/sh", ["-c", "echo ready; read x; stty size"], { cols: 80, rows: 24, cwd: "/", env: ENV, encoding: "utf8" });
    let out = "";
    const exited = new Promise((resolve) => p.onExit(resolve));
    p.onData((data) => {
      out += data;
      if (data.includes("ready")) {
        p.resize(132, 40);
        p.write("\r");
      }
    });
    await exited;
    expect(out).toContain("40 132");
  });

  it("keeps its PTY masters from later children (close-on-exec)", async () => {
    const fds = async () => (await run("ls /proc/self/fd")).out.split(/\s+/).filter(Boolean).map(Number).sort((a, b) => a - b);
    // What this test process itself leaks (the runner's descriptors) is the same with or without another PTY open.
    const alone = await fds();
    expect(alone.slice(0, 4)).toEqual([0, 1, 2, 3]);
    const sleeper = pty.spawn("/bin/sh", ["-c", "sleep 30"], { cols: 80, rows: 24, cwd: "/", env: ENV });
    try {
      expect(await fds()).toEqual(alone);
    } finally {
      sleeper.kill("SIGKILL");
    }
  });

  it("starts PTYs and piped programs with descriptors 0-2 only, even from a process that holds inheritable ones", () => {
    // Debian 12's glibc (2.36) has posix_spawn_file_actions_addclosefrom_np: the build must use it.
    expect(spawnsWithoutLeaks()).toBe(true);
    const script = `
      import * as pty from "node-pty";
      import { ptySpawnAddonPath, spawnOnPipes, usePosixSpawn } from "./worker/agent/pty-spawn.ts";
      usePosixSpawn(ptySpawnAddonPath());
      const list = (text) => text.split(/\\s+/).filter(Boolean).map(Number).sort((a, b) => a - b);
      const onPty = await new Promise((resolve) => {
        const p = pty.spawn("/bin/ls", ["/proc/self/fd"], { cwd: "/", env: { PATH: "/usr/bin:/bin" }, encoding: "utf8" });
        let out = "";
        p.onData((d) => (out += d));
        p.onExit(() => resolve(list(out)));
      });
      const child = spawnOnPipes("/bin/ls", ["/proc/self/fd"], { PATH: "/usr/bin:/bin" }, "/");
      let piped = "";
      child.stdout.on("data", (d) => (piped += d));
      await new Promise((resolve) => child.on("close", resolve));
      console.log(JSON.stringify({ onPty, onPipes: list(piped) }));
    `;
    const stdio: ("ignore" | "pipe")[] = ["ignore", "pipe", "pipe"];
    while (stdio.length < 8) stdio.push("pipe"); // inherited without close-on-exec, as from a careless parent
    const result = spawnSync(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], { stdio, encoding: "utf8", cwd: new URL("../..", import.meta.url).pathname });
    expect(result.status, String(result.stderr)).toBe(0);
    // 0-2, and the directory `ls` opened itself.
    expect(JSON.parse(String(result.stdout))).toEqual({ onPty: [0, 1, 2, 3], onPipes: [0, 1, 2, 3] });
  });

  it("looks a program named without a slash up in the child's PATH, as execvp does", async () => {
    const bin = join(dir, "bin");
    mkdirSync(bin);
    writeFileSync(join(bin, "hello-from-path"), "#!/bin/sh\necho found-in-child-path\n", { mode: 0o755 });
    const out = await new Promise<string>((resolve) => {
      const p = pty.spawn("hello-from-path", [], { cwd: "/", env: { PATH: `${bin}:/usr/bin:/bin` }, encoding: "utf8" });
      let text = "";
      p.onData((d) => (text += d));
      p.onExit(() => resolve(text));
    });
    expect(out).toContain("found-in-child-path");
    expect(() => pty.spawn("hello-from-path", [], { cwd: "/", env: ENV })).toThrow(expect.objectContaining({ code: "ENOENT" }));
  });

  it("throws what stopped the spawn: a missing working directory or program", () => {
    expect(() => pty.spawn("/bin/sh", [], { cwd: join(dir, "missing"), env: ENV })).toThrow(expect.objectContaining({ code: "ENOENT", message: expect.stringContaining(join(dir, "missing")) }));
    expect(() => pty.spawn(join(dir, "no-such-program"), [], { cwd: "/", env: ENV })).toThrow(expect.objectContaining({ code: "ENOENT" }));
    // exec would cut a string at a NUL: refused whole instead of run cut short.
    expect(() => pty.spawn("/bin/sh", ["-c", "echo a\0; rm -rf x"], { cwd: "/", env: ENV })).toThrow(/without NUL/);
    expect(() => pty.spawn("/bin/sh", [], { cwd: "/", env: { ...ENV, X: "a\0b" } })).toThrow(/without NUL/);
  });

  it("starts a program on pipes: stdout and stderr apart, stdin empty, no terminal, a session of its own", async () => {
    const child = spawnOnPipes("/bin/sh", ["-c", 'cat; test -t 1 || echo "no tty"; echo "ids $$ $(ps -o sid= -p $$)"; echo oops >&2; exit 3'], ENV, dir)!;
    const { out, err, events } = await collectPiped(child);
    expect(out).toContain("no tty\n");
    const [, pid, sid] = /ids (\d+) +(\d+)/.exec(out)!;
    expect([pid, sid]).toEqual([String(child.pid), String(child.pid)]);
    expect(err).toBe("oops\n");
    expect(events).toEqual(["spawn", "exit 3 null", "close 3 null"]);
  });

  it("reports a program on pipes killed by a signal by name, and throws for one that cannot start", async () => {
    const { events } = await collectPiped(spawnOnPipes("/bin/sh", ["-c", "kill -KILL $$"], ENV, "/")!);
    expect(events).toEqual(["spawn", "exit null SIGKILL", "close null SIGKILL"]);
    expect(() => spawnOnPipes("/bin/sh", [], ENV, join(dir, "missing"))).toThrow(/ENOENT/);
  });
});

/** A piped child's output and its events in order, once it has closed. */
function collectPiped(child: PipedChild): Promise<{ out: string; err: string; events: string[] }> {
  let out = "";
  let err = "";
  const events: string[] = [];
  child.stdout!.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr!.on("data", (d: Buffer) => (err += d.toString()));
  child.on("spawn", () => events.push("spawn"));
  child.on("exit", (code: number | null, signal: string | null) => events.push(`exit ${code} ${signal}`));
  return new Promise((resolve) =>
    child.on("close", (code: number | null, signal: string | null) => {
      events.push(`close ${code} ${signal}`);
      resolve({ out, err, events });
    }),
  );
}
