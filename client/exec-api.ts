/**
 * `/execute` of the Open Terminal API at one mount: today's background processes (run, list,
 * status, input, kill) and seed 004's synchronous run and NDJSON stream. Which mode the edge
 * picks follows shared/open-terminal-execute.ts: `stream` → NDJSON; a `timeout` → synchronous;
 * else background. Errors in FastAPI's shape become EdgettyErrors with `family: "open-terminal"`.
 */
import { ndjsonLines } from "../shared/ndjson.ts";
import type { ProcessSummary, ProcessView, SyncExecResult } from "../shared/open-terminal-execute.ts";
import type { StreamEvent } from "../shared/open-terminal-ndjson.ts";
import { EdgettyError } from "./errors.ts";
import { chunksOf, type Transport } from "./transport.ts";

/** Longest NDJSON line the client reads, in characters. */
export const NDJSON_LINE_MAX_CHARS = 8 << 20; // 8 Mi characters

/** What a command runs with. */
export interface CommandOptions {
  /** Working directory (relative: to the `X-Session-Id` session's, else home). */
  cwd?: string;
  /** Merged over the agent's environment. */
  env?: Record<string, string>;
  signal?: AbortSignal;
}

function body(command: string, options: CommandOptions, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { command, ...(options.cwd !== undefined ? { cwd: options.cwd } : {}), ...(options.env !== undefined ? { env: options.env } : {}), ...extra };
}

/** One NDJSON line checked against seed 004's event shape. */
function streamEvent(line: string): StreamEvent {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    throw new EdgettyError(0, "INVALID_STREAM", `the stream sent a line that is not JSON: ${line.slice(0, 200)}`, "none");
  }
  const e = value as { type?: unknown; data?: unknown };
  if ((e.type === "stdout" || e.type === "stderr") && typeof e.data === "string") return { type: e.type, data: e.data };
  if (e.type === "exit" && typeof e.data === "number") return { type: "exit", data: e.data };
  throw new EdgettyError(0, "INVALID_STREAM", `the stream sent an unknown event: ${line.slice(0, 200)}`, "none");
}

/** `/execute*` at one mount. */
export class ExecApi {
  constructor(private readonly t: Transport) {}

  /**
   * `POST /execute` (today's API): starts the command on a PTY. Without `wait` it answers at once
   * (`status: "running"`); with `wait` (0–300 s) once it ended or the wait is over. `tail` keeps
   * the last N output entries.
   */
  run(command: string, options: CommandOptions & { wait?: number; tail?: number } = {}): Promise<ProcessView> {
    return this.t.json("POST", "/execute", { query: { wait: options.wait, tail: options.tail }, json: body(command, options), signal: options.signal });
  }

  /**
   * `POST /execute` with a `timeout` (seed 004): runs on pipes and answers `{exit_code, stdout,
   * stderr}`. `timeout` in seconds (default 30; null: none); a timed-out command answers
   * `exit_code: -1`.
   */
  runSync(command: string, options: CommandOptions & { timeout?: number | null } = {}): Promise<SyncExecResult> {
    return this.t.json("POST", "/execute", { json: body(command, options, { timeout: options.timeout === undefined ? 30 : options.timeout }), signal: options.signal });
  }

  /**
   * `POST /execute?stream=true` (seed 004): the command's `stdout`/`stderr` events as it writes
   * them, then one `exit` (a stream cut before it throws STREAM_INCOMPLETE). Leaving the loop early (or aborting `signal`) cancels the request, and
   * the edge kills the command. `timeout` in seconds is honoured only when given.
   */
  async *stream(command: string, options: CommandOptions & { timeout?: number } = {}): AsyncGenerator<StreamEvent> {
    const extra = options.timeout !== undefined ? { timeout: options.timeout } : {};
    const response = await this.t.request("POST", "/execute", { query: { stream: "true" }, json: body(command, options, extra), signal: options.signal });
    let exited = false;
    if (response.body) {
      for await (const line of ndjsonLines(chunksOf(response.body), NDJSON_LINE_MAX_CHARS)) {
        const event = streamEvent(line);
        exited = event.type === "exit";
        yield event;
      }
    }
    // The edge ends a stream without its exit line when the agent went away mid-command.
    if (!exited) throw new EdgettyError(0, "STREAM_INCOMPLETE", "the stream ended without the command's exit (the host's agent went away?)", "none");
  }

  /** `GET /execute`: this caller's processes, oldest first. */
  list(): Promise<ProcessSummary[]> {
    return this.t.json("GET", "/execute");
  }

  /** `GET /execute/{id}/status`: waits up to `wait` s for it to end; `offset` pages on (pass `next_offset`). */
  status(id: string, options: { wait?: number; offset?: number; tail?: number; signal?: AbortSignal } = {}): Promise<ProcessView> {
    return this.t.json("GET", `/execute/${encodeURIComponent(id)}/status`, { query: { wait: options.wait, offset: options.offset, tail: options.tail }, signal: options.signal });
  }

  /** `POST /execute/{id}/input`: typed into the process's terminal (`\n`, `\x03`… escapes are decoded). */
  input(id: string, input: string): Promise<{ status: "ok" }> {
    return this.t.json("POST", `/execute/${encodeURIComponent(id)}/input`, { json: { input } });
  }

  /** `DELETE /execute/{id}`: SIGTERM (SIGKILL with `force`) to its process group; it is forgotten. */
  kill(id: string, options: { force?: boolean } = {}): Promise<{ status: "killed" }> {
    return this.t.json("DELETE", `/execute/${encodeURIComponent(id)}`, { query: { force: options.force } });
  }
}
