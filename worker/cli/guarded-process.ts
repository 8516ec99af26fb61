/**
 * A child of the local stack that cannot outlive it. Each child (the edge runner with its workerd, the
 * agent) runs under a small guardian process in a process group of its own. The guardian holds
 * one end of an IPC channel whose other end only the stack's process holds; when that process
 * dies, however it dies (SIGKILL included), the kernel closes its end, the guardian sees the
 * channel disconnect and ends the whole group: SIGTERM, then SIGKILL after a grace period. This
 * reaches grandchildren too (workerd is the edge runner's child), which `--pdeathsig` would not.
 *
 * While the stack lives, it stops a child itself (`stop()`: SIGTERM to the group, then SIGKILL),
 * and learns of an unexpected exit through `exited`.
 */
import { spawn, type ChildProcess, type StdioNull, type StdioPipe } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { constants } from "node:os";
import { fileURLToPath } from "node:url";
import { dirname, join } from "node:path";

/** The guardian's script (plain JavaScript: see its header). */
const GUARDIAN = join(dirname(fileURLToPath(import.meta.url)), "guardian.js");

/** How long a group gets to exit after SIGTERM before SIGKILL, in milliseconds (guardian.js too). */
export const GROUP_STOP_GRACE_MS = 5_000;

/** How a guarded child ended: its exit code, or the signal that ended it. */
export interface ExitStatus {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** Guardian → stack messages on the IPC channel (sent by guardian.js). */
type GuardianMessage = { t: "spawned"; pid: number } | { t: "exit"; status: ExitStatus } | { t: "error"; message: string };

/** What tests and the stack may do to the real child (not its guardian). */
export interface ProcessHandle {
  /** The child's pid (undefined until it has started). */
  readonly pid: number | undefined;
  /** Sends `signal` to the child alone; false when it is gone. */
  kill(signal?: NodeJS.Signals): boolean;
  /** Resolves once the child has ended, with how. */
  readonly exited: Promise<ExitStatus>;
}

export interface GuardedSpawn {
  command: string;
  args: string[];
  cwd: string;
  env: NodeJS.ProcessEnv;
  /** Where the child's stdout and stderr go: "inherit" (this terminal) or "pipe" (read `output`). */
  output: "inherit" | "pipe";
}

/** Describes an exit status for a log line: "exit code 3" or "signal SIGKILL". */
export function describeExit(status: ExitStatus): string {
  return status.signal ? `signal ${status.signal}` : `exit code ${status.code}`;
}

/** The child's status from its guardian's exit (see guardian.js): 128 + n is signal n. */
function statusFromGuardian(code: number | null, signal: NodeJS.Signals | null): ExitStatus {
  if (signal || code === null || code <= 128) return { code, signal };
  const name = Object.entries(constants.signals).find(([, n]) => n === code - 128)?.[0];
  return name ? { code: null, signal: name as NodeJS.Signals } : { code, signal: null };
}

function sendSignal(pid: number, signal: NodeJS.Signals): boolean {
  try {
    process.kill(pid, signal);
    return true;
  } catch {
    return false;
  }
}

/** A child running under a guardian in its own process group (see the module comment). */
export class GuardedProcess implements ProcessHandle {
  /** The real child's pid, once it has started. */
  pid: number | undefined;
  /** Resolves once the child has ended (its status) — or its guardian has, whichever is first. */
  readonly exited: Promise<ExitStatus>;
  private readonly guardian: ChildProcess;
  private childStatus: ExitStatus | null = null;
  private done = false;

  private constructor(
    spec: GuardedSpawn,
    readonly started: Promise<void>,
    setStarted: { resolve(): void; reject(e: Error): void },
  ) {
    const out: StdioPipe | "inherit" = spec.output === "pipe" ? "pipe" : "inherit";
    const stdin: StdioNull = "ignore";
    // detached: the guardian leads a new session and process group, which its child joins.
    this.guardian = spawn(process.execPath, [GUARDIAN, "--", spec.command, ...spec.args], {
      cwd: spec.cwd,
      env: spec.env,
      detached: true,
      stdio: [stdin, out, out, "ipc"],
    });
    this.guardian.on("message", (m: GuardianMessage) => {
      if (m.t === "spawned") {
        this.pid = m.pid;
        setStarted.resolve();
      } else if (m.t === "exit") this.childStatus = m.status;
      else setStarted.reject(new Error(`could not start ${spec.command}: ${m.message}`));
    });
    this.guardian.on("error", (e) => setStarted.reject(e));
    this.exited = new Promise((resolveExit) => {
      this.guardian.once("exit", (code, signal) => {
        this.done = true;
        // Whatever the child left in its group (workerd, when its runner died) goes with it.
        if (this.guardian.pid) sendSignal(-this.guardian.pid, "SIGKILL");
        setStarted.reject(new Error(`${spec.command} exited before it started (${describeExit({ code, signal })})`));
        resolveExit(this.childStatus ?? statusFromGuardian(code, signal));
      });
    });
  }

  /** Starts `spec` under a guardian; resolves once the child is running. */
  static async start(spec: GuardedSpawn): Promise<GuardedProcess> {
    let setStarted!: { resolve(): void; reject(e: Error): void };
    const started = new Promise<void>((resolve, reject) => (setStarted = { resolve, reject }));
    const p = new GuardedProcess(spec, started, setStarted);
    try {
      await started;
    } catch (error) {
      await p.stop();
      throw error;
    }
    return p;
  }

  /** The child's stdout and stderr when spawned with `output: "pipe"`. */
  get output(): [NodeJS.ReadableStream | null, NodeJS.ReadableStream | null] {
    return [this.guardian.stdout, this.guardian.stderr];
  }

  /** True once the child and its guardian have ended. */
  get ended(): boolean {
    return this.done;
  }

  kill(signal: NodeJS.Signals = "SIGTERM"): boolean {
    return this.pid !== undefined && !this.done && sendSignal(this.pid, signal);
  }

  /**
   * Ends the whole group: SIGTERM, then SIGKILL after GROUP_STOP_GRACE_MS; resolves once no
   * process of the group is left (a port workerd held is free only then).
   */
  async stop(): Promise<void> {
    const group = this.guardian.pid;
    if (group === undefined) return;
    if (!this.done) {
      sendSignal(-group, "SIGTERM");
      let timer: NodeJS.Timeout | undefined;
      const graceOver = new Promise<boolean>((r) => (timer = setTimeout(() => r(false), GROUP_STOP_GRACE_MS)));
      const ended = await Promise.race([this.exited.then(() => true), graceOver]);
      clearTimeout(timer);
      if (!ended) {
        sendSignal(-group, "SIGKILL");
        await this.exited;
      }
    }
    // The guardian's exit SIGKILLed what was left of the group; wait for it to be gone.
    const deadline = Date.now() + GROUP_STOP_GRACE_MS;
    while (groupAlive(group) && Date.now() < deadline) await new Promise((r) => setTimeout(r, GROUP_GONE_POLL_MS));
  }
}

/** How often stop() checks whether a killed group is gone, in milliseconds (no event says so). */
const GROUP_GONE_POLL_MS = 20;

/** Whether any live (not zombie) process is left in process group `pgid`. */
function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
  } catch {
    return false;
  }
  // Zombies count for kill(); where /proc exists, look closer (an unreaped zombie holds nothing).
  let entries: string[];
  try {
    entries = readdirSync("/proc");
  } catch {
    return true;
  }
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      const [state, , group] = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      if (Number(group) === pgid && state !== "Z" && state !== "X") return true;
    } catch {
      /* gone meanwhile */
    }
  }
  return false;
}
