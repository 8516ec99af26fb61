/**
 * The agent side of the Open Terminal execute API, independent of any transport: seed 004's
 * synchronous runs and NDJSON streams (on pipes), and today's background model on a PTY (ids,
 * status running/done/killed, bounded output with offsets, a JSONL log file per process, long-poll
 * waits, input, kill). Methods take validated calls (see shared/open-terminal-execute.ts) and
 * return JSON-able values; failures are ExecError values carrying the HTTP answer in the family's
 * shape. `handle()` wraps it all for a relay and never rejects.
 *
 * Who calls, as which account and in which directory, is resolved in exec-caller.ts.
 *
 * Processes belong to a scope (the caller's `X-User-Id`, folded with the principal by the edge);
 * another scope's processes are 404. A process killed through the API is forgotten at once, a
 * finished one FINISHED_PROCESS_TTL_MS after it ended (404 after that, as the reference).
 */
import { randomBytes } from "node:crypto";
import { homedir, tmpdir } from "node:os";
import { join } from "node:path";
import type { ExecOp } from "../../../shared/links/exec.ts";
import { OtCode, otError, timeoutMessage } from "../../../shared/open-terminal.ts";
import type {
  ExecSpec,
  HttpReply,
  ProcessStatus,
  ProcessSummary,
  ProcessView,
  StatusQuery,
  SyncExecResult,
} from "../../../shared/open-terminal.ts";
import { ExecStream } from "./exec-stream.ts";
import { decodeInputEscapes } from "./input-escapes.ts";
import { ProcessLogFile, pruneLogDir } from "./process-log-file.ts";
import { ProcessOutputLog, TailText } from "./process-output-log.ts";
import { ProcessRun } from "./process-run.ts";
import type { RunSpec } from "./process-run.ts";
import { PtyRun } from "./pty-run.ts";
import { PtyHostUnavailable, type PtyHost } from "./pty-host.ts";
import { defaultEnv, ExecError, placeCommand, type ExecCaller, type Placement, type PlacementOptions, type RunAs } from "./exec-caller.ts";

/** How long a finished process stays visible (the reference's _EXPIRY_SECONDS = 300). */
export const FINISHED_PROCESS_TTL_MS = 5 * 60_000;
/** Background processes tracked at once; the oldest finished one makes room for a new one. */
export const MAX_TRACKED_PROCESSES = 64;
/** Commands running at once, all modes together; more are refused with 429. */
export const MAX_RUNNING_PROCESSES = 32;
/** A SIGTERM that has not ended the process after this long is followed by SIGKILL. */
export const KILL_ESCALATE_MS = 5_000;
/** How often finished processes are swept out. */
const SWEEP_INTERVAL_MS = 30_000;

export interface ExecLimits {
  finishedTtlMs: number;
  maxTracked: number;
  maxRunning: number;
  killEscalateMs: number;
}

export interface ExecManagerOptions {
  /** Where commands run when the call names no `cwd`, and what relative ones resolve against (default: home). */
  defaultCwd?: string;
  /** Environment commands inherit (default: this process's, without EDGETTY_* variables). */
  baseEnv?: NodeJS.ProcessEnv;
  /** The shell that runs `-c command` (default /bin/sh, as the reference's create_subprocess_shell). */
  shell?: string;
  /** The tag every command (and its children) carries (launch.ts processTag); default none. */
  tag?: string;
  /** Where each background process's JSONL log goes (`log_path`); default a folder under the temp dir. */
  logDir?: string;
  /** The working directory of an `X-Session-Id` session, if it set one (files API `/files/cwd`). */
  sessionCwd?: (scope: string, session: string) => string | undefined;
  /**
   * Multi-user mode: the account a caller that asserted a user (`caller.user`) runs as, or null
   * for the agent's own. May throw an ExecError (the caller's answer).
   */
  runAs?: (caller: ExecCaller) => Promise<RunAs | null>;
  limits?: Partial<ExecLimits>;
  /**
   * Starts the commands out of this process (pty-host.ts), for an agent that would fork(2) them;
   * absent: started here (with posix_spawn where the helper is in force, pty-spawn.ts).
   */
  ptyHost?: PtyHost;
}

const NO_CALLER: ExecCaller = { scope: "", session: "" };

interface Tracked {
  id: string;
  command: string;
  scope: string;
  run: PtyRun;
  log: ProcessOutputLog;
  file: ProcessLogFile;
  status: ProcessStatus;
  exitCode: number | null;
  finishedAt: number | null;
}

/** Resolves after `ms`, when `p` settles, or when `signal` aborts, whichever is first. */
function waitFor(p: Promise<unknown>, ms: number, signal?: AbortSignal): Promise<void> {
  if (signal?.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener("abort", done);
    p.then(done, done);
  });
}

export class ExecManager {
  private readonly procs = new Map<string, Tracked>();
  private readonly active = new Set<ProcessRun | PtyRun>();
  private starting = 0;
  private sweepTimer: NodeJS.Timeout | undefined;
  private readonly limits: ExecLimits;
  private readonly shell: string;
  private readonly tag: string | null;
  private readonly logDir: string;
  /** Where and as whom commands run (exec-caller.ts). */
  private readonly placement: PlacementOptions;
  private readonly ptyHost: PtyHost | undefined;

  constructor(opts: ExecManagerOptions = {}) {
    this.logDir = opts.logDir ?? join(tmpdir(), `edgetty-exec-logs-${process.getuid?.() ?? 0}`);
    pruneLogDir(this.logDir);
    this.placement = {
      defaultCwd: opts.defaultCwd ?? homedir(),
      baseEnv: opts.baseEnv ?? defaultEnv(),
      sessionCwd: opts.sessionCwd ?? (() => undefined),
      runAs: opts.runAs,
    };
    this.shell = opts.shell ?? "/bin/sh";
    this.tag = opts.tag ?? null;
    this.ptyHost = opts.ptyHost;
    this.limits = {
      finishedTtlMs: FINISHED_PROCESS_TTL_MS,
      maxTracked: MAX_TRACKED_PROCESSES,
      maxRunning: MAX_RUNNING_PROCESSES,
      killEscalateMs: KILL_ESCALATE_MS,
      ...opts.limits,
    };
  }

  /**
   * Seed 004's `POST /execute`: runs on pipes to the end or `timeout` seconds (then kills the group,
   * exit_code -1). `signal` (the caller went away, or the link dropped) kills the group too: no one
   * would read the answer, and the command is in no table a caller could kill it from.
   */
  async run(spec: ExecSpec, timeout: number | null, caller: ExecCaller = NO_CALLER, signal?: AbortSignal): Promise<SyncExecResult> {
    const capture = { stdout: new TailText(), stderr: new TailText() };
    const run = await this.spawn(spec, timeout, caller, (type, data) => capture[type].append(data));
    const abandon = () => run.signal("SIGKILL");
    if (signal?.aborted) abandon();
    else signal?.addEventListener("abort", abandon, { once: true });
    const code = await run.finished;
    signal?.removeEventListener("abort", abandon);
    if (run.timedOut) return { exit_code: -1, stdout: "", stderr: timeoutMessage(timeout ?? 0) };
    return { exit_code: code, stdout: capture.stdout.toString(), stderr: capture.stderr.toString() };
  }

  /** `POST /execute` (background): starts the command on a PTY, waits up to `wait` seconds for it. */
  async start(spec: ExecSpec, opts: { wait: number | null; tail: number | null }, caller: ExecCaller = NO_CALLER, signal?: AbortSignal): Promise<ProcessView> {
    const p = await this.track(spec, caller);
    if (opts.wait !== null) await waitFor(p.run.finished, opts.wait * 1000, signal);
    return this.view(p, 0, opts.tail);
  }

  /** `GET /execute`: this scope's processes, oldest first. */
  list(scope = ""): ProcessSummary[] {
    this.sweep();
    const out: ProcessSummary[] = [];
    for (const p of this.procs.values()) {
      if (p.scope === scope) out.push({ id: p.id, command: p.command, status: p.status, exit_code: p.exitCode, log_path: p.file.path });
    }
    return out;
  }

  /** `GET /execute/{id}/status`: output from `offset`, after waiting up to `wait` seconds for the end. */
  async status(id: string, query: StatusQuery, scope = "", signal?: AbortSignal): Promise<ProcessView> {
    const p = this.get(id, scope);
    if (query.wait !== null && p.status === "running") await waitFor(p.run.finished, query.wait * 1000, signal);
    return this.view(p, query.offset, query.tail);
  }

  /** `POST /execute/{id}/input`: writes `input` (escape sequences decoded) to the process's stdin. */
  async input(id: string, input: string, scope = ""): Promise<{ status: "ok" }> {
    const p = this.get(id, scope);
    if (p.status !== "running") throw new ExecError(otError(400, OtCode.PROCESS_EXITED, "Process has already exited"));
    const result = await p.run.writeInput(Buffer.from(decodeInputEscapes(input), "utf8"));
    if (result === "closed") throw new ExecError(otError(400, OtCode.STDIN_CLOSED, "Process stdin is closed"));
    if (result === "too-large") throw new ExecError(otError(400, OtCode.STDIN_FULL, "Input too large for one call"));
    if (result === "full") throw new ExecError(otError(400, OtCode.STDIN_FULL, "Process is not reading its input; try again once it has read what was sent"));
    return { status: "ok" };
  }

  /** `DELETE /execute/{id}?force=`: SIGTERM (SIGKILL if forced, or if SIGTERM did not end it) to the group. */
  async kill(id: string, force: boolean, scope = ""): Promise<{ status: "killed" }> {
    const p = this.get(id, scope);
    if (p.run.running) {
      p.status = "killed";
      p.run.signal(force ? "SIGKILL" : "SIGTERM");
      if (!force) {
        await waitFor(p.run.finished, this.limits.killEscalateMs);
        if (p.run.running) p.run.signal("SIGKILL");
      }
      await p.run.finished;
    }
    // As the reference: a killed (or already finished) process leaves the table at once.
    this.procs.delete(p.id);
    return { status: "killed" };
  }

  /**
   * `POST /execute?stream=true`: starts the command and returns its event stream (stdout/stderr
   * lines as they come, then `exit`). An explicit `timeout` kills the group and ends the stream
   * with the v0.1.4 timeout message and exit -1. Cancelling the stream kills the group.
   */
  async stream(spec: ExecSpec, timeout: number | null, caller: ExecCaller = NO_CALLER): Promise<ExecStream> {
    let run: ProcessRun | undefined;
    const stream = new ExecStream({
      pause: () => run?.pause(),
      resume: () => run?.resume(),
      cancel: () => run?.signal("SIGKILL"),
    });
    run = await this.spawn(spec, timeout, caller, (type, data) => stream.push({ type, data }));
    const r = run;
    void r.finished.then((code) => {
      if (r.timedOut) {
        stream.push({ type: "stderr", data: timeoutMessage(timeout ?? 0) });
        stream.push({ type: "exit", data: -1 });
      } else stream.push({ type: "exit", data: code });
      stream.end();
    });
    return stream;
  }

  /** Runs any non-stream op and answers in HTTP terms; never rejects. */
  async handle(op: ExecOp, caller: ExecCaller = NO_CALLER, signal?: AbortSignal): Promise<HttpReply> {
    const { scope } = caller;
    try {
      switch (op.op) {
        case "list":
          return { status: 200, body: this.list(scope) };
        case "status":
          return { status: 200, body: await this.status(op.id, op.query, scope, signal) };
        case "input":
          return { status: 200, body: await this.input(op.id, op.input, scope) };
        case "kill":
          return { status: 200, body: await this.kill(op.id, op.force, scope) };
        case "execute": {
          const { call } = op;
          if (call.mode === "sync") return { status: 200, body: await this.run(call.spec, call.timeout, caller, signal) };
          if (call.mode === "background") return { status: 200, body: await this.start(call.spec, call, caller, signal) };
          return otError(500, OtCode.BAD_RELAY, "stream calls are answered by ExecManager.stream()");
        }
      }
    } catch (e) {
      if (e instanceof ExecError) return e.reply;
      return otError(500, OtCode.INTERNAL, `Internal error: ${e instanceof Error ? e.message : String(e)}`);
    }
  }

  /** Kills every command this manager started and waits for them; for agent shutdown and tests. */
  async shutdown(): Promise<void> {
    clearInterval(this.sweepTimer);
    this.sweepTimer = undefined;
    const runs = [...this.active];
    for (const run of runs) run.signal("SIGKILL");
    this.ptyHost?.stop();
    await Promise.all(runs.map((r) => r.finished));
    for (const p of this.procs.values()) p.file.close();
  }

  private get(id: string, scope: string): Tracked {
    this.sweep();
    const p = this.procs.get(id);
    if (!p || p.scope !== scope) throw new ExecError(otError(404, OtCode.PROCESS_NOT_FOUND, "Process not found"));
    return p;
  }

  private view(p: Tracked, offset: number, tail: number | null): ProcessView {
    const { output, truncated, next_offset } = p.log.read(offset, tail);
    return { id: p.id, command: p.command, status: p.status, exit_code: p.exitCode, output, truncated, next_offset, log_path: p.file.path };
  }

  /**
   * Starts a background command on a PTY, with an id, a place in the process table and a log file.
   * The PTY is started by the PTY host when there is one and it is up (pty-host.ts), else here;
   * the log file is opened while the command starts (no output can be handled before this returns
   * to the loop).
   */
  private async track(spec: ExecSpec, caller: ExecCaller): Promise<Tracked> {
    this.sweep();
    this.makeRoom();
    const { cwd, env, launch } = await this.prepare(spec, caller);
    const id = this.newId();
    const log = new ProcessOutputLog();
    let file: ProcessLogFile | null = null;
    const runSpec = {
      command: spec.command,
      cwd,
      // The PTY is an xterm-256color, whatever TERM the agent was started with; a request may still set its own.
      env: { ...env, TERM: spec.env?.TERM ?? "xterm-256color" },
      shell: this.shell,
      tag: this.tag,
      ...(launch ? { launch } : {}),
      onOutput: (data: string) => {
        log.append("output", data);
        file?.append({ type: "output", data });
      },
    };
    const openLog = () => (file = new ProcessLogFile(join(this.logDir, `${id}.jsonl`)));
    let run: PtyRun;
    try {
      const host = this.ptyHost?.available ? this.ptyHost : null;
      if (host) {
        const started = PtyRun.startHosted(runSpec, host);
        openLog();
        // A host that went away meanwhile: fork it here instead.
        run = await started.catch((e: unknown) => {
          if (e instanceof PtyHostUnavailable) return PtyRun.start(runSpec);
          throw e;
        });
      } else {
        run = PtyRun.start(runSpec);
        openLog();
      }
    } catch (e) {
      (file as ProcessLogFile | null)?.close();
      throw new ExecError(otError(400, OtCode.SPAWN_FAILED, `Failed to start command: ${e instanceof Error ? e.message : String(e)}`));
    } finally {
      this.starting--;
    }
    const logFile = file ?? openLog();
    this.active.add(run);
    const p: Tracked = { id, command: spec.command, scope: caller.scope, run, log, file: logFile, status: "running", exitCode: null, finishedAt: null };
    this.procs.set(p.id, p);
    void run.finished.then((code) => {
      this.active.delete(run);
      logFile.close();
      p.exitCode = code;
      if (p.status === "running") p.status = "done";
      p.finishedAt = Date.now();
      this.ensureSweeper();
    });
    return p;
  }

  /** Seed 004's runs: on pipes, stdin /dev/null, not tracked; started by the PTY host when there is one that runs. */
  private async spawn(spec: ExecSpec, timeout: number | null, caller: ExecCaller, onOutput: RunSpec["onOutput"]): Promise<ProcessRun> {
    const { cwd, env, launch } = await this.prepare(spec, caller);
    const runSpec: RunSpec = { command: spec.command, cwd, env, shell: this.shell, tag: this.tag, timeout, onOutput, ...(launch ? { launch } : {}) };
    let run: ProcessRun;
    try {
      const host = this.ptyHost?.available ? this.ptyHost : null;
      // A host that went away meanwhile: fork it here instead.
      run = host
        ? await ProcessRun.startHosted(runSpec, host).catch((e: unknown) => {
            if (e instanceof PtyHostUnavailable) return ProcessRun.start(runSpec);
            throw e;
          })
        : await ProcessRun.start(runSpec);
    } catch (e) {
      throw new ExecError(otError(400, OtCode.SPAWN_FAILED, `Failed to start command: ${e instanceof Error ? e.message : String(e)}`));
    } finally {
      this.starting--;
    }
    this.active.add(run);
    void run.finished.then(() => this.active.delete(run));
    return run;
  }

  /**
   * Takes a running slot (released by the caller's `starting--`) and resolves where and as whom
   * the command runs (exec-caller.ts placeCommand).
   */
  private async prepare(spec: ExecSpec, caller: ExecCaller): Promise<Placement> {
    if (this.active.size + this.starting >= this.limits.maxRunning) {
      throw new ExecError(otError(429, OtCode.TOO_MANY_PROCESSES, `Too many running commands (${this.limits.maxRunning}); wait for one to finish or kill one`));
    }
    this.starting++;
    try {
      return await placeCommand(spec, caller, this.placement);
    } catch (e) {
      this.starting--;
      throw e;
    }
  }

  /** The reference's timestamp-sortable id: YYYYMMDD-HHMMSS-<6 hex>. */
  private newId(): string {
    for (;;) {
      const iso = new Date().toISOString();
      const id = `${iso.slice(0, 10).replaceAll("-", "")}-${iso.slice(11, 19).replaceAll(":", "")}-${randomBytes(3).toString("hex")}`;
      if (!this.procs.has(id)) return id;
    }
  }

  /** Evicts the oldest finished processes until a new one fits. */
  private makeRoom(): void {
    while (this.procs.size >= this.limits.maxTracked) {
      let oldest: Tracked | undefined;
      for (const p of this.procs.values()) {
        if (p.finishedAt !== null && (!oldest || p.finishedAt < oldest.finishedAt!)) oldest = p;
      }
      if (!oldest) {
        throw new ExecError(otError(429, OtCode.TOO_MANY_PROCESSES, `Too many background processes (${this.limits.maxTracked}); kill one first`));
      }
      this.procs.delete(oldest.id);
    }
  }

  private sweep(): void {
    const cutoff = Date.now() - this.limits.finishedTtlMs;
    for (const [id, p] of this.procs) {
      if (p.finishedAt !== null && p.finishedAt < cutoff) this.procs.delete(id);
    }
    if (this.sweepTimer && ![...this.procs.values()].some((p) => p.finishedAt !== null)) {
      clearInterval(this.sweepTimer);
      this.sweepTimer = undefined;
    }
  }

  private ensureSweeper(): void {
    if (this.sweepTimer) return;
    this.sweepTimer = setInterval(() => this.sweep(), Math.min(SWEEP_INTERVAL_MS, this.limits.finishedTtlMs));
    this.sweepTimer.unref();
  }
}
