/**
 * The execute routes of the Open Terminal family: their shapes and their validation.
 *
 * How `POST /execute` picks its mode (seed 004's first version and today's API share the route):
 * - `?stream=true`                                  → seed stream: NDJSON `stdout`/`stderr` … `exit`, on pipes.
 * - a `timeout` in the body, no `wait`/`tail` query → seed synchronous run: `{exit_code, stdout, stderr}`, on pipes.
 * - anything else                                   → today's background model on a PTY: returns at once
 *   (or after `wait` seconds) with `{id, command, status, exit_code, output, truncated, next_offset, log_path}`.
 * Today's clients never send `stream` or `timeout` (the reference ignores both and its OpenAPI
 * document does not offer them); seed 004's examples always send one of them.
 */
import { done, envDict, hasNul, laxFloat, nulIssue, parseJsonBody, queryBool, queryInt, queryView, str, tooLong, utf8Length } from "./open-terminal-fields.ts";
import type { Issues } from "./open-terminal-fields.ts";
import type { Parsed } from "./open-terminal-errors.ts";
import { PATH_MAX_CHARS } from "./links/client.ts";

/** Longest `wait`, in seconds, for `POST /execute` and `GET /execute/{id}/status`. */
export const EXECUTE_WAIT_MAX_SECONDS = 300;
/** v0.1.4's default `timeout`, in seconds, for the synchronous mode. */
export const DEFAULT_EXEC_TIMEOUT_SECONDS = 30;
/** Longest command, in UTF-8 bytes: Linux's MAX_ARG_STRLEN (128 KiB) less the NUL. */
export const COMMAND_MAX_BYTES = 128 * 1024 - 1;
/** Longest `input` for `POST /execute/{id}/input`, in characters. */
export const INPUT_MAX_CHARS = 1 << 20; // 1 Mi characters
/** Longest `cwd`, in characters (Linux's PATH_MAX; no longer path can be a working directory). */
export const CWD_MAX_CHARS = PATH_MAX_CHARS;
/** Longest value of one `env` variable, in characters (one past 128 KiB already fails to start, E2BIG). */
export const EXEC_ENV_VALUE_MAX_CHARS = INPUT_MAX_CHARS;

/** One output record of a process: `output` (PTY, stdout and stderr merged) or a pipe's. */
export interface OutputEntry {
  type: "output" | "stdout" | "stderr";
  data: string;
}

export type ProcessStatus = "running" | "done" | "killed";

/** An item of `GET /execute`. */
export interface ProcessSummary {
  id: string;
  command: string;
  status: ProcessStatus;
  exit_code: number | null;
  /** The process's JSONL output log on the host (`{"type","data"}` per line). */
  log_path: string;
}

/** `POST /execute` (background mode) and `GET /execute/{id}/status`. */
export interface ProcessView {
  id: string;
  command: string;
  status: ProcessStatus;
  exit_code: number | null;
  output: OutputEntry[];
  truncated: boolean;
  next_offset: number;
  log_path: string;
}

/** Seed 004's synchronous answer, exactly: `{exit_code, stdout, stderr}`. */
export interface SyncExecResult {
  exit_code: number;
  stdout: string;
  stderr: string;
}

/** What a command runs with; `cwd` and `env` come from the later API, v0.1.4 ignored them. */
export interface ExecSpec {
  command: string;
  cwd: string | null;
  env: Record<string, string> | null;
}

/** A validated `POST /execute`. `timeout` in seconds; null = none. */
export type ExecuteCall =
  | { mode: "sync"; spec: ExecSpec; timeout: number | null }
  | { mode: "stream"; spec: ExecSpec; timeout: number | null }
  | { mode: "background"; spec: ExecSpec; wait: number | null; tail: number | null };

/** A validated `GET /execute/{id}/status` query. */
export interface StatusQuery {
  wait: number | null;
  offset: number;
  tail: number | null;
}

function command(body: Record<string, unknown>, issues: Issues): string | null {
  const value = str(body, "command", issues, true);
  if (value !== null && utf8Length(value) > COMMAND_MAX_BYTES) issues.push(tooLong(["body", "command"], value, COMMAND_MAX_BYTES, "bytes"));
  else if (value !== null && hasNul(value)) issues.push(nulIssue(["body", "command"], value));
  return value;
}

/** `POST /execute`: query (`stream`, `wait`, `tail`) and JSON body (`command`, `cwd`, `env`, `timeout`). */
export function parseExecuteRequest(params: URLSearchParams, bodyText: string | null): Parsed<ExecuteCall> {
  const issues: Issues = [];
  const q = queryView(params);
  const stream = queryBool(q, "stream", issues);
  const wait = laxFloat(q.get("wait"), ["query", "wait"], issues, 0, EXECUTE_WAIT_MAX_SECONDS);
  const tail = queryInt(q.get("tail"), ["query", "tail"], issues, 1);
  const paging = params.has("wait") || params.has("tail");

  const body = parseJsonBody(bodyText, issues);
  let spec: ExecSpec | null = null;
  let timeout: number | null = null;
  let timeoutGiven = false;
  if (body) {
    const cmd = command(body, issues);
    const cwd = str(body, "cwd", issues, false);
    if (cwd !== null && cwd.length > CWD_MAX_CHARS) issues.push(tooLong(["body", "cwd"], cwd, CWD_MAX_CHARS, "characters"));
    else if (cwd !== null && hasNul(cwd)) issues.push(nulIssue(["body", "cwd"], cwd));
    const env = envDict(body.env, issues, EXEC_ENV_VALUE_MAX_CHARS);
    timeoutGiven = "timeout" in body;
    if (timeoutGiven && (stream || !paging)) timeout = laxFloat(body.timeout, ["body", "timeout"], issues, 0);
    if (cmd !== null) spec = { command: cmd, cwd, env };
  }
  return done(issues, (): ExecuteCall => {
    const s = spec!;
    // Seed 004's stream ignored `timeout`; edgetty honours one only when the caller sent it.
    if (stream) return { mode: "stream", spec: s, timeout: timeoutGiven ? timeout : null };
    if (timeoutGiven && !paging) return { mode: "sync", spec: s, timeout };
    return { mode: "background", spec: s, wait, tail };
  });
}

/** `GET /execute/{id}/status`: `wait` (0–300 s), `offset` (≥ 0, default 0), `tail` (≥ 1). */
export function parseStatusQuery(params: URLSearchParams): Parsed<StatusQuery> {
  const issues: Issues = [];
  const q = queryView(params);
  const wait = laxFloat(q.get("wait"), ["query", "wait"], issues, 0, EXECUTE_WAIT_MAX_SECONDS);
  const offset = queryInt(q.get("offset"), ["query", "offset"], issues, 0) ?? 0;
  const tail = queryInt(q.get("tail"), ["query", "tail"], issues, 1);
  return done(issues, () => ({ wait, offset, tail }));
}

/** `POST /execute/{id}/input`: body `{"input": "…"}`. */
export function parseInputRequest(bodyText: string | null): Parsed<{ input: string }> {
  const issues: Issues = [];
  const body = parseJsonBody(bodyText, issues);
  const input = body ? str(body, "input", issues, true) : null;
  if (input !== null && input.length > INPUT_MAX_CHARS) issues.push(tooLong(["body", "input"], input, INPUT_MAX_CHARS, "characters"));
  return done(issues, () => ({ input: input! }));
}

/** `DELETE /execute/{id}`: `force` (default false → SIGTERM; true → SIGKILL). */
export function parseKillQuery(params: URLSearchParams): Parsed<{ force: boolean }> {
  const issues: Issues = [];
  const force = queryBool(queryView(params), "force", issues);
  return done(issues, () => ({ force }));
}
