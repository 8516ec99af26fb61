/**
 * The agent side of the Open Terminal execute API, independent of any transport: synchronous runs
 * (v0.1.4), NDJSON streams, and the background model (ids, status running/done/killed, bounded
 * output with offsets, long-poll waits, stdin input, kill). Methods take validated calls (see
 * shared/open-terminal.ts) and return JSON-able values; failures are ExecError values carrying the
 * HTTP answer in the family's shape. `handle()` wraps it all for a relay and never rejects.
 */
import { randomBytes } from "node:crypto";
import { stat } from "node:fs/promises";
import { homedir } from "node:os";
import { resolve as resolvePath } from "node:path";
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
import { ProcessOutputLog, TailText } from "./process-output-log.ts";
import { ProcessRun } from "./process-run.ts";
import type { RunSpec } from "./process-run.ts";

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
  limits?: Partial<ExecLimits>;
}

/** A failure with the HTTP answer it stands for. */
export class ExecError extends Error {
  override name = "ExecError";
  constructor(readonly reply: HttpReply) {
    super(typeof (reply.body as { detail?: unknown }).detail === "string" ? (reply.body as { detail: string }).detail : "exec error");
  }
}

interface Tracked {
  id: string;
  command: string;
  scope: string;
  run: ProcessRun;
  log: ProcessOutputLog;
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

function defaultEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("EDGETTY_")));
}

export class ExecManager {
  private readonly procs = new Map<string, Tracked>();
  private readonly active = new Set<ProcessRun>();
  private starting = 0;
  private sweepTimer: NodeJS.Timeout | undefined;
  private readonly limits: ExecLimits;
  private readonly defaultCwd: string;
  private readonly baseEnv: NodeJS.ProcessEnv;
  private readonly shell: string;
  private readonly tag: string | null;

  constructor(opts: ExecManagerOptions = {}) {
    this.defaultCwd = opts.defaultCwd ?? homedir();
    this.baseEnv = opts.baseEnv ?? defaultEnv();
    this.shell = opts.shell ?? "/bin/sh";
    this.tag = opts.tag ?? null;
    this.limits = {
      finishedTtlMs: FINISHED_PROCESS_TTL_MS,
      maxTracked: MAX_TRACKED_PROCESSES,
      maxRunning: MAX_RUNNING_PROCESSES,
      killEscalateMs: KILL_ESCALATE_MS,
      ...opts.limits,
    };
  }

  /** v0.1.4 `POST /execute`: runs to the end or `timeout` seconds (then kills the group, exit_code -1). */
  async run(spec: ExecSpec, timeout: number | null, scope = ""): Promise<SyncExecResult> {
    const capture = { stdout: new TailText(), stderr: new TailText() };
    const p = await this.track(spec, "ignore", timeout, scope, (type, data) => capture[type].append(data));
    await p.run.finished;
    const timedOut = p.run.timedOut;
    const view = this.view(p, 0, null);
    return {
      ...view,
      exit_code: view.exit_code ?? -1,
      stdout: timedOut ? "" : capture.stdout.toString(),
      stderr: timedOut ? timeoutMessage(timeout ?? 0) : capture.stderr.toString(),
    };
  }

  /** `POST /execute?wait=&tail=`: starts a background process, waits up to `wait` seconds for it. */
  async start(spec: ExecSpec, opts: { wait: number | null; tail: number | null }, scope = "", signal?: AbortSignal): Promise<ProcessView> {
    const p = await this.track(spec, "pipe", null, scope);
    if (opts.wait !== null) await waitFor(p.run.finished, opts.wait * 1000, signal);
    return this.view(p, 0, opts.tail);
  }

  /** `GET /execute`: this scope's processes, oldest first. */
  list(scope = ""): ProcessSummary[] {
    this.sweep();
    const out: ProcessSummary[] = [];
    for (const p of this.procs.values()) {
      if (p.scope === scope) out.push({ id: p.id, command: p.command, status: p.status, exit_code: p.exitCode });
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
    if (result === "full") throw new ExecError(otError(400, OtCode.STDIN_FULL, "Process stdin is full: the command is not reading its input"));
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
    p.finishedAt = Date.now();
    return { status: "killed" };
  }

  /**
   * `POST /execute?stream=true`: starts the command and returns its event stream (stdout/stderr
   * lines as they come, then `exit`). An explicit `timeout` kills the group and ends the stream
   * with the v0.1.4 timeout message and exit -1. Cancelling the stream kills the group.
   */
  async stream(spec: ExecSpec, timeout: number | null): Promise<ExecStream> {
    let run: ProcessRun | undefined;
    const stream = new ExecStream({
      pause: () => run?.pause(),
      resume: () => run?.resume(),
      cancel: () => run?.signal("SIGKILL"),
    });
    run = await this.spawn(spec, "ignore", timeout, (type, data) => stream.push({ type, data }));
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
  async handle(op: ExecOp, scope = "", signal?: AbortSignal): Promise<HttpReply> {
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
          if (call.mode === "sync") return { status: 200, body: await this.run(call.spec, call.timeout, scope) };
          if (call.mode === "background") return { status: 200, body: await this.start(call.spec, call, scope, signal) };
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
    await Promise.all(runs.map((r) => r.finished));
  }

  private get(id: string, scope: string): Tracked {
    this.sweep();
    const p = this.procs.get(id);
    if (!p || p.scope !== scope) throw new ExecError(otError(404, OtCode.PROCESS_NOT_FOUND, "Process not found"));
    return p;
  }

  private view(p: Tracked, offset: number, tail: number | null): ProcessView {
    const { output, truncated, next_offset } = p.log.read(offset, tail);
    return { id: p.id, command: p.command, status: p.status, exit_code: p.exitCode, output, truncated, next_offset };
  }

  /** Starts a command that gets an id and a place in the process table. */
  private async track(spec: ExecSpec, stdin: RunSpec["stdin"], timeout: number | null, scope: string, tee?: RunSpec["onOutput"]): Promise<Tracked> {
    this.sweep();
    this.makeRoom();
    const log = new ProcessOutputLog();
    const run = await this.spawn(spec, stdin, timeout, (type, data) => {
      log.append(type, data);
      tee?.(type, data);
    });
    const p: Tracked = { id: this.newId(), command: spec.command, scope, run, log, status: "running", exitCode: null, finishedAt: null };
    this.procs.set(p.id, p);
    void run.finished.then((code) => {
      p.exitCode = run.timedOut ? -1 : code;
      if (run.timedOut) p.status = "killed";
      else if (p.status === "running") p.status = "done";
      p.finishedAt = Date.now();
      this.ensureSweeper();
    });
    return p;
  }

  private async spawn(spec: ExecSpec, stdin: RunSpec["stdin"], timeout: number | null, onOutput: RunSpec["onOutput"]): Promise<ProcessRun> {
    if (this.active.size + this.starting >= this.limits.maxRunning) {
      throw new ExecError(otError(429, OtCode.TOO_MANY_PROCESSES, `Too many running commands (${this.limits.maxRunning}); wait for one to finish or kill one`));
    }
    this.starting++;
    try {
      const cwd = await this.resolveCwd(spec.cwd);
      const env = spec.env ? { ...this.baseEnv, ...spec.env } : this.baseEnv;
      let run: ProcessRun;
      try {
        run = await ProcessRun.start({ command: spec.command, cwd, env, shell: this.shell, tag: this.tag, stdin, timeout, onOutput });
      } catch (e) {
        throw new ExecError(otError(400, OtCode.SPAWN_FAILED, `Failed to start command: ${e instanceof Error ? e.message : String(e)}`));
      }
      this.active.add(run);
      void run.finished.then(() => this.active.delete(run));
      return run;
    } finally {
      this.starting--;
    }
  }

  private async resolveCwd(cwd: string | null): Promise<string> {
    if (cwd === null || cwd === "") return this.defaultCwd;
    const expanded = cwd === "~" ? homedir() : cwd.startsWith("~/") ? resolvePath(homedir(), cwd.slice(2)) : cwd;
    const full = resolvePath(this.defaultCwd, expanded);
    const info = await stat(full).catch(() => null);
    if (!info?.isDirectory()) throw new ExecError(otError(400, OtCode.CWD_NOT_FOUND, `Working directory not found: ${cwd}`));
    return full;
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
