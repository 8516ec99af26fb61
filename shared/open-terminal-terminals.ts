/**
 * `/api/terminals` of the Open Terminal family: its answers (`{"error": "…"}`, not `detail`, as
 * the reference's JSONResponses), its timestamps and the terminal WebSocket's control messages.
 */
import type { HttpReply } from "./open-terminal-errors.ts";

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

/** `POST /api/terminals`, `GET /api/terminals[/{id}]` items. */
export interface TerminalInfo {
  id: string;
  created_at: string;
  pid: number;
}

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
