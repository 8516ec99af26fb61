/**
 * WebSockets through `/proxy/{port}/…` (shared/links/tunnel.ts, tun.ws*), the edge end, run in
 * the HostDO. The client's upgrade waits until the agent has dialled `ws://localhost:{port}/…`
 * (502 if it cannot), then messages are relayed verbatim both ways and a close on either side
 * closes the other. These sockets are accepted (not hibernatable): they are live relays, and the
 * HostDO stays in memory while one is open.
 */
import { sendToAgent } from "./agent-send.ts";
import { ApiError, errorResponse } from "./errors.ts";
import { decodeBodyFrame, encodeBodyFrame, sendableCloseCode, TUN_WS_BINARY, TUNNEL_WS_MAX } from "../shared/links/tunnel.ts";
import type { TunnelAgentMsg, TunnelEdgeMsg } from "../shared/links/tunnel.ts";
import { offline, readTunnelCall } from "./http-tunnel.ts";

/** The HostDO path proxied WebSocket upgrades are fetched at. */
export const WS_TUNNEL_PATH = "/tunnel-ws";
/** How long the agent may take to reach the upstream WebSocket, in ms. */
export const WS_DIAL_TIMEOUT_MS = 15_000;

interface Socket {
  rid: number;
  /** Set until the agent said ready (or failed). */
  pending: ((r: Response) => void) | null;
  timer: ReturnType<typeof setTimeout> | null;
  ws: WebSocket | null;
}

export class EdgeWsTunnel {
  private readonly sockets = new Map<number, Socket>();
  private nextRid = (Math.floor(Math.random() * 2 ** 31) | 1) >>> 0;

  constructor(private readonly agent: () => WebSocket | null) {}

  /** Answers a proxied upgrade from the Worker (the call its tunnel header carries). */
  async fetch(request: Request): Promise<Response> {
    const call = readTunnelCall(request);
    if (call instanceof Response) return call;
    if (!this.agent()) return offline();
    if (this.sockets.size >= TUNNEL_WS_MAX) return errorResponse("open-terminal", new ApiError(429, "TOO_MANY_REQUESTS", `At most ${TUNNEL_WS_MAX} proxied WebSockets per server`));
    const rid = (this.nextRid = (this.nextRid + 2) >>> 0);
    const protocols = (request.headers.get("Sec-WebSocket-Protocol") ?? "").split(",").map((p) => p.trim()).filter(Boolean).slice(0, 16);
    const s: Socket = { rid, pending: null, timer: null, ws: null };
    const answer = new Promise<Response>((resolve) => (s.pending = resolve));
    this.sockets.set(rid, s);
    s.timer = setTimeout(() => this.refuse(s, 504, "GATEWAY_TIMEOUT", "The upstream WebSocket did not open in time"), WS_DIAL_TIMEOUT_MS);
    if (!this.send({ t: "tun.wsopen", rid, path: call.path, query: call.query, protocols })) this.refuse(s, 503, "AGENT_OFFLINE", "The host's agent is offline");
    return answer;
  }

  /** A `tun.ws*` text frame from the agent. */
  onAgentMessage(msg: TunnelAgentMsg): void {
    const s = this.sockets.get(msg.rid);
    if (!s) {
      if (msg.t === "tun.wsready" || msg.t === "tun.wstext") this.send({ t: "tun.wsclose", rid: msg.rid, code: 1000, reason: "gone" });
      return;
    }
    switch (msg.t) {
      case "tun.wsready":
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
    const s = this.sockets.get(decoded.rid);
    // workerd's send() takes the bytes of an exact ArrayBuffer, not a view into a larger one.
    if (s) this.deliver(s, decoded.payload.slice().buffer);
    return true;
  }

  /** The agent's link is gone: every proxied socket closes. */
  agentGone(): void {
    for (const s of [...this.sockets.values()]) {
      if (s.pending) this.refuse(s, 503, "AGENT_OFFLINE", "The host's agent went offline");
      else this.drop(s, 1011, "the host's agent went offline");
    }
  }

  private open(s: Socket, protocol: string): void {
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
      if (this.sockets.get(s.rid) !== s) return;
      this.sockets.delete(s.rid);
      this.send({ t: "tun.wsclose", rid: s.rid, code: sendableCloseCode(event.code), reason: event.reason });
    });
    server.addEventListener("error", () => {
      if (this.sockets.get(s.rid) !== s) return;
      this.sockets.delete(s.rid);
      this.send({ t: "tun.wsclose", rid: s.rid, code: 1011, reason: "client socket error" });
    });
    const resolve = s.pending;
    s.pending = null;
    resolve?.(new Response(null, { status: 101, webSocket: client, headers: protocol ? { "Sec-WebSocket-Protocol": protocol } : {} }));
  }

  private deliver(s: Socket, data: string | ArrayBuffer): void {
    try {
      s.ws?.send(data);
    } catch {
      this.drop(s, 1011, "client socket closed");
    }
  }

  private refuse(s: Socket, status: number, code: string, message: string): void {
    if (s.timer) clearTimeout(s.timer);
    s.timer = null;
    this.sockets.delete(s.rid);
    this.send({ t: "tun.wsclose", rid: s.rid, code: 1000, reason: "refused" });
    const resolve = s.pending;
    s.pending = null;
    resolve?.(errorResponse("open-terminal", new ApiError(status, code, message)));
  }

  private drop(s: Socket, code: number, reason: string): void {
    this.sockets.delete(s.rid);
    try {
      s.ws?.close(sendableCloseCode(code), reason.slice(0, 120));
    } catch {
      /* already closed */
    }
  }

  private send(msg: TunnelEdgeMsg): boolean {
    return sendToAgent(this.agent(), msg);
  }

  private sendBinary(frame: Uint8Array): void {
    sendToAgent(this.agent(), frame);
  }
}
