/**
 * What the HostDO's relays (exec-relay.ts, http-tunnel.ts, ws-tunnel.ts) share: sending on the
 * agent's control link, their entries in the HostDO's one request table (host-link.ts), and the
 * 503 they answer while the agent is away. A send returns false when the link is away or closing
 * (the relay then answers its caller itself; `agentGone()` follows).
 */
import type { Correlator } from "../shared/links/correlator.ts";
import { ApiError, errorResponse } from "./errors.ts";

/** Sends `msg` as a JSON text frame, or bytes as a binary frame, on `ws`. */
export function sendToAgent(ws: WebSocket | null, msg: object | Uint8Array): boolean {
  if (!ws) return false;
  try {
    ws.send(msg instanceof Uint8Array ? msg : JSON.stringify(msg));
    return true;
  } catch {
    return false;
  }
}

/** 503 in the Open Terminal family's shape: the agent's control link is down. */
export function offline(message = "Terminal service unavailable: the host's agent is offline"): Response {
  return errorResponse("open-terminal", new ApiError(503, "AGENT_OFFLINE", message));
}

/** An HTTP caller waiting on the agent: answered once (`resolve`), then, for a stream, written to. */
export interface HttpWaiter {
  /** Set until the HTTP answer (JSON, or a stream's head) has been given. */
  resolve: ((response: Response) => void) | null;
  /** Set once streaming. */
  writer: WritableStreamDefaultWriter<Uint8Array> | null;
}

/** Gives `w` its HTTP answer, unless it already has one. */
export function answerOnce(w: HttpWaiter, response: Response): void {
  const resolve = w.resolve;
  w.resolve = null;
  resolve?.(response);
}

/** The agent went away from `w`: a waiting caller is answered 503, a stream is cut short (aborted, so the client sees it incomplete). */
export function agentWentAway(w: HttpWaiter): void {
  answerOnce(w, offline("The host's agent went offline before answering"));
  w.writer?.abort(new Error("the host's agent went offline")).catch(() => {});
}

/** A relay of the HostDO: its entries are those of kind `kind` in the shared request table. */
export abstract class AgentRelay<E extends { kind: string }> {
  /** The kind of this relay's entries in the table. */
  protected abstract readonly kind: E["kind"];

  /**
   * `agent()` is the open control link, or null while the agent is away; `table` is the
   * HostDO's request table, shared with the other relays and the control requests. Its ids stay
   * below 2^32 (a tunnel's rid rides in 4 bytes of every binary frame).
   */
  constructor(
    private readonly agent: () => WebSocket | null,
    protected readonly table: Correlator<E | { kind: string }>,
  ) {}

  /** This relay's entries in flight. */
  get size(): number {
    return this.table.count(this.kind);
  }

  /** True while the agent's control link is open. */
  protected online(): boolean {
    return this.agent() !== null;
  }

  /** This relay's entry under `id`, if that id is one of its. */
  protected entry(id: number): E | undefined {
    const entry = this.table.get(id);
    return entry?.kind === this.kind ? (entry as E) : undefined;
  }

  /** One frame to the agent (JSON text for an object, binary for bytes); false when it cannot go. */
  protected toAgent(msg: object | Uint8Array): boolean {
    return sendToAgent(this.agent(), msg);
  }
}
