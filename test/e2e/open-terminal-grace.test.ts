/**
 * `/api/terminals` sessions that Open WebUI forgets do not pile up: a session whose last client
 * left ends after the grace period (the ephemeral idle time, 2 s here), and a client that
 * reconnects within it finds the same shell.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RawClient } from "../support/raw-client.ts";
import { startStack, type TestStack } from "../support/stack.ts";
import { until } from "../support/waiters.ts";

let stack: TestStack;

beforeAll(async () => {
  stack = await startStack({ edgeVars: { EDGETTY_EPHEMERAL_IDLE_TIMEOUT_S: "2" } });
});

afterAll(async () => {
  await stack?.stop();
});

describe("a session without clients", () => {
  it("resumes when its client comes back within the grace period, and ends after it", async () => {
    const headers = { "X-Session-Id": "chat-grace", "X-User-Id": "u" };
    const created = (await (await stack.api("/api/terminals", { method: "POST", headers })).json()) as { id: string; pid: number };
    expect(created.id).toBe("chat-grace");
    const url = `${stack.url}/api/terminals/chat-grace?user_id=u`;

    const first = await RawClient.connect(url, stack.apiKey);
    first.type("export MARK=kept-$((6*7))\r");
    first.type("echo ready\r");
    await first.waitForText("ready\r\n");
    first.close();

    // Back at once (as Open WebUI re-opening the chat's panel): the same shell, its state kept.
    const again = (await (await stack.api("/api/terminals", { method: "POST", headers })).json()) as { pid: number };
    expect(again.pid).toBe(created.pid);
    const second = await RawClient.connect(url, stack.apiKey);
    second.type("echo $MARK\r");
    await second.waitForText("kept-42");
    second.close();

    // Then nobody: the session ends after the grace period.
    await until("the session without clients to end after its grace period", async () => (await stack.api("/api/terminals/chat-grace", { headers })).status === 404, { timeoutMs: 20_000, everyMs: 200 });
    expect((await (await stack.api("/api/terminals", { headers })).json()) as unknown[]).toEqual([]);
  });
});
