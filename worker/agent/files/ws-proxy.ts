/**
 * WebSockets through `/proxy/{port}/…`, the agent end (shared/links/tunnel.ts, tun.ws*): dials
 * `ws://localhost:{port}/{path}` with the client's subprotocols, says ready (or closed), then relays
 * messages verbatim both ways. No acknowledgements: a socket whose unsent messages pass
 * TUNNEL_WS_BUFFER_MAX_BYTES (upstream, or on the control link) is closed (1013 upstream; the
 * client sees 1000 with the reason, since a Worker may not send 1013).
 */
import WebSocket from "ws";
import { encodeBodyFrame, sendableCloseCode, TUN_WS_BINARY, TUNNEL_WS_BUFFER_MAX_BYTES, TUNNEL_WS_MAX } from "../../../shared/links/tunnel.ts";
import type { TunnelAgentMsg, TunnelEdgeMsg } from "../../../shared/links/tunnel.ts";

type Open = Extract<TunnelEdgeMsg, { t: "tun.wsopen" }>;

export class WsProxy {
  private readonly sockets = new Map<number, WebSocket>();

  constructor(
    private readonly sendText: (msg: TunnelAgentMsg) => boolean,
    private readonly sendBinary: (frame: Uint8Array) => boolean,
    /** Bytes queued on the control link right now. */
    private readonly linkBuffered: () => number,
  ) {}

  open(msg: Open): void {
    const [, , portText = "", ...rest] = msg.path.split("/");
    const port = Number(portText);
    if (!/^\d+$/.test(portText) || port < 1 || port > 65535 || this.sockets.size >= TUNNEL_WS_MAX || this.sockets.has(msg.rid)) {
      this.sendText({ t: "tun.wsclose", rid: msg.rid, code: 1000, reason: "refused" });
      return;
    }
    const url = `ws://localhost:${port}/${rest.join("/")}${msg.query ? `?${msg.query}` : ""}`;
    let ws: WebSocket;
    try {
      ws = new WebSocket(url, msg.protocols, { perMessageDeflate: false, handshakeTimeout: 10_000, maxPayload: TUNNEL_WS_BUFFER_MAX_BYTES });
    } catch (e) {
      this.sendText({ t: "tun.wsclose", rid: msg.rid, code: 1000, reason: `Connection refused: localhost:${port}: ${(e as Error).message}` });
      return;
    }
    this.sockets.set(msg.rid, ws);
    let opened = false;
    ws.on("open", () => {
      opened = true;
      this.sendText({ t: "tun.wsready", rid: msg.rid, protocol: ws.protocol });
    });
    ws.on("message", (data: Buffer, isBinary: boolean) => {
      if (this.linkBuffered() > TUNNEL_WS_BUFFER_MAX_BYTES) {
        this.close(msg.rid, 1013, "proxy buffer full");
        return;
      }
      if (isBinary) this.sendBinary(encodeBodyFrame(TUN_WS_BINARY, msg.rid, data));
      else this.sendText({ t: "tun.wstext", rid: msg.rid, text: data.toString("utf8") });
    });
    ws.on("close", (code, reason) => {
      if (this.sockets.get(msg.rid) !== ws) return;
      this.sockets.delete(msg.rid);
      this.sendText({ t: "tun.wsclose", rid: msg.rid, code: sendableCloseCode(code), reason: opened ? reason.toString() : `Connection refused: localhost:${port}` });
    });
    ws.on("error", () => {
      /* "close" follows */
    });
  }

  /** A message from the client, to the upstream socket. */
  deliver(rid: number, data: string | Uint8Array): void {
    const ws = this.sockets.get(rid);
    if (!ws || ws.readyState !== WebSocket.OPEN) return;
    if (ws.bufferedAmount > TUNNEL_WS_BUFFER_MAX_BYTES) {
      this.close(rid, 1013, "upstream not reading");
      return;
    }
    ws.send(data, { binary: typeof data !== "string" });
  }

  /** Closes the upstream socket (the client closed, or a buffer overflowed). */
  close(rid: number, code: number, reason: string): void {
    const ws = this.sockets.get(rid);
    if (!ws) return;
    this.sockets.delete(rid);
    // Our own decision to close is told to the edge (a client close needs no echo).
    if (code === 1013) this.sendText({ t: "tun.wsclose", rid, code: 1000, reason });
    try {
      if (ws.readyState === WebSocket.CONNECTING) ws.terminate();
      else ws.close(sendableCloseCode(code), reason.slice(0, 120));
    } catch {
      ws.terminate();
    }
  }

  /** The control link is gone: every proxied socket closes. */
  closeAll(): void {
    for (const rid of [...this.sockets.keys()]) this.close(rid, 1001, "edge link closed");
  }
}
