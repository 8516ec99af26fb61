/** The identity admin API through the Worker in workerd, with real D1: users, groups, grants, tokens, audit. */
import { exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";

const KEY = "test-admin-key";
const BASE = "http://edge.test";
const worker = (exports as unknown as { default: { fetch(input: string, init?: RequestInit): Promise<Response> } }).default;

function api(path: string, init: RequestInit & { json?: unknown } = {}, key: string | null = KEY): Promise<Response> {
  const headers = new Headers(init.headers);
  if (key) headers.set("Authorization", `Bearer ${key}`);
  if (init.json !== undefined) headers.set("Content-Type", "application/json");
  return worker.fetch(BASE + path, { ...init, headers, ...(init.json !== undefined ? { body: JSON.stringify(init.json) } : {}) });
}

const uid = (p: string) => `${p}-${Math.random().toString(36).slice(2, 8)}`;

describe("identity admin API", () => {
  it("refuses callers without the admin key", async () => {
    for (const path of ["/api/v1/admin/users", "/api/v1/admin/groups", "/api/v1/admin/grants", "/api/v1/admin/tokens", "/api/v1/admin/audit"]) {
      const res = await api(path, {}, null);
      expect(res.status, path).toBe(401);
      expect(await res.json()).toMatchObject({ statusCode: 401, code: "UNAUTHORIZED" });
    }
  });

  it("creates users, groups, memberships, grants and tokens, and audits each change", async () => {
    const [alice, team] = [uid("alice"), uid("team")];
    const ip = { "CF-Connecting-IP": "203.0.113.9" };
    expect((await api("/api/v1/admin/users", { method: "POST", json: { id: alice, email: `${alice}@example.com` }, headers: ip })).status).toBe(201);
    expect((await api("/api/v1/admin/users", { method: "POST", json: { id: alice } })).status).toBe(409);
    expect((await api("/api/v1/admin/groups", { method: "POST", json: { id: team, name: "Team" } })).status).toBe(201);
    expect((await api(`/api/v1/admin/groups/${team}/members/${alice}`, { method: "PUT" })).status).toBe(200);
    const ungranted = await api("/api/v1/admin/grants", { method: "PUT", json: { server_id: "web-9", principal_type: "group", principal_id: team } });
    expect({ status: ungranted.status, body: await ungranted.json() }).toMatchObject({ status: 404, body: { code: "SERVER_NOT_FOUND" } });
    expect((await api("/api/v1/admin/servers/web-1", { method: "PUT", json: {} })).status).toBe(200);
    const grant = await api("/api/v1/admin/grants", { method: "PUT", json: { server_id: "web-1", principal_type: "group", principal_id: team, access: "read" } });
    expect(await grant.json()).toMatchObject({ server_id: "web-1", terminal_id: 0, access: "read" });
    const groups = (await (await api("/api/v1/admin/groups")).json()) as { id: string; members: string[] }[];
    expect(groups.find((g) => g.id === team)?.members).toEqual([alice]);

    const created = await api("/api/v1/admin/tokens", { method: "POST", json: { user_id: alice, name: "ci", ttl_s: 3600 } });
    expect(created.status).toBe(201);
    expect(created.headers.get("Cache-Control")).toBe("no-store");
    const token = (await created.json()) as { id: string; token: string; expires_at: number };
    expect(token.token).toMatch(/^ett_/);
    const listed = await (await api(`/api/v1/admin/tokens?user_id=${alice}`)).text();
    expect(listed).toContain(token.id);
    expect(listed).not.toContain(token.token);
    expect((await api(`/api/v1/admin/tokens/${token.id}`, { method: "DELETE" })).status).toBe(200);
    expect((await api(`/api/v1/admin/tokens/${token.id}`, { method: "DELETE" })).status).toBe(404);

    const del = await api(`/api/v1/admin/grants?server_id=web-1&principal_type=group&principal_id=${team}`, { method: "DELETE" });
    expect(del.status).toBe(200);

    const audit = (await (await api("/api/v1/admin/audit?limit=500")).json()) as { events: { actor: string; action: string; detail: string; ip: string; server_id: string | null }[] };
    const mine = audit.events.filter((e) => e.detail.includes(alice) || e.detail.includes(team) || e.detail.includes(token.id)).map((e) => e.action);
    expect(mine).toEqual(["grant.delete", "token.revoke", "token.create", "grant.put", "group.member", "group.create", "user.create"]);
    const userCreate = audit.events.find((e) => e.action === "user.create" && e.detail.startsWith(alice));
    expect(userCreate).toMatchObject({ actor: "admin-key", ip: "203.0.113.9" });
  });

  it("audits a server's registration, its agent token's re-issue and its removal, never the token", async () => {
    const server = uid("srv");
    const ip = { "CF-Connecting-IP": "203.0.113.10" };
    const put = await api(`/api/v1/admin/servers/${server}`, { method: "PUT", json: { name: "Web one" }, headers: ip });
    expect(put.status).toBe(200);
    const { token } = (await put.json()) as { token: string };
    expect((await api(`/api/v1/admin/servers/${server}`, { method: "PUT", json: { name: "Web one" } })).status).toBe(200);
    expect((await api(`/api/v1/admin/servers/${server}`, { method: "DELETE" })).status).toBe(200);
    expect((await api(`/api/v1/admin/servers/${server}`, { method: "DELETE" })).status).toBe(404);
    const scripted = await api(`/api/v1/admin/servers/${server}`, { method: "PUT", json: { url: "javascript:alert(1)" } });
    expect(scripted.status).toBe(400);
    expect(await scripted.json()).toMatchObject({ code: "INVALID_PARAMETERS" });

    const audit = (await (await api("/api/v1/admin/audit?limit=500")).json()) as { events: { actor: string; action: string; detail: string; ip: string; server_id: string | null }[] };
    const mine = audit.events.filter((e) => e.server_id === server);
    expect(mine.map((e) => e.action)).toEqual(["server.delete", "server.put", "server.put"]);
    expect(mine.at(-1)).toMatchObject({ actor: "admin-key", ip: "203.0.113.10", detail: "name=Web one" });
    expect(JSON.stringify(audit.events)).not.toContain(token);
  });

  it("pages the audit log and refuses bad paging", async () => {
    for (let i = 0; i < 3; i++) await api("/api/v1/admin/groups", { method: "POST", json: { id: uid("g") } });
    const first = (await (await api("/api/v1/admin/audit?limit=2")).json()) as { events: { id: number }[]; next_before: number };
    expect(first.events).toHaveLength(2);
    const second = (await (await api(`/api/v1/admin/audit?limit=2&before=${first.next_before}`)).json()) as { events: { id: number }[] };
    expect(second.events[0]!.id).toBeLessThan(first.events[1]!.id);
    expect((await api("/api/v1/admin/audit?limit=0")).status).toBe(400);
    expect((await api("/api/v1/admin/audit?before=x")).status).toBe(400);
  });

  it("answers bad input with the family's error shape", async () => {
    const res = await api("/api/v1/admin/users", { method: "POST", json: { id: "Not Valid" } });
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ statusCode: 400, error: "Bad Request", code: "INVALID_PARAMETERS" });
    expect((await api("/api/v1/admin/users", { method: "POST", body: "{", headers: { "Content-Type": "application/json" } })).status).toBe(400);
    expect((await api("/api/v1/admin/tokens", { method: "POST", json: { user_id: uid("ghost") } })).status).toBe(404);
    expect((await api("/api/v1/admin/users/x/y")).status).toBe(404);
  });

  it("refuses malformed percent-escapes in a path, a ttl_s that is not a JSON integer and server fields that are not strings", async () => {
    for (const [method, path] of [["DELETE", "/api/v1/admin/tokens/%"], ["GET", "/api/v1/admin/users/%E0%A4%A"], ["PUT", "/api/v1/admin/groups/%E0/members/x"]] as const) {
      const res = await api(path, { method });
      expect(res.status, `${method} ${path}`).toBe(400);
      expect(await res.json()).toMatchObject({ statusCode: 400, code: "INVALID_PARAMETERS", message: expect.stringMatching(/percent-encoded/) });
    }
    const alice = uid("ttl");
    expect((await api("/api/v1/admin/users", { method: "POST", json: { id: alice } })).status).toBe(201);
    // Number() would have read each of these as a lifetime (true as 1 s).
    for (const ttl_s of [true, [60], "  60  ", "0x3c", 1.5, null]) {
      const res = await api("/api/v1/admin/tokens", { method: "POST", json: { user_id: alice, ttl_s } });
      expect(res.status, JSON.stringify(ttl_s)).toBe(400);
      expect(await res.json()).toMatchObject({ code: "INVALID_PARAMETERS", message: expect.stringMatching(/ttl_s/) });
    }
    // Too long a lifetime names the limit in days too (the CLI's --ttl counts in days).
    const tooLong = await api("/api/v1/admin/tokens", { method: "POST", json: { user_id: alice, ttl_s: 400 * 86_400 } });
    expect(await tooLong.json()).toMatchObject({ code: "INVALID_PARAMETERS", message: "ttl_s must be an integer from 1 to 31622400 seconds (366 days)" });
    expect((await api("/api/v1/admin/tokens", { method: "POST", json: { user_id: alice, ttl_s: 60 } })).status).toBe(201);
    const server = uid("srv");
    for (const json of [{ name: { a: 1 } }, { url: 5 }]) {
      const res = await api(`/api/v1/admin/servers/${server}`, { method: "PUT", json });
      expect(res.status, JSON.stringify(json)).toBe(400);
      expect(await res.json()).toMatchObject({ code: "INVALID_PARAMETERS" });
    }
    const servers = (await (await api("/api/v1/admin/servers")).json()) as { id: string }[];
    expect(servers.map((s) => s.id)).not.toContain(server);
  });
});
