/**
 * A real `edgetty start` run for tests of the local stack's supervision: a private state folder, a
 * free port, its output folded into state, and its processes found by their command lines.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort, REPO_ROOT } from "../../worker/cli/local-stack.ts";
import { pidsMatching } from "./ndjson.ts";
import { until, Waiters } from "./waiters.ts";

/** How long one start of the stack may take, in milliseconds. */
export const START_TIMEOUT_MS = 90_000;
/** How long a restart may take (backoff, then wrangler's start), in milliseconds. */
export const RESTART_TIMEOUT_MS = 60_000;
/** How long the processes of a run may take to go once it ends, in milliseconds. */
export const GONE_TIMEOUT_MS = 30_000;
const API_KEY = "supervision-test-key";

function readCmdline(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").replaceAll("\0", " ");
  } catch {
    return "";
  }
}

/** One `edgetty start` run in a private folder on a free port, its output folded into state. */
export class CliStack {
  output = "";
  exit: { code: number | null; signal: NodeJS.Signals | null } | null = null;
  private readonly waiters = new Waiters();

  private constructor(
    readonly stateDir: string,
    readonly port: number,
    readonly main: ChildProcess,
  ) {
    const collect = (d: Buffer) => {
      this.output += d.toString();
      this.waiters.notify();
    };
    main.stdout!.on("data", collect);
    main.stderr!.on("data", collect);
    main.on("exit", (code, signal) => {
      this.exit = { code, signal };
      this.waiters.notify();
    });
  }

  static async start(env: Record<string, string> = {}): Promise<CliStack> {
    const stateDir = mkdtempSync(join(tmpdir(), "edgetty-supervision-"));
    const home = join(stateDir, "home");
    mkdirSync(home);
    const port = await freePort();
    const main = spawn(process.execPath, [join(REPO_ROOT, "bin", "edgetty.js"), "start", "--port", String(port), "--state-dir", join(stateDir, "state")], {
      cwd: stateDir,
      env: { ...process.env, HOME: home, EDGETTY_API_KEY: API_KEY, ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    const stack = new CliStack(stateDir, port, main);
    const running = () => /edgetty is running/.test(stack.output);
    try {
      await stack.waiters.until(() => running() || stack.exit !== null, "edgetty start to be running", START_TIMEOUT_MS, () => `; output:\n${stack.output}`);
      if (!running()) throw new Error(`edgetty start exited (${JSON.stringify(stack.exit)}) before it was running; output:\n${stack.output}`);
    } catch (error) {
      await stack.remove();
      throw error;
    }
    return stack;
  }

  /** Resolves once the run has printed a line matching `pattern` (after `from` characters). */
  logged(pattern: RegExp, timeoutMs = RESTART_TIMEOUT_MS, from = 0): Promise<void> {
    return this.waiters.until(() => pattern.test(this.output.slice(from)), `a log line matching ${pattern}`, timeoutMs, () => `; output:\n${this.output}`);
  }

  exited(): Promise<void> {
    return this.waiters.until(() => this.exit !== null, "edgetty start to exit", GONE_TIMEOUT_MS, () => `; output:\n${this.output}`);
  }

  /** Pids of this run's processes: anything naming its state folder or its port. */
  processes(): number[] {
    return [...new Set([...pidsMatching(this.stateDir), ...pidsMatching(`127.0.0.1:${this.port}`)])];
  }

  /** Resolves once no process of this run is left. */
  async gone(): Promise<void> {
    await until("every process of this run to end", () => this.processes().length === 0, {
      timeoutMs: GONE_TIMEOUT_MS,
      describe: () => `; left: ${this.processes().map((pid) => `${pid} ${readCmdline(pid).slice(0, 120)}`).join("; ")}`,
    });
  }

  /** The pid of the one live process whose command line holds every marker (guardians aside). */
  pidOf(...markers: string[]): number | null {
    const [first, ...rest] = markers;
    const pids = pidsMatching(first!).filter((pid) => {
      const cmdline = readCmdline(pid);
      return rest.every((m) => cmdline.includes(m)) && !cmdline.includes("guardian.js");
    });
    return pids.length === 1 ? pids[0]! : null;
  }

  workerd(): number | null {
    return this.pidOf(`--socket-addr=entry=127.0.0.1:${this.port}`, "workerd");
  }

  agent(): number | null {
    return this.pidOf(join(this.stateDir, "state", "agent"), " agent ");
  }

  async agentOnline(): Promise<boolean> {
    const res = await fetch(`http://127.0.0.1:${this.port}/api/v1/terminals/`, { headers: { Authorization: `Bearer ${API_KEY}` } });
    const servers = (await res.json()) as { id: string; online: boolean }[];
    return servers.some((s) => s.id === "local" && s.online);
  }

  async remove(): Promise<void> {
    if (this.exit === null) this.main.kill("SIGKILL");
    // The guardians end whatever is left; wait for it so the folder can go.
    await this.gone().catch(() => undefined);
    rmSync(this.stateDir, { recursive: true, force: true });
  }
}
