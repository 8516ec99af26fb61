/** The agent's one way to start a child: descriptors above 2 closed, the owner's tag set. */
import { spawn, spawnSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import { PROCESS_TAG_ENV, agentIdentity, launchCommand, parseProcessTag, processTag } from "../../worker/agent/launch.ts";
import { readProcessTag } from "../../worker/agent/process-reaper.ts";

/** Runs a launched command with pipes left open at descriptors 3-19, as a leaky parent would. */
function runLeaky(script: string, env: Record<string, string>, tag: string | null): string {
  const cmd = launchCommand("/bin/sh", ["-c", script], env, tag);
  const stdio: ("ignore" | "pipe")[] = ["ignore", "pipe", "pipe"];
  while (stdio.length < 20) stdio.push("pipe");
  const result = spawnSync(cmd.file, cmd.args, { env: cmd.env, stdio, encoding: "utf8" });
  expect(result.status, String(result.stderr)).toBe(0);
  return String(result.stdout);
}

describe("launchCommand", () => {
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

  it("builds tags the reaper parses back, and reads them from /proc", async () => {
    const me = agentIdentity("/nonexistent/edgetty-data");
    const tag = processTag(me, { kind: "t", id: "42" });
    expect(parseProcessTag(tag)).toMatchObject({ key: me.key, pid: process.pid, owner: "t42" });
    expect(parseProcessTag("junk")).toBeNull();
    expect(agentIdentity("/nonexistent/edgetty-data").key).toBe(me.key);
    const cmd = launchCommand("/bin/sleep", ["30"], { PATH: "/usr/bin:/bin" }, tag);
    const child = spawn(cmd.file, cmd.args, { env: cmd.env, stdio: "ignore" });
    try {
      // "spawn" fires once the exec succeeded: the environment is in place from then on.
      await new Promise((resolve, reject) => child.once("spawn", resolve).once("error", reject));
      expect(readProcessTag(child.pid!)).toBe(tag);
      expect(readProcessTag(process.pid)).toBeNull();
    } finally {
      child.kill("SIGKILL");
    }
  });
});
