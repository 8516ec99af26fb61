/**
 * A newcomer's first run: `edgetty start --port P --state-dir DIR`, then `edgetty exec` and an
 * admin command given only `--state-dir DIR` (no key, no URL, from another folder) find that
 * stack through what `start` records there; once it stops, the record is gone.
 */
import { execFile } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CliStack, START_TIMEOUT_MS } from "../support/cli-stack.ts";
import { REPO_ROOT } from "../../worker/cli/local-stack.ts";

/** Each CLI run compiles its TypeScript on start (tsx). */
const CLI_TEST_TIMEOUT_MS = 60_000;

let stack: CliStack;
beforeAll(async () => {
  stack = await CliStack.start();
}, START_TIMEOUT_MS + 30_000);
afterAll(() => stack?.remove());

/** `edgetty …` with a private HOME, from a folder of its own, with no EDGETTY_* variables. */
function edgetty(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return edgettyWith({}, ...args);
}

/** `edgetty …` as above, with these environment variables too. */
function edgettyWith(extra: NodeJS.ProcessEnv, ...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const cwd = join(stack.stateDir, "elsewhere");
  mkdirSync(cwd, { recursive: true });
  const env: NodeJS.ProcessEnv = { PATH: process.env["PATH"] ?? "/usr/bin:/bin", HOME: join(stack.stateDir, "home"), ...extra };
  return new Promise((resolve) => {
    execFile(process.execPath, [join(REPO_ROOT, "bin", "edgetty.js"), ...args], { cwd, env }, (error, stdout, stderr) => {
      resolve({ code: error ? Number((error as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

describe("client commands given only --state-dir", { timeout: CLI_TEST_TIMEOUT_MS }, () => {
  it("find the key and the URL of a stack started on any port", async () => {
    const stateDir = join(stack.stateDir, "state");
    const record = join(stateDir, "stack.json");
    expect(JSON.parse(readFileSync(record, "utf8"))).toEqual({ url: `http://127.0.0.1:${stack.port}`, pid: stack.main.pid, started: expect.any(Number) });
    expect(statSync(record).mode & 0o777).toBe(0o600);

    const exec = await edgetty("exec", "--state-dir", stateDir, "--", "sh", "-c", "echo hi; exit 3");
    expect(exec.stdout, exec.stderr).toBe("hi\n");
    expect(exec.code).toBe(3);

    const users = await edgetty("user", "list", "--state-dir", stateDir);
    expect(users.code, users.stderr).toBe(0);
    expect(users.stdout).toMatch(/^ID\s+NAME\s+EMAIL/);
    const servers = await edgetty("server", "list", "--state-dir", stateDir);
    expect(servers.stdout).toMatch(/^local\s/m);
  });

  it("a second start on the same port says the port is taken, and leaves the first alone", async () => {
    const other = join(stack.stateDir, "other-state");
    const second = await edgetty("start", "--port", String(stack.port), "--state-dir", other);
    expect(second.code).toBe(1);
    expect(second.stderr).toBe(`edgetty: port ${stack.port} on 127.0.0.1 is already in use (another edgetty start?): stop that, or choose another with --port\n`);
    expect(existsSync(other)).toBe(false);
    const users = await edgetty("user", "list", "--state-dir", join(stack.stateDir, "state"));
    expect(users.code, users.stderr).toBe(0);
  });

  it("stop finding it once it stops: the record goes with the run", async () => {
    const stateDir = join(stack.stateDir, "state");
    stack.main.kill("SIGTERM");
    await stack.exited();
    expect(stack.exit?.code).toBe(0);
    expect(existsSync(join(stateDir, "stack.json"))).toBe(false);
    // A client command then says that no stack runs there, not only that some port refused
    // (the port it falls back to: the stopped stack's, free now, not 8787 another run may hold).
    const users = await edgettyWith({ EDGETTY_PORT: String(stack.port) }, "user", "list", "--state-dir", stateDir);
    expect(users.code).toBe(1);
    expect(users.stderr).toContain(`(no stack is running from ${stateDir}: start it with \`edgetty start --state-dir ${stateDir}\``);
  });
});
