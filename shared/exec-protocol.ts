/**
 * The /execute relay: how the HostDO hands Open Terminal execute calls to the agent over the
 * control WebSocket, and how answers and NDJSON streams come back. JSON text frames, one message
 * per frame, each tagged `t: "exec.*"` so they sit beside the control link's other messages.
 *
 *   edge → agent  exec.req    {rid, scope, op}   one HTTP request, already validated by the edge
 *   agent → edge  exec.res    {rid, status, body} the HTTP answer, in the Open Terminal shape
 *
 * A stream (`POST /execute?stream=true`) answers instead with exec.head (send 200 and the NDJSON
 * headers), then exec.data frames whose `ndjson` text goes into the body verbatim, then exec.end.
 * Flow control: the agent keeps at most EXEC_STREAM_WINDOW_BYTES of exec.data unacknowledged;
 * the edge sends exec.ack {bytes} once it has written a frame into the response, so a slow HTTP
 * reader pauses the command's pipes instead of growing buffers. exec.cancel (the HTTP client went
 * away) kills a stream's process group and ends any wait early.
 *
 * `scope` partitions background processes: a process is visible only to requests with the same
 * scope (the edge derives it from the authenticated principal and the `X-User-Id` header).
 * `session` is the caller's `X-Session-Id`: relative `cwd`s resolve against that session's
 * working directory (set with `POST /files/cwd`).
 */
import {
  EXECUTE_WAIT_MAX_SECONDS,
  parseExecuteRequest,
  parseInputRequest,
  parseKillQuery,
  parseStatusQuery,
} from "./open-terminal.ts";
import type { ExecuteCall, ExecSpec, Parsed, StatusQuery } from "./open-terminal.ts";

/** Unacknowledged exec.data bytes the agent may have in flight per stream. */
export const EXEC_STREAM_WINDOW_BYTES = 256 * 1024; // 256 KiB
/** Target size of one exec.data frame; lines are coalesced up to this. */
export const EXEC_STREAM_FRAME_BYTES = 32 * 1024; // 32 KiB
/** Longest `scope`, in characters. */
export const EXEC_SCOPE_MAX_CHARS = 1024;
/** Longest `session` (the caller's `X-Session-Id`), in characters. */
export const EXEC_SESSION_MAX_CHARS = 256;
/** Extra time, past the call's own wait or timeout, before the edge gives up on an exec.res. */
export const EXEC_REPLY_GRACE_MS = 15_000;

/** One execute API call, transport-free. */
export type ExecOp =
  | { op: "execute"; call: ExecuteCall }
  | { op: "list" }
  | { op: "status"; id: string; query: StatusQuery }
  | { op: "input"; id: string; input: string }
  | { op: "kill"; id: string; force: boolean };

/** Edge → agent. */
export type ExecEdgeMsg =
  | { t: "exec.req"; rid: number; scope: string; session?: string; op: ExecOp }
  | { t: "exec.ack"; rid: number; bytes: number }
  | { t: "exec.cancel"; rid: number };

/** Agent → edge. */
export type ExecAgentMsg =
  | { t: "exec.res"; rid: number; status: number; body: unknown }
  | { t: "exec.head"; rid: number }
  | { t: "exec.data"; rid: number; ndjson: string }
  | { t: "exec.end"; rid: number };

/**
 * Maps an HTTP request of the execute routes (path relative to the family's mount, e.g.
 * `/execute/abc/status`) to its op, or to the 422 to answer. Null when the route is not one of
 * the execute routes (the caller answers 404/405 as for any unknown route).
 */
export function parseExecHttp(method: string, path: string, params: URLSearchParams, bodyText: string | null): Parsed<ExecOp> | null {
  const parts = path.split("/").filter((p) => p !== "");
  if (parts[0] !== "execute" || parts.length > 3) return null;
  const map = <T, R>(p: Parsed<T>, f: (v: T) => R): Parsed<R> => (p.ok ? { ok: true, value: f(p.value) } : p);
  if (parts.length === 1) {
    if (method === "GET") return { ok: true, value: { op: "list" } };
    if (method === "POST") return map(parseExecuteRequest(params, bodyText), (call) => ({ op: "execute", call }));
    return null;
  }
  let id: string;
  try {
    id = decodeURIComponent(parts[1]!);
  } catch {
    id = parts[1]!;
  }
  if (parts.length === 2 && method === "DELETE") return map(parseKillQuery(params), ({ force }) => ({ op: "kill", id, force }));
  if (parts.length === 3 && parts[2] === "status" && method === "GET") return map(parseStatusQuery(params), (query) => ({ op: "status", id, query }));
  if (parts.length === 3 && parts[2] === "input" && method === "POST") return map(parseInputRequest(bodyText), ({ input }) => ({ op: "input", id, input }));
  return null;
}

/** True when the op answers with a stream (exec.head, exec.data…, exec.end) instead of exec.res. */
export function isStreamOp(op: ExecOp): boolean {
  return op.op === "execute" && op.call.mode === "stream";
}

/**
 * How long the edge should wait for exec.res (or exec.head) before answering 504 itself, in ms;
 * null when the call may legitimately run forever (a synchronous run with `timeout: null`).
 */
export function replyDeadlineMs(op: ExecOp): number | null {
  const seconds = (s: number | null) => (s ?? 0) * 1000 + EXEC_REPLY_GRACE_MS;
  if (op.op === "status") return seconds(op.query.wait);
  if (op.op !== "execute") return EXEC_REPLY_GRACE_MS;
  const { call } = op;
  if (call.mode === "background") return seconds(call.wait);
  if (call.mode === "stream") return EXEC_REPLY_GRACE_MS;
  return call.timeout === null ? null : seconds(call.timeout);
}

// ---------------------------------------------------------------------------------------------
// Checking what arrives (the agent trusts nothing it did not parse itself)

const isObj = (x: unknown): x is Record<string, unknown> => typeof x === "object" && x !== null && !Array.isArray(x);
const isRid = (x: unknown): x is number => Number.isSafeInteger(x) && (x as number) >= 0;
const isNum = (x: unknown, min: number, max = Infinity): x is number => typeof x === "number" && Number.isFinite(x) && x >= min && x <= max;
const isNumOrNull = (x: unknown, min: number, max = Infinity): x is number | null => x === null || isNum(x, min, max);
const isIntOrNull = (x: unknown, min: number): x is number | null => x === null || (Number.isSafeInteger(x) && (x as number) >= min);
const isStr = (x: unknown): x is string => typeof x === "string";

function checkSpec(x: unknown): x is ExecSpec {
  if (!isObj(x) || !isStr(x.command) || x.command.includes("\0")) return false;
  if (x.cwd !== null && (!isStr(x.cwd) || x.cwd.includes("\0"))) return false;
  if (x.env === null) return true;
  if (!isObj(x.env)) return false;
  return Object.entries(x.env).every(([k, v]) => isStr(v) && k !== "" && !k.includes("=") && !k.includes("\0") && !v.includes("\0"));
}

function checkCall(x: unknown): x is ExecuteCall {
  if (!isObj(x) || !checkSpec(x.spec)) return false;
  if (x.mode === "sync" || x.mode === "stream") return isNumOrNull(x.timeout, 0);
  if (x.mode === "background") return isNumOrNull(x.wait, 0, EXECUTE_WAIT_MAX_SECONDS) && isIntOrNull(x.tail, 1);
  return false;
}

function checkOp(x: unknown): x is ExecOp {
  if (!isObj(x)) return false;
  switch (x.op) {
    case "execute":
      return checkCall(x.call);
    case "list":
      return true;
    case "status": {
      const q = x.query;
      if (!isStr(x.id) || !isObj(q)) return false;
      return isNumOrNull(q.wait, 0, EXECUTE_WAIT_MAX_SECONDS) && isIntOrNull(q.offset, 0) && q.offset !== null && isIntOrNull(q.tail, 1);
    }
    case "input":
      return isStr(x.id) && isStr(x.input);
    case "kill":
      return isStr(x.id) && typeof x.force === "boolean";
    default:
      return false;
  }
}

/**
 * Checks a decoded control frame that claims to be an exec message. Returns the message, or a
 * reason string when it is malformed (with the `rid` to answer, when one could be read).
 */
export function checkExecEdgeMsg(x: unknown): ExecEdgeMsg | { error: string; rid: number | null } {
  if (!isObj(x) || !isRid(x.rid)) return { error: "exec message without a valid rid", rid: null };
  const rid = x.rid;
  switch (x.t) {
    case "exec.req":
      if (!isStr(x.scope) || x.scope.length > EXEC_SCOPE_MAX_CHARS) return { error: "exec.req scope must be a short string", rid };
      if (x.session !== undefined && (!isStr(x.session) || x.session.length > EXEC_SESSION_MAX_CHARS)) return { error: "exec.req session must be a short string", rid };
      if (!checkOp(x.op)) return { error: "exec.req op is malformed", rid };
      return { t: "exec.req", rid, scope: x.scope, session: x.session ?? "", op: x.op };
    case "exec.ack":
      return isNum(x.bytes, 0) ? { t: "exec.ack", rid, bytes: x.bytes } : { error: "exec.ack bytes must be a number", rid };
    case "exec.cancel":
      return { t: "exec.cancel", rid };
    default:
      return { error: `unknown exec message type ${JSON.stringify(x.t)}`, rid };
  }
}
