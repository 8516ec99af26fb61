// Reconnect timing: capped exponential backoff with jitter, so a fleet of tabs that lost the same
// edge does not come back in lockstep, and a long outage costs one attempt per cap interval.

/** Delay before the first retry, before jitter, in milliseconds. */
export const RECONNECT_BASE_MS = 500;
/** Longest wait between attempts, in milliseconds. */
export const RECONNECT_CAP_MS = 15_000;

/**
 * Milliseconds to wait before reconnect attempt number `attempt` (0 for the first retry).
 * "Equal jitter": half the capped exponential is fixed and half is random, so the delay grows
 * with failures but never collapses to zero.
 */
export function reconnectDelay(attempt: number, random: () => number = Math.random): number {
  const exp = Math.min(RECONNECT_CAP_MS, RECONNECT_BASE_MS * 2 ** Math.max(0, Math.min(attempt, 30)));
  return Math.round(exp / 2 + random() * (exp / 2));
}
