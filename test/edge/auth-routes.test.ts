/**
 * Who may call what, in workerd with the real Worker: a browser's session cookie carries no
 * authority across origins, JSON routes take JSON only, and signing out revokes the cookie on
 * the server. Bearer callers are unaffected by origin.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { BROWSER_SESSIONS_MAX } from "../../edge/browser-sessions.ts";
import { api, BASE, fakeAgent, registerServer, worker } from "./worker-client.ts";

const EVIL = "http://evil.example";
const SERVER = "csrf";
const PREFIX = `/api/v1/terminals/${SERVER}`;

/** Signs in; answers the `name=value` part of the session cookie. */
async function signIn(): Promise<string> {
  const res = await api("/api/v1/auth/session", { method: "POST", body: JSON.stringify({ token: "test-admin-key" }) }, null);
  expect(res.status).toBe(204);
  return res.headers.get("Set-Cookie")!.split(";")[0]!;
}

/** A call authenticated by the cookie alone, with the headers a browser would add. */
function withCookie(cookie: string, path: string, init: RequestInit & { headers?: Record<string, string> } = {}): Promise<Response> {
  return worker.fetch(BASE + path, { ...init, headers: { Cookie: cookie, ...init.headers } });
}

/** The state-changing routes issue 9 names, each with its family's error shape for a 403. */
const STATE_CHANGES: { what: string; method: string; path: string; shape: Record<string, unknown> }[] = [
  { what: "/execute", method: "POST", path: "/execute", shape: { detail: expect.any(String), code: "ORIGIN_CHECK_FAILED" } },
  { what: "/execute (per-server mount)", method: "POST", path: `${PREFIX}/execute`, shape: { detail: expect.any(String), code: "ORIGIN_CHECK_FAILED" } },
  { what: "create", method: "POST", path: `${PREFIX}/api/v1/terminal/create`, shape: { statusCode: 403, error: "Forbidden", code: "ORIGIN_CHECK_FAILED" } },
  { what: "delete", method: "DELETE", path: `${PREFIX}/api/v1/terminal/7`, shape: { statusCode: 403, error: "Forbidden", code: "ORIGIN_CHECK_FAILED" } },
  { what: "Open Terminal create", method: "POST", path: "/api/terminals", shape: { detail: expect.any(String), code: "ORIGIN_CHECK_FAILED" } },
  { what: "a file write", method: "POST", path: `${PREFIX}/files/write`, shape: { detail: expect.any(String), code: "ORIGIN_CHECK_FAILED" } },
  { what: "a file delete", method: "DELETE", path: "/files/delete?path=x", shape: { detail: expect.any(String), code: "ORIGIN_CHECK_FAILED" } },
  { what: "a proxied POST", method: "POST", path: "/proxy/3000/api", shape: { detail: expect.any(String), code: "ORIGIN_CHECK_FAILED" } },
  { what: "server registration", method: "PUT", path: "/api/v1/admin/servers/evil", shape: { statusCode: 403, error: "Forbidden", code: "ORIGIN_CHECK_FAILED" } },
];

const BODIES: { what: string; type: string; body: string }[] = [
  { what: "text/plain", type: "text/plain;charset=UTF-8", body: JSON.stringify({ command: "id", terminal_id: 7, token: "attacker-token-0123456789" }) },
  { what: "a form", type: "application/x-www-form-urlencoded", body: "command=id&terminal_id=7&token=attacker-token-0123456789" },
];

let agent: Awaited<ReturnType<typeof fakeAgent>>;

beforeAll(async () => {
  agent = await fakeAgent(SERVER, await registerServer(SERVER));
});

describe("a session cookie from another origin", () => {
  for (const route of STATE_CHANGES) {
    for (const body of BODIES) {
      it(`is refused 403 for ${route.what} with ${body.what} (Origin: another site)`, async () => {
        const cookie = await signIn();
        const res = await withCookie(cookie, route.path, { method: route.method, headers: { Origin: EVIL, "Content-Type": body.type }, body: body.body });
        expect(res.status).toBe(403);
        expect(await res.json()).toMatchObject(route.shape);
      });
    }
  }

  it("is refused without Origin when Sec-Fetch-Site or Referer says another site", async () => {
    const cookie = await signIn();
    const json = { "Content-Type": "application/json" };
    const variants: Record<string, string>[] = [{ "Sec-Fetch-Site": "cross-site" }, { "Sec-Fetch-Site": "same-site" }, { Referer: `${EVIL}/page` }, { Origin: "null" }];
    for (const headers of variants) {
      const res = await withCookie(cookie, `${PREFIX}/api/v1/terminal/create`, { method: "POST", headers: { ...json, ...headers }, body: JSON.stringify({ terminal_id: 8 }) });
      expect(res.status, JSON.stringify(headers)).toBe(403);
    }
    expect(agent.seen.filter((m) => m.op === "create" && m.params["terminal_id"] === 8)).toEqual([]);
  });

  it("opens no WebSocket from another origin", async () => {
    const cookie = await signIn();
    const res = await withCookie(cookie, `${PREFIX}/api/v1/terminal/ws?terminal_id=1`, { headers: { Upgrade: "websocket", Origin: EVIL } });
    expect(res.status).toBe(403);
    expect(await res.json()).toMatchObject({ statusCode: 403, code: "ORIGIN_CHECK_FAILED" });
  });

  it("reads nothing of the Open Terminal family, which answers CORS: its routes refuse a foreign cookie for every method", async () => {
    const cookie = await signIn();
    for (const path of ["/files/cwd", `${PREFIX}/files/read?path=x`, "/ports", "/proxy/3000/", "/execute", "/api/terminals"]) {
      const res = await withCookie(cookie, path, { headers: { Origin: EVIL } });
      expect(res.status, path).toBe(403);
      expect(await res.json()).toMatchObject({ code: "ORIGIN_CHECK_FAILED" });
    }
  });

  it("still reads at the top level: a GET changes nothing, and the browser keeps the answer from the other site", async () => {
    const cookie = await signIn();
    const res = await withCookie(cookie, "/api/v1/admin/servers", { headers: { Origin: EVIL } });
    expect(res.status).toBe(200);
  });

  it("reads nothing under a server's mount, where every request is audited", async () => {
    const cookie = await signIn();
    const res = await withCookie(cookie, `${PREFIX}/api/v1/terminal/sessions`, { headers: { Origin: EVIL } });
    expect(res.status).toBe(403);
    expect(await res.json()).toMatchObject({ code: "ORIGIN_CHECK_FAILED" });
  });
});

describe("signing in", () => {
  it("says what was wrong with the token sent in the body, not how to send one", async () => {
    const signIn = async (body: unknown) => {
      const res = await api("/api/v1/auth/session", { method: "POST", body: JSON.stringify(body) }, null);
      return { status: res.status, body: await res.json() };
    };
    expect(await signIn({ token: "wrong" })).toEqual({ status: 401, body: expect.objectContaining({ code: "UNAUTHORIZED", message: "Invalid API key or token" }) });
    expect(await signIn({})).toEqual({ status: 401, body: expect.objectContaining({ code: "UNAUTHORIZED", message: 'No token: send {"token": "<API key or token>"}' }) });
    expect(await signIn({ token: "ett_nope" })).toMatchObject({ status: 401, body: { message: "Invalid, expired or revoked API token" } });
  });
});

describe("a session cookie from the edge's own origin", () => {
  it("creates, deletes and registers with a JSON body", async () => {
    const cookie = await signIn();
    const same = { Origin: BASE, "Content-Type": "application/json" };
    const created = await withCookie(cookie, `${PREFIX}/api/v1/terminal/create`, { method: "POST", headers: same, body: JSON.stringify({ terminal_id: 9 }) });
    expect(await created.json()).toMatchObject({ status: "created", terminal_id: 9 });
    const deleted = await withCookie(cookie, `${PREFIX}/api/v1/terminal/9`, { method: "DELETE", headers: { Origin: BASE } });
    expect(await deleted.json()).toEqual({ status: "deleted", terminal_id: 9 });
    const registered = await withCookie(cookie, "/api/v1/admin/servers/mine", { method: "PUT", headers: same, body: "{}" });
    expect(registered.status).toBe(200);
    const bySecFetch = await withCookie(cookie, "/api/v1/admin/servers/mine", { method: "DELETE", headers: { "Sec-Fetch-Site": "same-origin" } });
    expect(bySecFetch.status).toBe(200);
  });

  it("is refused 415 for a JSON route's body sent as text/plain or a form", async () => {
    const cookie = await signIn();
    for (const body of BODIES) {
      const res = await withCookie(cookie, `${PREFIX}/api/v1/terminal/create`, { method: "POST", headers: { Origin: BASE, "Content-Type": body.type }, body: body.body });
      expect(res.status).toBe(415);
      expect(await res.json()).toMatchObject({ statusCode: 415, code: "UNSUPPORTED_MEDIA_TYPE" });
    }
  });

  it("stops working everywhere once signed out, copies included", async () => {
    const cookie = await signIn();
    const copy = cookie;
    expect((await withCookie(copy, "/api/v1/auth/session")).status).toBe(200);
    const out = await withCookie(cookie, "/api/v1/auth/session", { method: "DELETE", headers: { Origin: BASE } });
    expect(out.status).toBe(204);
    expect(out.headers.get("Set-Cookie")).toMatch(/Max-Age=0/);
    const me = await withCookie(copy, "/api/v1/auth/session");
    expect(me.status).toBe(401);
    expect(await me.json()).toMatchObject({ statusCode: 401, code: "UNAUTHORIZED" });
    const create = await withCookie(copy, `${PREFIX}/api/v1/terminal/create`, { method: "POST", headers: { Origin: BASE, "Content-Type": "application/json" }, body: "{}" });
    expect(create.status).toBe(401);
    expect((await withCookie(copy, "/api/terminals")).status).toBe(401);
  });

  it(`keeps at most ${BROWSER_SESSIONS_MAX} sign-ins: the oldest is signed out`, async () => {
    const first = await signIn();
    let last = first;
    for (let i = 0; i < BROWSER_SESSIONS_MAX; i++) last = await signIn();
    expect((await withCookie(first, "/api/v1/auth/session")).status).toBe(401);
    expect((await withCookie(last, "/api/v1/auth/session")).status).toBe(200);
  });
});

describe("bearer callers", () => {
  it("are not held to an origin", async () => {
    const res = await api(`${PREFIX}/api/v1/terminal/create`, { method: "POST", headers: { Origin: EVIL }, body: JSON.stringify({ terminal_id: 10 }) });
    expect(await res.json()).toMatchObject({ status: "created", terminal_id: 10 });
  });

  it("get 415 in each family's shape for a JSON route's body that is not JSON", async () => {
    const plain = { "Content-Type": "text/plain" };
    const create = await api(`${PREFIX}/api/v1/terminal/create`, { method: "POST", headers: plain, body: '{"terminal_id":11}' });
    expect(create.status).toBe(415);
    expect(await create.json()).toMatchObject({ statusCode: 415, error: "Unsupported Media Type", code: "UNSUPPORTED_MEDIA_TYPE" });
    const execute = await api("/execute", { method: "POST", headers: plain, body: '{"command":"id"}' });
    expect(execute.status).toBe(415);
    expect(await execute.json()).toMatchObject({ detail: expect.any(String), code: "UNSUPPORTED_MEDIA_TYPE" });
    for (const path of ["/files/write", `${PREFIX}/files/cwd`, "/files/archive"]) {
      const res = await api(path, { method: "POST", headers: plain, body: '{"path":"x"}' });
      expect(res.status, path).toBe(415);
      expect(await res.json()).toMatchObject({ detail: expect.any(String), code: "UNSUPPORTED_MEDIA_TYPE" });
    }
    const register = await api("/api/v1/admin/servers/plain", { method: "PUT", headers: plain, body: "{}" });
    expect(register.status).toBe(415);
    // No body, no type needed.
    expect((await api(`${PREFIX}/api/terminals`, { method: "POST" })).status).toBe(200);
  });
});
