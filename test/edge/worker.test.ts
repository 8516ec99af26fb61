/**
 * The Worker inside workerd with real Durable Objects, storage and D1. The agent is played by
 * the test over a real WebSocket, so the HostDO's relay is exercised end to end at the edge.
 */
import { describe, expect, it } from "vitest";
import { WEB_APP_CSP, withAppHeaders } from "../../edge/web-app.ts";
import { api, BASE, fakeAgent, handle, KEY, registerServer, worker } from "./worker-client.ts";


describe("the edge Worker in workerd", () => {
  it("answers /health without auth and everything else only with the key, in each family's shape", async () => {
    expect(await (await api("/health", {}, null)).json()).toEqual({ status: "ok" });
    const sessions = await api("/api/v1/terminal/sessions", {}, null);
    expect(sessions.status).toBe(401);
    expect(await sessions.json()).toMatchObject({ statusCode: 401, error: "Unauthorized", code: "UNAUTHORIZED" });
    const execute = await api("/execute", { method: "POST" }, "wrong");
    expect(execute.status).toBe(401);
    expect(await execute.json()).toMatchObject({ detail: "Invalid API key" });
    const servers = await api("/api/v1/terminals/", {}, null);
    expect(servers.status).toBe(401);
    expect(await servers.json()).toMatchObject({ error: expect.any(String) });
  });

  it("answers HEAD on the GET routes of the session, admin and terminals APIs as GET without a body", async () => {
    const head = (path: string, key: string | null = KEY) => handle(BASE + path, { method: "HEAD", headers: key ? { Authorization: `Bearer ${key}` } : {} });
    for (const path of ["/api/v1/terminal/sessions", "/api/v1/terminals/", "/api/v1/admin/servers"]) {
      const get = await api(path);
      const res = await head(path);
      expect([path, res.status]).toEqual([path, get.status]);
      expect(get.status).toBe(200);
      expect(res.headers.get("Content-Type")).toBe(get.headers.get("Content-Type"));
      expect(res.body).toBeNull();
    }
    // The guard runs as for GET: no key, no answer.
    expect((await head("/api/v1/terminal/sessions", null)).status).toBe(401);
  });

  it("gives the web app's files its Content-Security-Policy, no sniffing and no framing", async () => {
    // On a made-up file: the built app is not there when the edge tests run before a build.
    const page = withAppHeaders(new Response("<!doctype html>", { headers: { "Content-Type": "text/html" } }));
    expect(page.headers.get("Content-Security-Policy")).toBe(WEB_APP_CSP);
    expect(WEB_APP_CSP).toContain("frame-ancestors 'none'");
    expect(WEB_APP_CSP).toContain("script-src 'self';");
    expect(page.headers.get("X-Content-Type-Options")).toBe("nosniff");
    expect(page.headers.get("X-Frame-Options")).toBe("DENY");
    expect(page.headers.get("Content-Type")).toBe("text/html");
    expect(await page.text()).toBe("<!doctype html>");
  });

  it("registers servers in D1 and lists them with their agent's state", async () => {
    await registerServer("alpha");
    const list = (await (await api("/api/v1/terminals/")).json()) as Record<string, unknown>[];
    expect(list).toContainEqual({ id: "alpha", name: "Server alpha", url: `${BASE}/api/v1/terminals/alpha`, enabled: true, kind: "agent", access: "write", online: false, default: false });
    expect((await api("/api/v1/admin/servers/Not_Valid", { method: "PUT", body: "{}" })).status).toBe(400);
  });

  it("admits an agent only with its own server's token", async () => {
    const token = await registerServer("bravo");
    await registerServer("charlie");
    const wrong = await worker.fetch(`${BASE}/agent/v1/control?server=charlie`, { headers: { Upgrade: "websocket", Authorization: `Bearer ${token}` } });
    expect(wrong.status).toBe(401);
    const none = await worker.fetch(`${BASE}/agent/v1/control?server=bravo`, { headers: { Upgrade: "websocket" } });
    expect(none.status).toBe(401);
    const { ws } = await fakeAgent("bravo", token);
    ws.close();
  });

  it("relays create and delete to the agent and keeps the session index in the HostDO", async () => {
    const token = await registerServer("delta");
    const agent = await fakeAgent("delta", token);
    const created = await api("/api/v1/terminals/delta/api/v1/terminal/create", { method: "POST", body: JSON.stringify({ terminal_id: "7", shell: "bash", cols: 90 }) });
    expect(await created.json()).toEqual({ status: "created", terminal_id: 7, shell: "bash" });
    expect(agent.seen[0]).toMatchObject({ op: "create", params: { terminal_id: 7, shell: "bash", cols: 90, rows: 24 } });

    const sessions = (await (await api("/api/v1/terminals/delta/api/v1/terminal/sessions")).json()) as Record<string, unknown>[];
    expect(sessions).toEqual([expect.objectContaining({ id: 7, shell: "bash", cwd: "/home/x", clients: 0, command_history: [] })]);

    const deleted = await api("/api/v1/terminals/delta/api/v1/terminal/7", { method: "DELETE" });
    expect(await deleted.json()).toEqual({ status: "deleted", terminal_id: 7 });
    expect(agent.seen.map((m) => m.op)).toContain("kill");
    const again = await api("/api/v1/terminals/delta/api/v1/terminal/7", { method: "DELETE" });
    expect(again.status).toBe(404);
    agent.ws.close();
  });

  it("refuses WebSocket attaches before the upgrade with the seed's codes", async () => {
    // With its agent connected: the proxy's checks (an offline agent is 503 first) pass.
    const agent = await fakeAgent("echo", await registerServer("echo"));
    const notUpgrade = await api("/api/v1/terminals/echo/api/v1/terminal/ws?terminal_id=1");
    expect(notUpgrade.status).toBe(426);
    const ws = (query: string, headers: Record<string, string> = {}) =>
      api(`/api/v1/terminals/echo/api/v1/terminal/ws?${query}`, { headers: { Upgrade: "websocket", ...headers } });
    expect(await (await ws("terminal_id=70000")).json()).toMatchObject({ statusCode: 400, code: "INVALID_TERMINAL_ID" });
    expect(await (await ws("terminal_id=1&shell=csh")).json()).toMatchObject({ statusCode: 400, code: "INVALID_PARAMETERS" });
    expect(await (await ws("terminal_id=1", { Origin: "https://elsewhere.test" })).json()).toMatchObject({ statusCode: 403, code: "ORIGIN_CHECK_FAILED" });
    agent.ws.close();
  });

  it("answers an agent-dependent call with 503 while the agent is away", async () => {
    await registerServer("foxtrot");
    const res = await api("/api/v1/terminals/foxtrot/api/v1/terminal/create", { method: "POST", body: JSON.stringify({ terminal_id: 1 }) });
    expect(res.status).toBe(503);
    // Under /api/v1/terminals/{id}/ the proxy's checks answer first, in the terminals family's shape.
    expect(await res.json()).toMatchObject({ error: "Terminal server not reachable", code: "SERVER_UNREACHABLE" });
    const top = await api("/api/v1/terminal/create", { method: "POST", body: JSON.stringify({ terminal_id: 1 }) });
    expect(top.status).toBe(503);
    expect(await top.json()).toMatchObject({ statusCode: 503, code: "AGENT_OFFLINE" });
  });

  it("answers unknown servers in the terminals family's shape", async () => {
    const res = await api("/api/v1/terminals/nobody/api/v1/terminal/sessions");
    expect(res.status).toBe(404);
    expect(await res.json()).toMatchObject({ error: "Terminal server not found" });
    // An id that cannot exist is simply not found (the contract's first check).
    const bad = await api("/api/v1/terminals/BAD_ID/api/v1/terminal/sessions");
    expect(bad.status).toBe(404);
  });

  it("signs a browser in with an HttpOnly cookie that authenticates later calls", async () => {
    const signIn = await api("/api/v1/auth/session", { method: "POST", body: JSON.stringify({ token: KEY }) }, null);
    expect(signIn.status).toBe(204);
    const cookie = signIn.headers.get("Set-Cookie")!;
    expect(cookie).toMatch(/^edgetty_session=admin\.\d+\.[\w-]+\.[\w-]+; Path=\/; HttpOnly; SameSite=Strict/);
    const me = await api("/api/v1/auth/session", { headers: { Cookie: cookie.split(";")[0]! } }, null);
    expect(await me.json()).toEqual({ role: "admin" });
    const tampered = cookie.split(";")[0]!.replace(/admin\.(\d)/, "admin.9");
    expect((await api("/api/v1/auth/session", { headers: { Cookie: tampered } }, null)).status).toBe(401);
  });
});
