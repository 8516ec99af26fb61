/** The local stack's restart policy (worker/cli/supervision.ts); the stack itself is tested in e2e. */
import { describe, expect, it } from "vitest";
import { RESTART_BACKOFF_FIRST_MS, RESTART_BACKOFF_MAX_MS, RESTART_WINDOW_MS, RESTARTS_MAX, RestartBudget } from "../../worker/cli/supervision.ts";

describe("the restart budget", () => {
  it("doubles the wait from the first restart up to the cap, then gives up after RESTARTS_MAX", () => {
    const budget = new RestartBudget(RESTARTS_MAX, () => 0);
    const waits = Array.from({ length: RESTARTS_MAX }, () => budget.take());
    expect(waits[0]).toBe(RESTART_BACKOFF_FIRST_MS);
    for (let i = 1; i < waits.length; i++) expect(waits[i]).toBe(Math.min(waits[i - 1]! * 2, RESTART_BACKOFF_MAX_MS));
    expect(budget.take()).toBeNull();
  });

  it("forgets restarts older than the window", () => {
    let now = 0;
    const budget = new RestartBudget(RESTARTS_MAX, () => now);
    for (let i = 0; i < RESTARTS_MAX; i++) budget.take();
    expect(budget.take()).toBeNull();
    now = RESTART_WINDOW_MS;
    expect(budget.take()).toBe(RESTART_BACKOFF_FIRST_MS);
  });

  it("allows no restart at all with a maximum of 0", () => {
    expect(new RestartBudget(0).take()).toBeNull();
  });
});
