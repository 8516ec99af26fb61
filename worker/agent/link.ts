/**
 * A WebSocket to the edge that stays up: it dials, and when the link drops it dials again with
 * capped exponential backoff and jitter. Heartbeats (protocol pings, which the edge answers
 * without waking a Durable Object) detect links that died without a close.
 */
import WebSocket from "ws";

/** First retry delay, in milliseconds. */
export const BACKOFF_BASE_MS = 250;
/** Longest retry delay, in milliseconds. */
export const BACKOFF_MAX_MS = 15_000;
/** Interval between heartbeats, in milliseconds. */
export const HEARTBEAT_INTERVAL_MS = 10_000;
/** A link with no pong for this long is declared dead, in milliseconds. */
export const HEARTBEAT_TIMEOUT_MS = 25_000;
/** How long one dial may take before it is abandoned, in milliseconds. */
export const DIAL_TIMEOUT_MS = 10_000;

/** The WebSocket URL of `path` on the edge at `edge` (http→ws, https→wss). */
export function wsUrl(edge: string, path: string): string {
  const url = new URL(path, edge);
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  return url.toString();
}

export interface LinkOptions {
  url: string;
  token: string;
  /** Called with each new open socket; the first frame the link sends goes here. */
  onOpen(ws: WebSocket): void;
  onMessage(data: Buffer, isBinary: boolean): void;
  onClose?(code: number, reason: string): void;
  /** Close codes after which the link gives up instead of redialing (e.g. "session ended"). */
  finalCodes?: number[];
  /** Logs a line about the link (never the token). */
  log?(line: string): void;
  /** Interval between heartbeats, in ms (default HEARTBEAT_INTERVAL_MS). */
  heartbeatIntervalMs?: number;
  /** No pong for this long declares the link dead, in ms (default HEARTBEAT_TIMEOUT_MS). */
  heartbeatTimeoutMs?: number;
}

/** The delay before retry number `attempt` (0-based): half fixed, half random ("equal jitter") under a capped exponential. */
export function backoffDelay(attempt: number, random = Math.random): number {
  const cap = Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** Math.min(attempt, 16));
  return Math.round(cap / 2 + random() * (cap / 2));
}

export class Link {
  private ws: WebSocket | null = null;
  private attempt = 0;
  private retryTimer: NodeJS.Timeout | null = null;
  private heartbeat: NodeJS.Timeout | null = null;
  private lastPong = 0;
  private stopped = false;

  constructor(private readonly options: LinkOptions) {}

  get socket(): WebSocket | null {
    return this.ws && this.ws.readyState === WebSocket.OPEN ? this.ws : null;
  }

  start(): void {
    this.stopped = false;
    this.dial();
  }

  /** Sends if the link is up; returns false (and drops the frame) otherwise. */
  send(data: Uint8Array | string): boolean {
    const ws = this.socket;
    if (!ws) return false;
    ws.send(data);
    return true;
  }

  /**
   * Sends `head` then `payload` as one binary message, in two fragments, so a big payload is
   * written from where it lies instead of being copied behind its header; false (nothing sent)
   * when the link is down. Both fragments go out in this call: nothing can come between them.
   */
  sendParts(head: Uint8Array, payload: Uint8Array): boolean {
    const ws = this.socket;
    if (!ws) return false;
    ws.send(head, { binary: true, fin: false });
    ws.send(payload, { binary: true, fin: true });
    return true;
  }

  /** Bytes queued in the socket but not yet handed to the kernel. */
  get bufferedAmount(): number {
    return this.ws?.bufferedAmount ?? 0;
  }

  stop(code = 1000, reason = "agent stopping"): void {
    this.stopped = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    this.stopHeartbeat();
    const ws = this.ws;
    this.ws = null;
    if (ws && ws.readyState !== WebSocket.CLOSED) ws.close(code, reason);
  }

  /** Drops the current socket as a network failure would; the link redials. For tests and ops. */
  drop(): void {
    this.ws?.terminate();
  }

  private dial(): void {
    if (this.stopped) return;
    const ws = new WebSocket(this.options.url, {
      headers: { Authorization: `Bearer ${this.options.token}` },
      handshakeTimeout: DIAL_TIMEOUT_MS,
      perMessageDeflate: false,
      // An all-zero mask lets ws skip masking (a copy of every byte sent). Masking protects
      // intermediaries from script-chosen bytes in browsers; the agent is not a browser.
      generateMask: (mask: Buffer) => void mask.fill(0),
      maxPayload: 64 << 20,
    });
    this.ws = ws;
    ws.on("open", () => {
      this.attempt = 0;
      this.lastPong = Date.now();
      this.startHeartbeat(ws);
      this.options.onOpen(ws);
    });
    ws.on("message", (data: Buffer, isBinary: boolean) => {
      if (this.ws === ws) this.options.onMessage(data, isBinary);
    });
    ws.on("pong", () => {
      this.lastPong = Date.now();
    });
    ws.on("unexpected-response", (_req, res) => {
      this.options.log?.(`edge refused the link: HTTP ${res.statusCode}`);
      ws.terminate();
    });
    ws.on("error", (error) => {
      this.options.log?.(`link error: ${error.message}`);
    });
    ws.on("close", (code, reason) => {
      if (this.ws !== ws) return;
      this.ws = null;
      this.stopHeartbeat();
      this.options.onClose?.(code, reason.toString());
      if (this.options.finalCodes?.includes(code)) this.stopped = true;
      this.scheduleRetry();
    });
  }

  private scheduleRetry(): void {
    if (this.stopped || this.retryTimer) return;
    const delay = backoffDelay(this.attempt++);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      this.dial();
    }, delay);
    this.retryTimer.unref?.();
  }

  private startHeartbeat(ws: WebSocket): void {
    this.stopHeartbeat();
    const { heartbeatIntervalMs = HEARTBEAT_INTERVAL_MS, heartbeatTimeoutMs = HEARTBEAT_TIMEOUT_MS } = this.options;
    this.heartbeat = setInterval(() => {
      if (Date.now() - this.lastPong > heartbeatTimeoutMs) {
        this.options.log?.("heartbeat timed out; redialing");
        ws.terminate();
        return;
      }
      ws.ping();
    }, heartbeatIntervalMs);
    this.heartbeat.unref?.();
  }

  private stopHeartbeat(): void {
    if (this.heartbeat) clearInterval(this.heartbeat);
    this.heartbeat = null;
  }
}
