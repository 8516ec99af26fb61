/** The agent's one way to start a child: descriptors above 2 closed, the owner's tag set. */
import { spawn, spawnSync } from "node:child_process";
import { closeSync, openSync } from "node:fs";
import * as pty from "node-pty";
import { describe, expect, it } from "vitest";
import { until } from "../support/waiters.ts";
import { AGENT_SECRET_ENV, PROCESS_TAG_ENV, agentIdentity, closerCommand, inheritableDescriptors, launchCommand, parseProcessTag, processTag } from "../../worker/agent/launch.ts";
import { readProcessTag } from "../../worker/agent/process-reaper.ts";

/** Runs a command through the descriptor closer with pipes left open at descriptors 3-19, as a leaky parent would. */
function runLeaky(script: string, env: Record<string, string>, tag: string | null): string {
  const cmd = closerCommand("/bin/sh", ["-c", script], env, tag);
  const stdio: ("ignore" | "pipe")[] = ["ignore", "pipe", "pipe"];
  while (stdio.length < 20) stdio.push("pipe");
  const result = spawnSync(cmd.file, cmd.args, { env: cmd.env, stdio, encoding: "utf8" });
  expect(result.status, String(result.stderr)).toBe(0);
  return String(result.stdout);
}

/** The descriptors a command started through launchCommand now holds (`ls` adds its own directory). */
function launchedDescriptors(): number[] {
  const cmd = launchCommand("/bin/sh", ["-c", "ls /proc/self/fd"], { PATH: "/usr/bin:/bin" }, null);
  const result = spawnSync(cmd.file, cmd.args, { env: cmd.env, stdio: ["ignore", "pipe", "pipe"], encoding: "utf8" });
  expect(result.status, String(result.stderr)).toBe(0);
  return String(result.stdout).split(/\s+/).filter(Boolean).map(Number).sort((a, b) => a - b);
}

describe("launchCommand", () => {
  it("sees a PTY master (opened without close-on-exec) as inheritable, and a launched child never gets it", () => {
    const term = pty.spawn("/bin/sleep", ["30"], { cols: 80, rows: 24 });
    try {
      const master = (term as unknown as { _fd: number })._fd;
      expect(master).toBeGreaterThan(2);
      expect(inheritableDescriptors()).toContain(master);
      // Whatever else this test process holds, the wrapper is in the path and closes it.
      expect(launchCommand("/bin/true", [], {}, null).file).not.toBe("/bin/true");
      expect(launchedDescriptors()).toEqual([0, 1, 2, 3]);
    } finally {
      term.kill("SIGKILL");
    }
  });

  it("counts descriptors Node opened (close-on-exec) as not inheritable", () => {
    const fd = openSync("/dev/null", "r");
    try {
      expect(inheritableDescriptors()).not.toContain(fd);
    } finally {
      closeSync(fd);
    }
  });

  it("in a process that closed what it inherited: starts the program itself until a PTY is open", () => {
    // A fresh Node, as the agent's entry: it closes inherited descriptors (this runner may hold
    // some without close-on-exec), then reports what launchCommand chose and what children held.
    const launch = new URL("../../worker/agent/launch.ts", import.meta.url).pathname;
    const script = `
      import { spawnSync } from "node:child_process";
      import * as pty from "node-pty";
      import { closeInheritedDescriptors, launchCommand } from ${JSON.stringify(launch)};
      closeInheritedDescriptors();
      const run = () => {
        const cmd = launchCommand("/bin/sh", ["-c", "ls /proc/self/fd"], { PATH: "/usr/bin:/bin" }, null);
        const fds = spawnSync(cmd.file, cmd.args, { env: cmd.env, stdio: ["ignore", "pipe", "ignore"], encoding: "utf8" }).stdout;
        return { direct: cmd.file === "/bin/sh", fds: fds.split(/\\s+/).filter(Boolean).map(Number).sort((a, b) => a - b) };
      };
      const before = run();
      const term = pty.spawn("/bin/sleep", ["30"], { cols: 80, rows: 24 });
      const during = run();
      term.kill("SIGKILL");
      console.log(JSON.stringify({ before, during }));
    `;
    const pipes: ("ignore" | "pipe")[] = ["ignore", "pipe", "pipe"];
    while (pipes.length < 8) pipes.push("pipe"); // leaked into the child, as a careless parent would
    const result = spawnSync(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], { stdio: pipes, encoding: "utf8", cwd: new URL("../..", import.meta.url).pathname });
    expect(result.status, String(result.stderr)).toBe(0);
    const { before, during } = JSON.parse(String(result.stdout)) as Record<string, { direct: boolean; fds: number[] }>;
    expect(before).toEqual({ direct: true, fds: [0, 1, 2, 3] });
    expect(during).toEqual({ direct: false, fds: [0, 1, 2, 3] });
  });

  it("closes every inherited descriptor above 2 before the program starts", () => {
    const fds = runLeaky("ls /proc/self/fd", { PATH: "/usr/bin:/bin" }, null).split(/\s+/).filter(Boolean).map(Number);
    // 0-2, and the directory `ls` opened itself.
    expect(fds.sort((a, b) => a - b)).toEqual([0, 1, 2, 3]);
  });

  it("sets the tag last, so a caller's env cannot replace it, and runs nothing from the env first", () => {
    const env = { PATH: "/usr/bin:/bin", [PROCESS_TAG_ENV]: "forged", "BASH_FUNC_exec%%": "() { echo hijacked; }", BASH_ENV: "/dev/null" };
    const out = runLeaky(`echo "tag=$${PROCESS_TAG_ENV}"`, env, "0123456789abcdef.1-2.t5");
    expect(out).toBe("tag=0123456789abcdef.1-2.t5\n");
  });

  it("never passes the agent's token variable to a child, whoever put it in the env", () => {
    const env = { PATH: "/usr/bin:/bin", [AGENT_SECRET_ENV]: "agent-secret" };
    expect(runLeaky(`echo "token=[$\{${AGENT_SECRET_ENV}-unset}]"`, env, null)).toBe("token=[unset]\n");
    expect(launchCommand("/bin/true", [], env, "0123456789abcdef.1-2.t5").env).not.toHaveProperty(AGENT_SECRET_ENV);
  });

  it("builds tags the reaper parses back, and reads them from /proc", async () => {
    const me = agentIdentity("/nonexistent/edgetty-data");
    const tag = processTag(me, { kind: "t", id: "42" });
    expect(parseProcessTag(tag)).toMatchObject({ key: me.key, pid: process.pid, owner: "t42" });
    expect(parseProcessTag("junk")).toBeNull();
    expect(agentIdentity("/nonexistent/edgetty-data").key).toBe(me.key);
    const cmd = launchCommand("/bin/sleep", ["30"], { PATH: "/usr/bin:/bin" }, tag);
    const child = spawn(cmd.file, cmd.args, { env: cmd.env, stdio: "ignore" });
    try {
      // "spawn" fires once the first exec succeeded; when the descriptor closer wraps the command,
      // its own exec of the command follows, and /proc/<pid>/environ reads empty during an exec.
      await new Promise((resolve, reject) => child.once("spawn", resolve).once("error", reject));
      await until("the child's tag in /proc", () => readProcessTag(child.pid!) !== null);
      expect(readProcessTag(child.pid!)).toBe(tag);
      expect(readProcessTag(process.pid)).toBeNull();
    } finally {
      child.kill("SIGKILL");
    }
  });
});
