/**
 * Raw clients of a TerminalDO: the Open Terminal WebSocket `/api/terminals/{id}`, at the top level
 * and, under a server's mount, as the terminals proxy's WebSocket (its first message checked by
 * the host's `verifyProxy`: terminal-ws-auth.ts, ws-proxy.ts). The socket is
 * accepted without credentials; its first text message must be `{"type":"auth","token":…}`
 * within TERMINAL_WS_AUTH_TIMEOUT_MS (else close 4001). Once in, binary frames are raw PTY bytes
 * both ways (no type byte) and a text `{"type":"resize","cols","rows"}` resizes. The token is the
 * API key, a user's `ett_` token or a share link's `ets_` token (terminal-admission.ts authorizeRawToken): a
 * caller with only `read` access joins read-only (its input and resizes are dropped), one with
 * no grant on this terminal is closed 4003.
 *
 * An unauthenticated socket costs nothing that key holders need: it holds no client slot (it
 * is tagged RAW_TAG only, and joins the hub, and the count of clients, only once its key checks
 * out); at most RAW_PENDING_MAX wait per terminal (a newer one evicts the oldest, so a keyed
 * client always gets its turn); each waits at most the auth window. It learns nothing about
 * which sessions exist: sockets for unknown ids are accepted alike (ids that are not terminal
 * ids go to the TerminalDO of NO_SESSION_TERMINAL_ID), and existence is checked only after the
 * key (4004 then).
 *
 * The auth window is kept by the TerminalDO's alarm (AlarmSlots), not a timer: timers do not
 * keep a Durable Object in memory, and a hibernated one wakes only for an event. The deadline
 * sits in the socket's attachment, so it survives hibernation too.
 *
 * A raw client is an ordinary TerminalHub client behind an adapter: its Sink forwards only the
 * payload of OUTPUT frames (live output and the joiner's repaint alike) and drops INFO, TITLE,
 * ERROR and EXIT, which this protocol has no words for; its input is wrapped in INPUT/RESIZE
 * frames before the hub sees it. So the hub needs no notion of raw clients.
 */
import { ClientOp, encodeClientFrame, frame, ServerOp } from "../shared/links/client.ts";
import { INPUT_IN_FLIGHT_MAX_BYTES } from "../shared/links/data.ts";
import { parseTerminalWsText, TERMINAL_WS_AUTH_TIMEOUT_MS, TERMINAL_WS_PENDING_MAX, TerminalWsClose } from "../shared/open-terminal.ts";
import type { CloseInfo, Credential } from "./live-sockets.ts";
import { ProxyRefusals, refusalClose } from "./proxy-checks.ts";
import { CLIENT_FRAME_MAX_BYTES, type ClientState, type Sink, type TerminalHub } from "./terminal-hub.ts";
import type { RawOwned, RawProxy } from "./terminal-ws-auth.ts";
import { firstMessageToken } from "./ws-proxy.ts";
import { hasRoom } from "./client-slots.ts";

/** Tag of raw client sockets (the only one: they are not counted as clients until they authenticate). */
export const RAW_TAG = "raw";
/** Unauthenticated raw sockets one terminal holds at once; a newer one closes the oldest (4001). */
export const RAW_PENDING_MAX = TERMINAL_WS_PENDING_MAX;
/** The terminal id whose TerminalDO answers raw sockets for ids that are not terminal ids. */
export const NO_SESSION_TERMINAL_ID = 0;
/** Messages a raw client may send while its auth is being checked; more close it. */
export const RAW_PREAUTH_QUEUE_MAX = 64;
/**
 * Largest binary message (keystrokes, a paste) a raw client may send, in bytes: what the hub may
 * have in flight to the agent at once (INPUT_IN_FLIGHT_MAX_BYTES); a larger one closes the socket
 * with RAW_TOO_BIG_CLOSE, as a WebSocket server past its message size does.
 */
export const RAW_MESSAGE_MAX_BYTES = INPUT_IN_FLIGHT_MAX_BYTES;
/** A raw message is relayed to the hub in INPUT frames of at most this much input, in bytes. */
const RAW_INPUT_PIECE_BYTES = CLIENT_FRAME_MAX_BYTES - 1;
/** Close for a message over RAW_MESSAGE_MAX_BYTES (RFC 6455's "message too big"). */
export const RAW_TOO_BIG_CLOSE = { code: 1009, reason: "Message too big" } as const;
/** Close code when the token is valid but holds no grant on this terminal (as the terminals proxy's 4003). */
const ACCESS_DENIED = refusalClose(ProxyRefusals.ACCESS_DENIED);
/** Close code when a session already has as many clients as it may (the reference's "already connected"). */
const TOO_MANY_CLIENTS = { code: TerminalWsClose.ALREADY_CONNECTED.code, reason: "Too many clients on this session" };

/** What a raw socket's attachment remembers across hibernation. */
export interface RawAttachment {
  id: string;
  /** Joined with `read` access: input and resizes are dropped (the hub refuses them). */
  readonly: boolean;
  paused: false;
  raw: true;
  authed: boolean;
  /** Epoch ms by which an unauthenticated socket must have sent its auth message. */
  authDeadline: number;
  /** Set for the terminals proxy's WebSocket (a server's mount): what its auth checks. */
  proxy?: RawProxy;
  /** Set for a top-level `/api/terminals/{id}` socket: the session's owner, checked by its auth. */
  owned?: RawOwned;
}

/** True for the attachment of a raw socket that has not authenticated yet. */
export function isPendingRaw(a: unknown): a is RawAttachment {
  return typeof a === "object" && a !== null && (a as RawAttachment).raw === true && (a as RawAttachment).authed !== true;
}

/** A Sink for a raw socket: PTY bytes only. Writes after close are dropped, never thrown. */
export function rawSinkOf(ws: WebSocket): Sink {
  return {
    send(bytes) {
      if (bytes[0] !== ServerOp.OUTPUT || bytes.byteLength <= 1) return;
      try {
        ws.send(bytes.subarray(1));
      } catch {
        /* closed underneath us: its close event cleans up */
      }
    },
    close(code, reason) {
      try {
        ws.close(code, reason);
      } catch {
        /* already closed */
      }
    },
  };
}

/**
 * What a first message's token may do here: nothing (null: close 4001), no access to this
 * terminal (`denied`: close 4003), not this session, another user's (`foreign`: close 4004, as
 * for a session that does not exist), or join, read-only or not; a credential that ends (a share
 * link) names itself and its expiry so its socket closes with it (terminal-do.ts).
 */
export type RawGrant = null | "denied" | "foreign" | JoinGrant;
/** How a client joins: read-only or not; a credential that can end, its expiry and its user (live-sockets.ts). */
export interface JoinGrant {
  readonly: boolean;
  credential?: string;
  until?: number;
  user?: string;
}

/** What RawClients needs from its TerminalDO. */
export interface RawHost {
  readonly ctx: DurableObjectState;
  readonly hub: TerminalHub;
  /**
   * Checks a first message's token: the API key, a user's token or a share link's, its access to
   * this terminal and, when `owned` is given (a top-level `/api/terminals/{id}` socket), the session's owner.
   */
  authorize(token: string, owned?: RawOwned): Promise<RawGrant>;
  /** Checks a proxy-mount socket's first-message token (see firstMessageToken) and the proxy's checks. */
  verifyProxy(token: string | undefined | null, proxy: RawProxy): Promise<{ ok: true; grant: JoinGrant } | { ok: false; close: CloseInfo }>;
  /** Just before a client with a credential that can end joins: null admits it, else how to close it. */
  admit(cred: Credential): Promise<CloseInfo | null>;
  /**
   * Once such a client's attachment names its credential: whether it may still be here (its
   * access may have been taken away since its token was checked); false when it was closed.
   */
  confirm(ws: WebSocket): Promise<boolean>;
  /** The session exists here (it has metadata). */
  sessionKnown(): boolean;
  maxClients(): number;
  sinkFor(ws: WebSocket): Sink;
  /** A raw client authenticated and joined (cancel idle clean-up). */
  onJoin(): void;
  /** Wake this object at `at` (epoch ms) to call `onDeadline()`; null: no auth window is open. */
  armAuthDeadline(at: number | null): Promise<void>;
}

interface Pending {
  /** Set while the token is being checked; later messages wait here, in order. */
  queue: (ArrayBuffer | string)[] | null;
}

function closeSocket(ws: WebSocket, close: { code: number; reason: string }): void {
  try {
    ws.close(close.code, close.reason);
  } catch {
    /* already closed */
  }
}

export class RawClients {
  private readonly pending = new Map<WebSocket, Pending>();

  constructor(private readonly host: RawHost) {}

  /**
   * Accepts a raw client, whether or not the session exists; it has TERMINAL_WS_AUTH_TIMEOUT_MS
   * to authenticate. Past RAW_PENDING_MAX waiting sockets, the one that has waited longest goes.
   */
  accept(proxy?: RawProxy, owned?: RawOwned): Response {
    const { ctx } = this.host;
    const waiting = this.waiting();
    if (waiting.length >= RAW_PENDING_MAX) {
      waiting.sort((a, b) => a[1].authDeadline - b[1].authDeadline);
      for (const [ws] of waiting.slice(0, waiting.length - RAW_PENDING_MAX + 1)) this.reject(ws, TerminalWsClose.AUTH_TIMEOUT);
    }
    const [client, server] = Object.values(new WebSocketPair()) as [WebSocket, WebSocket];
    ctx.acceptWebSocket(server, [RAW_TAG]);
    const attachment: RawAttachment = {
      id: crypto.randomUUID(),
      readonly: false,
      paused: false,
      raw: true,
      authed: false,
      authDeadline: Date.now() + TERMINAL_WS_AUTH_TIMEOUT_MS,
      ...(proxy ? { proxy } : {}),
      ...(owned ? { owned } : {}),
    };
    server.serializeAttachment(attachment);
    void this.rearm();
    return new Response(null, { status: 101, webSocket: client });
  }

  /** A socket found unauthenticated after a wake-up: its deadline still holds. */
  restore(ws: WebSocket, attachment: RawAttachment): void {
    if (attachment.authDeadline <= Date.now()) closeSocket(ws, TerminalWsClose.AUTH_TIMEOUT);
  }

  /** The auth deadline alarm: sockets still silent are closed 4001. */
  onDeadline(now = Date.now()): void {
    for (const [ws, attachment] of this.waiting()) {
      if (attachment.authDeadline <= now) this.reject(ws, TerminalWsClose.AUTH_TIMEOUT);
    }
    void this.rearm();
  }

  async onMessage(ws: WebSocket, message: ArrayBuffer | string): Promise<void> {
    const attachment = ws.deserializeAttachment() as RawAttachment | null;
    if (!attachment) return;
    if (attachment.authed) return this.forward(ws, message);
    if (attachment.authDeadline <= Date.now()) return this.reject(ws, TerminalWsClose.AUTH_TIMEOUT);
    let pending = this.pending.get(ws);
    if (!pending) {
      pending = { queue: null };
      this.pending.set(ws, pending);
    }
    if (pending.queue) {
      if (pending.queue.length >= RAW_PREAUTH_QUEUE_MAX) return this.reject(ws, TerminalWsClose.AUTH_TIMEOUT);
      pending.queue.push(message);
      return;
    }
    const token = firstMessageToken(message);
    if (token === null && !attachment.proxy) return this.reject(ws, TerminalWsClose.AUTH_TIMEOUT);
    pending.queue = [];
    let grant: JoinGrant;
    if (attachment.proxy) {
      const verdict = await this.host.verifyProxy(token, attachment.proxy);
      if (this.pending.get(ws) !== pending) return; // timed out meanwhile
      if (!verdict.ok) return this.reject(ws, verdict.close);
      grant = verdict.grant;
    } else {
      const found = token === undefined || token === "" || token === null ? null : await this.host.authorize(token, attachment.owned);
      if (this.pending.get(ws) !== pending) return; // timed out meanwhile
      if (found === null) return this.reject(ws, TerminalWsClose.INVALID_KEY);
      if (found === "denied") return this.reject(ws, ACCESS_DENIED);
      if (found === "foreign") return this.reject(ws, TerminalWsClose.NOT_FOUND);
      grant = found;
    }
    // Only a caller with access learns whether the session exists, or that it is full.
    if (!this.host.sessionKnown()) return this.reject(ws, TerminalWsClose.NOT_FOUND);
    if (!hasRoom(this.host.hub.clientCount, this.host.maxClients(), grant.readonly)) return this.reject(ws, TOO_MANY_CLIENTS);
    if (grant.credential !== undefined && grant.until !== undefined) {
      const refused = await this.host.admit({ id: grant.credential, userId: grant.user ?? "", expiresAt: grant.until });
      if (this.pending.get(ws) !== pending) return;
      if (refused) return this.reject(ws, refused);
    }
    const joined: RawAttachment & { credential?: string; until?: number; user?: string } = {
      ...attachment,
      authed: true,
      readonly: grant.readonly,
      ...(grant.credential !== undefined ? { credential: grant.credential } : {}),
      ...(grant.until !== undefined ? { until: grant.until } : {}),
      ...(grant.user !== undefined ? { user: grant.user } : {}),
    };
    if (joined.credential !== undefined) {
      // Named, not yet in: a revocation's sweep now finds it, and its messages still wait here.
      ws.serializeAttachment({ ...joined, authed: false });
      if (!(await this.host.confirm(ws)) || this.pending.get(ws) !== pending || ws.readyState !== WebSocket.OPEN) {
        this.pending.delete(ws);
        return;
      }
    }
    this.pending.delete(ws);
    ws.serializeAttachment(joined);
    const state: ClientState = { id: joined.id, readonly: grant.readonly, paused: false, offset: null, trustNext: false };
    this.host.hub.addClient(this.host.sinkFor(ws), state);
    this.host.onJoin();
    void this.rearm();
    for (const queued of pending.queue) this.forward(ws, queued);
  }

  /** Open raw sockets that have not authenticated yet, with their attachments. */
  private waiting(): [WebSocket, RawAttachment][] {
    const out: [WebSocket, RawAttachment][] = [];
    for (const ws of this.host.ctx.getWebSockets(RAW_TAG)) {
      if (ws.readyState !== WebSocket.OPEN) continue;
      const attachment: unknown = ws.deserializeAttachment();
      if (isPendingRaw(attachment)) out.push([ws, attachment]);
    }
    return out;
  }

  /** Points the auth alarm at the earliest open auth window. */
  private async rearm(): Promise<void> {
    let earliest: number | null = null;
    for (const [, attachment] of this.waiting()) earliest = Math.min(earliest ?? Infinity, attachment.authDeadline);
    await this.host.armAuthDeadline(earliest);
  }

  private reject(ws: WebSocket, close: { code: number; reason: string }): void {
    this.pending.delete(ws);
    closeSocket(ws, close);
  }

  /**
   * An authenticated client's message, framed once as the hub's INPUT or RESIZE. A binary message
   * larger than one INPUT frame (a big paste) goes as several, in order; past RAW_MESSAGE_MAX_BYTES
   * the socket is closed 1009, since this protocol has no other word for a refusal.
   */
  private forward(ws: WebSocket, message: ArrayBuffer | string): void {
    const sink = this.host.sinkFor(ws);
    if (typeof message !== "string") {
      if (message.byteLength > RAW_MESSAGE_MAX_BYTES) return closeSocket(ws, RAW_TOO_BIG_CLOSE);
      const bytes = new Uint8Array(message);
      let at = 0;
      do {
        this.host.hub.onClientFrame(sink, "input", frame(ClientOp.INPUT, bytes.subarray(at, at + RAW_INPUT_PIECE_BYTES)));
        at += RAW_INPUT_PIECE_BYTES;
      } while (at < bytes.byteLength);
      return;
    }
    const parsed = parseTerminalWsText(message);
    if (parsed?.type === "resize") {
      this.host.hub.onClientFrame(sink, "resize", encodeClientFrame({ t: "resize", size: { cols: parsed.cols, rows: parsed.rows } }));
    }
    // Anything else (a repeated auth, unknown JSON) is ignored, as the reference does.
  }
}
