/**
 * WebSockets through `/proxy/{port}/…` (shared/links/tunnel.ts, tun.ws*), the edge end, run in
 * the HostDO. The client's upgrade waits until the agent has dialled `ws://localhost:{port}/…`
 * (502 if it cannot), then messages are relayed verbatim both ways and a close on either side
 * closes the other. These sockets are accepted (not hibernatable): they are live relays, and the
 * HostDO stays in memory while one is open.
 */
import { AgentRelay } from "./agent-send.ts";
import { ApiError, errorResponse } from "./errors.ts";
import { decodeBodyFrame, encodeBodyFrame, sendableCloseCode, TUN_WS_BINARY, TUNNEL_WS_MAX } from "../shared/links/tunnel.ts";
import type { TunnelAgentMsg, TunnelEdgeMsg } from "../shared/links/tunnel.ts";
import { acceptTunnelCall } from "./http-tunnel.ts";

/** The HostDO path proxied WebSocket upgrades are fetched at. */
export const WS_TUNNEL_PATH = "/tunnel-ws";
/** How long the agent may take to reach the upstream WebSocket, in ms. */
export const WS_DIAL_TIMEOUT_MS = 15_000;

/** One proxied WebSocket in the HostDO's request table (its id is the socket's `rid`). */
export interface WsTunnelEntry {
  kind: "ws";
  rid: number;
  /** Set until the agent said ready (or failed). */
  pending: ((r: Response) => void) | null;
  timer: ReturnType<typeof setTimeout> | null;
  ws: WebSocket | null;
  /** The subprotocols the client offered (the agent's choice must be one of them, RFC 6455 §4.2.2). */
  offered: readonly string[];
}

export class EdgeWsTunnel extends AgentRelay<WsTunnelEntry> {
  protected readonly kind = "ws";

  /** Answers a proxied upgrade from the Worker (the call its tunnel header carries). */
  async fetch(request: Request): Promise<Response> {
    const call = acceptTunnelCall(request, this.online());
    if (call instanceof Response) return call;
    const busy = () => errorResponse("open-terminal", new ApiError(429, "TOO_MANY_REQUESTS", `At most ${TUNNEL_WS_MAX} proxied WebSockets per server`));
    if (this.size >= TUNNEL_WS_MAX) return busy();
    const protocols = (request.headers.get("Sec-WebSocket-Protocol") ?? "").split(",").map((p) => p.trim()).filter(Boolean).slice(0, 16);
    const s: WsTunnelEntry = { kind: "ws", rid: 0, pending: null, timer: null, ws: null, offered: protocols };
    const answer = new Promise<Response>((resolve) => (s.pending = resolve));
    const rid = this.table.open(s);
    if (rid === null) return busy();
    s.rid = rid;
    s.timer = setTimeout(() => this.refuse(s, 504, "GATEWAY_TIMEOUT", "The upstream WebSocket did not open in time"), WS_DIAL_TIMEOUT_MS);
    if (!this.send({ t: "tun.wsopen", rid, path: call.path, query: call.query, protocols })) this.refuse(s, 503, "AGENT_OFFLINE", "The host's agent is offline");
    return answer;
  }

  /** A `tun.ws*` text frame from the agent. */
  onAgentMessage(msg: TunnelAgentMsg): void {
    const s = this.entry(msg.rid);
    if (!s) {
      if (msg.t === "tun.wsready" || msg.t === "tun.wstext") this.send({ t: "tun.wsclose", rid: msg.rid, code: 1000, reason: "gone" });
      return;
    }
    switch (msg.t) {
      case "tun.wsready":
        // A subprotocol the client did not offer would fail its handshake (and could not be a header).
        if (msg.protocol && !s.offered.includes(msg.protocol)) return this.badReply(msg.rid);
        if (s.pending) this.open(s, msg.protocol);
        return;
      case "tun.wstext":
        this.deliver(s, msg.text);
        return;
      case "tun.wsclose":
        if (s.pending) this.refuse(s, 502, "BAD_GATEWAY", msg.reason || "The upstream WebSocket refused the connection");
        else this.drop(s, msg.code, msg.reason);
        return;
    }
  }

  /** A binary frame of kind TUN_WS_BINARY from the agent. */
  onAgentBinary(frame: Uint8Array): boolean {
    const decoded = decodeBodyFrame(frame, TUN_WS_BINARY);
    if (!decoded) return false;
    const s = this.entry(decoded.rid);
    // workerd's send() takes the bytes of an exact ArrayBuffer, not a view into a larger one.
    if (s) this.deliver(s, decoded.payload.slice().buffer);
    return true;
  }

  /**
   * The agent sent a `tun.ws*` frame for socket `rid` that the link refused (host-link.ts): a
   * pending upgrade is answered 502 AGENT_BAD_REPLY, an open socket closes at both ends.
   */
  badReply(rid: number): void {
    const s = this.entry(rid);
    if (!s) return;
    if (s.pending) return this.refuse(s, 502, "AGENT_BAD_REPLY", "The host's agent sent a malformed answer");
    this.send({ t: "tun.wsclose", rid, code: 1011, reason: "malformed frame" });
    this.drop(s, 1011, "the host's agent sent a malformed frame");
  }

  /** The agent's link is gone: every proxied socket closes. `sockets` are those the HostDO drained from its table. */
  agentGone(sockets: readonly WsTunnelEntry[]): void {
    for (const s of sockets) {
      if (s.pending) this.refuse(s, 503, "AGENT_OFFLINE", "The host's agent went offline");
      else this.drop(s, 1011, "the host's agent went offline");
    }
  }

  private open(s: WsTunnelEntry, protocol: string): void {
    if (s.timer) clearTimeout(s.timer);
    s.timer = null;
    const [client, server] = Object.values(new WebSocketPair()) as [WebSocket, WebSocket];
    server.accept();
    s.ws = server;
    // workerd hands binary messages of an accepted socket over as Blobs, whose bytes arrive
    // asynchronously: every message goes through one chain so they reach the agent in order.
    let chain: Promise<void> = Promise.resolve();
    server.addEventListener("message", (event) => {
      const data: unknown = event.data;
      chain = chain.then(async () => {
        if (typeof data === "string") this.send({ t: "tun.wstext", rid: s.rid, text: data });
        else if (data instanceof Blob) this.sendBinary(encodeBodyFrame(TUN_WS_BINARY, s.rid, new Uint8Array(await data.arrayBuffer())));
        else if (data instanceof ArrayBuffer) this.sendBinary(encodeBodyFrame(TUN_WS_BINARY, s.rid, new Uint8Array(data)));
      });
    });
    server.addEventListener("close", (event) => {
      if (!this.table.take(s.rid, s)) return;
      this.send({ t: "tun.wsclose", rid: s.rid, code: sendableCloseCode(event.code), reason: event.reason });
    });
    server.addEventListener("error", () => {
      if (!this.table.take(s.rid, s)) return;
      this.send({ t: "tun.wsclose", rid: s.rid, code: 1011, reason: "client socket error" });
    });
    const resolve = s.pending;
    s.pending = null;
    resolve?.(new Response(null, { status: 101, webSocket: client, headers: protocol ? { "Sec-WebSocket-Protocol": protocol } : {} }));
  }

  private deliver(s: WsTunnelEntry, data: string | ArrayBuffer): void {
    try {
      s.ws?.send(data);
    } catch {
      this.drop(s, 1011, "client socket closed");
    }
  }

  private refuse(s: WsTunnelEntry, status: number, code: string, message: string): void {
    if (s.timer) clearTimeout(s.timer);
    s.timer = null;
    this.table.take(s.rid, s);
    this.send({ t: "tun.wsclose", rid: s.rid, code: 1000, reason: "refused" });
    const resolve = s.pending;
    s.pending = null;
    resolve?.(errorResponse("open-terminal", new ApiError(status, code, message)));
  }

  private drop(s: WsTunnelEntry, code: number, reason: string): void {
    this.table.take(s.rid, s);
    try {
      s.ws?.close(sendableCloseCode(code), reason.slice(0, 120));
    } catch {
      /* already closed */
    }
  }

  private send(msg: TunnelEdgeMsg): boolean {
    return this.toAgent(msg);
  }

  private sendBinary(frame: Uint8Array): void {
    this.toAgent(frame);
  }
}
