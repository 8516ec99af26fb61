/**
 * The client WebSocket protocol of `/api/v1/terminal/ws` (see docs/protocol.md).
 *
 * Every binary frame is one type byte followed by its payload. Client → edge and edge → client
 * use the same byte values with different meanings, so each direction has its own type and codec.
 * This module imports neither runtime: the edge, the agent, the CLI and the browser all use it.
 */

/** Client → edge frame types. */
export const ClientOp = {
  INPUT: 0x00,
  RESIZE: 0x01,
  PAUSE: 0x02,
  RESUME: 0x03,
  PING: 0x04,
} as const;

/** Edge → client frame types. */
export const ServerOp = {
  OUTPUT: 0x00,
  TITLE: 0x01,
  INFO: 0x02,
  EXIT: 0x03,
  PONG: 0x04,
  ERROR: 0x05,
} as const;

/** Largest terminal size accepted in either dimension, in cells. */
export const MAX_TERMINAL_CELLS = 1000;

export interface TerminalSize {
  cols: number;
  rows: number;
}

/** Session facts sent in INFO as the first frame a client receives. */
export interface SessionInfo {
  server_id: string;
  terminal_id: number;
  shell: string;
  cwd: string;
  cols: number;
  rows: number;
  readonly: boolean;
  clients: number;
  started_at: string;
  ephemeral: boolean;
  agent_online: boolean;
  title?: string;
}

export interface ExitInfo {
  exit_code: number;
  signal: number;
  /** Why the session ended, when that was a failure (an SSH login refused…): clients get it as ERROR first. */
  error?: ErrorInfo;
}

export interface ErrorInfo {
  code: string;
  message: string;
}

/** A decoded client → edge frame. */
export type ClientFrame =
  | { t: "input"; data: Uint8Array }
  | { t: "resize"; size: TerminalSize }
  | { t: "pause" }
  | { t: "resume" }
  | { t: "ping"; data: Uint8Array };

/** A decoded edge → client frame. */
export type ServerFrame =
  | { t: "output"; data: Uint8Array }
  | { t: "title"; title: string }
  | { t: "info"; info: SessionInfo }
  | { t: "exit"; exit: ExitInfo }
  | { t: "pong"; data: Uint8Array }
  | { t: "error"; error: ErrorInfo };

/** Thrown for a frame that cannot be decoded; the message says why. */
export class ProtocolError extends Error {
  override name = "ProtocolError";
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** One type byte followed by `payload`. */
export function frame(op: number, payload: Uint8Array = new Uint8Array(0)): Uint8Array {
  const out = new Uint8Array(1 + payload.byteLength);
  out[0] = op;
  out.set(payload, 1);
  return out;
}

/** One type byte followed by `value` as JSON. */
export function jsonFrame(op: number, value: unknown): Uint8Array {
  return frame(op, encoder.encode(JSON.stringify(value)));
}

/** The JSON in a frame's payload; `Err` (a ProtocolError by default) says which frame was bad. */
export function parseJson(payload: Uint8Array, what: string, Err: new (message: string) => Error = ProtocolError): unknown {
  try {
    return JSON.parse(decoder.decode(payload));
  } catch {
    throw new Err(`${what} payload is not JSON`);
  }
}

/** Validates a terminal size from untrusted input; returns null when it is not one. */
export function parseSize(value: unknown): TerminalSize | null {
  if (typeof value !== "object" || value === null) return null;
  const { cols, rows } = value as Record<string, unknown>;
  const ok = (n: unknown): n is number =>
    typeof n === "number" && Number.isInteger(n) && n >= 1 && n <= MAX_TERMINAL_CELLS;
  return ok(cols) && ok(rows) ? { cols, rows } : null;
}

export function encodeClientFrame(f: ClientFrame): Uint8Array {
  switch (f.t) {
    case "input":
      return frame(ClientOp.INPUT, f.data);
    case "resize":
      return jsonFrame(ClientOp.RESIZE, f.size);
    case "pause":
      return frame(ClientOp.PAUSE);
    case "resume":
      return frame(ClientOp.RESUME);
    case "ping":
      return frame(ClientOp.PING, f.data);
  }
}

export function decodeClientFrame(bytes: Uint8Array): ClientFrame {
  if (bytes.byteLength === 0) throw new ProtocolError("empty frame");
  const payload = bytes.subarray(1);
  switch (bytes[0]) {
    case ClientOp.INPUT:
      return { t: "input", data: payload };
    case ClientOp.RESIZE: {
      const size = parseSize(parseJson(payload, "RESIZE"));
      if (!size) throw new ProtocolError(`RESIZE needs integer cols and rows in 1..${MAX_TERMINAL_CELLS}`);
      return { t: "resize", size };
    }
    case ClientOp.PAUSE:
      return { t: "pause" };
    case ClientOp.RESUME:
      return { t: "resume" };
    case ClientOp.PING:
      return { t: "ping", data: payload };
    default:
      throw new ProtocolError(`unknown client frame type 0x${bytes[0]!.toString(16).padStart(2, "0")}`);
  }
}

export function encodeServerFrame(f: ServerFrame): Uint8Array {
  switch (f.t) {
    case "output":
      return frame(ServerOp.OUTPUT, f.data);
    case "title":
      return frame(ServerOp.TITLE, encoder.encode(f.title));
    case "info":
      return jsonFrame(ServerOp.INFO, f.info);
    case "exit":
      return jsonFrame(ServerOp.EXIT, f.exit);
    case "pong":
      return frame(ServerOp.PONG, f.data);
    case "error":
      return jsonFrame(ServerOp.ERROR, f.error);
  }
}

export function decodeServerFrame(bytes: Uint8Array): ServerFrame {
  if (bytes.byteLength === 0) throw new ProtocolError("empty frame");
  const payload = bytes.subarray(1);
  switch (bytes[0]) {
    case ServerOp.OUTPUT:
      return { t: "output", data: payload };
    case ServerOp.TITLE:
      return { t: "title", title: decoder.decode(payload) };
    case ServerOp.INFO:
      return { t: "info", info: parseJson(payload, "INFO") as SessionInfo };
    case ServerOp.EXIT:
      return { t: "exit", exit: parseJson(payload, "EXIT") as ExitInfo };
    case ServerOp.PONG:
      return { t: "pong", data: payload };
    case ServerOp.ERROR:
      return { t: "error", error: parseJson(payload, "ERROR") as ErrorInfo };
    default:
      throw new ProtocolError(`unknown server frame type 0x${bytes[0]!.toString(16).padStart(2, "0")}`);
  }
}
