/**
 * The agent end of the HTTP tunnel (shared/links/tunnel.ts): turns tun.* messages and binary
 * body frames from the control link into a web `Request`, hands it to a handler (the Open
 * Terminal files/ports/proxy app) and streams the handler's `Response` back, paced by the edge's
 * acknowledgements, or as a direct body (POSTed segments, direct-body.ts) when the answer names a
 * Content-Length of TUNNEL_DIRECT_MIN_BYTES or more and the edge offered a key. The request body
 * is a pull stream: a chunk is acknowledged to the edge when the handler reads it, so an upload
 * never runs ahead of the disk. Nothing that arrives can make it throw.
 */
import {
  checkTunnelEdgeMsg,
  declaredLength,
  decodeBodyFrame,
  encodeBodyFrame,
  headerListProblem,
  TUN_REQ_BODY,
  TUN_RES_BODY,
  TUN_WS_BINARY,
  TUNNEL_ACK_BATCH_BYTES,
  TUNNEL_DIRECT_MIN_BYTES,
  TUNNEL_DIRECT_SEGMENT_BYTES,
  TUNNEL_FRAME_BYTES,
  TUNNEL_MAX_INFLIGHT,
  TUNNEL_WINDOW_BYTES,
} from "../../../shared/links/tunnel.ts";
import type { HeaderList, TunnelAgentMsg } from "../../../shared/links/tunnel.ts";
import type { LinkDecodeError } from "../../../shared/links/codec.ts";
import { DirectBodyReader, type SegmentSender } from "./direct-body.ts";
import { WsProxy } from "./ws-proxy.ts";

/** Who calls, as the edge established it. */
export interface TunnelCaller {
  /** The caller's scope (principal and `X-User-Id`), hashed by the edge. */
  scope: string;
  /** The caller's `X-Session-Id`, or "". */
  session: string;
}

/** Answers one tunnelled request; may throw (the tunnel answers 500). */
export type TunnelHandler = (request: Request, caller: TunnelCaller, signal: AbortSignal) => Promise<Response>;

interface Job {
  abort: AbortController;
  method: string;
  /** The edge's direct-body key for this call (absent: the edge offers none). */
  key: string | undefined;
  /** Request body chunks received but not yet read by the handler. */
  queue: Uint8Array[];
  /** Bytes in `queue` (the edge keeps it under the window; more is a protocol breach). */
  queued: number;
  bodyDone: boolean;
  pull: (() => void) | null;
  /** Response bytes sent but not yet acknowledged. */
  unacked: number;
  /** Request bytes the handler read that the edge has not been told of yet. */
  taken: number;
  wake: (() => void) | null;
}

export class TunnelServer {
  private readonly jobs = new Map<number, Job>();
  /** WebSockets through `/proxy/{port}/…`. */
  private readonly ws: WsProxy;

  constructor(
    private readonly handler: TunnelHandler,
    private readonly sendText: (text: string) => boolean,
    private readonly sendBinary: (frame: Uint8Array) => boolean,
    /** Bytes queued on the control link (proxied WebSockets close past their cap). */
    linkBuffered: () => number = () => 0,
    /** Sends a frame given as header and payload (the link's `sendParts`: no copy); default: one joined frame. */
    private readonly sendParts: (head: Uint8Array, payload: Uint8Array) => boolean = (head, payload) => {
      const frame = new Uint8Array(head.byteLength + payload.byteLength);
      frame.set(head);
      frame.set(payload, head.byteLength);
      return sendBinary(frame);
    },
    /** Sends a direct body's segment to the edge; null: answers always go as frames. */
    private readonly sendSegment: SegmentSender | null = null,
  ) {
    this.ws = new WsProxy((msg) => this.emit(msg), sendBinary, linkBuffered);
  }

  /** A decoded text frame whose `t` starts with `tun.`. */
  handle(raw: unknown): void {
    const msg = checkTunnelEdgeMsg(raw);
    if ("error" in msg) {
      if (msg.rid !== null) this.emit({ t: "tun.abort", rid: msg.rid, reason: msg.error });
      return;
    }
    const job = this.jobs.get(msg.rid);
    switch (msg.t) {
      case "tun.req":
        if (job || this.jobs.size >= TUNNEL_MAX_INFLIGHT) {
          this.emit({ t: "tun.abort", rid: msg.rid, reason: job ? "duplicate request id" : "too many tunnelled requests" });
          return;
        }
        this.start(msg.rid, msg);
        return;
      case "tun.reqend":
        if (job) {
          job.bodyDone = true;
          this.wakePull(job);
        }
        return;
      case "tun.ack":
        if (job) {
          job.unacked = Math.max(0, job.unacked - msg.bytes);
          const wake = job.wake;
          job.wake = null;
          wake?.();
        }
        return;
      case "tun.cancel":
        this.cancel(msg.rid);
        return;
      case "tun.wsopen":
        this.ws.open(msg);
        return;
      case "tun.wstext":
        this.ws.deliver(msg.rid, msg.text);
        return;
      case "tun.wsclose":
        this.ws.close(msg.rid, msg.code, msg.reason);
        return;
    }
  }

  /** A `tun.*` frame the control link refused: a request whose rid could be read is aborted. */
  refused(error: LinkDecodeError): void {
    if (error.id !== null && error.id <= 0xffffffff && !this.jobs.has(error.id)) this.emit({ t: "tun.abort", rid: error.id, reason: error.message.slice(0, 200) });
  }

  /** A binary frame (a request body chunk). */
  handleBinary(frame: Uint8Array): void {
    const message = decodeBodyFrame(frame, TUN_WS_BINARY);
    if (message) {
      this.ws.deliver(message.rid, message.payload);
      return;
    }
    const decoded = decodeBodyFrame(frame, TUN_REQ_BODY);
    if (!decoded) return;
    const job = this.jobs.get(decoded.rid);
    if (!job || job.bodyDone) return;
    if (job.queued + decoded.payload.byteLength > 2 * TUNNEL_WINDOW_BYTES) {
      this.cancel(decoded.rid);
      this.emit({ t: "tun.abort", rid: decoded.rid, reason: "request body ran past the flow-control window" });
      return;
    }
    job.queue.push(decoded.payload);
    job.queued += decoded.payload.byteLength;
    this.wakePull(job);
  }

  /** The control link is gone: every handler is aborted. */
  closeAll(): void {
    for (const rid of [...this.jobs.keys()]) this.cancel(rid);
    this.ws.closeAll();
  }

  private start(rid: number, msg: Extract<ReturnType<typeof checkTunnelEdgeMsg>, { t: "tun.req" }>): void {
    const job: Job = { abort: new AbortController(), method: msg.method, key: msg.key, queue: [], queued: 0, bodyDone: !msg.body, pull: null, unacked: 0, taken: 0, wake: null };
    this.jobs.set(rid, job);
    const headers = new Headers();
    for (const [k, v] of msg.headers) {
      try {
        headers.append(k, v);
      } catch {
        /* an illegal header is dropped */
      }
    }
    const body = msg.body ? this.bodyStream(rid, job) : null;
    let request: Request;
    try {
      request = new Request(`http://tunnel${msg.path}${msg.query ? `?${msg.query}` : ""}`, {
        method: msg.method,
        headers,
        signal: job.abort.signal,
        ...(body ? { body, duplex: "half" } : {}),
      } as RequestInit);
    } catch (e) {
      this.jobs.delete(rid);
      this.emit({ t: "tun.abort", rid, reason: `bad request: ${(e as Error).message}` });
      return;
    }
    void this.run(rid, job, request, { scope: msg.scope, session: msg.session });
  }

  private bodyStream(rid: number, job: Job): ReadableStream<Uint8Array> {
    return new ReadableStream<Uint8Array>({
      pull: async (controller) => {
        while (job.queue.length === 0 && !job.bodyDone && !job.abort.signal.aborted) {
          await new Promise<void>((resolve) => (job.pull = resolve));
        }
        const chunk = job.queue.shift();
        if (chunk) {
          job.queued -= chunk.byteLength;
          controller.enqueue(chunk);
          job.taken += chunk.byteLength;
          if (job.taken >= TUNNEL_ACK_BATCH_BYTES && this.jobs.get(rid) === job) {
            this.emit({ t: "tun.ack", rid, bytes: job.taken });
            job.taken = 0;
          }
        } else if (job.abort.signal.aborted) controller.error(new Error("request cancelled"));
        else controller.close();
      },
      cancel: () => {
        job.queue = [];
      },
    }, { highWaterMark: 0 });
  }

  private async run(rid: number, job: Job, request: Request, caller: TunnelCaller): Promise<void> {
    let response: Response;
    try {
      response = await this.handler(request, caller, job.abort.signal);
    } catch (e) {
      response = Response.json({ detail: `Internal error: ${(e as Error).message}`, code: "INTERNAL_ERROR" }, { status: 500 });
    }
    if (this.jobs.get(rid) !== job) {
      await response.body?.cancel().catch(() => {});
      return;
    }
    let headers: HeaderList = [];
    response.headers.forEach((v, k) => headers.push([k, v]));
    // Never a head the edge would refuse (it could not answer the call): a 502 saying why instead.
    const tooLarge = headerListProblem(headers);
    if (tooLarge) {
      await response.body?.cancel().catch(() => {});
      response = Response.json({ detail: `The answer's head is too large to relay: ${tooLarge}`, code: "BAD_GATEWAY" }, { status: 502 });
      headers = [];
      response.headers.forEach((v, k) => headers.push([k, v]));
    }
    const length = declaredLength(headers);
    const direct = this.sendSegment !== null && job.key !== undefined && job.method !== "HEAD" && response.body !== null && length !== null && length >= TUNNEL_DIRECT_MIN_BYTES;
    if (!this.emit({ t: "tun.head", rid, status: response.status, headers, ...(direct ? { direct: true as const } : {}) })) {
      await response.body?.cancel().catch(() => {});
      return;
    }
    if (direct) {
      await this.sendDirect(rid, job, new DirectBodyReader(response.body!), length!);
      return;
    }
    const reader = response.body?.getReader();
    // The 5-byte header of every body frame of this response (the payload follows it uncopied).
    const head = encodeBodyFrame(TUN_RES_BODY, rid, new Uint8Array(0));
    try {
      while (reader) {
        while (job.unacked >= TUNNEL_WINDOW_BYTES && !job.abort.signal.aborted) await new Promise<void>((resolve) => (job.wake = resolve));
        if (job.abort.signal.aborted) {
          await reader.cancel().catch(() => {});
          return;
        }
        const { done, value } = await reader.read();
        if (done) break;
        for (let at = 0; at < value.byteLength; at += TUNNEL_FRAME_BYTES) {
          const part = value.subarray(at, Math.min(value.byteLength, at + TUNNEL_FRAME_BYTES));
          job.unacked += part.byteLength;
          if (!this.sendParts(head, part)) throw new Error("control link is down");
        }
      }
    } catch (e) {
      await reader?.cancel().catch(() => {});
      if (this.jobs.get(rid) === job) {
        this.jobs.delete(rid);
        this.emit({ t: "tun.abort", rid, reason: `response failed: ${(e as Error).message}` });
      }
      return;
    }
    if (this.jobs.get(rid) !== job) return;
    this.jobs.delete(rid);
    job.abort.abort(); // releases a request body the handler left unread
    this.emit({ t: "tun.end", rid });
  }

  /**
   * Sends `length` bytes of `body` as a direct body, a segment at a time; the edge ends the call
   * after the last. A body that comes short, a segment the edge refuses or a cancel from the edge
   * ends it here too (tun.abort, which the edge ignores for a call it already ended).
   */
  private async sendDirect(rid: number, job: Job, body: DirectBodyReader, length: number): Promise<void> {
    const signal = job.abort.signal;
    async function* segmentChunks(size: number): AsyncGenerator<Uint8Array> {
      for (let left = size; left > 0; ) {
        const chunk = await body.read(left, signal);
        if (!chunk) throw new Error(`the body ended ${left} bytes short of its segment`);
        left -= chunk.byteLength;
        yield chunk;
      }
    }
    try {
      for (let offset = 0; offset < length; ) {
        const size = Math.min(TUNNEL_DIRECT_SEGMENT_BYTES, length - offset);
        await this.sendSegment!({ rid, key: job.key!, offset, size, chunks: segmentChunks(size), written: (chunk) => body.written(chunk) }, signal);
        offset += size;
      }
    } catch (e) {
      await body.cancel();
      if (this.jobs.get(rid) === job) {
        this.jobs.delete(rid);
        job.abort.abort();
        this.emit({ t: "tun.abort", rid, reason: `response failed: ${(e as Error).message}` });
      }
      return;
    }
    await body.cancel(); // whatever follows the named length is not sent
    if (this.jobs.get(rid) !== job) return;
    this.jobs.delete(rid);
    job.abort.abort(); // releases a request body the handler left unread
  }

  private cancel(rid: number): void {
    const job = this.jobs.get(rid);
    if (!job) return;
    this.jobs.delete(rid);
    job.abort.abort();
    job.queue = [];
    job.queued = 0;
    this.wakePull(job);
    const wake = job.wake;
    job.wake = null;
    wake?.();
  }

  private wakePull(job: Job): void {
    const pull = job.pull;
    job.pull = null;
    pull?.();
  }

  private emit(msg: TunnelAgentMsg): boolean {
    try {
      return this.sendText(JSON.stringify(msg));
    } catch {
      return false;
    }
  }
}
