/** Idle clean-up through a real TerminalDO alarm, with the agent played over a WebSocket. */
import { env, exports } from "cloudflare:workers";
import { runDurableObjectAlarm } from "cloudflare:test";
import { expect, it } from "vitest";
import { terminalStub } from "../../edge/addresses.ts";
import type { Env } from "../../edge/env.ts";

const KEY = "test-admin-key";
const BASE = "http://edge.test";
const worker = (exports as unknown as { default: { fetch(input: string, init?: RequestInit): Promise<Response> } }).default;
const api = (path: string, init: RequestInit = {}) => worker.fetch(BASE + path, { ...init, headers: { Authorization: `Bearer ${KEY}`, "Content-Type": "application/json", ...init.headers } });

it("removes an idle ephemeral session through its alarm and keeps the agent's link", async () => {
  const token = ((await (await api("/api/v1/admin/servers/idle", { method: "PUT", body: "{}" })).json()) as { token: string }).token;
  const res = await worker.fetch(`${BASE}/agent/v1/control?server=idle`, { headers: { Upgrade: "websocket", Authorization: `Bearer ${token}` } });
  const ws = res.webSocket!;
  ws.accept();
  let closed = false;
  ws.addEventListener("close", () => (closed = true));
  ws.addEventListener("message", (event) => {
    const msg = JSON.parse(event.data as string) as { id: number; op: string; params: { terminal_id: number } };
    const id = msg.params.terminal_id;
    if (msg.op === "create") {
      const meta = { terminal_id: id, shell: "sh", cwd: "/", started_at: "2026-01-01T00:00:00.000Z", ephemeral: true };
      ws.send(JSON.stringify({ t: "reply", id: msg.id, ok: true, result: { status: "created", meta } }));
    } else if (msg.op === "kill") {
      ws.send(JSON.stringify({ t: "reply", id: msg.id, ok: true, result: { killed: true } }));
      ws.send(JSON.stringify({ t: "exited", terminal_id: id, exit: { exit_code: 0, signal: 1 } }));
    } else {
      ws.send(JSON.stringify({ t: "reply", id: msg.id, ok: true, result: { sessions: [] } }));
    }
  });
  ws.send(JSON.stringify({ t: "hello", agent: { version: "t", hostname: "h", platform: "linux", is_root: false }, sessions: [] }));

  const created = (await (await api("/api/v1/terminals/idle/api/v1/terminal/create", { method: "POST", body: JSON.stringify({ ephemeral: true }) })).json()) as { terminal_id: number };
  const bindings = env as unknown as Env;
  const stub = terminalStub(bindings, "idle", created.terminal_id);
  expect(await runDurableObjectAlarm(stub)).toBe(true);
  const sessions = (await (await api("/api/v1/terminals/idle/api/v1/terminal/sessions")).json()) as unknown[];
  expect(sessions).toEqual([]);
  expect(closed).toBe(false);
  const again = await api("/api/v1/terminals/idle/api/v1/terminal/create", { method: "POST", body: JSON.stringify({ terminal_id: 9 }) });
  expect(again.status).toBe(200);
});
