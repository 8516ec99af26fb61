// One terminal's WebSocket to the edge, kept alive across drops: heartbeats detect dead links,
// failures are diagnosed (session gone / agent offline / network), reconnects back off with
// jitter, input typed meanwhile is queued (bounded) and PAUSE/RESUME are replayed on a new socket.
// Frames are encoded and decoded only by shared/links/client.ts.
import {
  type ServerFrame,
  type TerminalSize,
  decodeServerFrame,
  encodeClientFrame,
} from "../../shared/links/client.ts";
import { reconnectDelay } from "./backoff.ts";
import { InputQueue } from "./input-queue.ts";

/** How often the client pings an otherwise quiet socket, in milliseconds. */
export const PING_INTERVAL_MS = 10_000;
/** A ping unanswered (no frame at all) this long means the link is dead, in milliseconds. */
export const PONG_TIMEOUT_MS = 10_000;
/** A socket not open after this long is abandoned and retried, in milliseconds. */
export const CONNECT_TIMEOUT_MS = 10_000;
/** Input sent this recently may have been refused when the agent drops, in milliseconds. */
export const INPUT_IN_FLIGHT_MS = 2_000;

/** Why a connection is waiting to reconnect. */
export type WaitReason = "dropped" | "network" | "agent-offline" | "offline";
/** Why a connection stopped for good. */
export type EndReason = "exit" | "gone" | "forbidden" | "unauthorized" | "closed";

/** The connection's state as the UI shows it. */
export type Phase =
  | { kind: "connecting"; attempt: number }
  | { kind: "open" }
  | { kind: "waiting"; why: WaitReason; retryAt: number | null }
  | { kind: "ended"; why: EndReason; detail?: string };

/** What an HTTP look at the session list says about a failed connection. */
export type ProbeResult = "alive" | "agent-offline" | "gone" | "forbidden" | "unauthorized" | "network";

/** Outcome of offering input: sent now, held until reconnected, or refused (tell the user). */
export type InputOutcome = "sent" | "queued" | "refused";

export interface ConnectionOptions {
  /** The WebSocket URL for the next attempt (built fresh: it carries the current size). */
  url(): string;
  /** Subprotocols to offer (a share link's token rides as one: share-page.ts); none by default. */
  protocols?(): string[];
  /** Asks the HTTP API why the socket failed (a refused upgrade is opaque to a browser). */
  probe(): Promise<ProbeResult>;
  /** Every decoded frame except PONG, in order. */
  onFrame(frame: ServerFrame): void;
  /** Every phase change. */
  onPhase(phase: Phase): void;
}

/** A self-healing terminal connection. Call `start()` once and `close()` when done. */
export class TerminalConnection {
  private ws: WebSocket | null = null;
  private joined = false;
  /** The edge is up but the host's agent is not: input waits here rather than being refused. */
  private agentAway = false;
  private lastInputAt = 0;
  private attempt = 0;
  private current: Phase = { kind: "connecting", attempt: 0 };
  private readonly queue = new InputQueue();
  private wantPaused = false;
  private retryTimer: ReturnType<typeof setTimeout> | undefined;
  private connectTimer: ReturnType<typeof setTimeout> | undefined;
  private pingTimer: ReturnType<typeof setInterval> | undefined;
  private awaitingSince: number | null = null;

  constructor(private readonly opts: ConnectionOptions) {}

  /** The current phase. */
  get phase(): Phase {
    return this.current;
  }

  private get ended(): boolean {
    return this.current.kind === "ended";
  }

  /** Bytes of input held while disconnected. */
  get queuedBytes(): number {
    return this.queue.bytes;
  }

  /** Opens the first connection and starts watching the browser's online state (once). */
  start(): void {
    if (this.ended || this.ws) return;
    addEventListener("offline", this.onBrowserOffline);
    addEventListener("online", this.onBrowserOnline);
    this.connect();
  }

  /** Whether the edge reports the host's agent offline (input is held meanwhile). */
  get agentOffline(): boolean {
    return this.agentAway;
  }

  /**
   * Sends input now; queues it while reconnecting or while the agent is away; refuses it once
   * ended or when the queue is full.
   */
  sendInput(data: Uint8Array): InputOutcome {
    if (this.ended) return "refused";
    if (this.ws && this.joined && !this.agentAway && this.ws.readyState === WebSocket.OPEN) {
      this.ws.send(encodeClientFrame({ t: "input", data }));
      this.lastInputAt = Date.now();
      return "sent";
    }
    return this.queue.push(data) ? "queued" : "refused";
  }

  /**
   * Whether input may have been lost in flight: the agent went away (ERROR AGENT_OFFLINE) within
   * moments of input being sent, and the edge does not deliver input without an agent.
   */
  inputMayBeLost(): boolean {
    return Date.now() - this.lastInputAt < INPUT_IN_FLIGHT_MS;
  }

  /** Tells the edge the new size (dropped while disconnected: the next URL carries it). */
  resize(size: TerminalSize): void {
    this.sendFrame(encodeClientFrame({ t: "resize", size }));
  }

  /** Pauses or resumes output; remembered, and replayed on every new socket. */
  setPaused(paused: boolean): void {
    this.wantPaused = paused;
    this.sendFrame(encodeClientFrame({ t: paused ? "pause" : "resume" }));
  }

  /**
   * Leaves the current socket and joins again at once, for a fresh repaint (after the client
   * dropped output it could not keep up with). No-op unless open.
   */
  resync(): void {
    if (this.current.kind !== "open" || !this.ws) return;
    const ws = this.ws;
    this.detach();
    ws.close(1000, "resync");
    this.connect();
  }

  /** Skips the backoff wait and reconnects now (the "Retry now" button). */
  reconnectNow(): void {
    if (this.current.kind !== "waiting") return;
    this.connect();
  }

  /** Closes for good. */
  close(): void {
    this.end("closed");
  }

  private sendFrame(bytes: Uint8Array): void {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) this.ws.send(bytes);
  }

  private setPhase(phase: Phase): void {
    this.current = phase;
    this.opts.onPhase(phase);
  }

  private connect(): void {
    clearTimeout(this.retryTimer);
    this.setPhase({ kind: "connecting", attempt: this.attempt });
    const ws = new WebSocket(this.opts.url(), this.opts.protocols?.() ?? []);
    ws.binaryType = "arraybuffer";
    this.ws = ws;
    this.joined = false;
    this.agentAway = false;
    this.awaitingSince = null;
    this.connectTimer = setTimeout(() => this.abandon(ws), CONNECT_TIMEOUT_MS);
    ws.onopen = () => {
      clearTimeout(this.connectTimer);
      ws.send(encodeClientFrame({ t: "ack", mark: new Uint8Array(0) })); // this client answers MARKs
      if (this.wantPaused) ws.send(encodeClientFrame({ t: "pause" }));
      this.pingTimer = setInterval(() => this.heartbeat(ws), PING_INTERVAL_MS);
    };
    ws.onmessage = (ev: MessageEvent) => {
      if (ws !== this.ws) return;
      this.awaitingSince = null;
      this.receive(ev.data);
    };
    ws.onclose = () => {
      if (ws !== this.ws) return;
      this.detach();
      void this.dropped();
    };
  }

  private receive(data: unknown): void {
    let frame: ServerFrame;
    try {
      const bytes = typeof data === "string" ? new TextEncoder().encode(data) : new Uint8Array(data as ArrayBuffer);
      frame = decodeServerFrame(bytes);
    } catch (err) {
      console.warn("edgetty: ignoring an undecodable frame:", (err as Error).message);
      return;
    }
    if (frame.t === "pong") return;
    if (frame.t === "mark") {
      // Read off the socket: say so, so the edge keeps sending at full rate (docs/protocol.md).
      this.ws?.send(encodeClientFrame({ t: "ack", mark: frame.mark }));
      return;
    }
    if (frame.t === "exit") this.end("exit");
    if (frame.t === "error" && frame.error.code === "AGENT_OFFLINE") this.agentAway = true;
    if (frame.t === "info") this.agentAway = !frame.info.agent_online;
    this.opts.onFrame(frame);
    if (frame.t === "info") {
      // INFO comes on join and again whenever the agent returns.
      this.joined = true;
      this.attempt = 0;
      this.setPhase({ kind: "open" });
      if (!this.agentAway) for (const chunk of this.queue.drain()) this.sendInput(chunk);
    }
  }

  /** Pings a quiet socket; abandons it when the previous ping got no frame back in time. */
  private heartbeat(ws: WebSocket): void {
    if (ws !== this.ws) return;
    const now = Date.now();
    if (this.awaitingSince !== null) {
      if (now - this.awaitingSince > PONG_TIMEOUT_MS) this.abandon(ws);
      return;
    }
    this.awaitingSince = now;
    ws.send(encodeClientFrame({ t: "ping", data: new Uint8Array(0) }));
  }

  /** Drops a socket we no longer trust without waiting for its close handshake. */
  private abandon(ws: WebSocket): void {
    if (ws !== this.ws) return;
    this.detach();
    ws.close();
    void this.dropped();
  }

  private detach(): void {
    clearTimeout(this.connectTimer);
    clearInterval(this.pingTimer);
    if (this.ws) {
      this.ws.onopen = this.ws.onmessage = this.ws.onclose = null;
      this.ws = null;
    }
    this.joined = false;
  }

  private async dropped(): Promise<void> {
    if (this.current.kind === "ended") return;
    if (!navigator.onLine) {
      this.setPhase({ kind: "waiting", why: "offline", retryAt: null });
      return;
    }
    this.setPhase({ kind: "connecting", attempt: this.attempt + 1 });
    const result = await this.opts.probe().catch((): ProbeResult => "network");
    if (this.ended || this.ws) return; // Closed or reconnected while probing.
    switch (result) {
      case "gone":
        return this.end("gone", "The session no longer exists on this server.");
      case "forbidden":
        return this.end("forbidden", "This user may no longer use the server.");
      case "unauthorized":
        return this.end("unauthorized", "Signed out.");
      case "agent-offline":
        return this.schedule("agent-offline");
      case "network":
        return this.schedule("network");
      case "alive":
        return this.schedule("dropped");
    }
  }

  private schedule(why: WaitReason): void {
    const delay = reconnectDelay(this.attempt++);
    this.setPhase({ kind: "waiting", why, retryAt: Date.now() + delay });
    this.retryTimer = setTimeout(() => this.connect(), delay);
  }

  private end(why: EndReason, detail?: string): void {
    if (this.current.kind === "ended") return;
    clearTimeout(this.retryTimer);
    removeEventListener("offline", this.onBrowserOffline);
    removeEventListener("online", this.onBrowserOnline);
    const ws = this.ws;
    // After EXIT the edge closes the socket itself; anything else we close.
    if (why !== "exit") {
      this.detach();
      ws?.close(1000);
    }
    this.queue.drain();
    this.setPhase(detail === undefined ? { kind: "ended", why } : { kind: "ended", why, detail });
  }

  /** The browser says the network is gone: the socket is almost surely dead, don't wait on it. */
  private readonly onBrowserOffline = (): void => {
    if (this.ws) this.abandon(this.ws);
    else if (this.current.kind === "waiting") {
      clearTimeout(this.retryTimer);
      this.setPhase({ kind: "waiting", why: "offline", retryAt: null });
    }
  };

  private readonly onBrowserOnline = (): void => {
    if (this.current.kind === "waiting") this.connect();
  };
}
