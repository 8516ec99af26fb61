/**
 * The agent ↔ edge links (see docs/protocol.md, "Agent link").
 *
 * Control link (agent ↔ HostDO): JSON text frames. The HostDO sends requests (`req`), the agent
 * answers each with a `reply` carrying the same id; the agent also pushes events (`hello`,
 * `exited`).
 *
 * Data link (agent ↔ TerminalDO, one per PTY): binary frames, first byte the type. Output carries
 * its byte offset in the PTY's output stream (the sequence number): the DO acknowledges offsets,
 * the agent resends from the DO's offset after a reconnect, so nothing is lost or duplicated.
 * An OUTPUT or SNAPSHOT frame embeds a ready-made client OUTPUT frame at a fixed position, so the
 * DO forwards a subarray to clients without copying.
 */
import { jsonFrame, parseJson, ServerOp } from "./protocol.ts";
import type { ExitInfo, TerminalSize } from "./protocol.ts";
import { parseCommandRecord, type CommandRecord } from "./history.ts";
import type { ScreenRequest, ScreenResult } from "./screen.ts";

// ---------------------------------------------------------------------------------------------
// Data link

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
} as const;

/** TerminalDO → agent frame types. INPUT and RESIZE reuse the client's bytes verbatim. */
export const EdgeOp = {
  /** [0x00][bytes]: input for the PTY (a client INPUT frame, forwarded as is). */
  INPUT: 0x00,
  /** [0x01][JSON TerminalSize] (a client RESIZE frame, forwarded as is). */
  RESIZE: 0x01,
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

/** Sent by the agent when a data link opens. */
export interface DataHello {
  /** End of the output stream the agent has produced so far. */
  end: number;
  /** Oldest offset the agent can still resend. */
  oldest: number;
  size: TerminalSize;
  /** Metadata the DO keeps so it can answer while the agent is away. */
  meta: SessionMeta;
}

/** What the edge remembers about a session (HostDO index, TerminalDO storage). */
export interface SessionMeta {
  terminal_id: number;
  shell: string;
  cwd: string;
  started_at: string;
  ephemeral: boolean;
  display?: string;
  pid?: number;
}

export type AgentDataFrame =
  | { t: "output"; offset: number; frame: Uint8Array }
  | { t: "snapshot"; id: number; offset: number; frame: Uint8Array }
  | { t: "hello"; hello: DataHello }
  | { t: "exit"; exit: ExitInfo }
  | { t: "title"; frame: Uint8Array }
  | { t: "size"; size: TerminalSize }
  | { t: "history"; record: CommandRecord };

export type EdgeDataFrame =
  | { t: "input"; data: Uint8Array }
  | { t: "resize"; size: TerminalSize }
  | { t: "ack"; offset: number }
  | { t: "resume"; offset: number }
  | { t: "snapshot-request"; id: number };

export class LinkProtocolError extends Error {
  override name = "LinkProtocolError";
}

const TWO_32 = 2 ** 32;

function writeU64(view: DataView, at: number, value: number): void {
  view.setUint32(at, Math.floor(value / TWO_32));
  view.setUint32(at + 4, value >>> 0);
}

function readU64(view: DataView, at: number): number {
  return view.getUint32(at) * TWO_32 + view.getUint32(at + 4);
}

function viewOf(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

function json(bytes: Uint8Array, what: string): unknown {
  return parseJson(bytes, what, LinkProtocolError);
}

/** Bytes in front of the output in an OUTPUT frame: the agent header and the client frame's op. */
export const OUTPUT_FRAME_OVERHEAD = OUTPUT_HEADER_BYTES + 1;

/**
 * Writes the header of an OUTPUT frame whose output starts at stream offset `offset` into the first
 * OUTPUT_FRAME_OVERHEAD bytes of `frame` (the agent builds frames in place, output copied once).
 */
export function writeOutputHeader(frame: Uint8Array, offset: number): void {
  frame[0] = AgentOp.OUTPUT;
  writeU64(viewOf(frame), 1, offset);
  frame[OUTPUT_HEADER_BYTES] = ServerOp.OUTPUT;
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

export function encodeAgentFrame(f: Exclude<AgentDataFrame, { t: "output" | "snapshot" }>): Uint8Array {
  switch (f.t) {
    case "hello":
      return jsonFrame(AgentOp.HELLO, f.hello);
    case "exit":
      return jsonFrame(AgentOp.EXIT, f.exit);
    case "size":
      return jsonFrame(AgentOp.SIZE, f.size);
    case "history":
      return jsonFrame(AgentOp.HISTORY, f.record);
    case "title": {
      const out = new Uint8Array(1 + f.frame.byteLength);
      out[0] = AgentOp.TITLE;
      out.set(f.frame, 1);
      return out;
    }
  }
}

export function decodeAgentFrame(bytes: Uint8Array): AgentDataFrame {
  if (bytes.byteLength === 0) throw new LinkProtocolError("empty frame");
  const view = viewOf(bytes);
  switch (bytes[0]) {
    case AgentOp.OUTPUT:
      if (bytes.byteLength < OUTPUT_HEADER_BYTES + 1) throw new LinkProtocolError("short OUTPUT frame");
      return { t: "output", offset: readU64(view, 1), frame: bytes.subarray(OUTPUT_HEADER_BYTES) };
    case AgentOp.SNAPSHOT:
      if (bytes.byteLength < SNAPSHOT_HEADER_BYTES + 1) throw new LinkProtocolError("short SNAPSHOT frame");
      return {
        t: "snapshot",
        id: view.getUint32(1),
        offset: readU64(view, 5),
        frame: bytes.subarray(SNAPSHOT_HEADER_BYTES),
      };
    case AgentOp.HELLO:
      return { t: "hello", hello: json(bytes.subarray(1), "HELLO") as DataHello };
    case AgentOp.EXIT:
      return { t: "exit", exit: json(bytes.subarray(1), "EXIT") as ExitInfo };
    case AgentOp.TITLE:
      return { t: "title", frame: bytes.subarray(1) };
    case AgentOp.SIZE:
      return { t: "size", size: json(bytes.subarray(1), "SIZE") as TerminalSize };
    case AgentOp.HISTORY: {
      const record = parseCommandRecord(json(bytes.subarray(1), "HISTORY"));
      if (!record) throw new LinkProtocolError("HISTORY payload is not a command record");
      return { t: "history", record };
    }
    default:
      throw new LinkProtocolError(`unknown agent frame type 0x${bytes[0]!.toString(16)}`);
  }
}

export function encodeEdgeFrame(f: EdgeDataFrame): Uint8Array {
  switch (f.t) {
    case "input": {
      const out = new Uint8Array(1 + f.data.byteLength);
      out[0] = EdgeOp.INPUT;
      out.set(f.data, 1);
      return out;
    }
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

export function decodeEdgeFrame(bytes: Uint8Array): EdgeDataFrame {
  if (bytes.byteLength === 0) throw new LinkProtocolError("empty frame");
  const view = viewOf(bytes);
  switch (bytes[0]) {
    case EdgeOp.INPUT:
      return { t: "input", data: bytes.subarray(1) };
    case EdgeOp.RESIZE:
      return { t: "resize", size: json(bytes.subarray(1), "RESIZE") as TerminalSize };
    case EdgeOp.ACK:
    case EdgeOp.RESUME:
      if (bytes.byteLength < 9) throw new LinkProtocolError("short offset frame");
      return { t: bytes[0] === EdgeOp.ACK ? "ack" : "resume", offset: readU64(view, 1) };
    case EdgeOp.SNAPSHOT_REQUEST:
      if (bytes.byteLength < 5) throw new LinkProtocolError("short SNAPSHOT_REQUEST frame");
      return { t: "snapshot-request", id: view.getUint32(1) };
    default:
      throw new LinkProtocolError(`unknown edge frame type 0x${bytes[0]!.toString(16)}`);
  }
}

// ---------------------------------------------------------------------------------------------
// Control link

/** An error as the agent reports it; the edge renders it in the caller's API family shape. */
export interface ApiErrorBody {
  status: number;
  code: string;
  message: string;
}

/** Options for a new PTY session, validated by the edge, checked again by the agent. */
export interface CreateSessionParams {
  terminal_id: number;
  ephemeral: boolean;
  shell?: string;
  user?: string;
  cwd?: string;
  cwd_auto_create: boolean;
  startup_script?: string;
  welcome: boolean;
  debug: boolean;
  display?: string;
  cols: number;
  rows: number;
  /** Base64 command typed into the shell once it starts. */
  cmd?: string;
  env: Record<string, string>;
  /** Block create until `display` answers (default true when a display is set). */
  wait_until_display?: boolean;
  /** How long to wait for the display, in seconds (default 300). */
  wait_timeout?: number;
  /** Desktop environment to start on `display` (from `desktop` / `desktop_env`). */
  desktop_env?: DesktopEnv;
  /** Follow this existing process's terminal output instead of starting a shell. */
  pid?: number;
  /** Run the system's OpenSSH client to this host instead of a local shell. */
  ssh?: SshParams;
}

/** Desktop environments `desktop_env` may name. */
export type DesktopEnv = "xfce" | "mate";

/** An SSH session's target and credentials (seed 002's ssh_* and socks5_* fields). */
export interface SshParams {
  host: string;
  user: string;
  port: number;
  /** Never logged, never on a command line or in an environment (see worker/agent/kinds/ssh.ts). */
  password?: string;
  /** Base64 of a PEM private key. */
  key?: string;
  socks5?: Socks5Params;
}

/** A SOCKS5 proxy the SSH connection goes through (RFC 1928; user/pass per RFC 1929). */
export interface Socks5Params {
  host: string;
  port: number;
  user?: string;
  pass?: string;
}

export interface CreateSessionResult {
  status: "created" | "exists";
  meta: SessionMeta;
}

/** Live facts the agent knows about a session, for listings. */
export interface LiveSession extends SessionMeta {
  cols: number;
  rows: number;
  title?: string;
}

/** Requests the HostDO sends to the agent, by op, with their results. */
export interface ControlOps {
  create: { params: CreateSessionParams; result: CreateSessionResult };
  kill: { params: { terminal_id: number }; result: { killed: boolean } };
  list: { params: Record<string, never>; result: { sessions: LiveSession[] } };
  /** The raw output tail, the screen as text/HTML, or a screenshot (shared/screen.ts). */
  screen: { params: ScreenRequest; result: ScreenResult };
}

export type ControlOp = keyof ControlOps;

export type HostToAgent = { t: "req"; id: number; op: ControlOp; params: unknown };

export type AgentToHost =
  | { t: "hello"; agent: AgentFacts; sessions: LiveSession[] }
  | { t: "reply"; id: number; ok: true; result: unknown }
  | { t: "reply"; id: number; ok: false; error: ApiErrorBody }
  | { t: "exited"; terminal_id: number; exit: ExitInfo };

/** What the agent says about itself on connect. */
export interface AgentFacts {
  version: string;
  hostname: string;
  platform: string;
  is_root: boolean;
  /** Facts about the host (optional: agents before 0.1.0's packaging omit them). */
  facts?: HostFacts;
}

/** The host an agent runs on, as it reports itself in its hello (shown by the edge's stats). */
export interface HostFacts {
  /** CPU architecture, e.g. "x64". */
  arch: string;
  /** Kernel release, e.g. "6.1.0-18-amd64". */
  os_release: string;
  /** Node.js version running the agent, e.g. "v20.19.0". */
  node: string;
  cpus: number;
  memory_bytes: number;
  /** When the agent process started (ISO 8601): its uptime is now minus this. */
  started_at: string;
}

/** Parses a control frame; throws LinkProtocolError on anything malformed. */
export function parseControl<T extends { t: string }>(text: string): T {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new LinkProtocolError("control frame is not JSON");
  }
  if (typeof value !== "object" || value === null || typeof (value as { t?: unknown }).t !== "string") {
    throw new LinkProtocolError("control frame has no type");
  }
  return value as T;
}
