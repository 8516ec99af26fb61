/**
 * The WebSockets a TerminalDO accepts, as the DO sees them: their tags (the agent's data link,
 * session-API clients; raw Open Terminal clients are tagged in raw-terminal.ts), what a client
 * socket's attachment remembers across hibernation, the {@link Sink} each socket is adapted to
 * for TerminalHub (and the reverse lookup for attachments), and the per-frame byte counting that
 * feeds the terminal's stats. Holds no session state: terminal-do.ts owns that.
 */
import { ClientOp } from "../shared/links/client.ts";
import { AgentOp, OUTPUT_HEADER_BYTES } from "../shared/links/data.ts";
import { rawSinkOf, RAW_TAG } from "./raw-terminal.ts";
import type { CounterBatch } from "./stats.ts";
import type { Sink } from "./terminal-hub.ts";

/** What a client socket's attachment remembers across hibernation. */
export interface ClientAttachment {
  id: string;
  readonly: boolean;
  paused: boolean;
  /** The credential that opened it when it can end (`share:<id>`): see terminal-credentials.ts. */
  credential?: string;
  /** When that credential expires (epoch ms): the socket is closed then. */
  until?: number;
  /** The user behind a user's token or browser session (`credential` `token:…`/`session:…`), for revoking all of theirs. */
  user?: string;
}

/** Tag of the agent's data-link socket (at most one open). */
export const AGENT_TAG = "agent";
/** Tag of a session-API client socket. */
export const CLIENT_TAG = "client";

/** Adapts a WebSocket to a Sink; writes after close are dropped, never thrown. */
function sinkOf(ws: WebSocket): Sink {
  return {
    send(bytes) {
      try {
        ws.send(bytes);
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

/** One Sink per open socket (raw clients get the raw sink), and the socket behind each sink. */
export class SocketSinks {
  private readonly sinks = new Map<WebSocket, Sink>();
  /** The socket behind each sink (the reverse of `sinks`), for attachments. */
  private readonly sockets = new WeakMap<Sink, WebSocket>();

  constructor(private readonly ctx: DurableObjectState) {}

  /** The socket's sink, made on first use. */
  sinkFor(ws: WebSocket): Sink {
    let sink = this.sinks.get(ws);
    if (!sink) {
      sink = this.ctx.getTags(ws).includes(RAW_TAG) ? rawSinkOf(ws) : sinkOf(ws);
      this.sinks.set(ws, sink);
      this.sockets.set(sink, ws);
    }
    return sink;
  }

  /** The socket a sink writes to, if it is still known. */
  socketOf(sink: Sink): WebSocket | undefined {
    return this.sockets.get(sink);
  }

  /** Forgets a closed socket's sink. */
  delete(ws: WebSocket): void {
    this.sinks.delete(ws);
  }
}

/** Output bytes from the agent, input bytes from session-API clients (raw sockets are not counted). */
export function countFrameBytes(counters: CounterBatch, tags: string[], message: ArrayBuffer | string): void {
  if (typeof message === "string") {
    if (tags.includes(CLIENT_TAG) && !tags.includes(RAW_TAG)) counters.add("bytes_in", new TextEncoder().encode(message).byteLength);
    return;
  }
  const op = message.byteLength > 0 ? new Uint8Array(message, 0, 1)[0] : -1;
  if (tags.includes(AGENT_TAG)) {
    if (op === AgentOp.OUTPUT) counters.add("bytes_out", Math.max(0, message.byteLength - OUTPUT_HEADER_BYTES - 1));
  } else if (!tags.includes(RAW_TAG) && op === ClientOp.INPUT) counters.add("bytes_in", message.byteLength - 1);
}
