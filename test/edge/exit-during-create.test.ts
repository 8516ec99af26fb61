/**
 * A session whose process ends before its create is answered (a shell whose start-up exits, an
 * SSH login without credentials to a port that refuses): the agent sends "exited" before the
 * create's reply. The HostDO must not list it afterwards as a session nothing runs. An exit that
 * arrives meanwhile for the session that had the id before (a DELETE still ending it when the id
 * is created again) must not end the new one.
 */
import { exports } from "cloudflare:workers";
import { expect, it } from "vitest";

const KEY = "test-admin-key";
const BASE = "http://edge.test";
const worker = (exports as unknown as { default: { fetch(input: string, init?: RequestInit): Promise<Response> } }).default;
const api = (path: string, init: RequestInit = {}) => worker.fetch(BASE + path, { ...init, headers: { Authorization: `Bearer ${KEY}`, "Content-Type": "application/json", ...init.headers } });

it("forgets a session that exited before its create was answered, but not for the exit of the id's previous session", async () => {
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
      const startedAt = (n: number) => `2026-01-01T00:00:0${n}.000Z`;
      const meta = { terminal_id: id, shell: "sh", cwd: "/", started_at: startedAt(creates), ephemeral: false };
      const exited = (n: number) => ws.send(JSON.stringify({ t: "exited", terminal_id: id, exit: { exit_code: 3, signal: 0 }, started_at: startedAt(n) }));
      // The first one's process is gone before its data link came up: "exited" comes first.
      if (creates === 1) exited(1);
      // The second reuses the id while the first's late exit is on its way: that exit is not its.
      if (creates === 2) exited(1);
      ws.send(JSON.stringify({ t: "reply", id: msg.id, ok: true, result: { status: "created", meta } }));
    } else {
      ws.send(JSON.stringify({ t: "reply", id: msg.id, ok: true, result: { sessions: [] } }));
    }
  });
  ws.send(JSON.stringify({ t: "hello", agent: { version: "t", hostname: "h", platform: "linux", is_root: false }, sessions: [] }));

  const create = () => api("/api/v1/terminals/early-exit/api/v1/terminal/create", { method: "POST", body: JSON.stringify({ terminal_id: 72 }) });
  const listed = async () => ((await (await api("/api/v1/terminals/early-exit/api/v1/terminal/sessions")).json()) as { id: number }[]).map((s) => s.id);
  expect(await (await create()).json()).toMatchObject({ status: "created", terminal_id: 72 });
  expect(await listed()).toEqual([]);
  // The id is free again: a new create reaches the agent instead of answering "exists".
  expect(await (await create()).json()).toMatchObject({ status: "created", terminal_id: 72 });
  expect(creates).toBe(2);
  expect(await listed()).toEqual([72]);
  ws.close();
});
