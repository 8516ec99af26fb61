/**
 * The local stack looks after its children, through the real `edgetty start` on a free port with
 * a private state folder: killing workerd or the agent gets a log line and a restart, and killing
 * `edgetty start` itself with SIGKILL leaves no process of that run behind.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CliStack, GONE_TIMEOUT_MS, RESTART_TIMEOUT_MS, START_TIMEOUT_MS } from "../support/cli-stack.ts";
import { until } from "../support/waiters.ts";

describe("edgetty start supervises its children", () => {
  let stack: CliStack;
  beforeAll(async () => {
    stack = await CliStack.start();
  }, START_TIMEOUT_MS + 10_000);
  afterAll(() => stack?.remove());

  it("says so and restarts workerd when workerd is killed", async () => {
    const workerd = stack.workerd();
    expect(workerd).not.toBeNull();
    const from = stack.output.length;
    process.kill(workerd!, "SIGKILL");
    await stack.logged(/the edge \(workerd\) stopped listening \(connection refused\); restarting it/, RESTART_TIMEOUT_MS, from);
    await stack.logged(/the edge \(workerd\) is running again/, RESTART_TIMEOUT_MS, from);
    expect((await fetch(`http://127.0.0.1:${stack.port}/health`)).status).toBe(200);
    await until("the agent to reconnect", () => stack.agentOnline(), { timeoutMs: RESTART_TIMEOUT_MS });
    expect(stack.workerd()).not.toBe(workerd); // a new one
  }, RESTART_TIMEOUT_MS * 2);

  it("says so and restarts the agent when the agent is killed", async () => {
    const agent = stack.agent();
    expect(agent).not.toBeNull();
    const from = stack.output.length;
    process.kill(agent!, "SIGKILL");
    await stack.logged(/the agent exited \(signal SIGKILL\); restarting it/, RESTART_TIMEOUT_MS, from);
    await stack.logged(/the agent is running again/, RESTART_TIMEOUT_MS, from);
    expect(await stack.agentOnline()).toBe(true);
    expect(stack.agent()).not.toBe(agent);
  }, RESTART_TIMEOUT_MS * 2);

  it("leaves no wrangler, workerd, agent or guardian behind when killed with SIGKILL", async () => {
    // Two guardians, wrangler's two node processes, workerd, the agent, and `edgetty start`.
    expect(stack.processes().length).toBeGreaterThanOrEqual(6);
    stack.main.kill("SIGKILL");
    await stack.gone();
  }, GONE_TIMEOUT_MS + 10_000);
});
