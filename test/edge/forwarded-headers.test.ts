/**
 * What an agent server's Open Terminal routes receive through the proxy, seen where the agent
 * sees it: the tunnel call (`tun.req`) on a test-played agent link, inside workerd with real DOs.
 * The rules are a URL server's: `X-User-Id` (the caller's user), `X-Session-Id` and
 * `Content-Type` reach it; the caller's Authorization, cookies, hop-by-hop and other headers do
 * not; the body streams through.
 */
import { expect, it } from "vitest";
import { api, BASE, registerServer, worker } from "./worker-client.ts";
import { until } from "../support/waiters.ts";

interface TunReq {
  t: "tun.req";
  rid: number;
  method: string;
  path: string;
  headers: [string, string][];
}

/** An agent link to `server` that records tunnel calls and answers each 200 `{}`. */
async function recordingAgent(server: string, token: string): Promise<{ calls: TunReq[]; bodyBytes: () => number }> {
  const res = await worker.fetch(`${BASE}/agent/v1/control?server=${server}`, { headers: { Upgrade: "websocket", Authorization: `Bearer ${token}` } });
  expect(res.status).toBe(101);
  const ws = res.webSocket!;
  ws.accept();
  const calls: TunReq[] = [];
  let bodyBytes = 0;
  const answer = (rid: number) => {
    ws.send(JSON.stringify({ t: "tun.head", rid, status: 200, headers: [["content-type", "application/json"]] }));
    ws.send(JSON.stringify({ t: "tun.end", rid }));
  };
  ws.addEventListener("message", (event) => {
    const data: unknown = event.data;
    if (typeof data !== "string") {
      // Body frames (a kind byte and the call's rid before the bytes), whole or as a Blob.
      bodyBytes += data instanceof Blob ? data.size : (data as ArrayBuffer).byteLength;
      return;
    }
    const msg = JSON.parse(data) as { t: string; id?: number; rid?: number; body?: boolean };
    if (msg.t === "req") ws.send(JSON.stringify({ t: "reply", id: msg.id, ok: true, result: { sessions: [] } }));
    if (msg.t === "tun.req") {
      calls.push(msg as TunReq);
      // With a body: answered once the body has streamed in.
      if (!msg.body) answer(msg.rid!);
    }
    if (msg.t === "tun.reqend") answer(msg.rid!);
  });
  ws.send(JSON.stringify({ t: "hello", agent: { version: "test", hostname: "h", platform: "linux", is_root: false }, sessions: [] }));
  return { calls, bodyBytes: () => bodyBytes };
}

async function userToken(user: string, server: string): Promise<string> {
  expect((await api("/api/v1/admin/users", { method: "POST", body: JSON.stringify({ id: user }) })).status).toBe(201);
  await api("/api/v1/admin/grants", { method: "PUT", body: JSON.stringify({ server_id: server, principal_type: "user", principal_id: user, access: "write" }) });
  return ((await (await api("/api/v1/admin/tokens", { method: "POST", body: JSON.stringify({ user_id: user }) })).json()) as { token: string }).token;
}

it("an agent server's Open Terminal routes get exactly X-User-Id, X-Session-Id and Content-Type, and the body", { timeout: 60_000 }, async () => {
  const agentToken = await registerServer("hdr");
  const agent = await recordingAgent("hdr", agentToken);
  const token = await userToken("hedda", "hdr");
  await until("the agent to be online", async () => (await api("/api/v1/terminals/hdr/health")).status === 200);
  const body = JSON.stringify({ path: "/tmp/x".padEnd(4000, "y") });
  const res = await worker.fetch(`${BASE}/api/v1/terminals/hdr/files/mkdir`, {
    method: "POST",
    headers: {
      Authorization: `Bearer ${token}`,
      "Content-Type": "application/json",
      Cookie: "edgetty_session=abc; other=1",
      "X-User-Id": "someone-else",
      "X-Session-Id": "chat-7",
      "X-Secret": "caller-only",
      "Keep-Alive": "timeout=5",
      "Proxy-Authorization": "Basic eDp5",
    },
    body,
  });
  expect(res.status).toBe(200);
  expect(agent.calls).toHaveLength(1);
  const seen = agent.calls[0]!;
  expect(seen).toMatchObject({ method: "POST", path: "/files/mkdir" });
  expect(Object.fromEntries(seen.headers.map(([k, v]) => [k.toLowerCase(), v]))).toEqual({
    // The body's own length (the runtime frames the streamed body), not a caller's header.
    "content-length": String(body.length),
    "content-type": "application/json",
    "x-session-id": "chat-7",
    // A user's credential is that user, whatever it asserts.
    "x-user-id": "hedda",
  });
  expect(JSON.stringify(seen)).not.toContain(token);
  expect(agent.bodyBytes()).toBeGreaterThanOrEqual(body.length);

  // The API key acts for the user it names (as Open WebUI does with one key), else for none.
  agent.calls.length = 0;
  await api("/api/v1/terminals/hdr/files/cwd", { headers: { "X-User-Id": "owui-user-1" } });
  await api("/api/v1/terminals/hdr/files/cwd");
  expect(agent.calls.map((c) => Object.fromEntries(c.headers)["x-user-id"])).toEqual(["owui-user-1", undefined]);

  // A proxied app gets the browser's own headers, never its credentials.
  agent.calls.length = 0;
  await worker.fetch(`${BASE}/api/v1/terminals/hdr/proxy/3000/page`, {
    headers: { Authorization: `Bearer ${token}`, Cookie: "edgetty_session=abc", Accept: "text/html", "X-Session-Id": "chat-7" },
  });
  const app = Object.fromEntries(agent.calls[0]!.headers.map(([k, v]) => [k.toLowerCase(), v]));
  expect(app["accept"]).toBe("text/html");
  expect(app["authorization"]).toBeUndefined();
  expect(app["cookie"]).toBeUndefined();
});
