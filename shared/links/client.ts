/**
 * The client link: a browser, CLI or SDK ⇄ TerminalDO over `/api/v1/terminal/ws` (see
 * docs/protocol.md, "Client link").
 *
 * Every binary frame is one type byte followed by its payload. Client → edge and edge → client
 * use the same byte values with different meanings, so each direction has its own type and codec.
 * INPUT and OUTPUT are the hot path: their payload is raw bytes, never parsed. The JSON frames
 * (RESIZE, INFO, EXIT, ERROR) are checked field by field; a refused frame throws LinkDecodeError.
 */
import * as v from "valibot";
import { decodeWith, frame, jsonFrame, LinkDecodeError, parseJson, typedFrameDecoder, utf8 } from "./codec.ts";

export { frame, jsonFrame, LinkDecodeError } from "./codec.ts";

/** Client → edge frame types. */
export const ClientOp = {
  INPUT: 0x00,
  RESIZE: 0x01,
  PAUSE: 0x02,
  RESUME: 0x03,
  PING: 0x04,
  /** Empty: "I answer MARKs" (sent once, at open); 8 bytes: the id of a MARK read (edge/terminal-hub.ts). */
  ACK: 0x05,
} as const;

/** Edge → client frame types. */
export const ServerOp = {
  OUTPUT: 0x00,
  TITLE: 0x01,
  INFO: 0x02,
  EXIT: 0x03,
  PONG: 0x04,
  ERROR: 0x05,
  /** 8 opaque bytes, only to a client that sent an empty ACK: answer with ACK and the same bytes. */
  MARK: 0x06,
} as const;

/** Largest terminal size accepted in either dimension, in cells. */
export const MAX_TERMINAL_CELLS = 1000;
/** Length of a MARK's id, in bytes. */
export const MARK_BYTES = 8;
/** Longest error code or short text field (shell, code) on any link, in characters. */
export const SHORT_TEXT_MAX_CHARS = 256;
/** Longest error message on any link, in characters. */
export const MESSAGE_MAX_CHARS = 4096;
/** Longest path (cwd, shell) on any link, in characters (Linux PATH_MAX). */
export const PATH_MAX_CHARS = 4096;
/** Longest window title kept, in characters (OSC bodies past 4 KiB never arrive). */
export const TITLE_MAX_CHARS = 4096;
/** Longest ISO 8601 time accepted, in characters. */
export const TIME_MAX_CHARS = 40;
/** The largest exit status or signal number accepted (a C int). */
const INT32_MAX = 2 ** 31 - 1;

/** A cell count in 1..MAX_TERMINAL_CELLS. */
const cells = v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(MAX_TERMINAL_CELLS));

/** An ISO 8601 time that Date.parse reads. */
export const IsoTime = v.pipe(
  v.string(),
  v.maxLength(TIME_MAX_CHARS),
  v.check((s) => !Number.isNaN(Date.parse(s)), "not a date"),
);
/** A string of at most `max` characters. */
export const text = (max: number) => v.pipe(v.string(), v.maxLength(max));
/** An integer in min..max. */
export const int = (min: number, max: number) => v.pipe(v.number(), v.integer(), v.minValue(min), v.maxValue(max));

export const TerminalSizeSchema = v.object({ cols: cells, rows: cells });
export type TerminalSize = v.InferOutput<typeof TerminalSizeSchema>;

export const ErrorInfoSchema = v.object({ code: text(SHORT_TEXT_MAX_CHARS), message: text(MESSAGE_MAX_CHARS) });
export type ErrorInfo = v.InferOutput<typeof ErrorInfoSchema>;

/**
 * Why the edge ended a session, when it was not the shell's own doing (an addition to the seed's
 * EXIT `{exit_code, signal}`): `deleted` by `DELETE /api/v1/terminal/{id}`, `idle` after the idle
 * timeout with no client, `lost` when the host's agent came back without it (it restarted).
 */
export const EXIT_REASONS = ["deleted", "idle", "lost"] as const;
export type ExitReason = (typeof EXIT_REASONS)[number];

/** How a session ended; `error` says why when that was a failure (an SSH login refused…), and clients get it as ERROR first. */
export const ExitInfoSchema = v.object({
  exit_code: int(-INT32_MAX - 1, INT32_MAX),
  signal: int(0, INT32_MAX),
  error: v.optional(ErrorInfoSchema),
  reason: v.optional(v.picklist(EXIT_REASONS)),
});
export type ExitInfo = v.InferOutput<typeof ExitInfoSchema>;

/** Session facts sent in INFO as the first frame a client receives. */
export const SessionInfoSchema = v.object({
  server_id: text(SHORT_TEXT_MAX_CHARS),
  terminal_id: int(0, 65_535),
  shell: text(PATH_MAX_CHARS),
  cwd: text(PATH_MAX_CHARS),
  cols: cells,
  rows: cells,
  readonly: v.boolean(),
  clients: int(0, INT32_MAX),
  started_at: text(TIME_MAX_CHARS),
  ephemeral: v.boolean(),
  agent_online: v.boolean(),
  title: v.optional(text(TITLE_MAX_CHARS)),
});
export type SessionInfo = v.InferOutput<typeof SessionInfoSchema>;

/** A decoded client → edge frame. */
export type ClientFrame =
  | { t: "input"; data: Uint8Array }
  | { t: "resize"; size: TerminalSize }
  | { t: "pause" }
  | { t: "resume" }
  | { t: "ping"; data: Uint8Array }
  | { t: "ack"; mark: Uint8Array };

/** A decoded edge → client frame. */
export type ServerFrame =
  | { t: "output"; data: Uint8Array }
  | { t: "title"; title: string }
  | { t: "info"; info: SessionInfo }
  | { t: "exit"; exit: ExitInfo }
  | { t: "pong"; data: Uint8Array }
  | { t: "error"; error: ErrorInfo }
  | { t: "mark"; mark: Uint8Array };

/** Validates a terminal size from untrusted input; returns null when it is not one. */
export function parseSize(value: unknown): TerminalSize | null {
  const result = v.safeParse(TerminalSizeSchema, value);
  return result.success ? result.output : null;
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
    case "ack":
      return frame(ClientOp.ACK, f.mark);
  }
}

/** A client → edge frame; LinkDecodeError for an empty, unknown or malformed one. */
export const decodeClientFrame: (bytes: Uint8Array) => ClientFrame = typedFrameDecoder<ClientFrame>("client", {
  [ClientOp.INPUT]: (data) => ({ t: "input", data }),
  [ClientOp.RESIZE]: (payload) => {
    const size = parseSize(parseJson(payload, "RESIZE"));
    if (!size) throw new LinkDecodeError(`RESIZE needs integer cols and rows in 1..${MAX_TERMINAL_CELLS}`);
    return { t: "resize", size };
  },
  [ClientOp.PAUSE]: () => ({ t: "pause" }),
  [ClientOp.RESUME]: () => ({ t: "resume" }),
  [ClientOp.PING]: (data) => ({ t: "ping", data }),
  [ClientOp.ACK]: (mark) => {
    if (mark.byteLength !== 0 && mark.byteLength !== MARK_BYTES) throw new LinkDecodeError(`ACK carries nothing or a ${MARK_BYTES}-byte mark`);
    return { t: "ack", mark };
  },
});

export function encodeServerFrame(f: ServerFrame): Uint8Array {
  switch (f.t) {
    case "output":
      return frame(ServerOp.OUTPUT, f.data);
    case "title":
      return frame(ServerOp.TITLE, new TextEncoder().encode(f.title));
    case "info":
      return jsonFrame(ServerOp.INFO, f.info);
    case "exit":
      return jsonFrame(ServerOp.EXIT, f.exit);
    case "pong":
      return frame(ServerOp.PONG, f.data);
    case "error":
      return jsonFrame(ServerOp.ERROR, f.error);
    case "mark":
      return frame(ServerOp.MARK, f.mark);
  }
}

/** An edge → client frame; LinkDecodeError for an empty, unknown or malformed one. */
export const decodeServerFrame: (bytes: Uint8Array) => ServerFrame = typedFrameDecoder<ServerFrame>("server", {
  [ServerOp.OUTPUT]: (data) => ({ t: "output", data }),
  [ServerOp.TITLE]: (payload) => ({ t: "title", title: utf8(payload) }),
  [ServerOp.INFO]: (payload) => ({ t: "info", info: decodeWith(SessionInfoSchema, parseJson(payload, "INFO"), "INFO") }),
  [ServerOp.EXIT]: (payload) => ({ t: "exit", exit: decodeWith(ExitInfoSchema, parseJson(payload, "EXIT"), "EXIT") }),
  [ServerOp.PONG]: (data) => ({ t: "pong", data }),
  [ServerOp.ERROR]: (payload) => ({ t: "error", error: decodeWith(ErrorInfoSchema, parseJson(payload, "ERROR"), "ERROR") }),
  [ServerOp.MARK]: (mark) => {
    if (mark.byteLength !== MARK_BYTES) throw new LinkDecodeError(`MARK carries ${MARK_BYTES} bytes`);
    return { t: "mark", mark };
  },
});
