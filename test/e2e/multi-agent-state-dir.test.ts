/**
 * `npm run multi-agent -- --port P --state-dir DIR` records its URL in DIR as `edgetty start` does,
 * so the client commands given only `--state-dir DIR` reach it on its own port; once it stops,
 * the record is gone.
 */
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { freePort, REPO_ROOT } from "../../worker/cli/local-stack.ts";
import { START_TIMEOUT_MS } from "../support/cli-stack.ts";
import { Waiters } from "../support/waiters.ts";

const dir = mkdtempSync(join(tmpdir(), "edgetty-multi-agent-"));
const stateDir = join(dir, "state");
const home = join(dir, "home");
mkdirSync(home);
let run: ChildProcess | undefined;
let exited = false;

afterAll(async () => {
  if (run && !exited) {
    run.kill("SIGINT"); // the script stops its agents and the stack on SIGINT
    await new Promise((r) => run!.once("exit", r));
  }
  rmSync(dir, { recursive: true, force: true });
});

/** `edgetty …` from a folder of its own, with no EDGETTY_* variables. */
function edgetty(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const env: NodeJS.ProcessEnv = { PATH: process.env["PATH"] ?? "/usr/bin:/bin", HOME: home };
  return new Promise((resolve) => {
    execFile(process.execPath, [join(REPO_ROOT, "bin", "edgetty.js"), ...args], { cwd: home, env }, (error, stdout, stderr) => {
      resolve({ code: error ? Number((error as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

describe("npm run multi-agent with --state-dir", { timeout: START_TIMEOUT_MS + 60_000 }, () => {
  it("is found by client commands given that --state-dir, and forgotten once it stops", async () => {
    const port = await freePort();
    let output = "";
    const waiters = new Waiters();
    run = spawn(process.execPath, ["--import", "tsx", join(REPO_ROOT, "scripts", "multi-agent.ts"), "--agents", "1", "--port", String(port), "--state-dir", stateDir], {
      cwd: REPO_ROOT,
      env: { ...process.env, HOME: home },
      stdio: ["ignore", "pipe", "pipe"],
    });
    const collect = (d: Buffer) => {
      output += d.toString();
      waiters.notify();
    };
    run.stdout!.on("data", collect);
    run.stderr!.on("data", collect);
    run.on("exit", () => {
      exited = true;
      waiters.notify();
    });
    await waiters.until(() => /edgetty is running with 2 servers/.test(output) || exited, "multi-agent to be running", START_TIMEOUT_MS, () => `; output:\n${output}`);
    expect(exited, output).toBe(false);

    expect(JSON.parse(readFileSync(join(stateDir, "stack.json"), "utf8"))).toEqual({ url: `http://127.0.0.1:${port}`, pid: run.pid, started: expect.any(Number) });
    const servers = await edgetty("server", "list", "--state-dir", stateDir);
    expect(servers.code, servers.stderr).toBe(0);
    expect(servers.stdout).toMatch(/^agent-1\s/m);

    run.kill("SIGINT");
    await waiters.until(() => exited, "multi-agent to exit", 30_000, () => `; output:\n${output}`);
    expect(existsSync(join(stateDir, "stack.json"))).toBe(false);
  });
});
