/**
 * A session whose process ends before its create is answered (a shell whose start-up exits, an
 * SSH login without credentials to a port that refuses): the agent sends "exited" before the
 * create's reply. The HostDO must not list it afterwards as a session nothing runs.
 */
import { exports } from "cloudflare:workers";
import { expect, it } from "vitest";

const KEY = "test-admin-key";
const BASE = "http://edge.test";
const worker = (exports as unknown as { default: { fetch(input: string, init?: RequestInit): Promise<Response> } }).default;
const api = (path: string, init: RequestInit = {}) => worker.fetch(BASE + path, { ...init, headers: { Authorization: `Bearer ${KEY}`, "Content-Type": "application/json", ...init.headers } });

it("forgets a session that exited before its create was answered, and creates that id anew", async () => {
  const token = ((await (await api("/api/v1/admin/servers/early-exit", { method: "PUT", body: "{}" })).json()) as { token: string }).token;
  const res = await worker.fetch(`${BASE}/agent/v1/control?server=early-exit`, { headers: { Upgrade: "websocket", Authorization: `Bearer ${token}` } });
  const ws = res.webSocket!;
  ws.accept();
  let creates = 0;
  ws.addEventListener("message", (event) => {
    const msg = JSON.parse(event.data as string) as { id: number; op: string; params: { terminal_id: number } };
    const id = msg.params.terminal_id;
    if (msg.op === "create") {
      creates++;
      const meta = { terminal_id: id, shell: "sh", cwd: "/", started_at: "2026-01-01T00:00:00.000Z", ephemeral: false };
      // The first one's process is gone before its data link came up: "exited" comes first.
      if (creates === 1) ws.send(JSON.stringify({ t: "exited", terminal_id: id, exit: { exit_code: 3, signal: 0 } }));
      ws.send(JSON.stringify({ t: "reply", id: msg.id, ok: true, result: { status: "created", meta } }));
    } else {
      ws.send(JSON.stringify({ t: "reply", id: msg.id, ok: true, result: { sessions: [] } }));
    }
  });
  ws.send(JSON.stringify({ t: "hello", agent: { version: "t", hostname: "h", platform: "linux", is_root: false }, sessions: [] }));

  const create = () => api("/api/v1/terminals/early-exit/api/v1/terminal/create", { method: "POST", body: JSON.stringify({ terminal_id: 72 }) });
  expect(await (await create()).json()).toMatchObject({ status: "created", terminal_id: 72 });
  expect(await (await api("/api/v1/terminals/early-exit/api/v1/terminal/sessions")).json()).toEqual([]);
  // The id is free again: a new create reaches the agent instead of answering "exists".
  expect(await (await create()).json()).toMatchObject({ status: "created", terminal_id: 72 });
  expect(creates).toBe(2);
  ws.close();
});
