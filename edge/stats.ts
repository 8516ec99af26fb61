/**
 * Numbers an operator can read (`GET /api/v1/admin/stats`). Each server's HostDO keeps its
 * counters in SQLite; its TerminalDOs count in memory and report their deltas to it at most
 * once per STATS_FLUSH_INTERVAL_MS (and at once when a session ends), so a counter survives the
 * session, DO eviction and redeploys, and costs one RPC per second per busy terminal. Deltas not
 * yet flushed when an instance is torn down (a redeploy) are lost: counts are a floor.
 */
import type { AgentFacts } from "../shared/agent-protocol.ts";

/** Longest wait before a TerminalDO reports its counts, in milliseconds. */
export const STATS_FLUSH_INTERVAL_MS = 1_000;

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

export const COUNTER_NAMES: readonly (keyof Counters)[] = [
  "sessions_created",
  "bytes_in",
  "bytes_out",
  "client_connects",
  "agent_connects",
  "reconnects",
  "errors",
];

export function zeroCounters(): Counters {
  return { sessions_created: 0, bytes_in: 0, bytes_out: 0, client_connects: 0, agent_connects: 0, reconnects: 0, errors: 0 };
}

/** Keeps only known counter names with finite, non-negative integer values (an RPC's input). */
export function cleanDelta(delta: Partial<Record<string, unknown>>): Partial<Counters> {
  const out: Partial<Counters> = {};
  for (const name of COUNTER_NAMES) {
    const v = delta[name];
    if (typeof v === "number" && Number.isSafeInteger(v) && v > 0) out[name] = v;
  }
  return out;
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

/**
 * Counts in memory and hands the deltas to `report` at most once per interval. `report` failing
 * puts the deltas back for the next try.
 */
export class CounterBatch {
  private pending = zeroCounters();
  private dirty = false;
  private timer: ReturnType<typeof setTimeout> | null = null;

  constructor(private readonly report: (delta: Partial<Counters>) => Promise<void>) {}

  add(name: keyof Counters, n = 1): void {
    if (n <= 0) return;
    this.pending[name] += n;
    this.dirty = true;
    this.timer ??= setTimeout(() => void this.flush(), STATS_FLUSH_INTERVAL_MS);
  }

  /** Reports what has been counted since the last report, now. */
  async flush(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    if (!this.dirty) return;
    const delta = cleanDelta(this.pending as unknown as Record<string, unknown>);
    this.pending = zeroCounters();
    this.dirty = false;
    try {
      await this.report(delta);
    } catch {
      for (const name of COUNTER_NAMES) if (delta[name]) this.add(name, delta[name]);
    }
  }
}
