/**
 * The Open Terminal API family (seed 004 = open-terminal v0.1.4, plus the later API Open WebUI
 * uses with terminal servers): request validation that answers in FastAPI's shapes, the response
 * types, the NDJSON stream encoding, `GET /api/config`, the terminal WebSocket's control messages
 * and the list of routes edgetty serves. The OpenAPI document lives in open-terminal-openapi.ts.
 *
 * How `POST /execute` picks its mode (the reference grew two incompatible answers on one route):
 * - `?stream=true`                 → NDJSON stream, v0.1.4 (`{"type":"stdout","data":…}` … `exit`).
 * - a `wait` or `tail` query key   → background model (`{id, command, status, …}`), even `wait=null`.
 * - neither                        → v0.1.4 synchronous run: waits up to `timeout` (default 30 s),
 *   answers `{exit_code, stdout, stderr}` plus the background fields, so either client is served.
 *
 * Imports neither runtime: the edge validates with it, the agent re-checks relayed calls with it.
 */

/** Longest `wait`, in seconds, for `POST /execute` and `GET /execute/{id}/status`. */
export const EXECUTE_WAIT_MAX_SECONDS = 300;
/** v0.1.4's default `timeout`, in seconds, for the synchronous mode. */
export const DEFAULT_EXEC_TIMEOUT_SECONDS = 30;
/** Longest command, in UTF-8 bytes: Linux's MAX_ARG_STRLEN (128 KiB) less the NUL. */
export const COMMAND_MAX_BYTES = 128 * 1024 - 1;
/** Longest `input` for `POST /execute/{id}/input`, in characters. */
export const INPUT_MAX_CHARS = 1 << 20; // 1 Mi characters
/** How long a terminal WebSocket may take to send its first-message auth (reference: 10 s). */
export const TERMINAL_WS_AUTH_TIMEOUT_MS = 10_000;
/** Terminal WebSockets one session holds while they authenticate; a newer one closes the oldest. */
export const TERMINAL_WS_PENDING_MAX = 16;
/**
 * Sessions `POST /api/terminals` may hold open per server (the reference's
 * OPEN_TERMINAL_MAX_SESSIONS default). Its sessions are ephemeral; the count covers every
 * ephemeral session of the server, whichever API opened it.
 */
export const OPEN_TERMINAL_MAX_SESSIONS = 16;

/** One output record of a background process. */
export interface OutputEntry {
  type: "stdout" | "stderr";
  data: string;
}

export type ProcessStatus = "running" | "done" | "killed";

/** An item of `GET /execute`. */
export interface ProcessSummary {
  id: string;
  command: string;
  status: ProcessStatus;
  exit_code: number | null;
}

/** `POST /execute?wait=` and `GET /execute/{id}/status`. */
export interface ProcessView extends ProcessSummary {
  output: OutputEntry[];
  truncated: boolean;
  next_offset: number;
}

/** `POST /execute` without `stream`/`wait`/`tail`: v0.1.4's fields plus the background view. */
export interface SyncExecResult extends ProcessView {
  exit_code: number;
  stdout: string;
  stderr: string;
}

/** One line of the `?stream=true` NDJSON body. */
export type StreamEvent = { type: "stdout" | "stderr"; data: string } | { type: "exit"; data: number };

/** `GET /api/config`. */
export interface ApiConfig {
  features: { terminal: boolean; notebooks: boolean; system: boolean };
}

/** `POST /api/terminals`, `GET /api/terminals[/{id}]` items. */
export interface TerminalInfo {
  id: string;
  created_at: string;
  pid: number;
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

/** One item of a FastAPI 422 `detail` list (pydantic v2's error, without `url`). */
export interface ValidationIssue {
  type: string;
  loc: (string | number)[];
  msg: string;
  input: unknown;
  ctx?: Record<string, unknown>;
}

/** An HTTP answer as data: the edge sends `body` as JSON with `status`. */
export interface HttpReply {
  status: number;
  body: unknown;
}

export type Parsed<T> = { ok: true; value: T } | { ok: false; reply: HttpReply };

/** Machine codes sent beside `detail` (DESIGN: FastAPI's shape "plus a `code`"). */
export const OtCode = {
  VALIDATION: "VALIDATION_ERROR",
  PROCESS_NOT_FOUND: "PROCESS_NOT_FOUND",
  PROCESS_EXITED: "PROCESS_EXITED",
  STDIN_CLOSED: "STDIN_CLOSED",
  STDIN_FULL: "STDIN_FULL",
  TOO_MANY_PROCESSES: "TOO_MANY_PROCESSES",
  CWD_NOT_FOUND: "CWD_NOT_FOUND",
  SPAWN_FAILED: "SPAWN_FAILED",
  TOO_MANY_REQUESTS: "TOO_MANY_REQUESTS",
  BAD_RELAY: "BAD_RELAY_MESSAGE",
  INTERNAL: "INTERNAL_ERROR",
} as const;

/** An error in this family's shape: `{"detail": "…", "code": "…"}`. */
export function otError(status: number, code: string, detail: string): HttpReply {
  return { status, body: { detail, code } };
}

/** A 422 with FastAPI's list-shaped `detail`. */
export function validationError(issues: ValidationIssue[]): HttpReply {
  return { status: 422, body: { detail: issues, code: OtCode.VALIDATION } };
}

// ---------------------------------------------------------------------------------------------
// Field checks, pydantic v2 lax mode (the reference's models and Query parameters)

type Issues = ValidationIssue[];
type Loc = (string | number)[];

/**
 * Query parameters as FastAPI sees them: the last value of a repeated key wins, and the
 * reference's middleware drops any parameter whose value is the literal `null`.
 */
export function queryView(params: URLSearchParams): Map<string, string> {
  const out = new Map<string, string>();
  for (const [k, v] of params) {
    if (v.toLowerCase() === "null") out.delete(k);
    else out.set(k, v);
  }
  return out;
}

const BOOL_TRUE = new Set(["1", "on", "t", "true", "y", "yes"]);
const BOOL_FALSE = new Set(["0", "off", "f", "false", "n", "no"]);
const NUMBER_RE = /^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i;
const INT_RE = /^[+-]?\d+$/;

function queryBool(q: Map<string, string>, name: string, issues: Issues): boolean {
  const raw = q.get(name);
  if (raw === undefined) return false;
  const v = raw.trim().toLowerCase();
  if (BOOL_TRUE.has(v)) return true;
  if (!BOOL_FALSE.has(v)) {
    issues.push({ type: "bool_parsing", loc: ["query", name], msg: "Input should be a valid boolean, unable to interpret input", input: raw });
  }
  return false;
}

function bounds(value: number, raw: unknown, loc: Loc, issues: Issues, ge?: number, le?: number): boolean {
  if (ge !== undefined && !(value >= ge)) {
    issues.push({ type: "greater_than_equal", loc, msg: `Input should be greater than or equal to ${ge}`, input: raw, ctx: { ge } });
    return false;
  }
  if (le !== undefined && !(value <= le)) {
    issues.push({ type: "less_than_equal", loc, msg: `Input should be less than or equal to ${le}`, input: raw, ctx: { le } });
    return false;
  }
  return true;
}

/** A float from a JSON value or query string; undefined/null → null. */
function laxFloat(raw: unknown, loc: Loc, issues: Issues, ge?: number, le?: number): number | null {
  if (raw === undefined || raw === null) return null;
  let value: number;
  if (typeof raw === "number") value = raw;
  else if (typeof raw === "boolean") value = raw ? 1 : 0;
  else if (typeof raw === "string" && NUMBER_RE.test(raw.trim())) value = Number(raw.trim());
  else {
    const parsing = typeof raw === "string";
    issues.push({
      type: parsing ? "float_parsing" : "float_type",
      loc,
      msg: parsing ? "Input should be a valid number, unable to parse string as a number" : "Input should be a valid number",
      input: raw,
    });
    return null;
  }
  if (!Number.isFinite(value)) {
    issues.push({ type: "finite_number", loc, msg: "Input should be a finite number", input: raw });
    return null;
  }
  return bounds(value, raw, loc, issues, ge, le) ? value : null;
}

function queryInt(raw: string | undefined, loc: Loc, issues: Issues, ge: number): number | null {
  if (raw === undefined) return null;
  const v = raw.trim();
  if (!INT_RE.test(v)) {
    issues.push({ type: "int_parsing", loc, msg: "Input should be a valid integer, unable to parse string as an integer", input: raw });
    return null;
  }
  const value = Number(v);
  return bounds(value, raw, loc, issues, ge) ? value : null;
}

function hasNul(s: string): boolean {
  return s.includes("\0");
}

/** A too-long string; the echoed `input` is cut short so the error stays small. */
function tooLong(loc: Loc, value: string, max: number, unit: string): ValidationIssue {
  return { type: "string_too_long", loc, msg: `String should have at most ${max} ${unit}`, input: value.slice(0, 64), ctx: { max_length: max } };
}

function nulIssue(loc: Loc, input: unknown): ValidationIssue {
  return { type: "value_error", loc, msg: "Value error, must not contain NUL characters", input, ctx: { error: "embedded null byte" } };
}

function str(obj: Record<string, unknown>, key: string, issues: Issues, required: boolean): string | null {
  const raw = obj[key];
  if (raw === undefined || (raw === null && !required)) {
    if (required) issues.push({ type: "missing", loc: ["body", key], msg: "Field required", input: obj });
    return null;
  }
  if (typeof raw !== "string") {
    issues.push({ type: "string_type", loc: ["body", key], msg: "Input should be a valid string", input: raw });
    return null;
  }
  return raw;
}

/** UTF-8 length of `s` without allocating. */
export function utf8Length(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length && (s.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      n += 4;
      i++;
    } else n += 3;
  }
  return n;
}

function envDict(raw: unknown, issues: Issues): Record<string, string> | null {
  if (raw === undefined || raw === null) return null;
  if (typeof raw !== "object" || Array.isArray(raw)) {
    issues.push({ type: "dict_type", loc: ["body", "env"], msg: "Input should be a valid dictionary", input: raw });
    return null;
  }
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(raw as Record<string, unknown>)) {
    if (typeof v !== "string") {
      issues.push({ type: "string_type", loc: ["body", "env", k], msg: "Input should be a valid string", input: v });
    } else if (k === "" || k.includes("=") || hasNul(k) || hasNul(v)) {
      const msg = "Value error, illegal environment variable name or value";
      issues.push({ type: "value_error", loc: ["body", "env", k], msg, input: v, ctx: { error: "illegal environment variable" } });
    } else env[k] = v;
  }
  return env;
}

/** Parses a JSON request body; a missing or malformed body is a 422 issue as in FastAPI. */
export function parseJsonBody(text: string | null, issues: Issues): Record<string, unknown> | null {
  if (text === null || text.trim() === "") {
    issues.push({ type: "missing", loc: ["body"], msg: "Field required", input: null });
    return null;
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    const message = e instanceof Error ? e.message : "Invalid JSON";
    const at = /position (\d+)/.exec(message);
    issues.push({ type: "json_invalid", loc: ["body", at ? Number(at[1]) : 0], msg: "JSON decode error", input: {}, ctx: { error: message } });
    return null;
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    issues.push({ type: "model_attributes_type", loc: ["body"], msg: "Input should be a valid dictionary or object to extract fields from", input: value });
    return null;
  }
  return value as Record<string, unknown>;
}

function done<T>(issues: Issues, value: () => T): Parsed<T> {
  return issues.length > 0 ? { ok: false, reply: validationError(issues) } : { ok: true, value: value() };
}

// ---------------------------------------------------------------------------------------------
// Requests

/** `POST /execute`: query (`stream`, `wait`, `tail`) and JSON body (`command`, `cwd`, `env`, `timeout`). */
export function parseExecuteRequest(params: URLSearchParams, bodyText: string | null): Parsed<ExecuteCall> {
  const issues: Issues = [];
  const q = queryView(params);
  const stream = queryBool(q, "stream", issues);
  const wait = laxFloat(q.get("wait"), ["query", "wait"], issues, 0, EXECUTE_WAIT_MAX_SECONDS);
  const tail = queryInt(q.get("tail"), ["query", "tail"], issues, 1);
  const background = params.has("wait") || params.has("tail");

  const body = parseJsonBody(bodyText, issues);
  let spec: ExecSpec | null = null;
  let timeout: number | null = null;
  let timeoutGiven = false;
  if (body) {
    const command = str(body, "command", issues, true);
    if (command !== null && utf8Length(command) > COMMAND_MAX_BYTES) {
      issues.push(tooLong(["body", "command"], command, COMMAND_MAX_BYTES, "bytes"));
    } else if (command !== null && hasNul(command)) issues.push(nulIssue(["body", "command"], command));
    const cwd = str(body, "cwd", issues, false);
    if (cwd !== null && hasNul(cwd)) issues.push(nulIssue(["body", "cwd"], cwd));
    const env = envDict(body.env, issues);
    timeoutGiven = "timeout" in body;
    timeout = timeoutGiven ? laxFloat(body.timeout, ["body", "timeout"], issues, 0) : DEFAULT_EXEC_TIMEOUT_SECONDS;
    if (command !== null) spec = { command, cwd, env };
  }
  return done(issues, (): ExecuteCall => {
    const s = spec!;
    // v0.1.4's stream ignored `timeout`; edgetty honours one only when the caller sent it.
    if (stream) return { mode: "stream", spec: s, timeout: timeoutGiven ? timeout : null };
    if (background) return { mode: "background", spec: s, wait, tail };
    return { mode: "sync", spec: s, timeout };
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
  if (input !== null && input.length > INPUT_MAX_CHARS) {
    issues.push(tooLong(["body", "input"], input, INPUT_MAX_CHARS, "characters"));
  }
  return done(issues, () => ({ input: input! }));
}

/** `DELETE /execute/{id}`: `force` (default false → SIGTERM; true → SIGKILL). */
export function parseKillQuery(params: URLSearchParams): Parsed<{ force: boolean }> {
  const issues: Issues = [];
  const force = queryBool(queryView(params), "force", issues);
  return done(issues, () => ({ force }));
}

// ---------------------------------------------------------------------------------------------
// Responses

/** The media type of the `?stream=true` body. */
export const NDJSON_CONTENT_TYPE = "application/x-ndjson";

/**
 * One NDJSON line exactly as the reference writes it: Python's `json.dumps` with its default
 * `", "`/`": "` separators and `ensure_ascii` (non-ASCII as lowercase `\uXXXX`), then `\n`.
 * The result is pure ASCII, so its length is its byte count.
 */
export function ndjsonLine(event: StreamEvent): string {
  const data = typeof event.data === "number" ? String(event.data) : pyJsonString(event.data);
  return `{"type": "${event.type}", "data": ${data}}\n`;
}

/** A JSON string literal with every non-ASCII UTF-16 unit escaped, as Python's `ensure_ascii`. */
export function pyJsonString(s: string): string {
  return JSON.stringify(s).replace(/[\u007f-\uffff]/g, (c) => {
    const code = c.charCodeAt(0);
    return code === 0x7f ? c : `\\u${code.toString(16).padStart(4, "0")}`;
  });
}

/**
 * A number as Python's `str(float)` prints it (`30` → `30.0`), for v0.1.4's timeout message
 * `Command timed out after 30.0s`.
 */
export function pyFloat(n: number): string {
  if (!Number.isFinite(n)) return Number.isNaN(n) ? "nan" : n > 0 ? "inf" : "-inf";
  const [mantissa, exp] = n.toExponential().split("e") as [string, string];
  const e = Number(exp);
  if (e < -4 || e >= 16) return `${mantissa}e${e < 0 ? "-" : "+"}${String(Math.abs(e)).padStart(2, "0")}`;
  const fixed = String(n);
  return fixed.includes(".") ? fixed : `${fixed}.0`;
}

/** v0.1.4's stderr when a command exceeded its timeout. */
export function timeoutMessage(seconds: number): string {
  return `Command timed out after ${pyFloat(seconds)}s`;
}

/** `GET /health` (no auth). */
export function healthBody(): { status: "ok" } {
  return { status: "ok" };
}

/**
 * `GET /api/config` (no auth in the reference): feature flags for client-side discovery.
 * edgetty serves interactive terminals; it has no notebooks and no `/system` prompt endpoint.
 */
export function apiConfig(opts: { terminal?: boolean } = {}): ApiConfig {
  return { features: { terminal: opts.terminal ?? true, notebooks: false, system: false } };
}

// ---------------------------------------------------------------------------------------------
// /api/terminals (answers `{"error": "…"}`, not `detail`, as the reference's JSONResponses do)

/** A terminal-route error in the reference's shape, e.g. 404 `{"error":"Session not found"}`. */
export function terminalError(status: number, error: string): HttpReply {
  return { status, body: { error } };
}

/**
 * A terminal's `created_at` as the reference writes it (`datetime.utcnow().isoformat() + "Z"`):
 * microseconds, or no fraction at all when they are zero.
 */
export function pyIsoUtc(date: Date): string {
  const iso = date.toISOString(); // YYYY-MM-DDTHH:MM:SS.mmmZ
  const ms = date.getUTCMilliseconds();
  return ms === 0 ? `${iso.slice(0, 19)}Z` : `${iso.slice(0, 23)}000Z`;
}

/** Close codes and reasons of the terminal WebSocket `/api/terminals/{id}`. */
export const TerminalWsClose = {
  INVALID_KEY: { code: 4001, reason: "Invalid API key" },
  AUTH_TIMEOUT: { code: 4001, reason: "Auth timeout or invalid payload" },
  NOT_FOUND: { code: 4004, reason: "Session not found" },
  ENDED: { code: 4004, reason: "Session has ended" },
  ALREADY_CONNECTED: { code: 4009, reason: "Session already connected" },
} as const;

/** A text frame on the terminal WebSocket: first-message auth, or a resize. */
export type TerminalWsText = { type: "auth"; token: string } | { type: "resize"; cols: number; rows: number };

/**
 * Reads a text frame of the terminal WebSocket; null when it is neither auth nor resize (the
 * reference ignores those). Resize defaults to 80×24 for missing fields, as the reference does.
 */
export function parseTerminalWsText(text: string): TerminalWsText | null {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return null;
  }
  if (typeof v !== "object" || v === null) return null;
  const o = v as Record<string, unknown>;
  if (o.type === "auth") return { type: "auth", token: typeof o.token === "string" ? o.token : "" };
  if (o.type !== "resize") return null;
  const size = (x: unknown, fallback: number) => (Number.isInteger(x) && (x as number) >= 1 && (x as number) <= 1000 ? (x as number) : fallback);
  return { type: "resize", cols: size(o.cols ?? 80, 80), rows: size(o.rows ?? 24, 24) };
}

// ---------------------------------------------------------------------------------------------
// Routes

/** One route of this family; `auth: false` routes answer without a bearer token. */
export interface OtRoute {
  method: "GET" | "POST" | "DELETE";
  path: string;
  auth: boolean;
  websocket?: true;
}

/**
 * Every route edgetty serves for the Open Terminal family (top level for the default server,
 * and under `/api/v1/terminals/{server_id}/` for any server). The router and the OpenAPI
 * document both follow this list; a test holds them together.
 */
export const OPEN_TERMINAL_ROUTES: readonly OtRoute[] = [
  { method: "GET", path: "/health", auth: false },
  { method: "GET", path: "/api/config", auth: false },
  { method: "GET", path: "/openapi.json", auth: false },
  { method: "GET", path: "/execute", auth: true },
  { method: "POST", path: "/execute", auth: true },
  { method: "GET", path: "/execute/{process_id}/status", auth: true },
  { method: "POST", path: "/execute/{process_id}/input", auth: true },
  { method: "DELETE", path: "/execute/{process_id}", auth: true },
  { method: "POST", path: "/api/terminals", auth: true },
  { method: "GET", path: "/api/terminals", auth: true },
  { method: "GET", path: "/api/terminals/{session_id}", auth: true },
  { method: "DELETE", path: "/api/terminals/{session_id}", auth: true },
  // First-message auth ({"type":"auth","token":…}), not a header.
  { method: "GET", path: "/api/terminals/{session_id}", auth: false, websocket: true },
];

// The document is built in its own module; it reads this one's constants only when called.
export { openApiDocument, type OpenApiOptions } from "./open-terminal-openapi.ts";
