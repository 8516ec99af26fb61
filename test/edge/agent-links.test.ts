/**
 * The HostDO's control link against a hostile agent, inside workerd with real DOs: a hello of
 * 300 entries, entries refused one by one, replies that do not fit their op, and frames that
 * are not frames at all. The link stays up and the index only ever holds well-formed sessions.
 */
import { env } from "cloudflare:workers";
import { expect, it } from "vitest";
import type { Env } from "../../edge/env.ts";
import { api, BASE, worker } from "./worker-client.ts";
import { until } from "../support/waiters.ts";
import { AGENT_LIST_TIMEOUT_MS, AGENT_REQUEST_TIMEOUT_MS } from "../../edge/host-link.ts";

const started = "2026-01-01T00:00:00.000Z";
const session = (id: number) => ({ terminal_id: id, shell: "sh", cwd: "/", started_at: started, ephemeral: false, cols: 80, rows: 24 });
const agent = { version: "t", hostname: "h", platform: "linux", is_root: false };

/** An agent link to `server` that answers every request with `answer(msg)` (nothing when it is undefined). */
async function link(server: string, answer: (msg: { id: number; op: string; params: Record<string, unknown> }) => unknown): Promise<{ ws: WebSocket; closed: () => boolean }> {
  const token = ((await (await api(`/api/v1/admin/servers/${server}`, { method: "PUT", body: "{}" })).json()) as { token: string }).token;
  const res = await worker.fetch(`${BASE}/agent/v1/control?server=${server}`, { headers: { Upgrade: "websocket", Authorization: `Bearer ${token}` } });
  const ws = res.webSocket!;
  ws.accept();
  let closed = false;
  ws.addEventListener("close", () => (closed = true));
  ws.addEventListener("message", (event) => {
    const msg = JSON.parse(event.data as string) as { t: string; id: number; op: string; params: Record<string, unknown> };
    const reply = msg.t === "req" ? answer(msg) : undefined;
    if (reply !== undefined) ws.send(JSON.stringify(reply));
  });
  return { ws, closed: () => closed };
}

function host(server: string) {
  const bindings = env as unknown as Env;
  return bindings.HOST.get(bindings.HOST.idFromName(server));
}

/** Waits until the HostDO's index holds `n` sessions (the hello is handled as a message, after our send). */
async function indexed(server: string, n: number): Promise<void> {
  let seen = -1;
  await until(`the HostDO to index ${n} sessions`, async () => (seen = (await host(server).status()).sessions) === n, {
    timeoutMs: 50_000,
    describe: () => ` (it holds ${seen})`,
  });
  expect((await host(server).status()).sessions).toBe(n);
}

it("refuses a hello's malformed, repeated and excess sessions one by one and adopts the rest", { timeout: 60_000 }, async () => {
  const { ws, closed } = await link("hostile-hello", (msg) => ({ t: "reply", id: msg.id, ok: true, result: { sessions: [] } }));
  // 300 entries naming only 12 terminals, with junk fields, and malformed ones among them.
  const entries: unknown[] = Array.from({ length: 300 }, (_, i) => ({ ...session(1 + (i % 12)), junk: "x".repeat(32) }));
  entries.splice(0, 0, { ...session(500), cols: 0 }, { ...session(501), started_at: "soon" }, "junk", null, { ...session(502), terminal_id: "502" });
  ws.send(JSON.stringify({ t: "hello", agent: { ...agent, junk: { deep: 1 } }, sessions: entries }));
  await indexed("hostile-hello", 12);
  const metas = await host("hostile-hello").sessionMetas();
  expect(metas.map((m) => m.terminal_id)).toEqual(Array.from({ length: 12 }, (_, i) => 1 + i));
  for (const m of metas) expect(Object.keys(m).sort()).toEqual(["cwd", "ephemeral", "shell", "started_at", "terminal_id"]);
  expect((await host("hostile-hello").status()).agent).toEqual(agent);
  // The cap (MAX_SESSIONS_PER_SERVER) is checkSessions' own: test/worker/control-link.test.ts
  // checks it with a small one, as adopting 256 here would start 256 TerminalDOs.

  // A later hello is applied all at once: what it lacks goes, what it adds comes, bad entries stay out.
  ws.send(JSON.stringify({ t: "hello", agent, sessions: [session(3), { ...session(4), shell: 4 }, session(700)] }));
  await indexed("hostile-hello", 2);
  expect((await host("hostile-hello").sessionMetas()).map((m) => m.terminal_id)).toEqual([3, 700]);
  expect(closed()).toBe(false);
});

it("refuses replies that do not fit their op without waiting for the timeout, and keeps the link", { timeout: 60_000 }, async () => {
  const { ws, closed } = await link("hostile-reply", (msg) =>
    msg.op === "create"
      ? { t: "reply", id: msg.id, ok: true, result: { status: "created", meta: { ...session(Number(msg.params["terminal_id"])), started_at: "whenever" } } }
      : { t: "reply", id: msg.id, ok: false, error: { status: 200, code: 5, message: null } },
  );
  ws.send(JSON.stringify({ t: "hello", agent, sessions: [] }));
  for (const frame of ["not json", "{}", '{"t":"reply","id":-1}', '{"t":"exited","terminal_id":0}', '{"t":"exec.res","id":1,"status":42}']) ws.send(frame);
  ws.send(new Uint8Array([1, 2, 3]));
  const created = await api("/api/v1/terminals/hostile-reply/api/v1/terminal/create", { method: "POST", body: JSON.stringify({ terminal_id: 5 }) });
  expect(created.status).toBe(502);
  expect(await created.json()).toMatchObject({ code: "AGENT_BAD_REPLY" });
  const listed = await api("/api/v1/terminals/hostile-reply/api/v1/terminal/sessions");
  expect(listed.status).toBe(200);
  expect(await listed.json()).toEqual([]);
  expect((await host("hostile-reply").status()).sessions).toBe(0);
  expect(closed()).toBe(false);
});

it("lists from the index when the agent never answers its list, after AGENT_LIST_TIMEOUT_MS", { timeout: 30_000 }, async () => {
  const { ws, closed } = await link("silent-list", () => undefined);
  ws.send(JSON.stringify({ t: "hello", agent, sessions: [session(3)] }));
  await indexed("silent-list", 1);
  const began = Date.now();
  const listed = await api("/api/v1/terminals/silent-list/api/v1/terminal/sessions");
  const waited = Date.now() - began;
  expect(listed.status).toBe(200);
  expect(((await listed.json()) as { id: number }[]).map((s) => s.id)).toEqual([3]);
  expect(waited).toBeGreaterThanOrEqual(AGENT_LIST_TIMEOUT_MS - 50);
  expect(waited).toBeLessThan(AGENT_REQUEST_TIMEOUT_MS);
  expect(closed()).toBe(false);
});
