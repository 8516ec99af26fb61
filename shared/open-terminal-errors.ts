/**
 * Error shapes of the Open Terminal family: FastAPI's `{"detail": "…"}` plus a machine `code`,
 * pydantic v2's list-shaped 422, and an HTTP answer as data (`HttpReply`) so the edge and the
 * agent can pass answers around without a runtime's Response type.
 */

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

/** A validated value, or the 422 (or other answer) to send instead. */
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
  NOT_FOUND: "NOT_FOUND",
  METHOD_NOT_ALLOWED: "METHOD_NOT_ALLOWED",
  BAD_REQUEST: "BAD_REQUEST",
  FORBIDDEN: "FORBIDDEN",
  CONFLICT: "CONFLICT",
  UNSUPPORTED_MEDIA: "UNSUPPORTED_MEDIA_TYPE",
  BAD_GATEWAY: "BAD_GATEWAY",
  GATEWAY_TIMEOUT: "GATEWAY_TIMEOUT",
  TOO_LARGE: "BODY_TOO_LARGE",
} as const;

/** FastAPI's 400 `detail` for a body it cannot decode (a JSON body is UTF-8: RFC 8259). */
export const BODY_NOT_UTF8 = "There was an error parsing the body";

/** An error in this family's shape: `{"detail": "…", "code": "…"}`. */
export function otError(status: number, code: string, detail: string): HttpReply {
  return { status, body: { detail, code } };
}

/** FastAPI's answer for a path nobody serves (404) or serves for other methods only (405), with its code. */
export function noRouteReply(status: 404 | 405): HttpReply {
  return status === 404 ? otError(404, OtCode.NOT_FOUND, "Not Found") : otError(405, OtCode.METHOD_NOT_ALLOWED, "Method Not Allowed");
}

/**
 * Levels of a refused value echoed in a 422's `input`; deeper arrays and objects are cut to "…".
 * A body nested thousands deep is valid JSON, and serializing it whole in its own error would
 * overflow the stack (a 500) instead of answering the 422.
 */
export const ECHO_DEPTH_MAX = 32;

/** `value` as a 422 may echo it: containers deeper than ECHO_DEPTH_MAX levels cut to "…". */
function echoable(value: unknown, depth = 0): unknown {
  if (value === null || typeof value !== "object") return value;
  if (depth >= ECHO_DEPTH_MAX) return "…";
  if (Array.isArray(value)) return value.map((v) => echoable(v, depth + 1));
  return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, echoable(v, depth + 1)]));
}

/** A 422 with FastAPI's list-shaped `detail`, each refused `input` echoed to at most ECHO_DEPTH_MAX levels. */
export function validationError(issues: ValidationIssue[]): HttpReply {
  return { status: 422, body: { detail: issues.map((i) => ({ ...i, input: echoable(i.input) })), code: OtCode.VALIDATION } };
}
