/**
 * The exec relay: how the HostDO hands Open Terminal execute calls to the agent, and how answers
 * and NDJSON streams come back (see docs/open-terminal.md). Its messages ride the control link
 * (control.ts) as JSON text frames tagged `t: "exec.*"`, and share the control link's request ids
 * (one correlator per side), but have their own schemas here.
 *
 *   edge → agent  exec.req    {id, scope, session, user?, op}  one HTTP request, validated by the edge
 *   agent → edge  exec.res    {id, status, body} the HTTP answer, in the Open Terminal shape
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
 * working directory (set with `POST /files/cwd`); absent = "".
 */
import * as v from "valibot";
import {
  COMMAND_MAX_BYTES,
  CWD_MAX_CHARS,
  EXEC_ENV_VALUE_MAX_CHARS,
  EXECUTE_WAIT_MAX_SECONDS,
  INPUT_MAX_CHARS,
  OtCode,
  otError,
  parseExecuteRequest,
  parseInputRequest,
  parseKillQuery,
  parseStatusQuery,
} from "../open-terminal.ts";
import type { ExecuteCall, Parsed, StatusQuery } from "../open-terminal.ts";
import { SHORT_TEXT_MAX_CHARS } from "./client.ts";
import { RequestId } from "./codec.ts";
import { NULL_BODY_STATUSES } from "./tunnel.ts";

/** Unacknowledged exec.data bytes the agent may have in flight per stream. */
export const EXEC_STREAM_WINDOW_BYTES = 256 * 1024; // 256 KiB
/** Target size of one exec.data frame; lines are coalesced up to this. */
export const EXEC_STREAM_FRAME_BYTES = 32 * 1024; // 32 KiB
/** Longest exec.data text accepted, in characters (a frame, plus one oversized line, JSON-escaped). */
export const EXEC_DATA_MAX_CHARS = 4 << 20; // 4 Mi characters
/** Longest `scope`, in characters. */
export const EXEC_SCOPE_MAX_CHARS = 1024;
/**
 * Longest `user` (the caller's `X-User-Id`), in characters. Longer ones are cut: multi-user mode
 * only names the account after its first characters and hashes the whole id (in the scope).
 */
export const EXEC_USER_MAX_CHARS = 256;
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

// ---------------------------------------------------------------------------------------------
// Schemas (the agent trusts nothing it did not check itself; neither does the edge)

const noNul = (max: number) => v.pipe(v.string(), v.maxLength(max), v.check((s) => !s.includes("\0"), "contains NUL"));
const seconds = (max: number) => v.nullable(v.pipe(v.number(), v.finite(), v.minValue(0), v.maxValue(max)));
const countOrNull = (min: number) => v.nullable(v.pipe(v.number(), v.safeInteger(), v.minValue(min)));
const ProcessId = v.pipe(v.string(), v.maxLength(SHORT_TEXT_MAX_CHARS));

const EnvKey = v.pipe(v.string(), v.minLength(1), v.check((k) => !k.includes("=") && !k.includes("\0"), "not an environment name"));
const ExecSpecSchema = v.object({
  command: noNul(COMMAND_MAX_BYTES),
  cwd: v.nullable(noNul(CWD_MAX_CHARS)),
  env: v.nullable(v.record(EnvKey, noNul(EXEC_ENV_VALUE_MAX_CHARS))),
});

const ExecuteCallSchema = v.variant("mode", [
  v.object({ mode: v.picklist(["sync", "stream"]), spec: ExecSpecSchema, timeout: seconds(Infinity) }),
  v.object({ mode: v.literal("background"), spec: ExecSpecSchema, wait: seconds(EXECUTE_WAIT_MAX_SECONDS), tail: countOrNull(1) }),
]);

export const ExecOpSchema = v.variant("op", [
  v.object({ op: v.literal("execute"), call: ExecuteCallSchema }),
  v.object({ op: v.literal("list") }),
  v.object({
    op: v.literal("status"),
    id: ProcessId,
    query: v.object({ wait: seconds(EXECUTE_WAIT_MAX_SECONDS), offset: v.pipe(v.number(), v.safeInteger(), v.minValue(0)), tail: countOrNull(1) }),
  }),
  v.object({ op: v.literal("input"), id: ProcessId, input: v.pipe(v.string(), v.maxLength(INPUT_MAX_CHARS)) }),
  v.object({ op: v.literal("kill"), id: ProcessId, force: v.boolean() }),
]);

/** Edge → agent. */
export const ExecEdgeMsgSchema = v.variant("t", [
  v.object({
    t: v.literal("exec.req"),
    id: RequestId,
    scope: v.pipe(v.string(), v.maxLength(EXEC_SCOPE_MAX_CHARS)),
    session: v.optional(v.pipe(v.string(), v.maxLength(EXEC_SESSION_MAX_CHARS)), ""),
    /** The caller's `X-User-Id`, when it sent one (multi-user mode runs its commands as its account). */
    user: v.optional(noNul(EXEC_USER_MAX_CHARS)),
    op: ExecOpSchema,
  }),
  v.object({ t: v.literal("exec.ack"), id: RequestId, bytes: v.pipe(v.number(), v.safeInteger(), v.minValue(0)) }),
  v.object({ t: v.literal("exec.cancel"), id: RequestId }),
]);
export type ExecEdgeMsg = v.InferOutput<typeof ExecEdgeMsgSchema>;

/** An exec.res status: 200–599, and one an answer with a JSON body may have (not 204, 205 or 304). */
const ExecResStatus = v.pipe(
  v.number(),
  v.integer(),
  v.minValue(200),
  v.maxValue(599),
  v.check((status) => !NULL_BODY_STATUSES.has(status), "a status whose answer has no body"),
);

/** Agent → edge. */
export const ExecAgentMsgSchema = v.variant("t", [
  v.object({ t: v.literal("exec.res"), id: RequestId, status: ExecResStatus, body: v.optional(v.unknown(), null) }),
  v.object({ t: v.literal("exec.head"), id: RequestId }),
  v.object({ t: v.literal("exec.data"), id: RequestId, ndjson: v.pipe(v.string(), v.maxLength(EXEC_DATA_MAX_CHARS)) }),
  v.object({ t: v.literal("exec.end"), id: RequestId }),
]);
export type ExecAgentMsg = v.InferOutput<typeof ExecAgentMsgSchema>;

/** True for a JSON control message that belongs to the exec relay. */
export function isExecMessage(value: { t: string }): boolean {
  return value.t.startsWith("exec.");
}

// ---------------------------------------------------------------------------------------------
// HTTP → op (the edge validates every call before anything reaches an agent)

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
  const route = `${method} ${parts.length === 2 ? "" : parts[2]}`;
  if (route !== "DELETE " && route !== "GET status" && route !== "POST input") return null;
  // No process has an id this long (they are `YYYYMMDD-HHMMSS-xxxxxx`): the reference's 404, not a call.
  if (id.length > SHORT_TEXT_MAX_CHARS) return { ok: false, reply: otError(404, OtCode.PROCESS_NOT_FOUND, "Process not found") };
  if (route === "DELETE ") return map(parseKillQuery(params), ({ force }) => ({ op: "kill", id, force }));
  if (route === "GET status") return map(parseStatusQuery(params), (query) => ({ op: "status", id, query }));
  return map(parseInputRequest(bodyText), ({ input }) => ({ op: "input", id, input }));
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
  const wait = (s: number | null) => (s ?? 0) * 1000 + EXEC_REPLY_GRACE_MS;
  if (op.op === "status") return wait(op.query.wait);
  if (op.op !== "execute") return EXEC_REPLY_GRACE_MS;
  const { call } = op;
  if (call.mode === "background") return wait(call.wait);
  if (call.mode === "stream") return EXEC_REPLY_GRACE_MS;
  return call.timeout === null ? null : wait(call.timeout);
}
