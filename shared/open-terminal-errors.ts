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
  BAD_REQUEST: "BAD_REQUEST",
  FORBIDDEN: "FORBIDDEN",
  CONFLICT: "CONFLICT",
  UNSUPPORTED_MEDIA: "UNSUPPORTED_MEDIA_TYPE",
  BAD_GATEWAY: "BAD_GATEWAY",
  GATEWAY_TIMEOUT: "GATEWAY_TIMEOUT",
  TOO_LARGE: "BODY_TOO_LARGE",
} as const;

/** An error in this family's shape: `{"detail": "…", "code": "…"}`. */
export function otError(status: number, code: string, detail: string): HttpReply {
  return { status, body: { detail, code } };
}

/** A 422 with FastAPI's list-shaped `detail`. */
export function validationError(issues: ValidationIssue[]): HttpReply {
  return { status: 422, body: { detail: issues, code: OtCode.VALIDATION } };
}
