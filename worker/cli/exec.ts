/**
 * `edgetty exec [--server ID] -- CMD ARG…`: runs one command on a server through the edge's Open
 * Terminal API (`POST /execute?stream=true`), copies its stdout and stderr lines here as they
 * arrive, and resolves with an exit status for `process.exit`.
 *
 * The argv is joined into one POSIX shell command line with each argument quoted as needed, so
 * `edgetty exec -- ls -la "my file"` runs exactly that; for shell syntax pass it to a shell:
 * `edgetty exec -- sh -c 'ps aux | grep node'`.
 */
import type { Writable } from "node:stream";
import type { StreamEvent } from "../../shared/open-terminal.ts";
import { LineTooLongError, ndjsonLines } from "../../shared/ndjson.ts";
import { CLIENT_OPTIONS_USAGE } from "./local-secrets.ts";

/** `edgetty exec --help`. */
export const EXEC_USAGE = `usage: edgetty exec [--server ID] [--edge URL] [--api-key KEY] [--state-dir DIR] -- COMMAND [ARG…]

  Runs COMMAND on a server through the edge, prints its output as it arrives and exits with its
  exit code (255 when edgetty itself fails). Each ARG is quoted for the shell; for pipes and the
  like run a shell: -- sh -c 'ps aux | grep node'.
  --server ID       the server (default: the edge's default server)
${CLIENT_OPTIONS_USAGE}
example: edgetty exec --state-dir /tmp/edgetty -- uname -a
`;

/** Exit status for failures of edgetty itself (network, auth, a broken stream), as ssh uses. */
export const EXEC_CLI_ERROR_STATUS = 255;
/** Longest NDJSON line accepted from the edge, in characters. */
const LINE_MAX_CHARS = 8 << 20; // 8 Mi characters

export interface ExecCliOptions {
  /** The edge's base URL, e.g. `http://127.0.0.1:8787`. */
  edge: string;
  apiKey: string;
  /** Run on this server instead of the default one. */
  server?: string;
  /** Added to the error when the edge cannot be reached (why that URL was tried). */
  unreachableHint?: string;
  /** The command and its arguments. */
  command: string[];
  /** Stops the command (e.g. on Ctrl-C): the edge cancels the stream and kills the process group. */
  signal?: AbortSignal;
  /** Where output goes (default: this process's stdout/stderr). */
  stdout?: Writable;
  stderr?: Writable;
}

const SAFE_WORD = /^[A-Za-z0-9_@%+=:,./-]+$/;

/** One argument as a POSIX shell word: bare when safe, else single-quoted. */
export function shellQuote(arg: string): string {
  if (SAFE_WORD.test(arg)) return arg;
  return `'${arg.replaceAll("'", `'\\''`)}'`;
}

/** The command line `sh -c` will run for `argv`. */
export function shellJoin(argv: readonly string[]): string {
  return argv.map(shellQuote).join(" ");
}

/** The exit code the API reports, as a process exit status: signals (negative) become 128+n. */
export function exitStatus(code: number): number {
  return code >= 0 ? code & 0xff : Math.min(128 + -code, 255);
}

/** The stream URL on `edge` for `server` (or the default server). */
export function execUrl(edge: string, server?: string): string {
  const base = edge.replace(/\/+$/, "");
  const prefix = server === undefined ? "" : `/api/v1/terminals/${encodeURIComponent(server)}`;
  return `${base}${prefix}/execute?stream=true`;
}

function write(stream: Writable, data: string): Promise<void> {
  return new Promise((resolve) => {
    if (stream.write(data)) resolve();
    else stream.once("drain", resolve);
  });
}

/** The `detail` (or `error`, or raw text) of an error response, for a message, and its `code`. */
async function errorReply(res: Response): Promise<{ text: string; code?: string }> {
  const text = await res.text().catch(() => "");
  try {
    const body = JSON.parse(text) as { detail?: unknown; error?: unknown; message?: unknown; code?: unknown };
    const code = typeof body.code === "string" ? { code: body.code } : {};
    const detail = body.detail ?? body.error ?? body.message;
    if (typeof detail === "string") return { text: detail, ...code };
    if (detail !== undefined) return { text: JSON.stringify(detail), ...code };
  } catch {
    // not JSON
  }
  return { text: text.trim() || res.statusText };
}

/** Runs `opts.command` through the edge; resolves with the exit status to leave with. */
export async function runExecCli(opts: ExecCliOptions): Promise<number> {
  const out = opts.stdout ?? process.stdout;
  const err = opts.stderr ?? process.stderr;
  const fail = async (message: string) => {
    await write(err, `edgetty exec: ${message}\n`);
    return EXEC_CLI_ERROR_STATUS;
  };
  if (opts.command.length === 0) return fail("no command given");

  let res: Response;
  try {
    res = await fetch(execUrl(opts.edge, opts.server), {
      method: "POST",
      headers: { authorization: `Bearer ${opts.apiKey}`, "content-type": "application/json", accept: "application/x-ndjson" },
      body: JSON.stringify({ command: shellJoin(opts.command) }),
      ...(opts.signal ? { signal: opts.signal } : {}),
    });
  } catch (e) {
    const reason = e instanceof Error ? (e.cause instanceof Error ? e.cause.message : e.message) : String(e);
    return fail(`cannot reach ${opts.edge}: ${reason}${opts.unreachableHint ? ` (${opts.unreachableHint})` : ""}`);
  }
  if (!res.ok || !res.body) {
    const { text, code } = await errorReply(res);
    // A user's token reaches servers only under their mount, never the top level's default.
    const hint = code === "ADMIN_ONLY" && opts.server === undefined ? " (with a user's token, name a server granted to you: --server ID)" : "";
    return fail(`${res.status} ${text}${hint}`);
  }

  try {
    for await (const line of ndjsonLines(res.body as unknown as AsyncIterable<Uint8Array>, LINE_MAX_CHARS)) {
      let event: StreamEvent;
      try {
        event = JSON.parse(line) as StreamEvent;
      } catch {
        return fail(`malformed stream line: ${line.slice(0, 200)}`);
      }
      if (event.type === "exit") return exitStatus(typeof event.data === "number" ? event.data : 1);
      if (typeof event.data === "string") await write(event.type === "stderr" ? err : out, event.data);
    }
  } catch (e) {
    if (e instanceof LineTooLongError) return fail(e.message);
    if (opts.signal?.aborted) return exitStatus(-2); // like a shell after SIGINT: 130
    return fail(`stream broken: ${e instanceof Error ? e.message : String(e)}`);
  }
  return fail("stream ended without an exit status");
}
