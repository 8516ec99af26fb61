/**
 * Users through the Worker in workerd (real D1 and HostDOs): a user's token lists and reaches
 * only the servers granted to them or their groups; the proxy's checks run in the contract's
 * order; a read grant cannot change anything; admin routes refuse users; revocation and expiry
 * hold from the next request; the audit log records the proxied requests.
 */
import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { createToken } from "../../edge/identities.ts";
import { adminJson, api, KEY, onlineServer, registerServer } from "./worker-client.ts";

const db = (env as unknown as { DB: D1Database }).DB;
const sfx = Math.random().toString(36).slice(2, 7);
const id = (p: string) => `${p}-${sfx}`;

const call = (path: string, token: string, init: RequestInit = {}): Promise<Response> => api(path, init, token);

/** Registers a server and, when `online`, plays its agent (worker-client.ts's fakeAgent). */
async function server(name: string, online: boolean): Promise<void> {
  if (online) await onlineServer(name);
  else await registerServer(name);
}

const [alice, bob, teamA] = [id("alice"), id("bob"), id("team-a")];
const [sA, sB, sOff, sDown] = [id("srv-a"), id("srv-b"), id("srv-off"), id("srv-down")];
let aliceToken = "";
let bobToken = "";

beforeAll(async () => {
  await server(sA, true);
  await server(sB, true);
  await server(sOff, true);
  await server(sDown, false);
  await adminJson("/api/v1/admin/users", "POST", { id: alice });
  await adminJson("/api/v1/admin/users", "POST", { id: bob });
  await adminJson("/api/v1/admin/groups", "POST", { id: teamA });
  await adminJson(`/api/v1/admin/groups/${teamA}/members/${alice}`, "PUT");
  for (const s of [sA, sOff, sDown]) await adminJson("/api/v1/admin/grants", "PUT", { server_id: s, principal_type: "group", principal_id: teamA, access: "write" });
  await adminJson("/api/v1/admin/grants", "PUT", { server_id: sB, principal_type: "user", principal_id: bob, access: "read" });
  await adminJson(`/api/v1/admin/servers/${sOff}/enabled`, "PUT", { enabled: false });
  aliceToken = ((await adminJson("/api/v1/admin/tokens", "POST", { user_id: alice })) as { token: string }).token;
  bobToken = ((await adminJson("/api/v1/admin/tokens", "POST", { user_id: bob })) as { token: string }).token;
});

describe("users at the edge", () => {
  it("list only the enabled servers granted to them or their groups; admins see all", async () => {
    const ids = async (token: string) => ((await (await call("/api/v1/terminals/", token)).json()) as { id: string }[]).map((s) => s.id);
    expect(await ids(aliceToken)).toEqual([sA, sDown].sort());
    expect(await ids(bobToken)).toEqual([sB]);
    expect(await ids(KEY)).toEqual(expect.arrayContaining([sA, sB, sOff, sDown]));
  });

  it("say in the list what each caller may do on each server (the web app offers only that)", async () => {
    const access = async (token: string) =>
      Object.fromEntries(((await (await call("/api/v1/terminals/", token)).json()) as { id: string; access: string | null }[]).map((s) => [s.id, s.access]));
    expect(await access(aliceToken)).toEqual({ [sA]: "write", [sDown]: "write" });
    expect(await access(bobToken)).toEqual({ [sB]: "read" });
    expect(await access(KEY)).toMatchObject({ [sA]: "write", [sB]: "write", [sOff]: "write" });
    // A read-only token of a user with a write grant: read.
    const readOnly = await createToken(db, alice, { scopes: ["read-only"] });
    expect(await access(readOnly.token)).toEqual({ [sA]: "read", [sDown]: "read" });
    // A grant on one terminal lists the server but gives no server-wide access.
    const carol = id("carol");
    await adminJson("/api/v1/admin/users", "POST", { id: carol });
    await adminJson("/api/v1/admin/grants", "PUT", { server_id: sA, terminal_id: 7, principal_type: "user", principal_id: carol, access: "write" });
    expect(await access((await createToken(db, carol, {})).token)).toEqual({ [sA]: null });
  });

  it("go through the proxy's checks in order, one request per step", async () => {
    const step = async (path: string) => {
      const res = await call(path, aliceToken);
      return { status: res.status, body: (await res.json()) as Record<string, unknown> };
    };
    expect(await step(`/api/v1/terminals/${id("nope")}/api/v1/terminal/sessions`)).toEqual({ status: 404, body: { error: "Terminal server not found", code: "SERVER_NOT_FOUND" } });
    expect(await step(`/api/v1/terminals/${sOff}/api/v1/terminal/sessions`)).toEqual({ status: 403, body: { error: "Terminal server disabled", code: "SERVER_DISABLED" } });
    expect(await step(`/api/v1/terminals/${sB}/api/v1/terminal/sessions`)).toEqual({ status: 403, body: { error: "Access denied", code: "ACCESS_DENIED" } });
    expect(await step(`/api/v1/terminals/${sDown}/api/v1/terminal/sessions`)).toEqual({ status: 503, body: { error: "Terminal server not reachable", code: "SERVER_UNREACHABLE" } });
    // (A bare `%2e%2e/` segment never arrives: the URL parser resolves it as `..` before the Worker runs.)
    for (const bad of ["%2e%2e%2f%2e%2e%2fapi/v1/admin/users", "%252e%252e%252fapi", "api%5c..%5cx", "api%2f%2e%2fconfig", "files%2Fread%3Fpath=x"]) {
      expect(await step(`/api/v1/terminals/${sA}/${bad}`), bad).toEqual({ status: 400, body: { error: "Invalid path", code: "INVALID_PATH" } });
    }
    const ok = await call(`/api/v1/terminals/${sA}/api/v1/terminal/sessions`, aliceToken);
    expect(ok.status).toBe(200);
    // The decoded path is what is routed: an encoded slash reaches the same route.
    expect((await call(`/api/v1/terminals/${sA}/api%2Fv1%2Fterminal%2Fsessions`, aliceToken)).status).toBe(200);
  });

  it("with a write grant create and delete; with a read grant only look", async () => {
    const created = await call(`/api/v1/terminals/${sA}/api/v1/terminal/create`, aliceToken, { method: "POST", body: JSON.stringify({ terminal_id: 5 }) });
    expect(created.status).toBe(200);
    expect((await call(`/api/v1/terminals/${sA}/api/v1/terminal/5`, aliceToken, { method: "DELETE" })).status).toBe(200);

    expect((await call(`/api/v1/terminals/${sB}/api/v1/terminal/sessions`, bobToken)).status).toBe(200);
    for (const [method, path, body] of [
      ["POST", "api/v1/terminal/create", { terminal_id: 6 }],
      ["DELETE", "api/v1/terminal/6", undefined],
      ["POST", "execute", { command: "id" }],
      ["GET", "files/read?path=/etc/passwd", undefined],
      ["POST", "api/terminals", {}],
    ] as const) {
      const res = await call(`/api/v1/terminals/${sB}/${path}`, bobToken, { method, ...(body ? { body: JSON.stringify(body) } : {}) });
      expect(res.status, `${method} ${path}`).toBe(403);
      expect(await res.json()).toEqual({ error: "Read-only access", code: "READ_ONLY" });
    }
  });

  it("are refused by admin routes and by the default server's un-prefixed routes", async () => {
    for (const path of ["/api/v1/admin/users", "/api/v1/admin/servers", "/api/v1/admin/audit", "/api/v1/terminal/sessions", "/files/list?directory=/"]) {
      const res = await call(path, aliceToken);
      expect(res.status, path).toBe(403);
    }
  });

  it("lose access on the next request after revocation or expiry", async () => {
    const { token, id: tokenId } = (await adminJson("/api/v1/admin/tokens", "POST", { user_id: alice })) as { token: string; id: string };
    expect((await call("/api/v1/terminals/", token)).status).toBe(200);
    await adminJson(`/api/v1/admin/tokens/${tokenId}`, "DELETE");
    expect((await call("/api/v1/terminals/", token)).status).toBe(401);
    const expired = await createToken(db, alice, { ttl_s: 1 }, Date.now() - 5_000);
    expect((await call("/api/v1/terminals/", expired.token)).status).toBe(401);
    // Leaving the group takes the servers away at once.
    const outsider = ((await adminJson("/api/v1/admin/tokens", "POST", { user_id: alice })) as { token: string }).token;
    await adminJson(`/api/v1/admin/groups/${teamA}/members/${alice}`, "DELETE");
    expect((await call(`/api/v1/terminals/${sA}/api/v1/terminal/sessions`, outsider)).status).toBe(403);
    await adminJson(`/api/v1/admin/groups/${teamA}/members/${alice}`, "PUT");
  });

  it("leave a trail in the audit log", async () => {
    await call(`/api/v1/terminals/${sB}/api/v1/terminal/sessions`, bobToken, { headers: { "CF-Connecting-IP": "198.51.100.7" } });
    const page = (await adminJson("/api/v1/admin/audit?limit=50", "GET")) as { events: { actor: string; action: string; server_id: string; detail: string; ip: string }[] };
    expect(page.events).toContainEqual(expect.objectContaining({ actor: `user:${bob}`, action: "proxy", server_id: sB, detail: "GET /api/v1/terminal/sessions (read)", ip: "198.51.100.7" }));
    expect(page.events).toContainEqual(expect.objectContaining({ actor: `user:${alice}`, action: "proxy", server_id: sA, detail: "POST /api/v1/terminal/create (write)" }));
  });

  it("record a read repeated by a poll once, a read from elsewhere again, and every write", async () => {
    const from = (ip: string) => ({ headers: { "CF-Connecting-IP": ip } });
    for (let i = 0; i < 3; i++) expect((await call(`/api/v1/terminals/${sB}/api/v1/terminal/sessions`, bobToken, from("198.51.100.20"))).status).toBe(200);
    expect((await call(`/api/v1/terminals/${sB}/api/v1/terminal/sessions`, bobToken, from("198.51.100.21"))).status).toBe(200);
    for (let i = 0; i < 2; i++) await call(`/api/v1/terminals/${sA}/api/v1/terminal/delete`, aliceToken, { method: "POST", body: "{}", ...from("198.51.100.22") });
    const page = (await adminJson("/api/v1/admin/audit?limit=100", "GET")) as { events: { action: string; ip: string }[] };
    const rows = (ip: string) => page.events.filter((e) => e.action === "proxy" && e.ip === ip).length;
    expect([rows("198.51.100.20"), rows("198.51.100.21"), rows("198.51.100.22")]).toEqual([1, 1, 2]);
  });
});
