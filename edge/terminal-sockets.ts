/**
 * The WebSockets a TerminalDO accepts, as the DO sees them: their tags (the agent's data link,
 * session-API clients; raw Open Terminal clients are tagged in raw-terminal.ts), what a client
 * socket's attachment remembers across hibernation, the `info` frame a client is sent when it
 * joins, and the per-frame byte counting that feeds the terminal's stats. Holds no session state
 * and no sockets: terminal-do.ts owns those (and adapts each socket to a TerminalHub Sink).
 */
import { ClientOp, type ServerFrame, type TerminalSize } from "../shared/links/client.ts";
import { AgentOp, OUTPUT_HEADER_BYTES } from "../shared/links/data.ts";
import type { SessionMeta } from "../shared/links/session.ts";
import { RAW_TAG } from "./raw-terminal.ts";
import type { CounterBatch } from "./stats.ts";
import type { SavedReading } from "./client-reading.ts";

/** What a client socket's attachment remembers across hibernation. */
export interface ClientAttachment {
  id: string;
  readonly: boolean;
  paused: boolean;
  /** A writer told the PTY's size when another client resizes it (ClientState.sizeUpdates). */
  sizeUpdates?: boolean;
  /** What is kept of its reading across hibernation (client-reading.ts); absent: nothing yet. */
  reading?: SavedReading;
  /** The credential that opened it when it can end (`share:<id>`): see terminal-admission.ts. */
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

/** What a joining client is told about the terminal (the `info` frame's fields, shared/links/client.ts). */
export interface InfoFacts {
  serverId: string;
  meta: SessionMeta | null;
  size: TerminalSize;
  title: string | null;
  clients: number;
  agentOnline: boolean;
}

/** The `info` frame for a client (`readonly` is that client's own). */
export function infoFrame(facts: InfoFacts, readonly: boolean): ServerFrame {
  const { meta } = facts;
  return {
    t: "info",
    info: {
      server_id: facts.serverId,
      terminal_id: meta?.terminal_id ?? 0,
      shell: meta?.shell ?? "",
      cwd: meta?.cwd ?? "",
      cols: facts.size.cols,
      rows: facts.size.rows,
      readonly,
      clients: facts.clients,
      started_at: meta?.started_at ?? "",
      ephemeral: meta?.ephemeral ?? false,
      agent_online: facts.agentOnline,
      ...(facts.title ? { title: facts.title } : {}),
    },
  };
}
