/**
 * The HTTP tunnel: how the HostDO hands an HTTP request of the Open Terminal family to the agent
 * over the control WebSocket and streams both bodies, with flow control in both directions. It
 * carries `/files/*`, `/ports`, `/proxy/{port}/…`, `/system` and `/info`, which the agent answers.
 *
 * JSON text frames (tagged `t: "tun.*"`, beside the control link's other messages):
 *   edge → agent  tun.req    {rid, scope, session, method, path, query, headers, body}
 *                 tun.reqend {rid}          the request body is complete
 *                 tun.ack    {rid, bytes}   the HTTP client took this many response bytes
 *                 tun.cancel {rid}          the HTTP client went away: stop
 *   agent → edge  tun.head   {rid, status, headers}
 *                 tun.end    {rid}          the response body is complete
 *                 tun.abort  {rid, reason}  the response body broke off (the client sees a cut)
 *                 tun.ack    {rid, bytes}   the agent consumed this many request bytes
 * Binary frames carry bodies: byte 0 is the kind (TUN_REQ_BODY edge → agent, TUN_RES_BODY
 * agent → edge), bytes 1–4 the rid (big-endian u32), the rest the bytes. Each side keeps at most
 * TUNNEL_WINDOW_BYTES unacknowledged per request, so a 1 GB body never sits anywhere whole.
 *
 * Direct bodies: a large answer (a download) does not cross the control link. The edge offers a
 * per-call `key` in tun.req; an agent whose answer names a Content-Length of at least
 * TUNNEL_DIRECT_MIN_BYTES says `direct: true` in its tun.head and POSTs the body to
 * TUNNEL_BODY_PATH (`?server=<id>&rid=<rid>&offset=<bytes before this segment>`, its agent token
 * as bearer, the key in TUNNEL_BODY_KEY_HEADER), in segments of at most
 * TUNNEL_DIRECT_SEGMENT_BYTES with their Content-Length, one after another. The HostDO pipes each
 * segment's request body into the client's response stream inside workerd: no JavaScript touches
 * the bytes, so the HostDO neither spends CPU nor leaves V8 garbage per byte (a frame is a JS
 * ArrayBuffer, collected late), and TCP's backpressure paces the agent's reading. A segment answers
 * 200 once written, or `{detail, code}` (404 the call is gone or not direct, 409 out of order,
 * 410 the client went away); an agent that does not send the next segment within
 * TUNNEL_DIRECT_WAIT_MS loses the call (the client sees a cut body). tun.end is not needed after
 * the last segment (the HostDO ends the call when it is written) and is ignored.
 * Request bodies (uploads) stay on the control link: fetched by the agent over HTTP instead, they
 * cost it more CPU than the frames save the HostDO, and the HostDO's frames are reused (see
 * edge/http-tunnel.ts pumpRequest), so they leave no garbage behind.
 *
 * WebSockets through `/proxy/{port}/…` (a dev server's live reload) ride the same link:
 *   edge → agent  tun.wsopen  {rid, path, query, protocols}   dial ws://localhost:{port}/…
 *   agent → edge  tun.wsready {rid, protocol} | tun.wsclose {rid, code, reason}
 *   both ways     tun.wstext  {rid, text}, binary frames of kind TUN_WS_BINARY, tun.wsclose
 * They carry no acknowledgements (WebSocket messages have no backpressure in Workers); instead
 * the agent closes a proxied socket whose messages queue past TUNNEL_WS_BUFFER_MAX_BYTES.
 *
 * The control link's decoders (control.ts) hand every `tun.*` frame and every binary frame to
 * the decoders at the end of this module, so both ends refuse a malformed one with
 * LinkDecodeError like any other control frame, naming the frame's rid when it is readable so the
 * call it belongs to fails at once. Neither end sends a head the other refuses: headers past
 * TUNNEL_HEADERS_MAX or their length limits (headerListProblem) are a 431 at the HostDO for a
 * client's request and a 502 at the agent for an answer. Tunnel requests are numbered by `rid`, a u32
 * (binary frames carry it in 4 bytes) in a field apart from the control link's `id`s. The HostDO
 * takes rids from its one request table (edge/host-link.ts, ids below 2^32), beside its control
 * and exec ids; the agent keys the calls it serves by rid in tables of their own, since the wire
 * does not promise that a rid differs from an `id` in flight. Caps: TUNNEL_MAX_INFLIGHT calls and
 * TUNNEL_WS_MAX sockets per link.
 */
import { LinkDecodeError } from "./codec.ts";

/** Unacknowledged body bytes per request and direction. */
export const TUNNEL_WINDOW_BYTES = 4 << 20; // 4 MiB
/**
 * Largest body payload per binary frame. Every frame is one event in the HostDO and a fixed cost
 * on each side, so bodies move in whole frames; bigger ones (1 MiB) were measured no faster here
 * and left workerd's memory growing further (each frame is a JS ArrayBuffer in the HostDO, freed
 * only when V8 collects), so 256 KiB.
 */
export const TUNNEL_FRAME_BYTES = 256 * 1024; // 256 KiB
/**
 * Body bytes a receiver consumes before it acknowledges them (one tun.ack per batch, not per
 * frame). Less than the window, so a sender never waits on bytes the receiver has taken.
 */
export const TUNNEL_ACK_BATCH_BYTES = 1 << 20; // 1 MiB
/**
 * How long a partly filled request-body frame waits for more of the body before it is sent, in
 * milliseconds: a client's body arrives in reads of a few KiB, which would otherwise each cost a
 * frame, while a client that pauses still sees its bytes move.
 */
export const TUNNEL_FLUSH_MS = 2;
/** Requests in flight at once per agent link. */
export const TUNNEL_MAX_INFLIGHT = 256;
/** Longest `path` (without query), in characters. */
export const TUNNEL_PATH_MAX_CHARS = 8192;
/** Longest `query`, in characters. */
export const TUNNEL_QUERY_MAX_CHARS = 16_384;
/** Most headers passed either way (a request's or an answer's head with more is refused). */
export const TUNNEL_HEADERS_MAX = 100;
/** Longest header name passed either way, in characters. */
export const TUNNEL_HEADER_NAME_MAX_CHARS = 256;
/** Longest header value passed either way, in characters (repeated headers count joined). */
export const TUNNEL_HEADER_VALUE_MAX_CHARS = 16_384;
/**
 * Most characters in one head's names and values together: a head is one JSON text frame on the
 * control link, which must stay well under a Worker's received-message limit (1 MiB on older
 * runtimes) whatever the upstream sends; 64 KiB is past what common servers accept (8–16 KiB).
 */
export const TUNNEL_HEAD_MAX_CHARS = 65_536;
/** Longest `scope` / `session`, in characters. */
export const TUNNEL_ID_MAX_CHARS = 1024;
/** How long the agent may take to answer a request's head, in ms (an upload waits for the whole body first). */
export const TUNNEL_HEAD_TIMEOUT_MS = 300_000;

/** An answer naming at least this Content-Length goes as a direct body when the edge offers one, in bytes. */
export const TUNNEL_DIRECT_MIN_BYTES = 1 << 20; // 1 MiB
/** Largest direct-body segment, in bytes: one POST each, under Cloudflare's 100 MB request-body limit (Free and Pro plans). */
export const TUNNEL_DIRECT_SEGMENT_BYTES = 64 << 20; // 64 MiB
/** How long the HostDO waits for a direct body's first or next segment before it cuts the answer, in ms. */
export const TUNNEL_DIRECT_WAIT_MS = 30_000;
/** The edge's route for direct-body segments (agent-link family). */
export const TUNNEL_BODY_PATH = "/agent/v1/body";
/** The header a direct-body segment carries its call's key in. */
export const TUNNEL_BODY_KEY_HEADER = "X-Edgetty-Body-Key";
/** A call's direct-body key: 128 random bits as 32 lowercase hex digits. */
export const TUNNEL_BODY_KEY_PATTERN = /^[0-9a-f]{32}$/;

/** Binary frame kinds. */
export const TUN_REQ_BODY = 0x10;
export const TUN_RES_BODY = 0x11;
export const TUN_WS_BINARY = 0x12;
/** Proxied WebSockets open at once per agent link. */
export const TUNNEL_WS_MAX = 64;
/** Bytes a proxied WebSocket's messages may queue (either side's socket buffer) before it is closed. */
export const TUNNEL_WS_BUFFER_MAX_BYTES = 8 << 20; // 8 MiB
/** Longest text message relayed, in characters. */
export const TUNNEL_WS_TEXT_MAX_CHARS = 4 << 20;

export type HeaderList = [string, string][];

/** Edge → agent (JSON). */
export type TunnelEdgeMsg =
  | { t: "tun.req"; rid: number; scope: string; session: string; method: string; path: string; query: string; headers: HeaderList; body: boolean; key?: string }
  | { t: "tun.reqend"; rid: number }
  | { t: "tun.ack"; rid: number; bytes: number }
  | { t: "tun.cancel"; rid: number }
  | { t: "tun.wsopen"; rid: number; path: string; query: string; protocols: string[] }
  | { t: "tun.wstext"; rid: number; text: string }
  | { t: "tun.wsclose"; rid: number; code: number; reason: string };

/** Agent → edge (JSON). */
export type TunnelAgentMsg =
  | { t: "tun.head"; rid: number; status: number; headers: HeaderList; direct?: true }
  | { t: "tun.end"; rid: number }
  | { t: "tun.abort"; rid: number; reason: string }
  | { t: "tun.ack"; rid: number; bytes: number }
  | { t: "tun.wsready"; rid: number; protocol: string }
  | { t: "tun.wstext"; rid: number; text: string }
  | { t: "tun.wsclose"; rid: number; code: number; reason: string };

/** A close code either side may send on (1000, or 3000–4999); others become 1000. */
export function sendableCloseCode(code: unknown): number {
  return Number.isInteger(code) && ((code as number) === 1000 || ((code as number) >= 3000 && (code as number) <= 4999)) ? (code as number) : 1000;
}

/** A binary body frame: kind, rid, payload. */
export function encodeBodyFrame(kind: number, rid: number, payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(5 + payload.byteLength);
  out[0] = kind;
  new DataView(out.buffer).setUint32(1, rid >>> 0);
  out.set(payload, 5);
  return out;
}

/** Reads a binary body frame; null when it is too short or of another kind. */
export function decodeBodyFrame(frame: Uint8Array, kind: number): { rid: number; payload: Uint8Array } | null {
  if (frame.byteLength < 5 || frame[0] !== kind) return null;
  const rid = new DataView(frame.buffer, frame.byteOffset, frame.byteLength).getUint32(1);
  return { rid, payload: frame.subarray(5) };
}

const isObj = (x: unknown): x is Record<string, unknown> => typeof x === "object" && x !== null && !Array.isArray(x);
const isRid = (x: unknown): x is number => Number.isInteger(x) && (x as number) >= 0 && (x as number) <= 0xffffffff;
const isStr = (x: unknown, max: number): x is string => typeof x === "string" && x.length <= max;

/**
 * Why a head's headers cannot cross the tunnel (more than TUNNEL_HEADERS_MAX, a name or value past
 * its limit, or more than TUNNEL_HEAD_MAX_CHARS in all), in words naming the count or the header;
 * null when they can. Each end checks before it sends, so the other never refuses the frame.
 */
export function headerListProblem(headers: HeaderList): string | null {
  if (headers.length > TUNNEL_HEADERS_MAX) return `${headers.length} headers (at most ${TUNNEL_HEADERS_MAX})`;
  let total = 0;
  for (const [name, value] of headers) {
    const shown = JSON.stringify(name.slice(0, 40));
    if (name.length > TUNNEL_HEADER_NAME_MAX_CHARS) return `header name ${shown}… is ${name.length} characters (at most ${TUNNEL_HEADER_NAME_MAX_CHARS})`;
    if (value.length > TUNNEL_HEADER_VALUE_MAX_CHARS) return `header ${shown} is ${value.length} characters long (at most ${TUNNEL_HEADER_VALUE_MAX_CHARS})`;
    total += name.length + value.length;
  }
  return total > TUNNEL_HEAD_MAX_CHARS ? `${total} characters of headers (at most ${TUNNEL_HEAD_MAX_CHARS})` : null;
}

/**
 * A count written as decimal digits only, at most 2^53 - 1; null otherwise (`Number()` would read
 * "" as 0 and "0x1f", "1e3" or " 5" as numbers). Lengths, rids and offsets on the wire.
 */
export function decimalInteger(text: string | null | undefined): number | null {
  if (text == null || !/^\d{1,16}$/.test(text)) return null;
  const value = Number(text);
  return Number.isSafeInteger(value) ? value : null;
}

/** A head's `Content-Length`, when it names one well-formed length (at most 2^53 - 1 bytes); else null. */
export function declaredLength(headers: HeaderList): number | null {
  const values = headers.filter(([k]) => k.toLowerCase() === "content-length").map(([, v]) => v.trim());
  return values.length === 1 ? decimalInteger(values[0]) : null;
}

/** Statuses whose answer has no body (Fetch's null body statuses; 101 never crosses these links). */
export const NULL_BODY_STATUSES: ReadonlySet<number> = new Set([204, 205, 304]);

/** An HTTP field name: a token (RFC 9110 §5.1, §5.6.2). */
const FIELD_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/** What no field value may hold (RFC 9110 §5.5; Fetch refuses these in `Headers`). */
const FIELD_VALUE_FORBIDDEN = /[\0\r\n]/;

function isHeaders(x: unknown): x is HeaderList {
  return (
    Array.isArray(x) &&
    x.length <= TUNNEL_HEADERS_MAX &&
    x.every((h) => Array.isArray(h) && h.length === 2 && typeof h[0] === "string" && FIELD_NAME.test(h[0]) && typeof h[1] === "string" && !FIELD_VALUE_FORBIDDEN.test(h[1])) &&
    headerListProblem(x as HeaderList) === null
  );
}

/** Checks a decoded edge → agent frame; an `error` (with the rid when readable) when malformed. */
export function checkTunnelEdgeMsg(x: unknown): TunnelEdgeMsg | { error: string; rid: number | null } {
  if (!isObj(x) || !isRid(x.rid)) return { error: "tunnel message without a valid rid", rid: null };
  const rid = x.rid;
  switch (x.t) {
    case "tun.req":
      if (!isStr(x.scope, TUNNEL_ID_MAX_CHARS) || !isStr(x.session, TUNNEL_ID_MAX_CHARS)) return { error: "tun.req scope/session malformed", rid };
      if (!isStr(x.method, 16) || !/^[A-Z]+$/.test(x.method)) return { error: "tun.req method malformed", rid };
      if (!isStr(x.path, TUNNEL_PATH_MAX_CHARS) || !x.path.startsWith("/") || !isStr(x.query, TUNNEL_QUERY_MAX_CHARS)) return { error: "tun.req path malformed", rid };
      if (!isHeaders(x.headers) || typeof x.body !== "boolean") return { error: "tun.req headers malformed", rid };
      if (x.key !== undefined && !(typeof x.key === "string" && TUNNEL_BODY_KEY_PATTERN.test(x.key))) return { error: "tun.req key malformed", rid };
      return {
        t: "tun.req",
        rid,
        scope: x.scope,
        session: x.session,
        method: x.method,
        path: x.path,
        query: x.query,
        headers: x.headers,
        body: x.body,
        ...(x.key !== undefined ? { key: x.key } : {}),
      };
    case "tun.reqend":
    case "tun.cancel":
      return { t: x.t, rid };
    case "tun.ack":
      return Number.isSafeInteger(x.bytes) && (x.bytes as number) >= 0 ? { t: "tun.ack", rid, bytes: x.bytes as number } : { error: "tun.ack bytes malformed", rid };
    case "tun.wsopen":
      if (!isStr(x.path, TUNNEL_PATH_MAX_CHARS) || !x.path.startsWith("/proxy/") || !isStr(x.query, TUNNEL_QUERY_MAX_CHARS)) return { error: "tun.wsopen path malformed", rid };
      if (!Array.isArray(x.protocols) || x.protocols.length > 16 || !x.protocols.every((p) => isStr(p, 256))) return { error: "tun.wsopen protocols malformed", rid };
      return { t: "tun.wsopen", rid, path: x.path, query: x.query, protocols: x.protocols as string[] };
    case "tun.wstext":
      return isStr(x.text, TUNNEL_WS_TEXT_MAX_CHARS) ? { t: "tun.wstext", rid, text: x.text } : { error: "tun.wstext text malformed", rid };
    case "tun.wsclose":
      return { t: "tun.wsclose", rid, code: sendableCloseCode(x.code), reason: typeof x.reason === "string" ? x.reason.slice(0, 120) : "" };
    default:
      return { error: `unknown tunnel message ${JSON.stringify(x.t)}`, rid };
  }
}

/** Checks a decoded agent → edge frame; null when malformed. */
export function checkTunnelAgentMsg(x: unknown): TunnelAgentMsg | null {
  if (!isObj(x) || !isRid(x.rid)) return null;
  const rid = x.rid;
  switch (x.t) {
    case "tun.head":
      if (!Number.isInteger(x.status) || (x.status as number) < 200 || (x.status as number) > 599 || !isHeaders(x.headers)) return null;
      if (x.direct !== undefined && x.direct !== true) return null;
      return { t: "tun.head", rid, status: x.status as number, headers: x.headers, ...(x.direct ? { direct: true as const } : {}) };
    case "tun.end":
      return { t: "tun.end", rid };
    case "tun.abort":
      return { t: "tun.abort", rid, reason: typeof x.reason === "string" ? x.reason.slice(0, 200) : "aborted" };
    case "tun.ack":
      return Number.isSafeInteger(x.bytes) && (x.bytes as number) >= 0 ? { t: "tun.ack", rid, bytes: x.bytes as number } : null;
    case "tun.wsready":
      return { t: "tun.wsready", rid, protocol: typeof x.protocol === "string" ? x.protocol.slice(0, 256) : "" };
    case "tun.wstext":
      return isStr(x.text, TUNNEL_WS_TEXT_MAX_CHARS) ? { t: "tun.wstext", rid, text: x.text } : null;
    case "tun.wsclose":
      return { t: "tun.wsclose", rid, code: sendableCloseCode(x.code), reason: typeof x.reason === "string" ? x.reason.slice(0, 120) : "" };
    default:
      return null;
  }
}

/** True for a JSON control message that belongs to the HTTP or WebSocket tunnel. */
export function isTunnelMessage<T extends { t: string }>(value: T): value is Extract<T, { t: `tun.${string}` }> {
  return value.t.startsWith("tun.");
}

/**
 * A `tun.*` frame the agent sent, checked (the HostDO's decoder); LinkDecodeError when malformed,
 * with the frame's rid as `id` when it is readable, so the call or socket it names fails at once.
 */
export function decodeTunnelAgent(value: Record<string, unknown> & { t: string }): TunnelAgentMsg {
  const msg = checkTunnelAgentMsg(value);
  if (msg === null) throw new LinkDecodeError(`${value.t.slice(0, 40)} is malformed`, { id: isRid(value.rid) ? value.rid : null, t: value.t });
  return msg;
}

/** A `tun.*` frame the HostDO sent, checked (the agent's decoder); LinkDecodeError (with the rid as `id`) when malformed. */
export function decodeTunnelEdge(value: Record<string, unknown> & { t: string }): TunnelEdgeMsg {
  const msg = checkTunnelEdgeMsg(value);
  if ("error" in msg) throw new LinkDecodeError(msg.error, { id: msg.rid, t: value.t });
  return msg;
}

/**
 * A binary frame on the control link: only tunnel body frames of the kinds `allowed` may come
 * (agent → edge: TUN_RES_BODY, TUN_WS_BINARY; edge → agent: TUN_REQ_BODY, TUN_WS_BINARY).
 * LinkDecodeError for anything else.
 */
export function decodeTunnelBinary(frame: Uint8Array, allowed: readonly number[]): { kind: number; rid: number; payload: Uint8Array } {
  const kind = frame[0];
  if (frame.byteLength < 5 || kind === undefined || !allowed.includes(kind)) {
    throw new LinkDecodeError(`a binary control frame of unknown kind ${kind === undefined ? "(empty)" : `0x${kind.toString(16).padStart(2, "0")}`} or too short`);
  }
  const { rid, payload } = decodeBodyFrame(frame, kind)!;
  return { kind, rid, payload };
}
