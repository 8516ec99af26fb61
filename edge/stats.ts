/**
 * Numbers an operator can read (`GET /api/v1/admin/stats`). Each server's HostDO keeps its
 * counters in SQLite; its TerminalDOs count in memory and report their deltas to it at most
 * once per STATS_FLUSH_INTERVAL_MS (and at once when a session ends), so a counter survives the
 * session, DO eviction and redeploys, and costs one RPC per second per busy terminal. Deltas not
 * yet flushed when an instance is torn down (a redeploy) are lost: counts are a floor.
 */
import type { Counters } from "../shared/stats.ts";

export type { Counters, ServerStats, StatsBody } from "../shared/stats.ts";

/** Longest wait before a TerminalDO reports its counts, in milliseconds. */
export const STATS_FLUSH_INTERVAL_MS = 1_000;

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
