/**
 * The HostDO's end of the agent's control link: the hibernatable socket, the one request table
 * (a Correlator) that numbers everything the HostDO sends the agent and waits on — control
 * requests, exec calls (exec-relay.ts), tunnelled HTTP calls (http-tunnel.ts) and proxied
 * WebSockets (ws-tunnel.ts) — and the routing of the agent's replies, tunnel frames and refused
 * frames to whoever waits. The session index and the RPC surface stay in host-do.ts.
 *
 * Ids stay below 2^32 for every kind, because a tunnel's id (`rid`) rides in 4 bytes of every
 * binary body frame (shared/links/tunnel.ts); control and exec ids are plain JSON numbers and
 * fit the same range.
 */
import { encodeControl, LINK_INFLIGHT_MAX, type AgentToHost, type ControlOp, type ControlOps, type ControlRequest } from "../shared/links/control.ts";
import { checkResult } from "../shared/links/control.ts";
import { LinkDecodeError } from "../shared/links/codec.ts";
import { Correlator } from "../shared/links/correlator.ts";
import { decodeTunnelBinary, TUN_RES_BODY, TUN_WS_BINARY, TUNNEL_MAX_INFLIGHT, TUNNEL_WS_MAX, type TunnelAgentMsg } from "../shared/links/tunnel.ts";
import { ApiError } from "../shared/errors.ts";
import { EdgeExecRelay, EXEC_PATH, type ExecJob } from "./exec-relay.ts";
import { EdgeTunnel, TUNNEL_BODY_SEGMENT_PATH, TUNNEL_PATH, type TunnelCallEntry } from "./http-tunnel.ts";
import { EdgeWsTunnel, WS_TUNNEL_PATH, type WsTunnelEntry } from "./ws-tunnel.ts";
import { log } from "./log.ts";

/** Most agent requests in flight at once (exec calls and tunnels have their own caps). */
export const MAX_PENDING_REQUESTS = 256;
/** How long the agent has to answer a request, in milliseconds. */
export const AGENT_REQUEST_TIMEOUT_MS = 20_000;
/**
 * How long a listing waits for the agent's own list, in milliseconds. The agent answers `list`
 * from memory; past this the listing is served from the HostDO's index alone, so one stuck or
 * hostile agent cannot hold a caller for the whole request timeout.
 */
export const AGENT_LIST_TIMEOUT_MS = 3_000;
/** Entries in the HostDO's request table at once: the control link's cap plus the tunnels'. */
export const HOST_INFLIGHT_MAX = LINK_INFLIGHT_MAX + TUNNEL_MAX_INFLIGHT + TUNNEL_WS_MAX;
/** Ids of the request table stay below this (a tunnel's rid is a u32 on the wire). */
const HOST_ID_LIMIT = 2 ** 32;

/** The tag of the agent's control socket among the HostDO's accepted sockets. */
const AGENT_TAG = "agent";

/** A control request waiting for the agent's reply. */
interface Pending {
  kind: "control";
  op: ControlOp;
  resolve(value: unknown): void;
  reject(error: ApiError): void;
  /** Set right after the request gets its id. */
  timer: ReturnType<typeof setTimeout> | null;
}

/** What the link needs from its HostDO: its name for logs, and where refused frames are counted. */
export interface HostLinkHost {
  readonly ctx: DurableObjectState;
  serverId(): string;
  /** A frame was refused (counted in the server's `errors`). */
  countError(): void;
}

export class HostLink {
  /** The one table of what waits on the agent, by request id. */
  private readonly inflight = new Correlator<Pending | ExecJob | TunnelCallEntry | WsTunnelEntry>(HOST_INFLIGHT_MAX, HOST_ID_LIMIT);
  /** Open Terminal /execute calls relayed to the agent (exec.* messages). */
  private readonly execRelay = new EdgeExecRelay(() => this.socket(), this.inflight);
  /** Open Terminal file, port and proxy calls tunnelled to the agent (tun.* messages). */
  private readonly tunnel = new EdgeTunnel(() => this.socket(), this.inflight);
  /** WebSockets through `/proxy/{port}/…` (tun.ws* messages). */
  private readonly wsTunnel = new EdgeWsTunnel(() => this.socket(), this.inflight);

  constructor(private readonly host: HostLinkHost) {}

  /** The open control socket, or null while the agent is away (the newest wins). */
  socket(): WebSocket | null {
    const sockets = this.host.ctx.getWebSockets(AGENT_TAG).filter((ws) => ws.readyState === WebSocket.OPEN);
    return sockets[sockets.length - 1] ?? null;
  }

  /** The Worker's call relayed to the agent (an execute call or a tunnel), or null for another path. */
  relay(path: string, request: Request): Promise<Response> | null {
    // Fetches, not RPC: only a fetch's response stream tells this DO when the HTTP client left.
    if (path === EXEC_PATH) return this.execRelay.fetch(request);
    if (path === TUNNEL_PATH) return this.tunnel.fetch(request);
    if (path === TUNNEL_BODY_SEGMENT_PATH) return this.tunnel.acceptBodySegment(request);
    if (path === WS_TUNNEL_PATH) return this.wsTunnel.fetch(request);
    return null;
  }

  /**
   * Closes the agent's control link with `close` and ends everything it carried (each call fails
   * with `why`, 503 AGENT_OFFLINE); answers how many sockets closed. For a token no longer valid
   * (HostDO.dropAgent) and for a link a newer one replaces (`accept`).
   */
  drop(close: { code: number; reason: string }, why = `The agent's link was closed: ${close.reason}`): number {
    let closed = 0;
    for (const ws of this.host.ctx.getWebSockets(AGENT_TAG)) {
      try {
        ws.close(close.code, close.reason);
        closed++;
      } catch {
        /* already closed */
      }
    }
    this.gone(new ApiError(503, "AGENT_OFFLINE", why));
    return closed;
  }

  /** Accepts a new agent socket: an older one is closed and everything it carried ends. */
  accept(): Response {
    this.drop({ code: 4000, reason: "replaced by a newer agent link" }, "The agent reconnected before answering");
    const [client, server] = Object.values(new WebSocketPair()) as [WebSocket, WebSocket];
    this.host.ctx.acceptWebSocket(server, [AGENT_TAG]);
    return new Response(null, { status: 101, webSocket: client });
  }

  /** True when `ws` is the only agent socket left (its close takes the agent offline). */
  isLast(ws: WebSocket): boolean {
    return this.host.ctx.getWebSockets(AGENT_TAG).every((s) => s === ws);
  }

  /** A binary frame from the agent: a tunnel body. LinkDecodeError for any other kind. */
  onBinary(message: ArrayBuffer): void {
    const bytes = new Uint8Array(message);
    const frame = decodeTunnelBinary(bytes, [TUN_RES_BODY, TUN_WS_BINARY]);
    if (frame.kind === TUN_WS_BINARY) this.wsTunnel.onAgentBinary(bytes);
    else this.tunnel.onAgentBinary(bytes);
  }

  /** A checked `tun.*` frame: WebSocket ones to the WebSocket tunnel, the rest to the HTTP tunnel. */
  onTunnelMessage(msg: TunnelAgentMsg): void {
    if (msg.t.startsWith("tun.ws")) this.wsTunnel.onAgentMessage(msg);
    else this.tunnel.onAgentMessage(msg);
  }

  /** A checked `exec.*` frame. */
  onExecMessage(msg: Parameters<EdgeExecRelay["onAgentMessage"]>[0]): void {
    this.execRelay.onAgentMessage(msg);
  }

  /** Matches a reply to its request and checks its result against the request's op. */
  onReply(msg: Extract<AgentToHost, { t: "reply" }>): void {
    const p = this.inflight.get(msg.id);
    if (p?.kind !== "control") return this.refuse(`reply ${msg.id} matches no control request in flight`, null);
    this.inflight.take(msg.id);
    clearTimeout(p.timer);
    if (!msg.ok) return p.reject(new ApiError(msg.error.status, msg.error.code, msg.error.message));
    try {
      p.resolve(checkResult(p.op, msg.id, msg.result));
    } catch (error) {
      if (!(error instanceof LinkDecodeError)) throw error;
      log("warn", "host.bad_reply", `refused the agent's reply: ${error.message}`, { server: this.host.serverId(), op: p.op });
      p.reject(new ApiError(502, "AGENT_BAD_REPLY", `The host's agent answered ${p.op} with a malformed reply`));
    }
  }

  /** Logs a refused frame; a request it names fails now rather than at its timeout. */
  refuse(reason: string, id: number | null): void {
    this.host.countError();
    log("warn", "host.frame_refused", `refused a control frame: ${reason}`, { server: this.host.serverId() });
    if (id === null) return;
    const entry = this.inflight.get(id);
    if (entry?.kind === "control") {
      this.inflight.take(id);
      clearTimeout(entry.timer);
      entry.reject(new ApiError(502, "AGENT_BAD_REPLY", `The host's agent answered ${entry.op} with a malformed frame`));
    } else if (entry?.kind === "exec") {
      this.execRelay.badReply(id);
    } else if (entry?.kind === "tun") {
      this.tunnel.badReply(id);
    } else if (entry?.kind === "ws") {
      this.wsTunnel.badReply(id);
    }
  }

  /** The control link is gone: every control request fails with `error`, every exec call, tunnel and proxied socket ends. */
  gone(error: ApiError): void {
    const exec: ExecJob[] = [];
    const calls: TunnelCallEntry[] = [];
    const sockets: WsTunnelEntry[] = [];
    for (const [, entry] of this.inflight.drain()) {
      if (entry.kind === "exec") exec.push(entry);
      else if (entry.kind === "tun") calls.push(entry);
      else if (entry.kind === "ws") sockets.push(entry);
      else {
        clearTimeout(entry.timer);
        entry.reject(error);
      }
    }
    this.execRelay.agentGone(exec);
    this.tunnel.agentGone(calls);
    this.wsTunnel.agentGone(sockets);
  }

  /** Sends a request to the agent and waits for its reply. */
  request<K extends ControlOp>(op: K, params: ControlOps[K]["params"], timeoutMs = AGENT_REQUEST_TIMEOUT_MS): Promise<ControlOps[K]["result"]> {
    const ws = this.socket();
    if (!ws) return Promise.reject(new ApiError(503, "AGENT_OFFLINE", "Terminal service unavailable: the host's agent is offline"));
    const busy = () => new ApiError(429, "AGENT_BUSY", "Too many requests in flight to this host's agent");
    if (this.inflight.count("control") >= MAX_PENDING_REQUESTS) return Promise.reject(busy());
    return new Promise((resolve, reject) => {
      const entry: Pending = { kind: "control", op, resolve: resolve as (v: unknown) => void, reject, timer: null };
      const id = this.inflight.open(entry);
      if (id === null) return reject(busy());
      entry.timer = setTimeout(() => {
        if (this.inflight.take(id, entry)) reject(new ApiError(504, "AGENT_TIMEOUT", `The host's agent did not answer ${op} in time`));
      }, timeoutMs);
      ws.send(encodeControl({ t: "req", id, op, params } as ControlRequest));
    });
  }
}
