/**
 * Direct bodies (shared/links/tunnel.ts) inside workerd with real DOs, the agent played by the
 * test: a tunnelled answer whose head says `direct` gets its body from the agent's POSTed
 * segments, in order, each with the call's key; every wrong segment is refused in the agent
 * links' shape and loses nothing of the answer; a direct head without a length is a 502; a
 * client that went away makes the next segment 410 and the agent is told to stop.
 */
import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { expect, it } from "vitest";
import { hostStub } from "../../edge/addresses.ts";
import type { Env } from "../../edge/env.ts";
import type { TunnelCallEntry } from "../../edge/http-tunnel.ts";
import { TUNNEL_BODY_KEY_HEADER, TUNNEL_BODY_PATH } from "../../shared/links/tunnel.ts";
import { api, BASE, registerServer, tunnelAgent, worker } from "./worker-client.ts";
import { until } from "../support/waiters.ts";

/** Call `rid` as `server`'s HostDO holds it: whether a segment waits for its head, and whether one is being piped. */
function callIn(server: string, rid: number): Promise<{ waitsForHead: boolean; piping: boolean }> {
  return runInDurableObject(hostStub(env as unknown as Env, server), (instance) => {
    const tunnel = (instance as unknown as { link: { tunnel: { entry(rid: number): TunnelCallEntry | undefined } } }).link.tunnel;
    const c = tunnel.entry(rid);
    return { waitsForHead: c?.headSeen != null, piping: c?.direct?.piping != null };
  });
}

/**
 * An agent link that answers each call with a direct head naming the length its path ends in
 * (`/proxy/1/<length>`; "none" for no length). Under `/proxy/1/late/…` the head waits until the
 * test sends it (`heads`, by rid); `abort` ends a call as the agent would.
 */
async function directAgent(server: string, token: string) {
  const heads = new Map<number, () => void>();
  let socket: WebSocket | null = null;
  const link = await tunnelAgent(server, token, (msg, ws) => {
    socket = ws;
    if (msg.t !== "tun.req") return;
    const length = msg.path!.split("/").pop()!;
    const headers = length === "none" ? [["content-type", "application/octet-stream"]] : [["content-type", "application/octet-stream"], ["content-length", length]];
    const head = () => ws.send(JSON.stringify({ t: "tun.head", rid: msg.rid, status: 200, headers, direct: true }));
    if (msg.path!.startsWith("/proxy/1/late/")) heads.set(msg.rid, head);
    else head();
  });
  /** Ends call `rid` as an agent whose reading failed does (tun.abort). */
  const abort = (rid: number) => socket!.send(JSON.stringify({ t: "tun.abort", rid, reason: "the file could not be read" }));
  return { ...link, heads, abort };
}

it("writes a direct body from its segments in order and refuses every wrong segment", { timeout: 60_000 }, async () => {
  const token = await registerServer("direct");
  const agent = await directAgent("direct", token);
  const base = "/api/v1/terminals/direct";
  await until("the agent to be online", async () => (await api(`${base}/health`)).status === 200);

  const answer = await api(`${base}/proxy/1/10`);
  expect(answer.status).toBe(200);
  const req = agent.seen.find((m) => m.t === "tun.req")!;
  expect(req.key).toMatch(/^[0-9a-f]{32}$/);
  const segment = (body: string, offset: number, headers: Record<string, string> = {}, query = `rid=${req.rid}&offset=${offset}`) =>
    worker.fetch(`${BASE}${TUNNEL_BODY_PATH}?server=direct&${query}`, {
      method: "POST",
      headers: { Authorization: `Bearer ${token}`, [TUNNEL_BODY_KEY_HEADER]: req.key!, ...headers },
      body,
    });

  // Refused, each in the agent links' shape, and the answer keeps waiting for its bytes.
  const noToken = await worker.fetch(`${BASE}${TUNNEL_BODY_PATH}?server=direct&rid=${req.rid}&offset=0`, { method: "POST", body: "hello" });
  expect(noToken.status).toBe(401);
  const wrongKey = await segment("hello", 0, { [TUNNEL_BODY_KEY_HEADER]: "0".repeat(32) });
  expect(wrongKey.status).toBe(404);
  expect(await wrongKey.json()).toEqual({ detail: `No direct body is awaited for call ${req.rid}`, code: "NO_SUCH_BODY" });
  const otherCall = await segment("hello", 0, {}, `rid=${req.rid + 1}&offset=0`);
  expect(otherCall.status).toBe(404);
  const outOfOrder = await segment("world", 5);
  expect(outOfOrder.status).toBe(409);
  expect(await outOfOrder.json()).toMatchObject({ code: "SEGMENT_OUT_OF_ORDER", detail: "Call " + req.rid + " expects 10 more bytes from offset 0" });
  const tooLong = await segment("hello world", 0);
  expect(tooLong.status).toBe(409);
  const malformed = await segment("hello", 0, {}, `rid=x&offset=0`);
  expect(malformed.status).toBe(400);
  expect(await malformed.json()).toMatchObject({ code: "BAD_SEGMENT" });
  // A rid or offset that is missing, or written other than in decimal digits, is malformed too
  // (never read as call 0, offset 0, or the number `Number()` would make of "0x1f" or "1e3").
  for (const query of [`offset=0`, `rid=${req.rid}`, `rid=&offset=0`, `rid=0x${req.rid.toString(16)}&offset=0`, `rid=${req.rid}&offset=0e0`, `rid=${req.rid}&offset=-0`, `rid=${req.rid}.0&offset=0`]) {
    const refused = await segment("hello", 0, {}, query);
    expect(refused.status, query).toBe(400);
    expect(await refused.json()).toMatchObject({ code: "BAD_SEGMENT" });
  }

  // The segments in order make the answer (a segment is written as the client reads).
  const text = answer.text();
  const first = await segment("hello", 0);
  expect(first.status).toBe(200);
  expect(await first.json()).toEqual({ offset: 5 });
  const second = await segment("world", 5);
  expect(await second.json()).toEqual({ offset: 10 });
  expect(await text).toBe("helloworld");
  // The call is over: another segment finds nothing.
  expect((await segment("again", 10)).status).toBe(404);

  // A first segment that comes before the head (they travel by different connections) waits for it.
  const early = api(`${base}/proxy/1/late/5`);
  await agent.waiters.until(() => agent.seen.some((m) => m.path === "/proxy/1/late/5"), "the late call's tun.req");
  const earlyReq = agent.seen.find((m) => m.t === "tun.req" && m.path === "/proxy/1/late/5")!;
  const earlySegment = worker.fetch(`${BASE}${TUNNEL_BODY_PATH}?server=direct&rid=${earlyReq.rid}&offset=0`, {
    method: "POST",
    headers: { Authorization: `Bearer ${token}`, [TUNNEL_BODY_KEY_HEADER]: earlyReq.key! },
    body: "early",
  });
  await until("the segment to wait for its head", async () => (await callIn("direct", earlyReq.rid)).waitsForHead);
  // Only one waits: a second before the head is out of order (a hostile agent cannot pile them up).
  const another = await worker.fetch(`${BASE}${TUNNEL_BODY_PATH}?server=direct&rid=${earlyReq.rid}&offset=0`, {
    method: "POST",
    headers: { Authorization: `Bearer ${token}`, [TUNNEL_BODY_KEY_HEADER]: earlyReq.key! },
    body: "again",
  });
  expect(another.status).toBe(409);
  agent.heads.get(earlyReq.rid)!();
  const earlyAnswer = await early;
  expect(await earlyAnswer.text()).toBe("early");
  expect((await earlySegment).status).toBe(200);

  // A direct head that names no length cannot be written: 502 now, and the agent is told to stop.
  const none = await api(`${base}/proxy/1/none`);
  expect(none.status).toBe(502);
  expect(await none.json()).toMatchObject({ code: "AGENT_BAD_REPLY" });
  const noneReq = agent.seen.find((m) => m.t === "tun.req" && m.path === "/proxy/1/none")!;
  await agent.waiters.until(() => agent.seen.some((m) => m.t === "tun.cancel" && m.rid === noneReq.rid), "the lengthless call's tun.cancel");

  // The agent itself ends a call while a segment is written (the client is not reading, so the
  // pipe waits): that segment is 410 CALL_ENDED, not CLIENT_GONE.
  const stalled = await api(`${base}/proxy/1/4194304`);
  const stalledReq = agent.seen.find((m) => m.t === "tun.req" && m.path === "/proxy/1/4194304")!;
  const stalledSegment = worker.fetch(`${BASE}${TUNNEL_BODY_PATH}?server=direct&rid=${stalledReq.rid}&offset=0`, {
    method: "POST",
    headers: { Authorization: `Bearer ${token}`, [TUNNEL_BODY_KEY_HEADER]: stalledReq.key! },
    body: new Uint8Array(4 << 20),
  });
  await until("the segment to be piped", async () => (await callIn("direct", stalledReq.rid)).piping);
  agent.abort(stalledReq.rid);
  const ended = await stalledSegment;
  expect(ended.status).toBe(410);
  expect(await ended.json()).toMatchObject({ code: "CALL_ENDED" });
  await stalled.body!.cancel().catch(() => {});

  // A client that went away: the next segment is 410 and the agent is told to stop.
  const gone = await api(`${base}/proxy/1/1048576`);
  const goneReq = agent.seen.find((m) => m.t === "tun.req" && m.path === "/proxy/1/1048576")!;
  await gone.body!.cancel();
  const late = await worker.fetch(`${BASE}${TUNNEL_BODY_PATH}?server=direct&rid=${goneReq.rid}&offset=0`, {
    method: "POST",
    headers: { Authorization: `Bearer ${token}`, [TUNNEL_BODY_KEY_HEADER]: goneReq.key! },
    body: new Uint8Array(1 << 20),
  });
  expect(late.status).toBe(410);
  expect(await late.json()).toMatchObject({ code: "CLIENT_GONE" });
  await agent.waiters.until(() => agent.seen.some((m) => m.t === "tun.cancel" && m.rid === goneReq.rid), "the gone client's tun.cancel");
});
