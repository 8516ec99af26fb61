/**
 * Output survives broken links: the agent's links dropped mid-output (as a network failure
 * would), and workerd restarted under a running session (as a redeploy would).
 */
import { describe, expect, it } from "vitest";
import { useStack } from "../support/stack.ts";
import { until } from "../support/waiters.ts";
import { TermClient } from "../support/term-client.ts";

const stack = useStack();

async function session(id: number): Promise<TermClient> {
  // Right after the links were dropped on purpose, a request can race the edge noticing it and
  // get 503 AGENT_OFFLINE (as it should); ask again until the agent is back for good.
  const res = await until(
    `terminal ${id} to be created`,
    async () => {
      const r = await stack.api("/api/v1/terminal/create", { method: "POST", body: JSON.stringify({ terminal_id: id, shell: "bash" }) });
      if (r.status !== 503) return r;
      await stack.waitForAgent();
      return null;
    },
    { timeoutMs: 30_000, everyMs: 100 },
  );
  expect(res.status).toBe(200);
  const c = await TermClient.connect(`${stack.url}/api/v1/terminal/ws?terminal_id=${id}`, { apiKey: stack.apiKey, screen: false });
  stack.track(c);
  return c;
}

/** The numbers printed one per line between `start` and `end` markers. */
function numbersBetween(text: string, start: string, end: string): number[] {
  const from = text.lastIndexOf(start);
  const to = text.indexOf(end, from);
  return text
    .slice(from + start.length, to)
    .split("\r\n")
    .filter((line) => /^\d+$/.test(line))
    .map(Number);
}

describe("resuming after broken links", () => {
  it("loses and duplicates nothing when the agent's links drop mid-output", async () => {
    const c = await session(41);
    const count = 200_000;
    // The quotes keep the markers out of the command line's own echo.
    c.input(`echo BEG''IN; seq 1 ${count}; echo EN''D\r`);
    await c.waitForText("BEGIN\r\n");
    // Drop every link three times while the numbers stream.
    for (const threshold of [200_000, 500_000, 900_000]) {
      await c.waitFor(() => c.received > threshold, `${threshold} bytes`);
      stack.agent.kill("SIGUSR2");
    }
    await c.waitForText(/END\r\n/, 60_000);
    await stack.waitForAgent();
    const numbers = numbersBetween(c.text(), "BEGIN\r\n", "END\r\n");
    expect(numbers.length).toBe(count);
    expect(numbers.every((n, i) => n === i + 1)).toBe(true);
  });

  it("keeps sessions across a workerd restart and repaints clients that reconnect", async () => {
    const before = await session(42);
    before.input("echo marker-before-restart\r");
    await before.waitForText("marker-before-restart\r\n");
    await stack.restartEdge(); // returns once the agent is back online
    await before.waitFor(() => before.closed !== null, "the old client to be disconnected");

    // The control link is back; the terminal's own data link may still be redialling.
    await until(
      "terminal 42's data link to come back",
      async () => {
        const sessions = (await (await stack.api("/api/v1/terminal/sessions")).json()) as { id: number; agent_online: boolean }[];
        return sessions.find((s) => s.id === 42)?.agent_online === true;
      },
      { timeoutMs: 30_000, everyMs: 100 },
    );
    const after = await TermClient.connect(`${stack.url}/api/v1/terminal/ws?terminal_id=42`, { apiKey: stack.apiKey });
    stack.track(after);
    expect(after.info).toMatchObject({ terminal_id: 42, agent_online: true });
    await after.waitForScreen("marker-before-restart");
    after.input("echo alive-after-restart\r");
    await after.waitForText("alive-after-restart\r\n");
  });
});

describe("command history after its session", () => {
  async function history(id: number): Promise<Response> {
    return stack.api(`/api/v1/terminal/history/${id}`);
  }

  async function recorded(id: number, count: number): Promise<void> {
    await until(
      `terminal ${id} to record ${count} commands`,
      async () => ((await (await history(id)).json()) as { status: string }[]).filter((r) => r.status === "done").length >= count,
      { everyMs: 100 },
    );
  }

  it("stays readable when the agent restarts and its shells end with it", async () => {
    const c = await session(44);
    c.input("true\r");
    c.input("false\r");
    await recorded(44, 2);
    await stack.restartAgent();
    const sessions = (await (await stack.api("/api/v1/terminal/sessions")).json()) as { id: number }[];
    expect(sessions.map((s) => s.id)).not.toContain(44);
    const res = await history(44);
    expect(res.status).toBe(200);
    const records = (await res.json()) as { command: string; exit_code: number }[];
    expect(records.map((r) => [r.command, r.exit_code])).toEqual([
      ["true", 0],
      ["false", 1],
    ]);
  });

  it("goes with a deleted session", async () => {
    const c = await session(45);
    c.input("true\r");
    await recorded(45, 1);
    expect((await stack.api("/api/v1/terminal/45", { method: "DELETE" })).status).toBe(200);
    const res = await history(45);
    expect(res.status).toBe(404);
    expect(await res.json()).toMatchObject({ code: "SESSION_NOT_FOUND" });
  });
});
