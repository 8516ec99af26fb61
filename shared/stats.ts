/**
 * The shape of `GET /api/v1/admin/stats` (edge/stats.ts counts, edge/stats-api.ts answers).
 */
import type { AgentFacts } from "./links/control.ts";

/** Cumulative counters of one server (names are the JSON fields of the stats API). */
export interface Counters {
  /** Sessions created through the edge. */
  sessions_created: number;
  /** Input bytes from clients to PTYs. */
  bytes_in: number;
  /** Output bytes from PTYs to the edge. */
  bytes_out: number;
  /** Client WebSockets accepted (the terminal session API and raw Open Terminal sockets). */
  client_connects: number;
  /** Agent links accepted: control links and data links. */
  agent_connects: number;
  /** Agent links that came back: a control link after the first, a data link for a known session. */
  reconnects: number;
  /** Errors caught in this server's DOs (malformed frames, failed handlers). */
  errors: number;
}

/** One server as the stats API shows it. */
export interface ServerStats extends Counters {
  id: string;
  online: boolean;
  /** What the agent said about itself and its host in its last hello, or null before any. */
  agent: AgentFacts | null;
  /** When the current (or last) control link came up, ISO 8601. */
  connected_at: string | null;
  /** When the agent was last heard from: now while online, else when its link closed. */
  last_seen: string | null;
  /** Sessions in the server's index now. */
  sessions: number;
  /** Clients attached to its terminals now. */
  clients: number;
}

/** The stats API's body. */
export interface StatsBody {
  generated_at: string;
  totals: Counters & { servers: number; agents_online: number; sessions: number; clients: number };
  servers: ServerStats[];
}
