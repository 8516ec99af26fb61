/**
 * The local stack looks after its children, through the real `edgetty start` on a free port with
 * a private state folder: killing workerd or the agent gets a log line and a restart, and killing
 * `edgetty start` itself with SIGKILL leaves no process of that run behind.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort, REPO_ROOT } from "../../worker/cli/local-stack.ts";
import { pidsMatching } from "../support/ndjson.ts";
import { until, Waiters } from "../support/waiters.ts";

/** How long one start of the stack may take, in milliseconds. */
const START_TIMEOUT_MS = 90_000;
/** How long a restart may take (backoff, then wrangler's start), in milliseconds. */
const RESTART_TIMEOUT_MS = 60_000;

let stateDir: string;
let port: number;
let main: ChildProcess;
let output = "";
const waiters = new Waiters();
let apiKey = "";

/** Resolves once `edgetty start` has printed a line matching `pattern` (after `from` chars). */
function logged(pattern: RegExp, timeoutMs = RESTART_TIMEOUT_MS, from = 0): Promise<void> {
  return waiters.until(() => pattern.test(output.slice(from)), `a log line matching ${pattern}`, timeoutMs, () => `; output:\n${output}`);
}

/** Pids of this run's processes: anything naming its state folder or its port. */
function processesOfThisRun(): number[] {
  return [...new Set([...pidsMatching(stateDir), ...pidsMatching(`127.0.0.1:${port}`)])];
}

/** The pid of the one live process whose command line contains every marker, excluding guardians. */
function pidOf(...markers: string[]): number | null {
  const [first, ...rest] = markers;
  const pids = pidsMatching(first!).filter((pid) => {
    const cmdline = readCmdline(pid);
    return rest.every((m) => cmdline.includes(m)) && !cmdline.includes("guardian.js");
  });
  return pids.length === 1 ? pids[0]! : null;
}

function readCmdline(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").replaceAll("\0", " ");
  } catch {
    return "";
  }
}

async function localAgentOnline(): Promise<boolean> {
  const res = await fetch(`http://127.0.0.1:${port}/api/v1/terminals/`, { headers: { Authorization: `Bearer ${apiKey}` } });
  const servers = (await res.json()) as { id: string; online: boolean }[];
  return servers.some((s) => s.id === "local" && s.online);
}

beforeAll(async () => {
  stateDir = mkdtempSync(join(tmpdir(), "edgetty-supervision-"));
  const home = join(stateDir, "home");
  mkdirSync(home);
  port = await freePort();
  apiKey = "supervision-test-key";
  main = spawn(process.execPath, [join(REPO_ROOT, "bin", "edgetty.js"), "start", "--port", String(port), "--state-dir", join(stateDir, "state")], {
    cwd: stateDir,
    env: { ...process.env, HOME: home, EDGETTY_API_KEY: apiKey },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const collect = (d: Buffer) => {
    output += d.toString();
    waiters.notify();
  };
  main.stdout!.on("data", collect);
  main.stderr!.on("data", collect);
  main.on("exit", () => waiters.notify());
  await logged(/edgetty is running/, START_TIMEOUT_MS);
}, START_TIMEOUT_MS + 10_000);

afterAll(async () => {
  if (main.exitCode === null && main.signalCode === null) main.kill("SIGKILL");
  // The guardians end whatever is left; wait for it so the folder can go.
  await until("this run's processes to end", () => processesOfThisRun().length === 0, { timeoutMs: 30_000 }).catch(() => undefined);
  rmSync(stateDir, { recursive: true, force: true });
});

describe("edgetty start supervises its children", () => {
  it("says so and restarts workerd when workerd is killed", async () => {
    const workerd = pidOf(`--socket-addr=entry=127.0.0.1:${port}`, "workerd");
    expect(workerd).not.toBeNull();
    const from = output.length;
    process.kill(workerd!, "SIGKILL");
    await logged(/the edge \(workerd\) stopped listening \(connection refused\); restarting it/, RESTART_TIMEOUT_MS, from);
    await logged(/the edge \(workerd\) is running again/, RESTART_TIMEOUT_MS, from);
    expect((await fetch(`http://127.0.0.1:${port}/health`)).status).toBe(200);
    await until("the agent to reconnect", localAgentOnline, { timeoutMs: RESTART_TIMEOUT_MS });
    // A new workerd, not the old one.
    expect(pidOf(`--socket-addr=entry=127.0.0.1:${port}`, "workerd")).not.toBe(workerd);
  }, RESTART_TIMEOUT_MS * 2);

  it("says so and restarts the agent when the agent is killed", async () => {
    const agent = pidOf(join(stateDir, "state", "agent"), " agent ");
    expect(agent).not.toBeNull();
    const from = output.length;
    process.kill(agent!, "SIGKILL");
    await logged(/the agent exited \(signal SIGKILL\); restarting it/, RESTART_TIMEOUT_MS, from);
    await logged(/the agent is running again/, RESTART_TIMEOUT_MS, from);
    expect(await localAgentOnline()).toBe(true);
    expect(pidOf(join(stateDir, "state", "agent"), " agent ")).not.toBe(agent);
  }, RESTART_TIMEOUT_MS * 2);

  it("leaves no wrangler, workerd, agent or guardian behind when killed with SIGKILL", async () => {
    const before = processesOfThisRun();
    // Two guardians, wrangler's two node processes, workerd, the agent, and `edgetty start`.
    expect(before.length).toBeGreaterThanOrEqual(6);
    main.kill("SIGKILL");
    await until("every process of this run to end", () => processesOfThisRun().length === 0, {
      timeoutMs: 30_000,
      describe: () => `; left: ${processesOfThisRun().map((pid) => `${pid} ${readCmdline(pid).slice(0, 120)}`).join("; ")}`,
    });
  }, 40_000);
});
