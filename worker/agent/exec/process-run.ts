/**
 * One shell command as the reference runs it (`/bin/sh -c`, stdout and stderr on separate pipes),
 * in its own session and process group (`detached: true`, so pgid = pid) so that a kill or a
 * timeout reaches everything the command started. Output goes out line by line through
 * `onOutput`; the exit code is reported as Python does: the code, or minus the signal number.
 */
import { spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { constants } from "node:os";
import { launchCommand, type Launcher } from "../launch.ts";
import { LineSplitter } from "./line-splitter.ts";

/** After a kill, how long to wait for the pipes to close before closing them ourselves. */
export const KILL_DRAIN_GRACE_MS = 1_000;
/** Input queued for a process that is not reading its stdin, beyond which input is refused. */
export const STDIN_PENDING_MAX_BYTES = 1 << 20; // 1 MiB
/** How long an input write may wait for the pipe before the call returns (the bytes stay queued). */
export const INPUT_WRITE_WAIT_MS = 2_000;
/** setTimeout's limit; longer timeouts are treated as none. */
const TIMER_MAX_MS = 2 ** 31 - 1;

export interface RunSpec {
  command: string;
  cwd: string;
  env: NodeJS.ProcessEnv;
  shell: string;
  /** The tag the command and its children carry (launch.ts processTag), or null for none. */
  tag: string | null;
  /** "pipe" for the background model (input allowed), "ignore" gives the command /dev/null. */
  stdin: "pipe" | "ignore";
  /** Seconds before the group is killed with SIGKILL; null = never. */
  timeout: number | null;
  onOutput: (type: "stdout" | "stderr", data: string) => void;
  /** How the command is started (default launchCommand: as the agent's user). */
  launch?: Launcher;
}

export type InputResult = "ok" | "closed" | "full";

export class ProcessRun {
  /** Exit code (or minus the signal), once the leader exited. */
  exitCode: number | null = null;
  /** True when the timeout fired and killed the group. */
  timedOut = false;
  /** Resolves with the exit code once the process exited and its pipes closed. */
  readonly finished: Promise<number>;
  private resolveFinished!: (code: number) => void;
  private closed = false;
  private signalled = false;
  private stdinClosed = false;
  private timer: NodeJS.Timeout | undefined;
  private drainTimer: NodeJS.Timeout | undefined;
  private readonly splitters: LineSplitter[] = [];

  private constructor(private readonly child: ChildProcess, spec: RunSpec) {
    this.finished = new Promise((resolve) => (this.resolveFinished = resolve));
    for (const type of ["stdout", "stderr"] as const) {
      const stream = child[type]!;
      const splitter = new LineSplitter((data) => spec.onOutput(type, data));
      this.splitters.push(splitter);
      stream.on("data", (chunk: Buffer) => splitter.push(chunk));
      stream.on("end", () => splitter.end());
      stream.on("error", () => splitter.end());
    }
    child.stdin?.on("error", () => (this.stdinClosed = true));
    child.on("exit", (code, signal) => {
      this.exitCode = code ?? -(signal ? (constants.signals[signal] ?? 0) : 0);
      if (this.signalled) this.drainSoon();
    });
    child.on("close", () => this.finish());
    if (spec.timeout !== null && spec.timeout * 1000 <= TIMER_MAX_MS) {
      this.timer = setTimeout(() => {
        this.timedOut = true;
        this.signal("SIGKILL");
      }, spec.timeout * 1000);
    }
  }

  /**
   * Starts the command (through the descriptor-closing launcher: it inherits only its pipes);
   * rejects with the spawn error (e.g. E2BIG) if it could not start.
   */
  static start(spec: RunSpec): Promise<ProcessRun> {
    return new Promise((resolve, reject) => {
      let child: ChildProcess;
      try {
        const env: Record<string, string> = {};
        for (const [key, value] of Object.entries(spec.env)) if (value !== undefined) env[key] = value;
        const launch = (spec.launch ?? launchCommand)(spec.shell, ["-c", spec.command], env, spec.tag);
        child = spawn(launch.file, launch.args, {
          cwd: spec.cwd,
          env: launch.env,
          detached: true,
          stdio: [spec.stdin, "pipe", "pipe"],
        });
      } catch (e) {
        reject(e);
        return;
      }
      const onError = (e: Error) => reject(e);
      child.once("error", onError);
      child.once("spawn", () => {
        child.off("error", onError);
        child.on("error", () => {}); // later errors (a failed kill) must not crash the agent
        resolve(new ProcessRun(child, spec));
      });
    });
  }

  get pid(): number {
    return this.child.pid!;
  }

  /** True until the process exited and its pipes closed. */
  get running(): boolean {
    return !this.closed;
  }

  /** Sends `sig` to the whole process group. */
  signal(sig: NodeJS.Signals): void {
    if (this.closed) return;
    this.signalled = true;
    try {
      process.kill(-this.pid, sig);
    } catch {
      try {
        this.child.kill(sig); // no group left: at least the leader
      } catch {
        // already gone
      }
    }
    if (this.exitCode !== null) this.drainSoon();
  }

  /** Writes to stdin; "closed" when there is no open stdin, "full" when it is not being read. */
  writeInput(bytes: Buffer): Promise<InputResult> {
    const stdin = this.child.stdin;
    if (!stdin || this.stdinClosed || stdin.destroyed || stdin.writableEnded) return Promise.resolve("closed");
    if (stdin.writableLength + bytes.length > STDIN_PENDING_MAX_BYTES) return Promise.resolve("full");
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve("ok"), INPUT_WRITE_WAIT_MS);
      stdin.write(bytes, (err) => {
        clearTimeout(timer);
        resolve(err ? "closed" : "ok");
      });
    });
  }

  /** Stops reading the pipes (the consumer is behind); the command blocks once they fill. */
  pause(): void {
    this.child.stdout?.pause();
    this.child.stderr?.pause();
  }

  resume(): void {
    this.child.stdout?.resume();
    this.child.stderr?.resume();
  }

  /** After a kill, a process that escaped the group may still hold the pipes: close them. */
  private drainSoon(): void {
    if (this.drainTimer || this.closed) return;
    this.drainTimer = setTimeout(() => {
      for (const s of [this.child.stdout, this.child.stderr, this.child.stdin]) s?.destroy();
    }, KILL_DRAIN_GRACE_MS);
  }

  private finish(): void {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.timer);
    clearTimeout(this.drainTimer);
    for (const s of this.splitters) s.end();
    this.child.stdin?.destroy();
    this.resolveFinished(this.exitCode ?? -1);
  }
}
