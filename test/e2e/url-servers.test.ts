/**
 * URL servers through the real local stack: an Open Terminal stand-in on loopback (a small
 * HTTP server that records every request it receives) is registered with its own key; the edge
 * proxies to it after the same checks as agent servers and forwards only what it should.
 */
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { useStack } from "../support/stack.ts";

/** As edge/url-servers.ts URL_SERVER_HOPS_MAX (the e2e tests do not import the Worker's code). */
const URL_SERVER_HOPS_MAX = 4;

interface Seen {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: string;
}

const UPSTREAM_KEY = "upstream-secret-key";
const seen: Seen[] = [];
let upstream: Server;
let upstreamUrl = "";
const stack = useStack();

beforeAll(async () => {
  upstream = createServer(async (req, res) => {
    let body = "";
    for await (const chunk of req) body += String(chunk);
    seen.push({ method: req.method!, url: req.url!, headers: req.headers, body });
    if (req.url === "/redirect") return void res.writeHead(302, { Location: "http://example.invalid/" }).end();
    res.writeHead(200, { "Content-Type": "application/json", "Set-Cookie": "upstream=1", "X-Upstream": "yes" });
    res.end(JSON.stringify({ cwd: "/srv" }));
  });
  await new Promise<void>((resolve) => upstream.listen(0, "127.0.0.1", resolve));
  upstreamUrl = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
  const admin = (path: string, method: string, body: unknown) => stack.api(path, { method, body: JSON.stringify(body), headers: { "Content-Type": "application/json" } });
  expect((await admin("/api/v1/admin/servers/ot", "PUT", { name: "Open Terminal" })).status).toBe(200);
  expect((await admin("/api/v1/admin/servers/ot/url", "PUT", { url: `${upstreamUrl}/`, key: UPSTREAM_KEY })).status).toBe(200);
  await admin("/api/v1/admin/users", "POST", { id: "uma" });
  await admin("/api/v1/admin/grants", "PUT", { server_id: "ot", principal_type: "user", principal_id: "uma", access: "write" });
});
afterAll(async () => {
  await new Promise((resolve) => upstream?.close(resolve));
});

async function userToken(): Promise<string> {
  const res = await stack.api("/api/v1/admin/tokens", { method: "POST", body: JSON.stringify({ user_id: "uma" }), headers: { "Content-Type": "application/json" } });
  return ((await res.json()) as { token: string }).token;
}

describe("URL servers", () => {
  it("receive exactly the forwarded headers, the decoded path, the query and the body", async () => {
    const token = await userToken();
    seen.length = 0;
    const res = await fetch(`${stack.url}/api/v1/terminals/ot/files%2Fcwd?x=1&y=two`, {
      method: "POST",
      headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json", "X-Session-Id": "chat-9", Cookie: "edgetty_session=abc", "X-Secret": "caller-only" },
      body: JSON.stringify({ path: "/tmp" }),
    });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ cwd: "/srv" });
    expect(res.headers.get("x-upstream")).toBe("yes");
    expect(res.headers.get("set-cookie")).toBeNull();
    expect(seen).toHaveLength(1);
    const got = seen[0]!;
    expect(got).toMatchObject({ method: "POST", url: "/files/cwd?x=1&y=two", body: '{"path":"/tmp"}' });
    expect(got.headers["authorization"]).toBe(`Bearer ${UPSTREAM_KEY}`);
    expect(got.headers["x-user-id"]).toBe("uma");
    expect(got.headers["x-session-id"]).toBe("chat-9");
    expect(got.headers["content-type"]).toBe("application/json");
    expect(got.headers["cookie"]).toBeUndefined();
    expect(got.headers["x-secret"]).toBeUndefined();
    expect(JSON.stringify(got.headers)).not.toContain(token);
  });

  it("take a read-only caller's screenshot with save=false, whatever it asked; a writer's query goes as sent", async () => {
    await stack.api("/api/v1/admin/users", { method: "POST", body: JSON.stringify({ id: "ruth" }), headers: { "Content-Type": "application/json" } });
    await stack.api("/api/v1/admin/grants", { method: "PUT", body: JSON.stringify({ server_id: "ot", principal_type: "user", principal_id: "ruth", access: "read" }), headers: { "Content-Type": "application/json" } });
    const res = await stack.api("/api/v1/admin/tokens", { method: "POST", body: JSON.stringify({ user_id: "ruth" }), headers: { "Content-Type": "application/json" } });
    const reader = ((await res.json()) as { token: string }).token;
    seen.length = 0;
    for (const token of [reader, await userToken()]) {
      const shot = await fetch(`${stack.url}/api/v1/terminals/ot/api/v1/terminal/screenshot?terminal_id=5&save=true`, { headers: { Authorization: `Bearer ${token}` } });
      expect(shot.status).toBe(200);
    }
    expect(seen.map((s) => s.url)).toEqual(["/api/v1/terminal/screenshot?terminal_id=5&save=false", "/api/v1/terminal/screenshot?terminal_id=5&save=true"]);
  });

  it("stop a chain that comes back to this edge: 508 PROXY_LOOP after a few hops, not a recursion", async () => {
    const admin = (path: string, method: string, body: unknown) => stack.api(path, { method, body: JSON.stringify(body), headers: { "Content-Type": "application/json" } });
    expect((await admin("/api/v1/admin/servers/loop", "PUT", { name: "loop" })).status).toBe(200);
    expect((await admin("/api/v1/admin/servers/loop/url", "PUT", { url: `${stack.url}/api/v1/terminals/loop`, key: stack.apiKey })).status).toBe(200);
    try {
      const res = await stack.api("/api/v1/terminals/loop/health");
      expect({ status: res.status, body: await res.json() }).toMatchObject({ status: 508, body: { code: "PROXY_LOOP" } });
      // The client's call and one per hop passed the proxy's checks (and were audited) before the last refused.
      const { events } = (await (await stack.api("/api/v1/admin/audit?limit=50")).json()) as { events: { action: string; server_id: string | null }[] };
      expect(events.filter((e) => e.action === "proxy" && e.server_id === "loop").length).toBe(URL_SERVER_HOPS_MAX + 1);
    } finally {
      await stack.api("/api/v1/admin/servers/loop", { method: "DELETE" });
    }
  });

  it("are listed with their URL, checked like agent servers, and audited", async () => {
    const token = await userToken();
    const list = (await (await fetch(`${stack.url}/api/v1/terminals/`, { headers: { Authorization: `Bearer ${token}` } })).json()) as { id: string; url: string }[];
    expect(list).toEqual([expect.objectContaining({ id: "ot", url: upstreamUrl })]);
    seen.length = 0;
    const bad = await fetch(`${stack.url}/api/v1/terminals/ot/%252e%252e%252fetc`, { headers: { Authorization: `Bearer ${token}` } });
    expect(bad.status).toBe(400);
    const redirect = await fetch(`${stack.url}/api/v1/terminals/ot/redirect`, { headers: { Authorization: `Bearer ${token}` } });
    expect(redirect.status).toBe(502);
    expect(seen.map((s) => s.url)).toEqual(["/redirect"]);
    await stack.api("/api/v1/admin/servers/ot/enabled", { method: "PUT", body: JSON.stringify({ enabled: false }), headers: { "Content-Type": "application/json" } });
    const off = await fetch(`${stack.url}/api/v1/terminals/ot/api/config`, { headers: { Authorization: `Bearer ${token}` } });
    expect(off.status).toBe(403);
    await stack.api("/api/v1/admin/servers/ot/enabled", { method: "PUT", body: JSON.stringify({ enabled: true }), headers: { "Content-Type": "application/json" } });
    const audit = (await (await stack.api("/api/v1/admin/audit?limit=20")).json()) as { events: { actor: string; action: string; detail: string }[] };
    expect(audit.events).toContainEqual(expect.objectContaining({ actor: "user:uma", action: "proxy", detail: "GET /redirect (write)" }));
  });
});
