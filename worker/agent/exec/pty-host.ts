/**
 * The agent's end of its PTY host (pty-host-main.ts): starts the host once, keeps it, and turns
 * its frames (pty-host-protocol.ts) into {@link PtyProcess} objects that PtyRun drives exactly like
 * a node-pty it forked itself. Why a host: fork(2) in the agent costs time proportional to the
 * agent's size, paid again by the agent's next writes to its own memory (see pty-host-main.ts).
 *
 * The host is started through the descriptor-closing launcher with the agent's exec tag (so it
 * inherits none of the agent's terminals, and the reaper knows it), and it starts each command
 * through the same closer when it holds other commands' PTYs. Until it has said READY, or after it
 * failed to start PTY_HOST_STARTS_MAX times in a row, `available` is false and the caller forks
 * the PTY itself. When the host dies its commands' PTYs close (they get SIGHUP): each of its runs
 * ends with exit -1 and the next call starts a new host.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { launchCommand } from "../launch.ts";
import { ptySpawnAddonPath, type PtySpawnMode } from "../pty-spawn.ts";
import { signalTree } from "./process-tree.ts";
import { defaultEnv, definedEnv } from "./exec-caller.ts";
import {
  encodeFrame,
  FrameReader,
  frameHeader,
  InputResultCode,
  jsonPayload,
  PTY_RUN_INPUT_QUEUE_MAX_BYTES,
  PtyHostKind,
  PtyHostProtocolError,
  type PtyHostFrame,
  type SpawnRequest,
} from "./pty-host-protocol.ts";

/** How long the host may take to answer a SPAWN, in ms. */
export const PTY_HOST_SPAWN_TIMEOUT_MS = 10_000;
/** Consecutive starts that fail (the host exits before READY) before the agent stops trying. */
export const PTY_HOST_STARTS_MAX = 3;
/** SIGHUP: what a command gets when its PTY closes with the host. */
const SIGHUP = 1;
/** SIGKILL: what the agent sends a piped command's group when the host dies. */
const SIGKILL = 9;

/** The host is not running, or exited before it answered: the caller may fork the PTY itself. */
export class PtyHostUnavailable extends Error {
  override name = "PtyHostUnavailable";
}

/**
 * What became of input for a PTY: written (queued for the program), refused whole because the
 * program has not read enough of what came before ("full"), or the program is gone ("closed").
 */
export type PtyInputResult = "ok" | "full" | "closed";

/** A program on a PTY, as PtyRun drives it (node-pty's IPty, or a run of the host). */
export interface PtyProcess {
  readonly pid: number;
  /** Sets the listeners (once): output bytes, then the exit once all output was given. */
  listen(onData: (data: Buffer) => void, onExit: (exit: { exitCode: number; signal: number }) => void): void;
  /** Writes input unless the PTY's queue is full (PTY_RUN_INPUT_QUEUE_MAX_BYTES); never throws. */
  write(data: Buffer): Promise<PtyInputResult>;
}

/** How a piped run's output and end reach its consumer (ProcessRun). */
export interface PipedListeners {
  data(stream: "stdout" | "stderr", bytes: Buffer): void;
  /** The leader exited and both pipes closed: everything written was given. */
  close(exit: { exitCode: number; signal: number }): void;
}

/** A command on pipes, as ProcessRun drives it (a child the agent spawned, or a run of the host). */
export interface PipedProcess {
  readonly pid: number;
  /** Sets the listeners (once). */
  listen(listeners: PipedListeners): void;
  /** Stops reading its output (the consumer is behind): the command blocks once the pipes fill. */
  pause(): void;
  resume(): void;
  /** It was killed: once its leader exited, close the pipes after a grace (what escaped its group may hold them). */
  drainAfterKill(): void;
}

/** How to start the host: a node and its arguments. */
export interface PtyHostProgram {
  file: string;
  args: string[];
}

/** Longest the sources' host bundle may take to build, in ms. */
const HOST_BUILD_TIMEOUT_MS = 60_000;

/**
 * Builds the host's bundle from the sources with esbuild, in a process of its own started through
 * the launcher (the build's esbuild service is a child too: neither may hold the agent's
 * descriptors). node-pty stays outside, imported by URL (its native part is found beside it).
 */
const BUILD_SCRIPT = `
const [esbuildUrl, entry, outfile, nodePty] = process.argv.slice(1);
const esbuild = (await import(esbuildUrl)).default;
await esbuild.build({
  entryPoints: [entry], outfile, bundle: true, platform: "node", format: "esm", target: "node20", logLevel: "silent",
  plugins: [{ name: "node-pty", setup: (b) => void b.onResolve({ filter: /^node-pty$/ }, () => ({ path: nodePty, external: true })) }],
});
await esbuild.stop();
`;

/**
 * The host's program: in the agent bundle, `edgetty-pty-host.mjs` beside it (built by
 * scripts/build-agent.mjs); from the sources, the same bundle built by esbuild into `runtimeDir`
 * (tsx's loader would more than double the host's memory, and with it the cost of each fork).
 * Null when neither can be had: the agent then forks the PTYs itself. `addon` is the posix_spawn
 * helper (pty-spawn.ts) the host is to spawn with, or null for node-pty's fork.
 */
export async function ptyHostProgram(runtimeDir: string, tag: string | null, addon: string | null = ptySpawnAddonPath()): Promise<PtyHostProgram | null> {
  const here = import.meta.url;
  const program = (bundle: string): PtyHostProgram => ({ file: process.execPath, args: addon ? [bundle, addon] : [bundle] });
  if (!here.endsWith(".ts")) {
    const bundled = fileURLToPath(new URL("./edgetty-pty-host.mjs", here));
    return existsSync(bundled) ? program(bundled) : null;
  }
  try {
    const outfile = join(runtimeDir, "pty-host.mjs");
    const nodePty = pathToFileURL(createRequire(here).resolve("node-pty")).href;
    const entry = fileURLToPath(new URL("./pty-host-main.ts", here));
    const args = ["--input-type=module", "-e", BUILD_SCRIPT, import.meta.resolve("esbuild"), entry, outfile, nodePty];
    const launch = launchCommand(process.execPath, args, defaultEnv() as Record<string, string>, tag);
    const code = await new Promise<number | null>((resolve) => {
      const child = spawn(launch.file, launch.args, { env: launch.env, stdio: "ignore", timeout: HOST_BUILD_TIMEOUT_MS });
      child.on("error", () => resolve(null));
      child.on("close", (c) => resolve(c));
    });
    return code === 0 && existsSync(outfile) ? program(outfile) : null;
  } catch {
    return null;
  }
}

class HostedRun implements PtyProcess {
  private onData: ((data: Buffer) => void) | null = null;
  private onExit: ((exit: { exitCode: number; signal: number }) => void) | null = null;
  /** What arrived before `listen` (within the tick the spawn answered in). */
  private early: Buffer[] = [];
  private exited: { exitCode: number; signal: number } | null = null;
  /** INPUTs sent and not yet answered, oldest first: their sizes and callers. */
  private unanswered: { bytes: number; resolve: (result: PtyInputResult) => void }[] = [];
  private unansweredBytes = 0;

  constructor(
    readonly pid: number,
    private readonly input: (data: Buffer) => void,
  ) {}

  listen(onData: (data: Buffer) => void, onExit: (exit: { exitCode: number; signal: number }) => void): void {
    this.onData = onData;
    this.onExit = onExit;
    for (const data of this.early) onData(data);
    this.early = [];
    if (this.exited) onExit(this.exited);
  }

  write(data: Buffer): Promise<PtyInputResult> {
    if (this.exited) return Promise.resolve("closed");
    // In flight to the host counts as queued: concurrent calls cannot pile up in the pipe either.
    if (this.unansweredBytes + data.byteLength > PTY_RUN_INPUT_QUEUE_MAX_BYTES) return Promise.resolve("full");
    return new Promise((resolve) => {
      this.unanswered.push({ bytes: data.byteLength, resolve });
      this.unansweredBytes += data.byteLength;
      this.input(data);
    });
  }

  /** The host's INPUT_RESULT for the oldest unanswered write. */
  inputResult(code: number): void {
    const oldest = this.unanswered.shift();
    if (!oldest) return;
    this.unansweredBytes -= oldest.bytes;
    oldest.resolve(code === InputResultCode.WRITTEN ? "ok" : code === InputResultCode.FULL ? "full" : "closed");
  }

  data(bytes: Buffer): void {
    if (this.exited) return;
    // A copy: the payload is a view of a pipe read.
    const copy = Buffer.from(bytes);
    if (this.onData) this.onData(copy);
    else this.early.push(copy);
  }

  exit(exit: { exitCode: number; signal: number }): void {
    if (this.exited) return;
    this.exited = exit;
    // The host answers INPUTs before it reports the EXIT; any left unanswered are lost with it.
    for (const { resolve } of this.unanswered) resolve("closed");
    this.unanswered = [];
    this.unansweredBytes = 0;
    this.onExit?.(exit);
  }
}

/** A run on pipes in the host: its frames, turned into a PipedProcess. */
class HostedPipedRun implements PipedProcess {
  private listeners: PipedListeners | null = null;
  /** What arrived before `listen`. */
  private early: { stream: "stdout" | "stderr"; bytes: Buffer }[] = [];
  private closed: { exitCode: number; signal: number } | null = null;

  constructor(
    readonly pid: number,
    private readonly control: (kind: typeof PtyHostKind.PAUSE | typeof PtyHostKind.RESUME | typeof PtyHostKind.DRAIN) => void,
  ) {}

  listen(listeners: PipedListeners): void {
    this.listeners = listeners;
    for (const { stream, bytes } of this.early) listeners.data(stream, bytes);
    this.early = [];
    if (this.closed) listeners.close(this.closed);
  }

  pause(): void {
    if (!this.closed) this.control(PtyHostKind.PAUSE);
  }

  resume(): void {
    if (!this.closed) this.control(PtyHostKind.RESUME);
  }

  drainAfterKill(): void {
    if (!this.closed) this.control(PtyHostKind.DRAIN);
  }

  data(stream: "stdout" | "stderr", bytes: Buffer): void {
    if (this.closed) return;
    // A copy: the payload is a view of a pipe read.
    const copy = Buffer.from(bytes);
    if (this.listeners) this.listeners.data(stream, copy);
    else this.early.push({ stream, bytes: copy });
  }

  exit(exit: { exitCode: number; signal: number }): void {
    if (this.closed) return;
    this.closed = exit;
    this.listeners?.close(exit);
  }
}

interface PendingSpawn {
  /** Makes the run once the host said SPAWNED with its pid. */
  started: (id: number, pid: number) => HostedRun | HostedPipedRun;
  resolve: (run: HostedRun | HostedPipedRun) => void;
  reject: (error: Error) => void;
  timer: NodeJS.Timeout;
}

export class PtyHost {
  private child: ChildProcess | null = null;
  private ready = false;
  private failedStarts = 0;
  private stopped = false;
  private nextId = 1;
  private readonly pending = new Map<number, PendingSpawn>();
  private readonly runs = new Map<number, HostedRun | HostedPipedRun>();
  /** Callers of whenReady() waiting for the next READY (at most one per caller; tests and start-up). */
  private readyWaiters: (() => void)[] = [];

  private program: PtyHostProgram | null = null;
  /** How the running host spawns PTYs (its READY says). */
  spawnMode: PtySpawnMode = "fork";
  private spawnReasonLogged = false;

  /**
   * @param program how to start the host (ptyHostProgram; null: there is none, never available)
   * @param tag the process tag the host carries (launch.ts processTag)
   */
  constructor(
    program: Promise<PtyHostProgram | null>,
    private readonly tag: string | null,
    private readonly log: (line: string) => void = () => {},
  ) {
    void program.then((p) => {
      this.program = p;
      if (!p) this.log("the PTY host is not available; /execute PTYs are forked by the agent");
      this.start();
    });
  }

  /** True while a host is up and answering: spawn() may be called. */
  get available(): boolean {
    return this.ready && this.child !== null;
  }

  /** The running host's pid, or null. */
  get pid(): number | null {
    return this.child?.pid ?? null;
  }

  /** Resolves once a host is up and answering. */
  whenReady(): Promise<void> {
    if (this.available) return Promise.resolve();
    return new Promise((resolve) => this.readyWaiters.push(resolve));
  }

  /** Starts the host if none runs (and it has not failed too often); returns at once. */
  private start(): void {
    if (!this.program || this.child || this.stopped || this.failedStarts >= PTY_HOST_STARTS_MAX) return;
    // The agent's environment without its EDGETTY_* settings (its token among them).
    const env = definedEnv(defaultEnv());
    let child: ChildProcess;
    try {
      const launch = launchCommand(this.program.file, this.program.args, env, this.tag);
      child = spawn(launch.file, launch.args, { env: launch.env, stdio: ["pipe", "pipe", "inherit"] });
    } catch (error) {
      this.failedStarts++;
      this.log(`the PTY host could not start: ${(error as Error).message}`);
      return;
    }
    this.child = child;
    const reader = new FrameReader();
    child.on("error", () => {}); // reported by "exit"/"close"
    child.stdin!.on("error", () => {});
    child.stdout!.on("data", (chunk: Buffer) => {
      try {
        for (const frame of reader.push(chunk)) this.handle(frame);
      } catch (error) {
        if (!(error instanceof PtyHostProtocolError)) throw error;
        this.log(`the PTY host sent a malformed frame (${error.message}); restarting it`);
        child.kill("SIGKILL");
      }
    });
    child.on("close", (code, signal) => this.gone(child, code, signal));
  }

  /** Starts `request` on a new PTY in the host; rejects when the host refuses, times out or dies. */
  spawn(request: SpawnRequest): Promise<PtyProcess> {
    return this.startRun(request, (id, pid) => {
      const child = this.child!;
      return new HostedRun(pid, (data) => {
        child.stdin!.write(Buffer.concat([frameHeader(PtyHostKind.INPUT, id, data.byteLength), data]));
      });
    }) as Promise<HostedRun>;
  }

  /**
   * Starts `request` on pipes in the host (stdin /dev/null, stdout and stderr apart, a session of
   * its own); rejects as `spawn` does.
   */
  spawnPiped(request: Omit<SpawnRequest, "pipes" | "name" | "cols" | "rows">): Promise<PipedProcess> {
    return this.startRun({ ...request, name: "", cols: 0, rows: 0, pipes: true }, (id, pid) => {
      const child = this.child!;
      return new HostedPipedRun(pid, (kind) => child.stdin!.write(encodeFrame(kind, id)));
    }) as Promise<HostedPipedRun>;
  }

  private startRun(request: SpawnRequest, started: PendingSpawn["started"]): Promise<HostedRun | HostedPipedRun> {
    const child = this.child;
    if (!child || !this.ready) return Promise.reject(new PtyHostUnavailable("the PTY host is not running"));
    const id = this.nextId;
    this.nextId = this.nextId >= 0xffffffff ? 1 : this.nextId + 1;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error("the PTY host did not answer in time"));
      }, PTY_HOST_SPAWN_TIMEOUT_MS);
      this.pending.set(id, { started, resolve, reject, timer });
      child.stdin!.write(encodeFrame(PtyHostKind.SPAWN, id, request));
    });
  }

  /**
   * Stops the host (its PTYs close: their commands get SIGHUP) and starts no other. The end of its
   * stdin is what ends it: it ignores SIGTERM and SIGINT, which reach it with the agent's group.
   */
  stop(): void {
    this.stopped = true;
    this.child?.stdin?.end();
  }

  private handle(frame: PtyHostFrame): void {
    switch (frame.kind) {
      case PtyHostKind.READY: {
        const spawning = jsonPayload<{ mode?: unknown; reason?: unknown }>(frame.payload);
        this.spawnMode = spawning?.mode === "posix_spawn" ? "posix_spawn" : "fork";
        if (typeof spawning?.reason === "string" && !this.spawnReasonLogged) {
          this.spawnReasonLogged = true;
          this.log(`the PTY host forks its PTYs (${spawning.reason})`);
        }
        this.ready = true;
        this.failedStarts = 0;
        const waiters = this.readyWaiters;
        this.readyWaiters = [];
        for (const wake of waiters) wake();
        return;
      }
      case PtyHostKind.SPAWNED:
      case PtyHostKind.FAILED: {
        const waiting = this.pending.get(frame.id);
        if (!waiting) {
          // Started after its caller gave up waiting (timed out): nobody will drive it.
          const pid = frame.kind === PtyHostKind.SPAWNED ? jsonPayload<{ pid?: unknown }>(frame.payload)?.pid : undefined;
          if (typeof pid === "number" && Number.isInteger(pid) && pid > 1) signalTree(pid, "SIGKILL");
          return;
        }
        this.pending.delete(frame.id);
        clearTimeout(waiting.timer);
        if (frame.kind === PtyHostKind.FAILED) {
          waiting.reject(new Error(jsonPayload<{ message?: string }>(frame.payload)?.message ?? "the PTY host could not start the command"));
          return;
        }
        const pid = jsonPayload<{ pid?: unknown }>(frame.payload)?.pid;
        if (typeof pid !== "number" || !Number.isInteger(pid) || pid <= 1) {
          waiting.reject(new Error("the PTY host answered without a pid"));
          return;
        }
        const run = waiting.started(frame.id, pid);
        this.runs.set(frame.id, run);
        waiting.resolve(run);
        return;
      }
      case PtyHostKind.DATA: {
        const run = this.runs.get(frame.id);
        if (run instanceof HostedPipedRun) run.data("stdout", frame.payload);
        else run?.data(frame.payload);
        return;
      }
      case PtyHostKind.STDERR: {
        const run = this.runs.get(frame.id);
        if (run instanceof HostedPipedRun) run.data("stderr", frame.payload);
        return;
      }
      case PtyHostKind.INPUT_RESULT: {
        const run = this.runs.get(frame.id);
        if (run instanceof HostedRun) run.inputResult(frame.payload[0] ?? InputResultCode.CLOSED);
        return;
      }
      case PtyHostKind.EXIT: {
        const run = this.runs.get(frame.id);
        if (!run) return;
        this.runs.delete(frame.id);
        const exit = jsonPayload<{ exitCode?: unknown; signal?: unknown }>(frame.payload);
        const int = (x: unknown) => (typeof x === "number" && Number.isInteger(x) ? x : 0);
        run.exit({ exitCode: int(exit?.exitCode), signal: int(exit?.signal) });
        return;
      }
      default:
        throw new PtyHostProtocolError(`unexpected frame kind ${frame.kind} from the PTY host`);
    }
  }

  private gone(child: ChildProcess, code: number | null, signal: NodeJS.Signals | null): void {
    if (this.child !== child) return;
    if (!this.ready) this.failedStarts++;
    this.child = null;
    this.ready = false;
    if (!this.stopped) this.log(`the PTY host exited (${signal ?? `code ${code}`})${this.failedStarts >= PTY_HOST_STARTS_MAX ? "; PTYs are forked by the agent from now on" : ""}`);
    for (const [id, waiting] of this.pending) {
      clearTimeout(waiting.timer);
      waiting.reject(new PtyHostUnavailable("the PTY host exited"));
      this.pending.delete(id);
    }
    for (const run of this.runs.values()) {
      if (run instanceof HostedRun) {
        run.exit({ exitCode: 0, signal: SIGHUP });
        continue;
      }
      // A piped run has no PTY to hang up, and nobody reads its pipes now: end its group.
      signalTree(run.pid, "SIGKILL");
      run.exit({ exitCode: 0, signal: SIGKILL });
    }
    this.runs.clear();
    this.start();
  }
}
