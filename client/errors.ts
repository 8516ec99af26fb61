/**
 * The client's one error type. Every refusal the edge answers — in any API family's shape — and
 * every refused WebSocket becomes an EdgettyError with the HTTP status, the machine code and the
 * message, plus the family whose shape it came in and the body as sent.
 *
 *   terminal session API and admin  {"statusCode":404,"error":"Not Found","message":"…","code":"SESSION_NOT_FOUND"}
 *   Open Terminal API               {"detail":"…","code":"…"}, or 422 {"detail":[{type,loc,msg,input}],"code":"VALIDATION_ERROR"}
 *   terminals API, /api/terminals   {"error":"…","code":"…"}
 */

/** Which shape an error body had (`text` for a plain-text answer, `none` for none at all). */
export type ErrorFamily = "session" | "open-terminal" | "terminals" | "text" | "none" | "websocket";

/** Longest error body read, in bytes: an error page is never read whole. */
export const ERROR_BODY_MAX_BYTES = 64 * 1024; // 64 KiB

/** An answer of the edge that was not a success, or a WebSocket it refused. */
export class EdgettyError extends Error {
  override name = "EdgettyError";
  constructor(
    /** HTTP status (a refused WebSocket's status as documented for its close code; 0 when the network failed). */
    readonly status: number,
    /** Machine code: the body's `code`, else `HTTP_<status>` (or `WS_<close code>`, `NETWORK_ERROR`). */
    readonly code: string,
    message: string,
    /** The shape the body came in. */
    readonly family: ErrorFamily,
    /** The body as parsed (JSON) or read (text), or the close event's reason. */
    readonly body: unknown = null,
    /** For a WebSocket refused after the upgrade: its close code (4001, 4004…). */
    readonly closeCode?: number,
  ) {
    super(message);
  }
}

/** FastAPI 422 items joined into one line: `body.command: Field required; …`. */
function validationMessage(detail: unknown[]): string {
  return detail
    .map((item) => {
      const i = (item ?? {}) as { loc?: unknown; msg?: unknown };
      const loc = Array.isArray(i.loc) ? i.loc.join(".") : "";
      return `${loc ? `${loc}: ` : ""}${typeof i.msg === "string" ? i.msg : "invalid"}`;
    })
    .join("; ");
}

/** The EdgettyError for a parsed error body (any family's shape) with its HTTP status. */
export function errorFromBody(status: number, body: unknown, fallbackText = ""): EdgettyError {
  const fallbackCode = `HTTP_${status}`;
  if (typeof body === "object" && body !== null && !Array.isArray(body)) {
    const b = body as Record<string, unknown>;
    const code = typeof b["code"] === "string" ? b["code"] : fallbackCode;
    if (typeof b["statusCode"] === "number" && typeof b["message"] === "string") return new EdgettyError(status, code, b["message"], "session", body);
    if (typeof b["detail"] === "string") return new EdgettyError(status, code, b["detail"], "open-terminal", body);
    if (Array.isArray(b["detail"])) return new EdgettyError(status, code === fallbackCode ? "VALIDATION_ERROR" : code, validationMessage(b["detail"]), "open-terminal", body);
    if (typeof b["error"] === "string") return new EdgettyError(status, code, b["error"], "terminals", body);
  }
  const text = fallbackText.trim();
  return new EdgettyError(status, fallbackCode, text || `HTTP ${status}`, text ? "text" : "none", text || null);
}

/** Reads at most ERROR_BODY_MAX_BYTES of a body as text; the rest is cancelled. */
async function boundedText(response: Response): Promise<string> {
  if (!response.body) return "";
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let text = "";
  let bytes = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      bytes += value.byteLength;
      text += decoder.decode(value, { stream: true });
      if (bytes >= ERROR_BODY_MAX_BYTES) {
        await reader.cancel();
        break;
      }
    }
  } catch {
    // A body cut short still tells what it told so far.
  }
  return text + decoder.decode();
}

/** The EdgettyError for a non-success response; consumes (a bounded part of) its body. */
export async function errorFromResponse(response: Response): Promise<EdgettyError> {
  const text = await boundedText(response);
  let body: unknown = null;
  if (text) {
    try {
      body = JSON.parse(text);
    } catch {
      body = null;
    }
  }
  return errorFromBody(response.status, body, body === null ? text : "");
}

/** What a refused WebSocket's close code means, as an HTTP status and a code (docs/open-terminal.md). */
const CLOSE_CODES: Record<number, { status: number; code: string }> = {
  4001: { status: 401, code: "UNAUTHORIZED" },
  4003: { status: 403, code: "FORBIDDEN" },
  4004: { status: 404, code: "SESSION_NOT_FOUND" },
  4009: { status: 409, code: "TOO_MANY_CLIENTS" },
};

/** The EdgettyError for a WebSocket the edge closed with an application code before it was usable. */
export function errorFromClose(closeCode: number, reason: string): EdgettyError {
  const known = CLOSE_CODES[closeCode];
  return new EdgettyError(known?.status ?? 0, known?.code ?? `WS_${closeCode}`, reason || `WebSocket closed with ${closeCode}`, "websocket", reason, closeCode);
}
