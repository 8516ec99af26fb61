/**
 * One shell command as the reference runs it (`/bin/sh -c`, stdout and stderr on separate pipes,
 * stdin /dev/null), in its own session and process group (pgid = pid) so that a kill or a timeout
 * reaches everything the command started: seed 004's synchronous and streamed runs. The agent's
 * PTY host starts it when the agent uses one (`startHosted`: where the agent would fork, as for the
 * background commands' PTYs, pty-host-main.ts), else the agent itself (`start`).
 * Output goes out line by line through `onOutput`; the exit code is reported as Python does: the
 * code, or minus the signal number.
 */
import { spawn } from "node:child_process";
import { constants } from "node:os";
import { taggedCommand, type Launcher } from "../launch.ts";
import { ownLauncher, spawnOnPipes, type PipedChild } from "../pty-spawn.ts";
import { definedEnv } from "./exec-caller.ts";
import { LineSplitter } from "./line-splitter.ts";
import type { PipedListeners, PipedProcess, PtyHost } from "./pty-host.ts";
import { PIPE_DRAIN_GRACE_MS } from "./pty-host-protocol.ts";

/** setTimeout's limit; longer timeouts are treated as none. */
const TIMER_MAX_MS = 2 ** 31 - 1;

export interface RunSpec {
  command: string;
  cwd: string;
  env: NodeJS.ProcessEnv;
  shell: string;
  /** The tag the command and its children carry (launch.ts processTag), or null for none. */
  tag: string | null;
  /** Seconds before the group is killed with SIGKILL; null = never. */
  timeout: number | null;
  onOutput: (type: "stdout" | "stderr", data: string) => void;
  /** How the command is started (default: as the agent's user). */
  launch?: Launcher;
}

/** A child the agent spawned itself (by the spawn helper, or child_process), as a PipedProcess. */
class LocalPipedProcess implements PipedProcess {
  private exit: { exitCode: number; signal: number } | null = null;
  private draining = false;
  private drainTimer: NodeJS.Timeout | undefined;

  constructor(private readonly child: PipedChild) {
    child.on("error", () => {}); // later errors (a failed kill) must not crash the agent
  }

  get pid(): number {
    return this.child.pid!;
  }

  listen(listeners: PipedListeners): void {
    for (const stream of ["stdout", "stderr"] as const) {
      this.child[stream]!.on("data", (chunk: Buffer) => listeners.data(stream, chunk));
      this.child[stream]!.on("error", () => {});
    }
    this.child.on("exit", (code: number | null, signal: NodeJS.Signals | null) => {
      this.exit = { exitCode: code ?? 0, signal: signal ? (constants.signals[signal] ?? 0) : 0 };
      if (this.draining) this.closeSoon();
    });
    this.child.on("close", () => {
      clearTimeout(this.drainTimer);
      listeners.close(this.exit ?? { exitCode: 0, signal: 0 });
    });
  }

  pause(): void {
    this.child.stdout?.pause();
    this.child.stderr?.pause();
  }

  resume(): void {
    this.child.stdout?.resume();
    this.child.stderr?.resume();
  }

  drainAfterKill(): void {
    this.draining = true;
    if (this.exit) this.closeSoon();
  }

  private closeSoon(): void {
    if (this.drainTimer) return;
    this.drainTimer = setTimeout(() => {
      this.child.stdout?.destroy();
      this.child.stderr?.destroy();
    }, PIPE_DRAIN_GRACE_MS);
  }
}

export class ProcessRun {
  /** True when the timeout fired and killed the group. */
  timedOut = false;
  /** Resolves with the exit code once the process exited and its pipes closed. */
  readonly finished: Promise<number>;
  private resolveFinished!: (code: number) => void;
  private closed = false;
  private timer: NodeJS.Timeout | undefined;

  private constructor(private readonly proc: PipedProcess, spec: RunSpec) {
    this.finished = new Promise((resolve) => (this.resolveFinished = resolve));
    const splitters = {
      stdout: new LineSplitter((data) => spec.onOutput("stdout", data)),
      stderr: new LineSplitter((data) => spec.onOutput("stderr", data)),
    };
    proc.listen({
      data: (stream, bytes) => splitters[stream].push(bytes),
      close: ({ exitCode, signal }) => {
        this.closed = true;
        clearTimeout(this.timer);
        splitters.stdout.end();
        splitters.stderr.end();
        this.resolveFinished(signal ? -signal : exitCode);
      },
    });
    if (spec.timeout !== null && spec.timeout * 1000 <= TIMER_MAX_MS) {
      this.timer = setTimeout(() => {
        this.timedOut = true;
        this.signal("SIGKILL");
      }, spec.timeout * 1000);
    }
  }

  /**
   * Starts the command in the agent, with the spawn helper (posix_spawn) when it is in force, else
   * child_process (which forks); it inherits only its pipes (the helper closes the rest, or the
   * descriptor-closing launcher does). Rejects with the spawn error (e.g. E2BIG, a missing cwd) if
   * it could not start.
   */
  static start(spec: RunSpec): Promise<ProcessRun> {
    return new Promise((resolve, reject) => {
      let child: PipedChild;
      try {
        const launch = (spec.launch ?? ownLauncher())(spec.shell, ["-c", spec.command], definedEnv(spec.env), spec.tag);
        child =
          spawnOnPipes(launch.file, launch.args, launch.env, spec.cwd) ??
          spawn(launch.file, launch.args, { cwd: spec.cwd, env: launch.env, detached: true, stdio: ["ignore", "pipe", "pipe"] });
      } catch (e) {
        reject(e);
        return;
      }
      const onError = (e: Error) => reject(e);
      child.once("error", onError);
      child.once("spawn", () => {
        child.off("error", onError);
        resolve(new ProcessRun(new LocalPipedProcess(child), spec));
      });
    });
  }

  /**
   * Starts the command in the agent's PTY host (which starts it through the descriptor closer when
   * it holds other commands' PTYs); the tag and a multi-user `launch` apply as in `start`. Rejects
   * when the host cannot start it (PtyHostUnavailable: the host is gone, the caller may `start`).
   */
  static async startHosted(spec: RunSpec, host: PtyHost): Promise<ProcessRun> {
    // The host checks its own descriptors when it forks: the agent's do not matter here.
    const launch = (spec.launch ?? taggedCommand)(spec.shell, ["-c", spec.command], definedEnv(spec.env), spec.tag);
    const proc = await host.spawnPiped({ file: launch.file, args: launch.args, env: launch.env, cwd: spec.cwd });
    return new ProcessRun(proc, spec);
  }

  get pid(): number {
    return this.proc.pid;
  }

  /** True until the process exited and its pipes closed. */
  get running(): boolean {
    return !this.closed;
  }

  /** Sends `sig` to the whole process group; after it, pipes an escaped process holds close after a grace. */
  signal(sig: NodeJS.Signals): void {
    if (this.closed) return;
    try {
      process.kill(-this.pid, sig);
    } catch {
      try {
        process.kill(this.pid, sig); // no group left: at least the leader
      } catch {
        // already gone
      }
    }
    this.proc.drainAfterKill();
  }

  /** Stops reading the pipes (the consumer is behind); the command blocks once they fill. */
  pause(): void {
    this.proc.pause();
  }

  resume(): void {
    this.proc.resume();
  }
}

