/**
 * Past its restart budget, the real `edgetty start` stops everything and exits 1 with a line
 * saying why (EDGETTY_RESTARTS_MAX=0: the first death is one too many).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CliStack, GONE_TIMEOUT_MS, START_TIMEOUT_MS } from "../support/cli-stack.ts";

describe("edgetty start past its restart budget", () => {
  let stack: CliStack;
  beforeAll(async () => {
    stack = await CliStack.start({ EDGETTY_RESTARTS_MAX: "0" });
  }, START_TIMEOUT_MS + 10_000);
  afterAll(() => stack?.remove());

  it("stops everything and exits 1 with a line saying why", async () => {
    const agent = stack.agent();
    expect(agent).not.toBeNull();
    process.kill(agent!, "SIGKILL");
    await stack.exited();
    expect(stack.exit).toEqual({ code: 1, signal: null });
    expect(stack.output).toMatch(/edgetty: the agent exited \(signal SIGKILL\), after 0 restarts within 600 s; stopping everything/);
    await stack.gone();
  }, GONE_TIMEOUT_MS + 10_000);
});
