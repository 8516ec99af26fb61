/**
 * Configured limits through the real stack: idle clean-up with DO alarms, clients per terminal,
 * allowed origins.
 */
import { describe, expect, it } from "vitest";
import { useStack } from "../support/stack.ts";
import { until } from "../support/waiters.ts";
import { HttpRefusal, TermClient } from "../support/term-client.ts";

const stack = useStack({
  edgeVars: {
    EDGETTY_EPHEMERAL_IDLE_TIMEOUT_S: "1",
    EDGETTY_MAX_CLIENTS: "2",
    EDGETTY_ALLOWED_ORIGINS: "https://console.example",
  },
});

async function attach(id: number, headers: Record<string, string> = {}): Promise<TermClient> {
  const c = await TermClient.connect(`${stack.url}/api/v1/terminal/ws?terminal_id=${id}`, { apiKey: stack.apiKey, headers });
  stack.track(c);
  return c;
}

async function sessionIds(): Promise<number[]> {
  const sessions = (await (await stack.api("/api/v1/terminal/sessions")).json()) as { id: number }[];
  return sessions.map((s) => s.id);
}

describe("limits", () => {
  it("removes an ephemeral session once it has had no client for its idle timeout", async () => {
    const { terminal_id: id } = (await (await stack.api("/api/v1/terminal/create", { method: "POST", body: JSON.stringify({ ephemeral: true }) })).json()) as { terminal_id: number };
    const c = await attach(id);
    c.close();
    // The alarm fires about a second later; watch the listing until the session is gone.
    await until(`ephemeral session ${id} to be cleaned up`, async () => !(await sessionIds()).includes(id), { everyMs: 200 });
    expect(await sessionIds()).not.toContain(id);
  });

  it("keeps a non-ephemeral session without clients", async () => {
    await stack.api("/api/v1/terminal/create", { method: "POST", body: JSON.stringify({ terminal_id: 3 }) });
    const c = await attach(3);
    c.input("echo still-here\r");
    await c.waitForText("still-here");
    c.close();
    const again = await attach(3);
    await again.waitForScreen("still-here");
    expect(await sessionIds()).toContain(3);
  });

  it("refuses clients past the configured maximum with MAX_CLIENTS_REACHED", async () => {
    await stack.api("/api/v1/terminal/create", { method: "POST", body: JSON.stringify({ terminal_id: 4 }) });
    await attach(4);
    await attach(4);
    const refused = await attach(4).then(
      () => null,
      (error: unknown) => error,
    );
    expect(refused).toBeInstanceOf(HttpRefusal);
    expect((refused as HttpRefusal).status).toBe(403);
    expect((refused as HttpRefusal).json()).toMatchObject({ statusCode: 403, code: "MAX_CLIENTS_REACHED" });
  });

  it("holds a slot for clients that may write: read-only viewers cannot lock the terminal's users out", async () => {
    await stack.api("/api/v1/terminal/create", { method: "POST", body: JSON.stringify({ terminal_id: 6 }) });
    const viewer = stack.track(await TermClient.connect(`${stack.url}/api/v1/terminal/ws?terminal_id=6&readonly=1`, { apiKey: stack.apiKey }));
    expect(viewer.info?.readonly).toBe(true);
    // Of the 2 slots, 1 (one in WRITER_RESERVE_DIVISOR, rounded up) is held for writers.
    const second = await TermClient.connect(`${stack.url}/api/v1/terminal/ws?terminal_id=6&readonly=1`, { apiKey: stack.apiKey }).catch((e: unknown) => e);
    expect((second as HttpRefusal).json()).toMatchObject({ statusCode: 403, code: "MAX_CLIENTS_REACHED" });
    const writer = await attach(6);
    expect(writer.info?.readonly).toBe(false);
  });

  it("lets browsers in from allowed origins only", async () => {
    await stack.api("/api/v1/terminal/create", { method: "POST", body: JSON.stringify({ terminal_id: 5 }) });
    const allowed = await attach(5, { Origin: "https://console.example" });
    expect(allowed.info?.terminal_id).toBe(5);
    const refused = await attach(5, { Origin: "https://other.example" }).catch((e: unknown) => e);
    expect((refused as HttpRefusal).json()).toMatchObject({ code: "ORIGIN_CHECK_FAILED" });
  });
});
