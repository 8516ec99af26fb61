/**
 * One background command as the reference runs it on Unix: `/bin/sh -c command` on its own PTY
 * (80×24, a new session whose group the kill reaches), so stdout and stderr arrive merged, with
 * `\r\n` line ends, and the program sees a terminal (`test -t 1` is true, output line-buffered,
 * prompts shown). Input goes to the PTY. The exit code is reported as Python does: the code, or
 * minus the signal number.
 */
import { StringDecoder } from "node:string_decoder";
import * as pty from "node-pty";
import { taggedCommand, type Launcher } from "../launch.ts";
import { ptyInputQueue } from "../pty-input.ts";
import { ownLauncher } from "../pty-spawn.ts";
import { listenWholly } from "../pty-tail.ts";
import { definedEnv } from "./exec-caller.ts";
import { signalTree } from "./process-tree.ts";
import type { PtyHost, PtyInputResult, PtyProcess } from "./pty-host.ts";
import { PTY_RUN_INPUT_QUEUE_MAX_BYTES } from "./pty-host-protocol.ts";

/** The PTY's size, as the reference opens it. */
export const EXEC_PTY_COLS = 80;
export const EXEC_PTY_ROWS = 24;
/** Input accepted per `/input` call while the PTY is not reading, in bytes, before it is refused. */
export const PTY_INPUT_MAX_BYTES = 1 << 20; // 1 MiB

export interface PtyRunSpec {
  command: string;
  cwd: string;
  env: NodeJS.ProcessEnv;
  shell: string;
  /** The tag the command and its children carry (launch.ts processTag), or null for none. */
  tag: string | null;
  /** Output chunks as the PTY gives them (UTF-8 decoded across chunk boundaries). */
  onOutput: (data: string) => void;
  /** How the command is started (default pty-spawn.ts ownLauncher: as the agent's user). */
  launch?: Launcher;
}

/** node-pty's IPty (`encoding: null`: its data are Buffers) as a PtyProcess, its input bounded as the host bounds it. */
function forked(proc: pty.IPty): PtyProcess {
  const queue = ptyInputQueue(proc);
  return {
    pid: proc.pid,
    // The slave is held: a command that points its descriptors elsewhere keeps running (pty-tail.ts).
    listen: (onData, onExit) => listenWholly(proc, onData, onExit, { holdSlave: true }),
    write: (data) => {
      if ((queue?.pending() ?? 0) + data.byteLength > PTY_RUN_INPUT_QUEUE_MAX_BYTES) return Promise.resolve("full");
      try {
        proc.write(data);
        return Promise.resolve("ok");
      } catch {
        return Promise.resolve("closed");
      }
    },
  };
}

export class PtyRun {
  /** Exit code (or minus the signal), once the command exited. */
  exitCode: number | null = null;
  /** Never set: background commands have no timeout. Kept so runs share one shape. */
  readonly timedOut = false;
  /** Resolves with the exit code once the command exited and its output was read. */
  readonly finished: Promise<number>;
  private resolveFinished!: (code: number) => void;
  private closed = false;
  private readonly decoder = new StringDecoder("utf8");

  private constructor(private readonly proc: PtyProcess, spec: PtyRunSpec) {
    this.finished = new Promise((resolve) => (this.resolveFinished = resolve));
    proc.listen(
      (data) => {
        const text = this.decoder.write(data);
        if (text) spec.onOutput(text);
      },
      ({ exitCode, signal }) => {
        const rest = this.decoder.end();
        if (rest) spec.onOutput(rest);
        this.exitCode = signal ? -signal : exitCode;
        this.closed = true;
        this.resolveFinished(this.exitCode);
      },
    );
  }

  /**
   * Starts the command on a new PTY in this process (inheriting only the PTY: the spawn helper
   * closes the rest, or the descriptor-closing launcher does) with the agent's process tag; throws
   * the spawn error (e.g. a missing cwd).
   */
  static start(spec: PtyRunSpec): PtyRun {
    const env = definedEnv(spec.env);
    const launch = (spec.launch ?? ownLauncher())(spec.shell, ["-c", spec.command], env, spec.tag);
    // The only place background commands are spawned.
    const proc = pty.spawn(launch.file, launch.args, {
      name: env.TERM ?? "xterm-256color",
      cols: EXEC_PTY_COLS,
      rows: EXEC_PTY_ROWS,
      cwd: spec.cwd,
      env: launch.env,
      encoding: null,
    });
    return new PtyRun(forked(proc), spec);
  }

  /**
   * Starts the command on a new PTY forked by the agent's PTY host (pty-host.ts), which starts it
   * through the descriptor closer when it holds other PTYs; the tag and a multi-user `launch`
   * apply as in `start`. Rejects when the host cannot start it.
   */
  static async startHosted(spec: PtyRunSpec, host: PtyHost): Promise<PtyRun> {
    const env = definedEnv(spec.env);
    // The host checks its own descriptors when it forks: the agent's do not matter here.
    const launch = (spec.launch ?? taggedCommand)(spec.shell, ["-c", spec.command], env, spec.tag);
    const proc = await host.spawn({ file: launch.file, args: launch.args, env: launch.env, cwd: spec.cwd, name: env.TERM ?? "xterm-256color", cols: EXEC_PTY_COLS, rows: EXEC_PTY_ROWS });
    return new PtyRun(proc, spec);
  }

  get pid(): number {
    return this.proc.pid;
  }

  /** True until the command exited. */
  get running(): boolean {
    return !this.closed;
  }

  /** Sends `sig` to everything the command started (its group and session). */
  signal(sig: NodeJS.Signals): void {
    if (this.closed) return;
    signalTree(this.proc.pid, sig);
  }

  /**
   * Writes to the PTY: "too-large" for more than PTY_INPUT_MAX_BYTES at once, "full" while the
   * program has not read what came before, "closed" once the command exited.
   */
  writeInput(bytes: Buffer): Promise<PtyInputResult | "too-large"> {
    if (this.closed) return Promise.resolve("closed");
    if (bytes.length > PTY_INPUT_MAX_BYTES) return Promise.resolve("too-large");
    return this.proc.write(bytes);
  }
}
