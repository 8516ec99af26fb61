/**
 * The data link: agent ⇄ TerminalDO, one binary WebSocket per PTY (see docs/protocol.md, "Data
 * link"). Every frame is one type byte and its payload.
 *
 * Output carries its byte offset in the PTY's output stream (the sequence number): the DO
 * acknowledges offsets, the agent resends from the DO's offset after a reconnect, so nothing is
 * lost or duplicated. An OUTPUT or SNAPSHOT frame embeds a ready-made client OUTPUT frame at a
 * fixed position, so the DO forwards a subarray to clients without copying.
 *
 * Input is acknowledged too (INPUT_ACK, announced by `input_acks` in HELLO): the DO keeps what it
 * sent the agent and the agent has not handled below INPUT_IN_FLIGHT_MAX_BYTES, and the agent says
 * which input it refused because the program is not reading it (docs/protocol.md, "Input").
 *
 * OUTPUT, INPUT, ACK and SNAPSHOT are the hot path and keep a hand-written binary codec (a fixed
 * header, checked by length and type byte; no per-frame allocation but the subarray). The rare
 * JSON frames (HELLO, EXIT, SIZE, RESIZE, HISTORY) are checked field by field against schemas.
 * Both decoders throw LinkDecodeError, and nothing else, for any frame they refuse.
 */
import * as v from "valibot";
import { parseCommandRecord, type CommandRecord } from "../history.ts";
import {
  ClientOp,
  ExitInfoSchema,
  int,
  parseSize,
  ServerOp,
  TerminalSizeSchema,
  TITLE_MAX_CHARS,
  type ExitInfo,
  type TerminalSize,
} from "./client.ts";
import { decodeWith, frame, hex, jsonFrame, LinkDecodeError, parseJson, readOffset, typedFrameDecoder, viewOf, writeU64 } from "./codec.ts";
import { SessionMetaSchema } from "./session.ts";

/** Agent → TerminalDO frame types. */
export const AgentOp = {
  /** [op][offset u64][client OUTPUT frame]: bytes starting at `offset` of the output stream. */
  OUTPUT: 0x80,
  /** [op][request id u32][offset u64][client OUTPUT frame]: the screen as of `offset`. */
  SNAPSHOT: 0x81,
  /** [op][JSON DataHello]: first frame of every data link. */
  HELLO: 0x82,
  /** [op][JSON ExitInfo]: the PTY's process ended. */
  EXIT: 0x83,
  /** [op][client TITLE frame]: the window title changed. */
  TITLE: 0x84,
  /** [op][JSON TerminalSize]: the PTY was resized. */
  SIZE: 0x85,
  /** [op][JSON CommandRecord]: a command started or finished (upsert by id; resent after RESUME). */
  HISTORY: 0x86,
  /** [op][verdict u8][bytes u32]: the next `bytes` input bytes, in order, were all accepted (0) or all refused (1). */
  INPUT_ACK: 0x87,
} as const;

/** What the agent did with a run of input (INPUT_ACK). */
export const InputVerdict = { ACCEPTED: 0, REFUSED: 1 } as const;
/** Length of an INPUT_ACK frame, in bytes. */
export const INPUT_ACK_BYTES = 6;
/**
 * Input the DO sends an agent that acknowledges input (`input_acks` in its HELLO) and that the
 * agent has not acknowledged yet, at most, in bytes; input past it is refused to its sender
 * (INPUT_BACKLOG). It is also the largest paste a client can send at once without pacing.
 */
export const INPUT_IN_FLIGHT_MAX_BYTES = 4 << 20; // 4 MiB

/** TerminalDO → agent frame types. INPUT and RESIZE reuse the client's bytes verbatim. */
export const EdgeOp = {
  /** [0x00][bytes]: input for the PTY (a client INPUT frame, forwarded as is). */
  INPUT: ClientOp.INPUT,
  /** [0x01][JSON TerminalSize] (a client RESIZE frame, forwarded as is). */
  RESIZE: ClientOp.RESIZE,
  /** [op][offset u64]: the DO holds all output below `offset`. */
  ACK: 0xa0,
  /** [op][offset u64]: answer to HELLO; resend output from `offset` on. */
  RESUME: 0xa1,
  /** [op][request id u32]: send a SNAPSHOT of the current screen. */
  SNAPSHOT_REQUEST: 0xa2,
} as const;

/** Where the embedded client frame starts inside an agent OUTPUT frame. */
export const OUTPUT_HEADER_BYTES = 9;
/** Where the embedded client frame starts inside an agent SNAPSHOT frame. */
export const SNAPSHOT_HEADER_BYTES = 13;
/** Bytes in front of the output in an OUTPUT frame: the agent header and the client frame's op. */
export const OUTPUT_FRAME_OVERHEAD = OUTPUT_HEADER_BYTES + 1;
/**
 * Longest TITLE payload accepted, in bytes. Titles come from OSC bodies of at most 4 KiB, and a
 * title this long in bytes is never longer than TITLE_MAX_CHARS, which INFO frames allow.
 */
export const TITLE_MAX_BYTES = TITLE_MAX_CHARS;

/** A position in a PTY's output stream, in bytes. */
const Offset = int(0, Number.MAX_SAFE_INTEGER);

export const DataHelloSchema = v.pipe(
  v.object({
    /** End of the output stream the agent has produced so far. */
    end: Offset,
    /** Oldest offset the agent can still resend. */
    oldest: Offset,
    size: TerminalSizeSchema,
    /** Metadata the DO keeps so it can answer while the agent is away. */
    meta: SessionMetaSchema,
    /** True: this agent acknowledges input with INPUT_ACK frames (absent: an older agent, no input window). */
    input_acks: v.optional(v.boolean()),
  }),
  v.check((h) => h.oldest <= h.end, "oldest is past end"),
);
/** Sent by the agent when a data link opens. */
export type DataHello = v.InferOutput<typeof DataHelloSchema>;

/** Agent → TerminalDO. */
export type AgentDataFrame =
  | { t: "output"; offset: number; frame: Uint8Array }
  | { t: "snapshot"; id: number; offset: number; frame: Uint8Array }
  | { t: "hello"; hello: DataHello }
  | { t: "exit"; exit: ExitInfo }
  | { t: "title"; frame: Uint8Array }
  | { t: "size"; size: TerminalSize }
  | { t: "history"; record: CommandRecord }
  | { t: "input-ack"; refused: boolean; bytes: number };

/** TerminalDO → agent. */
export type EdgeDataFrame =
  | { t: "input"; data: Uint8Array }
  | { t: "resize"; size: TerminalSize }
  | { t: "ack"; offset: number }
  | { t: "resume"; offset: number }
  | { t: "snapshot-request"; id: number };

/**
 * Writes the header of an OUTPUT frame whose output starts at stream offset `offset` into the first
 * OUTPUT_FRAME_OVERHEAD bytes of `frame` (the agent builds frames in place, output copied once).
 */
export function writeOutputHeader(out: Uint8Array, offset: number): void {
  out[0] = AgentOp.OUTPUT;
  writeU64(viewOf(out), 1, offset);
  out[OUTPUT_HEADER_BYTES] = ServerOp.OUTPUT;
}

/** An OUTPUT frame for the concatenation of `chunks` (`length` bytes in all) at `offset`. */
export function encodeOutput(offset: number, chunks: readonly Uint8Array[], length: number): Uint8Array {
  const out = new Uint8Array(OUTPUT_FRAME_OVERHEAD + length);
  writeOutputHeader(out, offset);
  let at = OUTPUT_FRAME_OVERHEAD;
  for (const chunk of chunks) {
    out.set(chunk, at);
    at += chunk.byteLength;
  }
  return out;
}

/** A SNAPSHOT frame answering request `id`: `screen` repaints the terminal as of `offset`. */
export function encodeSnapshot(id: number, offset: number, screen: Uint8Array): Uint8Array {
  const out = new Uint8Array(SNAPSHOT_HEADER_BYTES + 1 + screen.byteLength);
  const view = viewOf(out);
  out[0] = AgentOp.SNAPSHOT;
  view.setUint32(1, id);
  writeU64(view, 5, offset);
  out[SNAPSHOT_HEADER_BYTES] = ServerOp.OUTPUT;
  out.set(screen, SNAPSHOT_HEADER_BYTES + 1);
  return out;
}

/** Any agent frame but the two binary ones (encodeOutput, encodeSnapshot build those). */
export function encodeAgentFrame(f: Exclude<AgentDataFrame, { t: "output" | "snapshot" }>): Uint8Array {
  switch (f.t) {
    case "input-ack": {
      const out = new Uint8Array(INPUT_ACK_BYTES);
      out[0] = AgentOp.INPUT_ACK;
      out[1] = f.refused ? InputVerdict.REFUSED : InputVerdict.ACCEPTED;
      viewOf(out).setUint32(2, f.bytes);
      return out;
    }
    case "hello":
      return jsonFrame(AgentOp.HELLO, f.hello);
    case "exit":
      return jsonFrame(AgentOp.EXIT, f.exit);
    case "size":
      return jsonFrame(AgentOp.SIZE, f.size);
    case "history":
      return jsonFrame(AgentOp.HISTORY, f.record);
    case "title":
      return frame(AgentOp.TITLE, f.frame);
  }
}

/** The client frame embedded at `at`; it must be a client frame of type `op`. */
function embedded(bytes: Uint8Array, at: number, op: number, what: string): Uint8Array {
  if (bytes.byteLength < at + 1) throw new LinkDecodeError(`short ${what} frame`);
  if (bytes[at] !== op) throw new LinkDecodeError(`${what} embeds a client frame of type ${hex(bytes[at]!)}`);
  return bytes.subarray(at);
}

/** An agent → TerminalDO frame, checked; LinkDecodeError for anything malformed. */
export const decodeAgentFrame: (bytes: Uint8Array) => AgentDataFrame = typedFrameDecoder<AgentDataFrame>("agent", {
  [AgentOp.OUTPUT]: (_payload, bytes) => {
    const out = embedded(bytes, OUTPUT_HEADER_BYTES, ServerOp.OUTPUT, "OUTPUT");
    const offset = readOffset(viewOf(bytes), 1, "OUTPUT");
    // Every offset the output's bytes reach must be exact in a double (the DO acknowledges its end).
    if (out.byteLength - 1 > Number.MAX_SAFE_INTEGER - offset) throw new LinkDecodeError("OUTPUT ends past 2^53");
    return { t: "output", offset, frame: out };
  },
  [AgentOp.SNAPSHOT]: (_payload, bytes) => {
    const out = embedded(bytes, SNAPSHOT_HEADER_BYTES, ServerOp.OUTPUT, "SNAPSHOT");
    const view = viewOf(bytes);
    return { t: "snapshot", id: view.getUint32(1), offset: readOffset(view, 5, "SNAPSHOT"), frame: out };
  },
  [AgentOp.HELLO]: (payload) => ({ t: "hello", hello: decodeWith(DataHelloSchema, parseJson(payload, "HELLO"), "HELLO") }),
  [AgentOp.EXIT]: (payload) => ({ t: "exit", exit: decodeWith(ExitInfoSchema, parseJson(payload, "EXIT"), "EXIT") }),
  [AgentOp.TITLE]: (_payload, bytes) => {
    const title = embedded(bytes, 1, ServerOp.TITLE, "TITLE");
    if (title.byteLength - 1 > TITLE_MAX_BYTES) throw new LinkDecodeError(`TITLE longer than ${TITLE_MAX_BYTES} bytes`);
    return { t: "title", frame: title };
  },
  [AgentOp.SIZE]: (payload) => ({ t: "size", size: decodeWith(TerminalSizeSchema, parseJson(payload, "SIZE"), "SIZE") }),
  [AgentOp.HISTORY]: (payload) => {
    const record = parseCommandRecord(parseJson(payload, "HISTORY"));
    if (!record) throw new LinkDecodeError("HISTORY payload is not a command record");
    return { t: "history", record };
  },
  [AgentOp.INPUT_ACK]: (_payload, bytes) => {
    if (bytes.byteLength !== INPUT_ACK_BYTES) throw new LinkDecodeError(`INPUT_ACK must be ${INPUT_ACK_BYTES} bytes`);
    const verdict = bytes[1];
    if (verdict !== InputVerdict.ACCEPTED && verdict !== InputVerdict.REFUSED) throw new LinkDecodeError(`INPUT_ACK verdict ${hex(verdict!)} is neither 0 nor 1`);
    return { t: "input-ack", refused: verdict === InputVerdict.REFUSED, bytes: viewOf(bytes).getUint32(2) };
  },
});

export function encodeEdgeFrame(f: EdgeDataFrame): Uint8Array {
  switch (f.t) {
    case "input":
      return frame(EdgeOp.INPUT, f.data);
    case "resize":
      return jsonFrame(EdgeOp.RESIZE, f.size);
    case "ack":
    case "resume": {
      const out = new Uint8Array(9);
      out[0] = f.t === "ack" ? EdgeOp.ACK : EdgeOp.RESUME;
      writeU64(viewOf(out), 1, f.offset);
      return out;
    }
    case "snapshot-request": {
      const out = new Uint8Array(5);
      out[0] = EdgeOp.SNAPSHOT_REQUEST;
      viewOf(out).setUint32(1, f.id);
      return out;
    }
  }
}

/** A TerminalDO → agent frame, checked; LinkDecodeError for anything malformed. */
export const decodeEdgeFrame: (bytes: Uint8Array) => EdgeDataFrame = typedFrameDecoder<EdgeDataFrame>("edge", {
  [EdgeOp.INPUT]: (data) => ({ t: "input", data }),
  [EdgeOp.RESIZE]: (payload) => {
    const size = parseSize(parseJson(payload, "RESIZE"));
    if (!size) throw new LinkDecodeError("RESIZE needs integer cols and rows");
    return { t: "resize", size };
  },
  [EdgeOp.ACK]: (_payload, bytes) => ({ t: "ack", offset: offsetFrame(bytes, "ACK") }),
  [EdgeOp.RESUME]: (_payload, bytes) => ({ t: "resume", offset: offsetFrame(bytes, "RESUME") }),
  [EdgeOp.SNAPSHOT_REQUEST]: (_payload, bytes) => {
    if (bytes.byteLength !== 5) throw new LinkDecodeError("SNAPSHOT_REQUEST must be 5 bytes");
    return { t: "snapshot-request", id: viewOf(bytes).getUint32(1) };
  },
});

/** The offset of an ACK or RESUME frame (type byte and a u64); LinkDecodeError for another length. */
function offsetFrame(bytes: Uint8Array, what: string): number {
  if (bytes.byteLength !== 9) throw new LinkDecodeError(`${what} must be 9 bytes`);
  return readOffset(viewOf(bytes), 1, what);
}
