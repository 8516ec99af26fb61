/**
 * The local stack's supervision policy: how often it asks workerd whether it is alive, when it
 * counts a child as dead, and how many restarts (with what backoff) it allows before giving up.
 * local-stack.ts applies it.
 */

/** Restarts of one child (the edge, the agent) allowed within RESTART_WINDOW_MS before giving up (default). */
export const RESTARTS_MAX = 5;
/** The window RESTARTS_MAX counts in, in milliseconds. */
export const RESTART_WINDOW_MS = 10 * 60_000;
/** Wait before the first restart, in milliseconds; it doubles with each restart in the window. */
export const RESTART_BACKOFF_FIRST_MS = 250;
/** Longest wait before a restart, in milliseconds. */
export const RESTART_BACKOFF_MAX_MS = 8_000;
/** How often the running stack checks that workerd answers /health, in milliseconds. */
export const HEALTH_PROBE_INTERVAL_MS = 2_000;
/** How long one /health request may take, in milliseconds (so no probe ever hangs). */
export const HEALTH_PROBE_TIMEOUT_MS = 10_000;
/** How often /health is asked while its connections are refused, in milliseconds. */
export const HEALTH_RECHECK_MS = 500;
/**
 * How long /health must refuse connections before workerd counts as dead, in milliseconds. Not
 * at once: when the Worker's code changes, the edge runner replaces workerd and the port is closed a
 * moment.
 */
export const HEALTH_REFUSED_FOR_MS = 5_000;
/** Consecutive timed-out or failed /health requests after which workerd counts as hung. */
export const HEALTH_FAILURES_MAX = 3;

/**
 * Restarts left for one child: at most `max` within RESTART_WINDOW_MS, each after a wait
 * that doubles from RESTART_BACKOFF_FIRST_MS up to RESTART_BACKOFF_MAX_MS.
 */
export class RestartBudget {
  private recent: number[] = [];

  constructor(
    /** Restarts allowed within the window. */
    readonly max = RESTARTS_MAX,
    private readonly now: () => number = Date.now,
  ) {}

  /** Takes one restart: the wait before it in milliseconds, or null when the budget is spent. */
  take(): number | null {
    const t = this.now();
    this.recent = this.recent.filter((at) => t - at < RESTART_WINDOW_MS);
    if (this.recent.length >= this.max) return null;
    const wait = Math.min(RESTART_BACKOFF_FIRST_MS * 2 ** this.recent.length, RESTART_BACKOFF_MAX_MS);
    this.recent.push(t);
    return wait;
  }

  /** Restarts taken within the window. */
  get used(): number {
    return this.recent.length;
  }
}

/** What one /health request found: an answer, nothing listening, or an error or timeout. */
export type Probe = "ok" | "refused" | "failed";

/** One /health request to `url`, bounded by HEALTH_PROBE_TIMEOUT_MS. */
export async function probeHealth(url: string): Promise<Probe> {
  try {
    const res = await fetch(`${url}/health`, { signal: AbortSignal.timeout(HEALTH_PROBE_TIMEOUT_MS) });
    await res.body?.cancel();
    return res.ok ? "ok" : "failed";
  } catch (error) {
    const code = (error as { cause?: { code?: string } }).cause?.code;
    return code === "ECONNREFUSED" ? "refused" : "failed";
  }
}
