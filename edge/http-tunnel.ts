/**
 * The edge end of the HTTP tunnel (shared/links/tunnel.ts), run inside the HostDO beside the
 * agent's control link. The Worker fetches TUNNEL_PATH on the HostDO with the caller's request
 * (body streaming) and a header describing the call; this relays it to the agent and answers with
 * the agent's status, headers and a streamed body.
 *
 * Memory stays bounded both ways: the request body is read only while fewer than
 * TUNNEL_WINDOW_BYTES are unacknowledged by the agent, and a response chunk is acknowledged to the
 * agent only once workerd's response stream has taken it (an identity TransformStream's write
 * resolves when the reader pulls), so a slow HTTP client pauses the agent's reading of the file.
 * A client that goes away cancels the call at the agent; an agent that goes away ends every
 * call (503 before the head, a cut body after it).
 *
 * A large answer can come as a direct body instead (tunnel.ts): the agent POSTs it in segments
 * to TUNNEL_BODY_PATH and `acceptBodySegment` pipes each request body into the client's response
 * inside workerd, never through JavaScript.
 *
 * Redirects are answers like any other: the HostDO's fetch is made with `redirect: "manual"`, so
 * an upstream's 3xx reaches the client with its `Location` as sent, never followed in here.
 */
import { agentWentAway, AgentRelay, answerOnce, offline, type HttpWaiter } from "./agent-send.ts";
import { safeEqual } from "./auth.ts";
import { ApiError, errorResponse } from "./errors.ts";
import {
  checkTunnelAgentMsg,
  decimalInteger,
  declaredLength,
  decodeBodyFrame,
  headerListProblem,
  NULL_BODY_STATUSES,
  TUN_REQ_BODY,
  TUN_RES_BODY,
  TUNNEL_ACK_BATCH_BYTES,
  TUNNEL_BODY_KEY_HEADER,
  TUNNEL_DIRECT_SEGMENT_BYTES,
  TUNNEL_DIRECT_WAIT_MS,
  TUNNEL_FLUSH_MS,
  TUNNEL_FRAME_BYTES,
  TUNNEL_HEAD_TIMEOUT_MS,
  TUNNEL_MAX_INFLIGHT,
  TUNNEL_WINDOW_BYTES,
} from "../shared/links/tunnel.ts";
import type { HeaderList, TunnelEdgeMsg } from "../shared/links/tunnel.ts";
import { clientLeaving, drainUnread, UNREAD_BODY_DRAIN_MAX_BYTES } from "./http.ts";

/** The largest piece of a request body taken in one read, in bytes (BodyReads). */
export const BODY_READ_BYTES = 256 * 1024; // 256 KiB
/**
 * How long an answer given without reading the request body waits for more of that body while
 * it drains, in ms, before it ends without it: a client that stopped sending when it saw the head
 * (curl does) gets the end this long after, one still sending is drained as before.
 */
export const UNREAD_BODY_WAIT_MS = 1000;
/** The first request-body frame's capacity (most bodies are small; later frames are TUNNEL_FRAME_BYTES). */
const TUNNEL_FIRST_FRAME_BYTES = 64 * 1024; // 64 KiB

/** The HostDO path tunnelled calls are fetched at. */
export const TUNNEL_PATH = "/tunnel";
/** The HostDO path a direct body's segments are fetched at (`?rid=&offset=`, the key in TUNNEL_BODY_KEY_HEADER). */
export const TUNNEL_BODY_SEGMENT_PATH = "/tunnel-body";
/** The header that carries the call's description from the Worker to the HostDO. */
export const TUNNEL_CALL_HEADER = "X-Edgetty-Tunnel";

/** What the Worker tells the HostDO about a tunnelled call. */
export interface TunnelCall {
  scope: string;
  session: string;
  /** The family's path (without a mount prefix), e.g. `/files/read`. */
  path: string;
  /** The query string without `?`. */
  query: string;
}

/** Request headers never passed to the agent (credentials and what the edge itself adds). */
const DROP_REQUEST = /^(authorization|cookie|host|connection|upgrade|keep-alive|transfer-encoding|te|trailer|proxy-.*|cf-.*|x-forwarded-.*|x-real-ip|x-edgetty-.*)$/i;
/** Response headers never passed to the client: hop-by-hop, and state a proxied app must not set on this origin. */
const DROP_RESPONSE = /^(connection|keep-alive|transfer-encoding|upgrade|set-cookie|clear-site-data|content-length|access-control-.*)$/i;

/** One tunnelled HTTP call in the HostDO's request table (its id is the call's `rid`). */
export interface TunnelCallEntry extends HttpWaiter {
  kind: "tun";
  rid: number;
  timer: ReturnType<typeof setTimeout> | null;
  /** Request bytes sent but not yet acknowledged by the agent. */
  unacked: number;
  /** Response bytes the client took that the agent has not been told of yet. */
  taken: number;
  wake: (() => void) | null;
  done: boolean;
  /** The request body's pump (pumpRequest): ends once the body is sent, drained or cancelled. */
  bodyRead: Promise<void> | null;
  /** Request body bytes read so far (sent on or drained): whether a drain is still moving. */
  bodyBytes: number;
  /** A HEAD request: its answer has no body, whatever length the agent names. */
  head: boolean;
  /** The key the agent's direct-body segments must carry (tun.req `key`). */
  key: string;
  /** Set when the answer's body comes as a direct body (tun.head `direct`). */
  direct: DirectBody | null;
  /** Wakes a direct-body segment that came before the head (acceptBodySegment). */
  headSeen: (() => void) | null;
}

/** A direct body being written into the client's response (tunnel.ts). */
interface DirectBody {
  /** The client's response stream; its length is the answer's Content-Length. */
  writable: WritableStream<Uint8Array>;
  length: number;
  /** Bytes written by the segments so far. */
  offset: number;
  /** Aborts the segment being piped; null between segments. */
  piping: AbortController | null;
  /** The last segment has been written (the stream is closed). */
  complete: boolean;
}

/** A random direct-body key (TUNNEL_BODY_KEY_PATTERN). */
function newBodyKey(): string {
  return [...crypto.getRandomValues(new Uint8Array(16))].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * The call the Worker attached to a tunnelled request (`tunnelRequest`), or the 400 to answer.
 * Only the Worker reaches a DO's fetch, so the header is ours, not the caller's.
 */
export function readTunnelCall(request: Request): TunnelCall | Response {
  try {
    return JSON.parse(decodeURIComponent(request.headers.get(TUNNEL_CALL_HEADER) ?? "")) as TunnelCall;
  } catch {
    return errorResponse("open-terminal", new ApiError(400, "BAD_TUNNEL_CALL", "Malformed tunnel call"));
  }
}

/** The call of a tunnelled request, or the answer to give at once: 400 when malformed, 503 while the agent is away. */
export function acceptTunnelCall(request: Request, online: boolean): TunnelCall | Response {
  const call = readTunnelCall(request);
  if (call instanceof Response || online) return call;
  return offline();
}

/**
 * The request the Worker sends the HostDO for one tunnelled call (the caller's body streams
 * through). `forwarded`: the headers the agent gets (url-servers.ts forwardedHeaders: the same
 * as a URL server's); absent, the caller's headers minus DROP_REQUEST (a `/proxy/{port}` app,
 * which needs the browser's own headers but never its credentials).
 */
export function tunnelRequest(request: Request, call: TunnelCall, forwarded?: Headers): Request {
  // The call ends at the agent when the client leaves, before its answer too (EdgeTunnel.fetch).
  const signal = clientLeaving(request);
  if (request.headers.get("Upgrade")?.toLowerCase() === "websocket") {
    // A proxied WebSocket: the HostDO answers the upgrade itself (ws-tunnel.ts).
    const forward = new Request(`https://host/tunnel-ws`, { headers: request.headers, redirect: "manual", signal });
    forward.headers.set(TUNNEL_CALL_HEADER, encodeURIComponent(JSON.stringify(call)));
    return forward;
  }
  const headers = new Headers();
  for (const [k, v] of forwarded ?? request.headers) if (!DROP_REQUEST.test(k)) headers.append(k, v);
  headers.set(TUNNEL_CALL_HEADER, encodeURIComponent(JSON.stringify(call)));
  const hasBody = request.body !== null && request.method !== "GET" && request.method !== "HEAD";
  // "manual": the DO stub's fetch would otherwise follow a 3xx the agent relays (resolving its
  // Location against this internal URL), instead of handing it to the client.
  return new Request(`https://host${TUNNEL_PATH}`, { method: request.method, headers, redirect: "manual", signal, ...(hasBody ? { body: request.body } : {}) });
}

/**
 * The reference's answer to `/proxy/{port}` without a trailing slash (Starlette's
 * `redirect_slashes`): 307 to the same URL with `/` appended, query kept, on either mount.
 * `path` is the family's path (without a mount prefix); null for any other path, and for a
 * WebSocket upgrade (Starlette redirects HTTP only; the upgrade is proxied to the app's root).
 */
export function proxyRootRedirect(request: Request, path: string): Response | null {
  if (!/^\/proxy\/[^/]+$/.test(path) || request.headers.get("Upgrade")?.toLowerCase() === "websocket") return null;
  const url = new URL(request.url);
  url.pathname += "/";
  return new Response(null, { status: 307, headers: { Location: url.href } });
}

export class EdgeTunnel extends AgentRelay<TunnelCallEntry> {
  protected readonly kind = "tun";

  /** Answers a `tunnelRequest` from the Worker. */
  async fetch(request: Request): Promise<Response> {
    const call = acceptTunnelCall(request, this.online());
    if (call instanceof Response) return call;
    const busy = () => errorResponse("open-terminal", new ApiError(429, "TOO_MANY_REQUESTS", `At most ${TUNNEL_MAX_INFLIGHT} file and proxy calls in flight per server`));
    if (this.size >= TUNNEL_MAX_INFLIGHT) return busy();
    const headers: HeaderList = [];
    for (const [k, v] of request.headers) if (k.toLowerCase() !== TUNNEL_CALL_HEADER.toLowerCase()) headers.push([k, v]);
    // A head the agent would refuse is the client's to fix: 431, not a relay failure.
    const tooLarge = headerListProblem(headers);
    if (tooLarge) return errorResponse("open-terminal", new ApiError(431, "HEADERS_TOO_LARGE", `Request headers too large: ${tooLarge}`));
    const body = request.body;
    const c: TunnelCallEntry = { kind: "tun", rid: 0, resolve: null, timer: null, writer: null, unacked: 0, taken: 0, wake: null, done: false, bodyRead: null, bodyBytes: 0, head: request.method === "HEAD", key: newBodyKey(), direct: null, headSeen: null };
    const answer = new Promise<Response>((resolve) => (c.resolve = resolve));
    const rid = this.table.open(c);
    if (rid === null) return busy();
    c.rid = rid;
    c.timer = setTimeout(() => this.fail(c, errorResponse("open-terminal", new ApiError(504, "AGENT_TIMEOUT", "The host's agent did not answer in time"))), TUNNEL_HEAD_TIMEOUT_MS);
    const req: TunnelEdgeMsg = {
      t: "tun.req",
      rid,
      scope: call.scope,
      session: call.session,
      method: request.method,
      path: call.path,
      query: call.query,
      headers,
      body: body !== null,
      key: c.key,
    };
    if (!this.sendJson(req)) {
      this.forget(c);
      return offline();
    }
    if (body) c.bodyRead = this.pumpRequest(c, body);
    // The client left before the head (workerd says so only through the signal; after the head
    // the response stream does): the slot is freed now and the agent stops the call.
    request.signal.addEventListener("abort", () => this.abandoned(c), { once: true });
    return answer;
  }

  /** A text frame from the agent whose `t` starts with `tun.`. */
  onAgentMessage(raw: unknown): void {
    const msg = checkTunnelAgentMsg(raw);
    if (!msg) {
      console.warn("edgetty: ignoring a malformed tunnel message from the agent");
      return;
    }
    const c = this.entry(msg.rid);
    if (!c) {
      if (msg.t === "tun.head") this.sendJson({ t: "tun.cancel", rid: msg.rid });
      return;
    }
    switch (msg.t) {
      case "tun.ack":
        c.unacked = Math.max(0, c.unacked - msg.bytes);
        this.wake(c);
        return;
      case "tun.head":
        if (c.resolve) this.openResponse(c, msg.status, msg.headers, msg.direct === true);
        return;
      case "tun.end": {
        if (c.direct) return; // a direct body ends with its last segment
        this.forget(c);
        // The answer ends once the request body is read (drained, up to UNREAD_BODY_DRAIN_MAX_BYTES,
        // when the agent answered without it): the local runtime closes a keep-alive connection
        // whose request body was left unread, and the client's write of the rest fails (EPIPE).
        // But not once UNREAD_BODY_WAIT_MS pass without a byte of it: a client that stopped sending
        // once it had the head (curl does; after `Expect: 100-continue` it sends none) would wait forever.
        const close = () => void c.writer?.close().catch(() => {});
        if (c.bodyRead) void readOrIdle(c.bodyRead, () => c.bodyBytes).then(close);
        else close();
        return;
      }
      case "tun.abort":
        this.forget(c); // a direct body is cut there
        if (c.resolve) this.fail(c, errorResponse("open-terminal", new ApiError(502, "TUNNEL_ABORTED", msg.reason)));
        c.writer?.abort(new Error(msg.reason)).catch(() => {});
        return;
    }
  }

  /** A binary frame from the agent (a response body chunk). */
  onAgentBinary(frame: Uint8Array): void {
    const decoded = decodeBodyFrame(frame, TUN_RES_BODY);
    if (!decoded) return;
    const c = this.entry(decoded.rid);
    if (!c?.writer) {
      if (!c) this.sendJson({ t: "tun.cancel", rid: decoded.rid });
      return;
    }
    const bytes = decoded.payload.byteLength;
    // The payload is a view of the WebSocket message: written as is, no copy.
    c.writer.write(decoded.payload).then(
      () => {
        if (this.table.get(c.rid) !== c) return;
        c.taken += bytes;
        if (c.taken >= TUNNEL_ACK_BATCH_BYTES) {
          this.sendJson({ t: "tun.ack", rid: c.rid, bytes: c.taken });
          c.taken = 0;
        }
      },
      () => this.clientGone(c),
    );
  }

  /**
   * The agent sent a `tun.*` frame for call `rid` that the link refused (host-link.ts): the call
   * fails now, 502 AGENT_BAD_REPLY before its head, a cut body after it; the agent is told to stop.
   */
  badReply(rid: number): void {
    const c = this.entry(rid);
    if (!c) return;
    this.fail(c, errorResponse("open-terminal", new ApiError(502, "AGENT_BAD_REPLY", "The host's agent sent a malformed answer")));
    c.writer?.abort(new Error("the host's agent sent a malformed frame")).catch(() => {});
  }

  /** The control link is gone: every call ends. `calls` are those the HostDO drained from its table. */
  agentGone(calls: readonly TunnelCallEntry[]): void {
    for (const c of calls) {
      this.forget(c);
      agentWentAway(c);
    }
  }


  private async pumpRequest(c: TunnelCallEntry, body: ReadableStream<Uint8Array>): Promise<void> {
    const reads = new BodyReads(body, (bytes) => (c.bodyBytes += bytes));
    // Reads are gathered into one frame, its header written in place: it goes out when full, at
    // the end of the body, or TUNNEL_FLUSH_MS after its first byte. A part is sent as a copy and
    // the buffer kept. The first frame is small (most bodies are), later ones TUNNEL_FRAME_BYTES.
    // Reads land in a buffer of their own (BodyReads), so the timer can send a partial frame
    // while a read is pending.
    //
    // A full frame is sent as is; WebSocket.send reads it after it returns (filling it again at
    // once corrupted uploads), so it is reused only once the agent has acknowledged its bytes:
    // by then it has been sent. The window bounds the frames in flight (17 of 256 KiB), and an
    // upload of any size allocates no more than those: a new ArrayBuffer per frame left ~70 MB
    // of garbage in the HostDO's isolate per 100 MB before V8 collected it.
    const newFrame = (size: number) => {
      const f = new Uint8Array(5 + size);
      f[0] = TUN_REQ_BODY;
      new DataView(f.buffer).setUint32(1, c.rid >>> 0);
      return f;
    };
    /** Full frames sent, oldest first, with the body offset their last byte ends at. */
    const inFlight: { frame: ReturnType<typeof newFrame>; end: number }[] = [];
    let sentBytes = 0;
    const nextFrame = (): ReturnType<typeof newFrame> => {
      const oldest = inFlight[0];
      if (oldest && oldest.end <= sentBytes - c.unacked) return inFlight.shift()!.frame;
      return newFrame(TUNNEL_FRAME_BYTES);
    };
    let frame = newFrame(TUNNEL_FIRST_FRAME_BYTES);
    let filled = 0;
    let timer: ReturnType<typeof setTimeout> | null = null;
    let linkDown = false;
    const flush = () => {
      if (timer) clearTimeout(timer);
      timer = null;
      if (filled === 0 || c.done) return;
      c.unacked += filled;
      sentBytes += filled;
      const full = filled === frame.byteLength - 5;
      const sent = this.sendBinary(full ? frame : frame.slice(0, 5 + filled));
      if (full) {
        if (frame.byteLength === 5 + TUNNEL_FRAME_BYTES) inFlight.push({ frame, end: sentBytes });
        frame = nextFrame();
      }
      filled = 0;
      if (!sent) linkDown = true;
    };
    try {
      for (;;) {
        if (linkDown) throw new Error("agent link down");
        while (c.unacked >= TUNNEL_WINDOW_BYTES && !c.done) await new Promise<void>((resolve) => (c.wake = resolve));
        if (c.done) break;
        const value = await reads.next();
        if (c.done) break;
        if (value === null) {
          flush();
          if (linkDown) throw new Error("agent link down");
          this.sendJson({ t: "tun.reqend", rid: c.rid });
          return;
        }
        for (let at = 0; at < value.byteLength; ) {
          const n = Math.min(value.byteLength - at, frame.byteLength - 5 - filled);
          frame.set(value.subarray(at, at + n), 5 + filled);
          filled += n;
          at += n;
          if (filled === frame.byteLength - 5) flush();
        }
        if (filled > 0 && !timer) timer = setTimeout(flush, TUNNEL_FLUSH_MS);
      }
      if (timer) clearTimeout(timer);
      await reads.drain();
    } catch {
      if (timer) clearTimeout(timer);
      await reads.cancel();
      if (this.table.get(c.rid) === c) this.clientGone(c);
    }
  }

  /**
   * One segment of a direct body (the agent's POST to TUNNEL_BODY_PATH, through the Worker):
   * its request body is piped into the client's response in workerd, untouched by JavaScript.
   * Answers 200 `{offset}` (bytes written in all) once the segment is written; AgentLinkError
   * `{detail, code}`: 400 a malformed segment, 404 no direct body for this rid and key, 409 a
   * segment out of order or while another is piped, 410 the client went away (CLIENT_GONE, the
   * call ends) or the call ended while the segment was written (CALL_ENDED).
   */
  async acceptBodySegment(request: Request): Promise<Response> {
    const url = new URL(request.url);
    const rid = decimalInteger(url.searchParams.get("rid"));
    const offset = decimalInteger(url.searchParams.get("offset"));
    const size = decimalInteger(request.headers.get("Content-Length"));
    if (rid === null || offset === null || size === null || size < 1 || size > TUNNEL_DIRECT_SEGMENT_BYTES || !request.body) {
      await drainUnread(request.body);
      return agentError(new ApiError(400, "BAD_SEGMENT", `A direct-body segment needs rid, offset and a Content-Length of 1 to ${TUNNEL_DIRECT_SEGMENT_BYTES} bytes`));
    }
    const c = this.entry(rid);
    const key = request.headers.get(TUNNEL_BODY_KEY_HEADER) ?? "";
    const keyed = c !== undefined && (await safeEqual(key, c.key));
    // The segment and the head travel by different connections: a first segment can come before
    // the head that says `direct`. It waits for the head (or the call's end) rather than fail.
    if (keyed && c.resolve && !c.direct && !c.done) {
      // One waits per call (the first segment); another before the head is out of order.
      if (c.headSeen) {
        await drainUnread(request.body);
        return agentError(new ApiError(409, "SEGMENT_OUT_OF_ORDER", `Call ${rid} has a segment waiting for its head already`));
      }
      await new Promise<void>((resolve) => {
        // A wait that times out is no longer waiting: a later segment is not refused for it.
        const timer = setTimeout(() => {
          c.headSeen = null;
          resolve();
        }, TUNNEL_DIRECT_WAIT_MS);
        c.headSeen = () => (clearTimeout(timer), resolve());
      });
    }
    if (!keyed || !c.direct || c.direct.complete || this.entry(rid) !== c) {
      await drainUnread(request.body);
      return agentError(new ApiError(404, "NO_SUCH_BODY", `No direct body is awaited for call ${rid}`));
    }
    const d = c.direct;
    if (d.piping || offset !== d.offset || offset + size > d.length) {
      await drainUnread(request.body);
      return agentError(new ApiError(409, "SEGMENT_OUT_OF_ORDER", `Call ${rid} expects ${d.length - d.offset} more bytes from offset ${d.offset}${d.piping ? " after the segment in progress" : ""}`));
    }
    if (c.timer) clearTimeout(c.timer);
    c.timer = null;
    const last = offset + size === d.length;
    d.piping = new AbortController();
    try {
      // Both ends are workerd's own streams, so the pipe runs in workerd, not in JavaScript.
      await request.body.pipeTo(d.writable, { preventClose: !last, signal: d.piping.signal });
    } catch (e) {
      d.piping = null;
      // Ended here (tun.abort, tun.cancel sent, the link gone) or by the client leaving.
      if (this.table.get(c.rid) !== c) return agentError(new ApiError(410, "CALL_ENDED", `Call ${rid} ended while its segment was written`));
      this.clientGone(c);
      return agentError(new ApiError(410, "CLIENT_GONE", `The body could not be written: ${(e as Error).message ?? e}`));
    }
    d.piping = null;
    d.offset += size;
    if (last) {
      d.complete = true;
      this.forget(c);
    } else if (this.table.get(c.rid) === c) {
      c.timer = setTimeout(() => this.directStalled(c), TUNNEL_DIRECT_WAIT_MS);
    }
    return Response.json({ offset: d.offset });
  }

  /** The agent sent no next segment in time: the client's answer is cut and the agent told to stop. */
  private directStalled(c: TunnelCallEntry): void {
    c.timer = null;
    if (this.table.get(c.rid) !== c) return;
    this.sendJson({ t: "tun.cancel", rid: c.rid });
    this.forget(c);
  }

  private openResponse(c: TunnelCallEntry, status: number, agentHeaders: HeaderList, direct: boolean): void {
    try {
      this.answerHead(c, status, agentHeaders, direct);
    } catch (error) {
      // A head the runtime will not send (the decoder lets through what it cannot foresee): a 502
      // now, where the call would otherwise wait for nothing with its head timer cleared.
      console.warn(`edgetty: the agent's answer head could not be sent: ${(error as Error).message}`);
      this.badReply(c.rid);
    } finally {
      this.wakeSegment(c); // a segment that came first finds the call as the head left it
    }
  }

  private answerHead(c: TunnelCallEntry, status: number, agentHeaders: HeaderList, direct: boolean): void {
    if (c.timer) clearTimeout(c.timer);
    c.timer = null;
    const headers = new Headers();
    for (const [k, v] of agentHeaders) if (!DROP_RESPONSE.test(k)) headers.append(k, v);
    const nullBody = NULL_BODY_STATUSES.has(status);
    if (nullBody) {
      answerOnce(c, new Response(null, { status, headers }));
      return;
    }
    // A length the agent names (a file's size) is the client's Content-Length, as the reference
    // sends it (downloads show their progress); the stream then fails if the body comes short or long.
    const length = declaredLength(agentHeaders);
    if (c.head) {
      // No body follows; the length is said as it would be for GET, as the reference does.
      if (length !== null) headers.set("Content-Length", String(length));
      answerOnce(c, new Response(null, { status, headers }));
      return;
    }
    if (direct) {
      if (length === null || length === 0) {
        this.fail(c, errorResponse("open-terminal", new ApiError(502, "AGENT_BAD_REPLY", "The host's agent offered a direct body without a length")));
        return;
      }
      const { readable, writable } = new FixedLengthStream(length);
      c.direct = { writable, length, offset: 0, piping: null, complete: false };
      c.timer = setTimeout(() => this.directStalled(c), TUNNEL_DIRECT_WAIT_MS);
      answerOnce(c, new Response(readable, { status, headers }));
      return;
    }
    const { readable, writable } = length === null ? new TransformStream<Uint8Array, Uint8Array>() : new FixedLengthStream(length);
    c.writer = writable.getWriter();
    c.writer.closed.catch(() => this.clientGone(c));
    answerOnce(c, new Response(readable, { status, headers }));
  }

  /** The client left before its answer's head: the call ends here and at the agent. */
  private abandoned(c: TunnelCallEntry): void {
    if (!c.resolve || this.table.get(c.rid) !== c) return;
    this.clientGone(c);
    answerOnce(c, errorResponse("open-terminal", new ApiError(499, "CLIENT_GONE", "The client went away before the answer")));
  }

  private clientGone(c: TunnelCallEntry): void {
    if (this.table.get(c.rid) !== c) return;
    this.forget(c);
    this.sendJson({ t: "tun.cancel", rid: c.rid });
  }

  private fail(c: TunnelCallEntry, response: Response): void {
    if (this.table.get(c.rid) === c) this.sendJson({ t: "tun.cancel", rid: c.rid });
    this.forget(c);
    answerOnce(c, response);
  }

  private wake(c: TunnelCallEntry): void {
    const wake = c.wake;
    c.wake = null;
    wake?.();
  }

  private wakeSegment(c: TunnelCallEntry): void {
    const wake = c.headSeen;
    c.headSeen = null;
    wake?.();
  }

  private forget(c: TunnelCallEntry): void {
    c.done = true;
    this.wakeSegment(c);
    if (c.timer) clearTimeout(c.timer);
    c.timer = null;
    this.wake(c);
    this.table.take(c.rid, c);
    // A direct body that ends unwritten is cut: the client sees its answer fail, never hang.
    const d = c.direct;
    if (d && !d.complete) {
      d.complete = true;
      const reason = new Error("the direct body was cut");
      if (d.piping) d.piping.abort(reason);
      else void d.writable.abort(reason).catch(() => {});
    }
  }

  private sendJson(msg: TunnelEdgeMsg): boolean {
    return this.toAgent(msg);
  }

  private sendBinary(frame: Uint8Array): boolean {
    return this.toAgent(frame);
  }
}

/**
 * Resolves once `read` (a body's pump or drain) settles, or once UNREAD_BODY_WAIT_MS pass in which
 * `bytes()` (the body bytes read so far) did not move; never rejects.
 */
function readOrIdle(read: Promise<void>, bytes: () => number): Promise<void> {
  return new Promise((resolve) => {
    let seen = bytes();
    const timer = setInterval(() => {
      if (bytes() === seen) done();
      seen = bytes();
    }, UNREAD_BODY_WAIT_MS);
    const done = () => {
      clearInterval(timer);
      resolve();
    };
    read.then(done, done);
  });
}

function agentError(error: ApiError): Response {
  return errorResponse("agent", error);
}

/**
 * A request body read in large pieces: a BYOB reader fills one reused buffer of BODY_READ_BYTES
 * with whatever the stream holds (workerd's default reader hands a request body over in 4 KiB
 * reads, one promise and one JS turn each, which was most of the HostDO's work in an upload);
 * a stream that is not a byte stream is read with the default reader. Each piece is valid until
 * the next call.
 */
export class BodyReads {
  private readonly byob: ReadableStreamBYOBReader | null;
  private readonly plain: ReadableStreamDefaultReader<Uint8Array> | null;
  private buffer: ArrayBuffer | null = new ArrayBuffer(BODY_READ_BYTES);

  /** `onRead`: told the size of each piece read, in bytes. */
  constructor(
    body: ReadableStream<Uint8Array>,
    private readonly onRead: (bytes: number) => void = () => {},
  ) {
    let byob: ReadableStreamBYOBReader | null = null;
    try {
      byob = body.getReader({ mode: "byob" });
    } catch {
      byob = null; // not a byte stream
    }
    this.byob = byob;
    this.plain = byob ? null : body.getReader();
  }

  /** The next piece of the body, or null at its end. */
  async next(): Promise<Uint8Array | null> {
    if (this.plain) {
      const { done, value } = await this.plain.read();
      if (!done) this.onRead(value.byteLength);
      return done ? null : value;
    }
    // The read takes the buffer over (it is detached) and hands it back in the view it answers.
    const buffer = this.buffer ?? new ArrayBuffer(BODY_READ_BYTES);
    this.buffer = null;
    const { done, value } = await this.byob!.read(new Uint8Array(buffer));
    if (value) this.buffer = value.buffer as ArrayBuffer;
    if (done || !value) return null;
    this.onRead(value.byteLength);
    return value;
  }

  /** Reads and drops the rest (up to UNREAD_BODY_DRAIN_MAX_BYTES, http.ts), then cancels. */
  async drain(): Promise<void> {
    try {
      for (let read = 0; read <= UNREAD_BODY_DRAIN_MAX_BYTES; ) {
        const value = await this.next();
        if (value === null) return;
        read += value.byteLength;
      }
    } catch {
      /* the client went away */
    }
    await this.cancel();
  }

  async cancel(): Promise<void> {
    await (this.byob ?? this.plain)!.cancel().catch(() => {});
  }
}
