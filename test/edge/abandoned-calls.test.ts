/**
 * Calls whose client leaves before the answer (the attack that filled every slot of a server):
 * inside workerd with real DOs and a test-played agent that never answers, each abandoned call
 * is ended at the agent (tun.cancel, exec.cancel) and its slot is free at once, so the next call,
 * past the limit, gets its answer instead of 429.
 */
import { expect, it } from "vitest";
import { TUNNEL_MAX_INFLIGHT } from "../../shared/links/tunnel.ts";
import { EXEC_MAX_INFLIGHT } from "../../edge/exec-relay.ts";
import { api, BASE, KEY, registerServer, tunnelAgent, worker } from "./worker-client.ts";
import { until, Waiters } from "../support/waiters.ts";

/** How long 256 calls may take to reach the agent, or their cancels to, on a loaded machine (CI runs other test files beside this one), in ms. */
const MANY_CALLS_MS = 90_000;

/** Starts `count` calls to `path(i)` through the Worker, each abortable by the client. */
function abandonable(count: number, path: (i: number) => string) {
  const clients = Array.from({ length: count }, () => new AbortController());
  const answers = clients.map((client, i) => worker.fetch(`${BASE}${path(i)}`, { headers: { Authorization: `Bearer ${KEY}` }, signal: client.signal }).catch(() => null));
  return { abandon: () => clients.forEach((c) => c.abort()), answers };
}

it("frees the slots of proxy calls whose client left before the head, and cancels them at the agent", { timeout: 240_000 }, async () => {
  // The agent never answers /proxy/1/hang…, answers anything else 200.
  const agent = await tunnelAgent("abandon-tun", await registerServer("abandon-tun"), (msg, ws) => {
    if (msg.t !== "tun.req" || msg.path?.startsWith("/proxy/1/hang")) return;
    ws.send(JSON.stringify({ t: "tun.head", rid: msg.rid, status: 200, headers: [] }));
    ws.send(JSON.stringify({ t: "tun.end", rid: msg.rid }));
  });
  const base = "/api/v1/terminals/abandon-tun";
  await until("the agent to be online", async () => (await api(`${base}/health`)).status === 200);

  const calls = abandonable(TUNNEL_MAX_INFLIGHT, (i) => `${base}/proxy/1/hang${i}`);
  const reqs = () => agent.seen.filter((m) => m.t === "tun.req" && m.path?.startsWith("/proxy/1/hang"));
  await agent.waiters.until(() => reqs().length === TUNNEL_MAX_INFLIGHT, "every call to reach the agent", MANY_CALLS_MS);
  calls.abandon();
  await Promise.all(calls.answers);
  const rids = new Set(reqs().map((m) => m.rid));
  const cancelled = () => agent.seen.filter((m) => m.t === "tun.cancel" && rids.has(m.rid)).length;
  await agent.waiters.until(() => cancelled() === TUNNEL_MAX_INFLIGHT, "a tun.cancel for every abandoned call", MANY_CALLS_MS);

  const next = await api(`${base}/proxy/1/ok`);
  expect(next.status).toBe(200);
});

/** Plays the agent's exec relay: a status wait is never answered; anything else is answered 200 `{op}`. */
async function execAgent(server: string, token: string) {
  const res = await worker.fetch(`${BASE}/agent/v1/control?server=${server}`, { headers: { Upgrade: "websocket", Authorization: `Bearer ${token}` } });
  expect(res.status).toBe(101);
  const ws = res.webSocket!;
  ws.accept();
  const seen: { t: string; id: number; op?: { op: string } }[] = [];
  const waiters = new Waiters();
  ws.addEventListener("message", (event) => {
    const msg = JSON.parse(event.data as string) as { t: string; id: number; op?: { op: string } };
    if (msg.t === "req") ws.send(JSON.stringify({ t: "reply", id: msg.id, ok: true, result: { sessions: [] } }));
    if (!msg.t.startsWith("exec.")) return;
    seen.push(msg);
    waiters.notify();
    if (msg.t === "exec.req" && msg.op?.op !== "status") ws.send(JSON.stringify({ t: "exec.res", id: msg.id, status: 200, body: { op: msg.op?.op } }));
  });
  ws.send(JSON.stringify({ t: "hello", agent: { version: "test", hostname: "h", platform: "linux", is_root: false }, sessions: [] }));
  return { seen, waiters };
}

it("frees the slots of status waits whose client left, and ends the waits at the agent", { timeout: 240_000 }, async () => {
  const agent = await execAgent("abandon-exec", await registerServer("abandon-exec"));
  const base = "/api/v1/terminals/abandon-exec";
  await until("the agent to be online", async () => (await api(`${base}/health`)).status === 200);

  const calls = abandonable(EXEC_MAX_INFLIGHT, () => `${base}/execute/p1/status?wait=300`);
  const waits = () => agent.seen.filter((m) => m.t === "exec.req" && m.op?.op === "status");
  await agent.waiters.until(() => waits().length === EXEC_MAX_INFLIGHT, "every wait to reach the agent", MANY_CALLS_MS);
  calls.abandon();
  await Promise.all(calls.answers);
  const ids = new Set(waits().map((m) => m.id));
  const cancelled = () => agent.seen.filter((m) => m.t === "exec.cancel" && ids.has(m.id)).length;
  await agent.waiters.until(() => cancelled() === EXEC_MAX_INFLIGHT, "an exec.cancel for every abandoned wait", MANY_CALLS_MS);

  const kill = await api(`${base}/execute/p1`, { method: "DELETE" });
  expect(kill.status).toBe(200);
});
