/**
 * Users' credentials against h2's per-route access levels, in workerd (real D1 and HostDOs): a
 * user's bearer token never passes an `admin` route (reading or changing, their own record
 * included), an admin user's does; a per-user token signs a browser in as that user, with the
 * revocable server-side session, the same limits as the token and the cookie Origin rule.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { BROWSER_SESSIONS_MAX, BROWSER_SESSIONS_PER_USER_MAX } from "../../edge/browser-sessions.ts";
import { adminJson, api, BASE, onlineServer } from "./worker-client.ts";

const sfx = Math.random().toString(36).slice(2, 7);
const id = (p: string) => `${p}-${sfx}`;

/** A call with a bearer token, a cookie, both or neither. */
function call(path: string, auth: { token?: string; cookie?: string }, init: RequestInit = {}): Promise<Response> {
  const headers = new Headers(init.headers);
  if (auth.cookie) headers.set("Cookie", auth.cookie);
  return api(path, { ...init, headers }, auth.token ?? null);
}

async function tokenFor(user: string, extra: Record<string, unknown> = {}): Promise<string> {
  return ((await adminJson("/api/v1/admin/tokens", "POST", { user_id: user, ...extra })) as { token: string }).token;
}

/** Signs a browser in with `token`; answers the cookie pair to send back. */
async function signIn(token: string): Promise<string> {
  const res = await call("/api/v1/auth/session", {}, { method: "POST", body: JSON.stringify({ token }) });
  expect(res.status).toBe(204);
  return res.headers.get("Set-Cookie")!.split(";")[0]!;
}

const [carol, dave, root] = [id("carol"), id("dave"), id("root")];
const srv = id("srv");
let carolToken = "";

beforeAll(async () => {
  await onlineServer(srv);
  await adminJson("/api/v1/admin/users", "POST", { id: carol });
  await adminJson("/api/v1/admin/users", "POST", { id: dave });
  await adminJson("/api/v1/admin/users", "POST", { id: root, role: "admin" });
  await adminJson("/api/v1/admin/grants", "PUT", { server_id: srv, principal_type: "user", principal_id: carol, access: "write" });
  await adminJson("/api/v1/admin/grants", "PUT", { server_id: srv, principal_type: "user", principal_id: dave, access: "write" });
  carolToken = await tokenFor(carol);
});

describe("a user's bearer token", () => {
  it("never passes an admin route, reading or changing, their own record included", async () => {
    const attempts: [string, string, unknown?][] = [
      ["GET", "/api/v1/admin/users"],
      ["GET", `/api/v1/admin/users/${carol}`],
      ["PATCH", `/api/v1/admin/users/${carol}`, { role: "admin" }],
      ["POST", "/api/v1/admin/tokens", { user_id: carol, role: "admin" }],
      ["PUT", "/api/v1/admin/grants", { server_id: srv, principal_type: "user", principal_id: carol, access: "write" }],
      ["PUT", `/api/v1/admin/servers/${srv}/enabled`, { enabled: false }],
      ["PUT", `/api/v1/admin/servers/${id("new")}`, {}],
      ["DELETE", `/api/v1/admin/servers/${srv}`],
      ["GET", "/api/v1/admin/stats"],
      ["GET", "/api/v1/admin/nothing-here"],
    ];
    for (const [method, path, body] of attempts) {
      const res = await call(path, { token: carolToken }, { method, ...(body !== undefined ? { body: JSON.stringify(body) } : {}) });
      expect(res.status, `${method} ${path}`).toBe(403);
      expect(await res.json(), `${method} ${path}`).toMatchObject({ statusCode: 403, code: "ADMIN_ONLY" });
    }
    // Nothing changed: still a user, the server still enabled.
    expect(await adminJson(`/api/v1/admin/users/${carol}`, "GET")).toMatchObject({ role: "user" });
    expect((await call(`/api/v1/terminals/${srv}/api/v1/terminal/sessions`, { token: carolToken })).status).toBe(200);
  });

  it("of an admin user passes admin routes; a user-role token of that admin does not", async () => {
    expect((await call("/api/v1/admin/users", { token: await tokenFor(root, { role: "admin" }) })).status).toBe(200);
    expect((await call("/api/v1/admin/users", { token: await tokenFor(root, { role: "user" }) })).status).toBe(403);
  });
});

describe("a browser signed in with a user's token", () => {
  it("is that user: their servers, never an admin route, and signing out revokes it", async () => {
    const cookie = await signIn(carolToken);
    expect(await (await call("/api/v1/auth/session", { cookie })).json()).toEqual({ role: "user", user_id: carol, read_only: false });
    const list = (await (await call("/api/v1/terminals/", { cookie })).json()) as { id: string }[];
    expect(list.map((s) => s.id)).toEqual([srv]);
    const created = await call(`/api/v1/terminals/${srv}/api/v1/terminal/create`, { cookie }, { method: "POST", headers: { Origin: BASE }, body: JSON.stringify({ terminal_id: 7 }) });
    expect(created.status).toBe(200);
    // The cookie Origin rule holds for a user's cookie too.
    const crossSite = await call(`/api/v1/terminals/${srv}/api/v1/terminal/create`, { cookie }, { method: "POST", headers: { Origin: "https://evil.test" }, body: JSON.stringify({ terminal_id: 8 }) });
    expect(crossSite.status).toBe(403);
    expect((await call("/api/v1/admin/users", { cookie })).status).toBe(403);
    expect((await call("/api/v1/terminal/sessions", { cookie })).status).toBe(403);

    expect((await call("/api/v1/auth/session", { cookie }, { method: "DELETE", headers: { Origin: BASE } })).status).toBe(204);
    expect((await call("/api/v1/auth/session", { cookie })).status).toBe(401);
    expect((await call(`/api/v1/terminals/${srv}/api/v1/terminal/sessions`, { cookie })).status).toBe(401);
  });

  it("keeps a read-only token's limit, and stops when the user is disabled", async () => {
    const cookie = await signIn(await tokenFor(dave, { scopes: ["read-only"] }));
    expect(await (await call("/api/v1/auth/session", { cookie })).json()).toMatchObject({ role: "user", read_only: true });
    expect((await call(`/api/v1/terminals/${srv}/api/v1/terminal/sessions`, { cookie })).status).toBe(200);
    const create = await call(`/api/v1/terminals/${srv}/api/v1/terminal/create`, { cookie }, { method: "POST", headers: { Origin: BASE }, body: JSON.stringify({ terminal_id: 9 }) });
    expect(create.status).toBe(403);
    expect(await create.json()).toMatchObject({ code: "READ_ONLY" });

    await adminJson(`/api/v1/admin/users/${dave}`, "PATCH", { disabled: true });
    expect((await call("/api/v1/auth/session", { cookie })).status).toBe(401);
  });

  it(`signs out only its own user's oldest past ${BROWSER_SESSIONS_PER_USER_MAX}: never the admin's, never another user's`, async () => {
    const admin = await call("/api/v1/auth/session", {}, { method: "POST", body: JSON.stringify({ token: "test-admin-key" }) });
    const adminCookie = admin.headers.get("Set-Cookie")!.split(";")[0]!;
    const erin = id("erin");
    await adminJson("/api/v1/admin/users", "POST", { id: erin });
    const erinCookie = await signIn(await tokenFor(erin));
    // Carol signs in over and over, with one token and with many: more than the edge keeps in all.
    const tokens = [carolToken, await tokenFor(carol), await tokenFor(carol)];
    const first = await signIn(carolToken);
    let last = first;
    for (let i = 0; i < BROWSER_SESSIONS_MAX + 1; i++) last = await signIn(tokens[i % tokens.length]!);
    expect((await call("/api/v1/auth/session", { cookie: adminCookie })).status, "the admin's").toBe(200);
    expect((await call("/api/v1/auth/session", { cookie: erinCookie })).status, "another user's").toBe(200);
    expect((await call("/api/v1/auth/session", { cookie: last })).status, "her newest").toBe(200);
    expect((await call("/api/v1/auth/session", { cookie: first })).status, "her oldest").toBe(401);
  });

  it("is refused for a revoked, unknown or malformed token", async () => {
    for (const token of ["ett_nope_nope", "not-the-key", ""]) {
      const res = await call("/api/v1/auth/session", {}, { method: "POST", body: JSON.stringify({ token }) });
      expect(res.status, token).toBe(401);
    }
  });
});
