/**
 * The HTTP tunnel's edge end against a test-played (hostile) agent link, inside workerd with real
 * DOs: a `tun.*` answer the link refuses fails its call at once (502 AGENT_BAD_REPLY, and the
 * agent is told to stop) instead of leaving the client waiting, a redirect the agent relays is
 * the client's answer (never followed inside the edge), and a client head the agent would refuse
 * is 431 before it is sent.
 */
import { expect, it } from "vitest";
import { TUNNEL_HEADERS_MAX } from "../../shared/links/tunnel.ts";
import { api, BASE, KEY, registerServer, tunnelAgent, worker } from "./worker-client.ts";
import { until } from "../support/waiters.ts";

/**
 * An agent link to `server` that answers each tunnel call by its path: `/proxy/1/many` with a
 * head of 2000 headers, `/proxy/1/moved` a 302 to `/tunnel`, `/proxy/1/ws` (a WebSocket) ready
 * and then a malformed text message; anything else 200. Records every tun.* frame it is sent.
 */
function hostileAgent(server: string, token: string) {
  return tunnelAgent(server, token, (msg, ws) => {
    const { rid } = msg;
    if (msg.t === "tun.req" && msg.path === "/proxy/1/many") {
      const headers = Array.from({ length: 2000 }, (_, i) => [`x${i}`, "1"]);
      ws.send(JSON.stringify({ t: "tun.head", rid, status: 200, headers }));
    } else if (msg.t === "tun.req" && msg.path === "/proxy/1/moved") {
      ws.send(JSON.stringify({ t: "tun.head", rid, status: 302, headers: [["location", "/tunnel"]] }));
      ws.send(JSON.stringify({ t: "tun.end", rid }));
    } else if (msg.t === "tun.req") {
      ws.send(JSON.stringify({ t: "tun.head", rid, status: 200, headers: [] }));
      ws.send(JSON.stringify({ t: "tun.end", rid }));
    } else if (msg.t === "tun.wsopen") {
      ws.send(JSON.stringify({ t: "tun.wsready", rid, protocol: "" }));
    } else if (msg.t === "tun.wstext") {
      ws.send(JSON.stringify({ t: "tun.wstext", rid, text: 42 }));
    }
  });
}

it("fails a call at once when the agent's answer is refused, returns relayed redirects, and refuses oversized client heads with 431", { timeout: 60_000 }, async () => {
  const agent = await hostileAgent("tunref", await registerServer("tunref"));
  const base = "/api/v1/terminals/tunref";
  await until("the agent to be online", async () => (await api(`${base}/health`)).status === 200);

  // A head of 2000 headers is refused by the link: the client is answered 502 now, the agent told to stop.
  const many = await api(`${base}/proxy/1/many`);
  expect(many.status).toBe(502);
  expect(await many.json()).toMatchObject({ code: "AGENT_BAD_REPLY" });
  const req = agent.seen.find((m) => m.t === "tun.req" && m.path === "/proxy/1/many")!;
  await agent.waiters.until(() => agent.seen.some((m) => m.t === "tun.cancel" && m.rid === req.rid), "the refused call's tun.cancel");

  // A relayed redirect (even to the HostDO's own tunnel path) is the client's answer, as sent.
  const moved = await api(`${base}/proxy/1/moved`, { redirect: "manual" });
  expect(moved.status).toBe(302);
  expect(moved.headers.get("Location")).toBe("/tunnel");
  expect(agent.seen.filter((m) => m.t === "tun.req" && m.path === "/proxy/1/moved")).toHaveLength(1);

  // A client head the agent's decoder would refuse never reaches it.
  const before = agent.seen.length;
  const headers = new Headers();
  for (let i = 0; i <= TUNNEL_HEADERS_MAX; i++) headers.set(`x-c${i}`, "1");
  const tooMany = await api(`${base}/proxy/1/x`, { headers });
  expect(tooMany.status).toBe(431);
  expect(await tooMany.json()).toMatchObject({ code: "HEADERS_TOO_LARGE", detail: expect.stringMatching(/headers \(at most 100\)/) });
  const long = await api(`${base}/proxy/1/x`, { headers: { "X-Long": "l".repeat(20_000) } });
  expect(long.status).toBe(431);
  expect(agent.seen.length).toBe(before);

  // A proxied WebSocket whose message from the agent is refused closes at both ends, saying why.
  const upgrade = await worker.fetch(`${BASE}${base}/proxy/1/ws`, { headers: { Upgrade: "websocket", Authorization: `Bearer ${KEY}` } });
  expect(upgrade.status).toBe(101);
  const client = upgrade.webSocket!;
  client.accept();
  const closed = new Promise<string>((resolve) => client.addEventListener("close", (event) => resolve(event.reason)));
  client.send("hello");
  expect(await closed).toBe("the host's agent sent a malformed frame");
  const open = agent.seen.find((m) => m.t === "tun.wsopen")!;
  await agent.waiters.until(() => agent.seen.some((m) => m.t === "tun.wsclose" && m.rid === open.rid), "the refused socket's tun.wsclose");
});

it("answers a head the runtime cannot send at once: a 205 is empty, bad header syntax and an unoffered subprotocol are 502", { timeout: 60_000 }, async () => {
  const agent = await tunnelAgent("tunhead", await registerServer("tunhead"), (msg, ws) => {
    const { rid } = msg;
    const head = (status: number, headers: string[][]) => ws.send(JSON.stringify({ t: "tun.head", rid, status, headers }));
    if (msg.t === "tun.req" && msg.path === "/proxy/1/reset") {
      // What an app behind /proxy may answer: 205 Reset Content, which has no body.
      head(205, [["x-app", "1"]]);
      ws.send(JSON.stringify({ t: "tun.end", rid }));
    } else if (msg.t === "tun.req" && msg.path === "/proxy/1/badname") {
      head(200, [["bad name", "v"]]);
    } else if (msg.t === "tun.req" && msg.path === "/proxy/1/badvalue") {
      head(200, [["x-split", "line\r\nX-Injected: 1"]]);
    } else if (msg.t === "tun.wsopen") {
      ws.send(JSON.stringify({ t: "tun.wsready", rid, protocol: "not\r\noffered" }));
    }
  });
  const base = "/api/v1/terminals/tunhead";
  await until("the agent to be online", async () => (await api(`${base}/health`)).status === 200);

  const reset = await api(`${base}/proxy/1/reset`);
  expect(reset.status).toBe(205);
  expect(reset.headers.get("x-app")).toBe("1");
  expect(await reset.text()).toBe("");

  for (const path of ["badname", "badvalue"]) {
    const res = await api(`${base}/proxy/1/${path}`);
    expect(res.status).toBe(502);
    expect(await res.json()).toMatchObject({ code: "AGENT_BAD_REPLY" });
    const req = agent.seen.find((m) => m.t === "tun.req" && m.path === `/proxy/1/${path}`)!;
    await agent.waiters.until(() => agent.seen.some((m) => m.t === "tun.cancel" && m.rid === req.rid), `${path}'s tun.cancel`);
  }

  // The agent may only choose a subprotocol the client offered (RFC 6455 §4.2.2).
  const upgrade = await worker.fetch(`${BASE}${base}/proxy/1/ws`, { headers: { Upgrade: "websocket", Authorization: `Bearer ${KEY}`, "Sec-WebSocket-Protocol": "chat" } });
  expect(upgrade.status).toBe(502);
  expect(await upgrade.json()).toMatchObject({ code: "AGENT_BAD_REPLY" });
});
