/**
 * Read vs write grants on every route of every family, per-terminal grants, and share links,
 * through the real local stack (workerd + agent + PTYs), with real HTTP and WebSocket clients.
 *
 * One table lists each server-scoped route with the access it needs; a user with a `read` grant,
 * one with a `write` grant, one with a `read` grant on a single terminal and a share link's
 * bearer each call every route, and what each may do is what the table says.
 */
import { describe, expect, it } from "vitest";
import { RawClient } from "../support/raw-client.ts";
import { useStack } from "../support/stack.ts";
import { HttpRefusal, TermClient } from "../support/term-client.ts";

const stack = useStack();
const SERVER = "local";
const MOUNT = `/api/v1/terminals/${SERVER}`;
/** The terminal the grants and links are about; OTHER is a terminal beside it on the same server. */
const WATCHED = 31;
const OTHER = 32;
/** A terminal the write user creates and deletes through the table. */
const SCRATCH = 33;

type Need = "read" | "write";
interface RouteCase {
  method: string;
  path: string;
  need: Need;
  /** The route addresses WATCHED (per-terminal grants and share links reach it). */
  watched?: boolean;
  body?: unknown;
}

/** Every server-scoped route, with the access it needs. */
const ROUTES: RouteCase[] = [
  // terminal session API (seed 002)
  { method: "GET", path: "api/v1/terminal/sessions", need: "read" },
  { method: "POST", path: "api/v1/terminal/create", need: "write", body: { terminal_id: String(SCRATCH) } },
  { method: "GET", path: `api/v1/terminal/history/${WATCHED}`, need: "read", watched: true },
  { method: "GET", path: `api/v1/terminal/history?terminal_id=${WATCHED}`, need: "read", watched: true },
  { method: "GET", path: `api/v1/terminal/raw?terminal_id=${WATCHED}&format=text`, need: "read", watched: true },
  { method: "GET", path: `api/v1/terminal/screenshot?terminal_id=${WATCHED}&save=false`, need: "read", watched: true },
  { method: "GET", path: `api/v1/terminal/share/${WATCHED}`, need: "write", watched: true },
  { method: "POST", path: `api/v1/terminal/share/${WATCHED}`, need: "write", watched: true, body: { ttl_s: 60 } },
  { method: "DELETE", path: `api/v1/terminal/share/${WATCHED}/0123456789abcdef`, need: "write", watched: true },
  { method: "DELETE", path: `api/v1/terminal/${SCRATCH}`, need: "write" },
  // Open Terminal API
  { method: "GET", path: "health", need: "read" },
  { method: "GET", path: "api/config", need: "read" },
  { method: "GET", path: "openapi.json", need: "read" },
  { method: "GET", path: "system", need: "write" },
  { method: "GET", path: "info", need: "write" },
  { method: "GET", path: "execute", need: "write" },
  { method: "POST", path: "execute", need: "write", body: { command: "true" } },
  { method: "GET", path: "execute/nope/status", need: "write" },
  { method: "POST", path: "execute/nope/input", need: "write", body: { input: "x" } },
  { method: "DELETE", path: "execute/nope", need: "write" },
  { method: "GET", path: "files/cwd", need: "write" },
  { method: "POST", path: "files/cwd", need: "write", body: { path: "." } },
  { method: "GET", path: "files/list?directory=.", need: "write" },
  { method: "GET", path: "files/read?path=nope.txt", need: "write" },
  { method: "GET", path: "files/display?path=nope.txt", need: "write" },
  { method: "GET", path: "files/view?path=nope.txt", need: "write" },
  { method: "GET", path: "files/serve/nope.txt", need: "write" },
  { method: "POST", path: "files/write", need: "write", body: { path: "grants-table.txt", content: "x" } },
  { method: "POST", path: "files/replace", need: "write", body: { path: "grants-table.txt", replacements: [{ target: "x", replacement: "y" }] } },
  { method: "GET", path: "files/grep?query=x&path=.", need: "write" },
  { method: "GET", path: "files/glob?pattern=*.txt&path=.", need: "write" },
  { method: "POST", path: "files/mkdir", need: "write", body: { path: "grants-dir" } },
  { method: "POST", path: "files/move", need: "write", body: { source: "grants-table.txt", destination: "grants-dir/t.txt" } },
  { method: "POST", path: "files/archive", need: "write", body: { paths: ["grants-dir"] } },
  { method: "POST", path: "files/upload?directory=.", need: "write" },
  { method: "DELETE", path: "files/delete?path=grants-dir&recursive=true", need: "write" },
  { method: "GET", path: "ports", need: "write" },
  { method: "GET", path: "proxy/1/", need: "write" },
  { method: "POST", path: "proxy/1/x", need: "write", body: {} },
  { method: "POST", path: "api/terminals", need: "write", body: {} },
  { method: "GET", path: "api/terminals", need: "read" },
  { method: "GET", path: "api/terminals/nope", need: "read" },
  { method: "DELETE", path: "api/terminals/nope", need: "write" },
];

function call(token: string, method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(`${stack.url}${path.startsWith("/") ? path : `${MOUNT}/${path}`}`, {
    method,
    headers: { Authorization: `Bearer ${token}`, ...(body !== undefined ? { "Content-Type": "application/json" } : {}), ...headers },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
}

async function admin<T = Record<string, unknown>>(method: string, path: string, body?: unknown): Promise<T> {
  const res = await call(stack.apiKey, method, path, body);
  const text = await res.text();
  expect(res.status, `${method} ${path}: ${text}`).toBeLessThan(300);
  return (text ? JSON.parse(text) : {}) as T;
}

/** A user with one grant and a token; answers the token. */
async function userWith(id: string, access: Need, terminalId?: number): Promise<string> {
  await admin("POST", "/api/v1/admin/users", { id });
  await admin("PUT", "/api/v1/admin/grants", { server_id: SERVER, principal_type: "user", principal_id: id, access, ...(terminalId ? { terminal_id: terminalId } : {}) });
  return (await admin<{ token: string }>("POST", "/api/v1/admin/tokens", { user_id: id })).token;
}

/**
 * How long a test waits for a server-closed socket's close event, in ms: the close frame arrives
 * at once, but the local stack's proxy ends the TCP connection about 10 s later (as for every
 * server-side close, e.g. sessions.test.ts's delete), and `ws` reports the close only then.
 */
const CLOSE_WAIT_MS = 45_000;

const wsUrl = (query: string) => `${stack.url}${MOUNT}/api/v1/terminal/ws?${query}`;

interface Share {
  id: string;
  token: string;
  url: string;
  expires_at: number;
}

describe("read and write grants", () => {
  it("a read grant looks, a write grant does everything, on every route of every family", async () => {
    await admin("POST", `${MOUNT}/api/v1/terminal/create`, { terminal_id: String(WATCHED) });
    const reader = await userWith("reader", "read");
    const writer = await userWith("writer", "write");
    for (const route of ROUTES) {
      const what = `${route.method} ${route.path}`;
      const asReader = await call(reader, route.method, route.path, route.body);
      const readerBody = await asReader.text();
      if (route.need === "write") {
        expect(asReader.status, `reader ${what}: ${readerBody}`).toBe(403);
        expect(JSON.parse(readerBody), `reader ${what}`).toEqual({ error: "Read-only access", code: "READ_ONLY" });
      } else {
        expect([401, 403], `reader ${what}: ${asReader.status} ${readerBody}`).not.toContain(asReader.status);
      }
      const asWriter = await call(writer, route.method, route.path, route.body);
      const writerBody = await asWriter.text();
      expect([401, 403], `writer ${what}: ${asWriter.status} ${writerBody}`).not.toContain(asWriter.status);
    }
    // The unscoped families: the terminals list and one's own session for both; the admin family for neither.
    for (const token of [reader, writer]) {
      expect((await call(token, "GET", "/api/v1/terminals/")).status).toBe(200);
      expect((await call(token, "GET", "/api/v1/auth/session")).status).toBe(200);
      for (const [method, path] of [["GET", "/api/v1/admin/users"], ["GET", "/api/v1/admin/grants"], ["PUT", "/api/v1/admin/grants"], ["GET", "/api/v1/admin/audit"], ["GET", "/api/v1/terminal/sessions"]] as const) {
        const res = await call(token, method, path, method === "PUT" ? {} : undefined);
        expect(res.status, `${method} ${path}`).toBe(403);
        expect(await res.json()).toMatchObject({ code: "ADMIN_ONLY" });
      }
    }
  });

  it("a read grant attaches read-only to the session API WebSocket: output arrives, input and resize are refused", async () => {
    const reader = await userWith("watcher", "read");
    const writer = await userWith("typist", "write");
    const typing = stack.track(await TermClient.connect(wsUrl(`terminal_id=${WATCHED}`), { apiKey: writer }));
    expect(typing.info?.readonly).toBe(false);
    // No `readonly` asked for: the grant decides.
    const viewer = stack.track(await TermClient.connect(wsUrl(`terminal_id=${WATCHED}`), { apiKey: reader }));
    expect(viewer.info?.readonly).toBe(true);
    viewer.input("echo VIEWER_$((6*7))\r");
    viewer.resize(100, 40);
    await viewer.waitFor(() => viewer.errors.length >= 2, "two READ_ONLY errors");
    expect(viewer.errors.map((e) => e.code)).toEqual(["READ_ONLY", "READ_ONLY"]);
    typing.input("echo TYPED_$((6*7))\r");
    await viewer.waitForText("TYPED_42");
    expect(viewer.text()).not.toContain("VIEWER_42");
    // A read grant cannot create a session by attaching.
    await expect(TermClient.connect(wsUrl("terminal_id=4321"), { apiKey: reader })).rejects.toMatchObject({ status: 404 });
    await expect(TermClient.connect(wsUrl(""), { apiKey: reader })).rejects.toMatchObject({ status: 404 });
  });

  it("a read-only token joins the Open Terminal WebSocket read-only: output arrives, input is dropped", async () => {
    // A user's /api/terminals sessions are that user's alone (open-terminal-owner.test.ts): its
    // read-only token watches them.
    const writer = await userWith("ot-writer", "write");
    const reader = (await admin<{ token: string }>("POST", "/api/v1/admin/tokens", { user_id: "ot-writer", scopes: ["read-only"] })).token;
    const made = (await (await call(writer, "POST", "api/terminals", {})).json()) as { id: string };
    const url = `${stack.url}${MOUNT}/api/terminals/${made.id}`;
    const typing = stack.track(await RawClient.connect(url, writer));
    const watching = stack.track(await RawClient.connect(url, reader));
    watching.type("echo RAWVIEWER_$((6*7))\r");
    typing.type("echo RAWTYPED_$((6*7))\r");
    await watching.waitForText("RAWTYPED_42");
    expect(watching.closed).toBeNull();
    expect(watching.text()).not.toContain("RAWVIEWER_42");
    // No grant at all: 4003 after the first message.
    await admin("POST", "/api/v1/admin/users", { id: "ot-nobody" });
    const nobody = (await admin<{ token: string }>("POST", "/api/v1/admin/tokens", { user_id: "ot-nobody" })).token;
    const refused = stack.track(await RawClient.connect(url, nobody));
    await refused.waitFor(() => refused.closed !== null, "the close");
    expect(refused.closed?.code).toBe(4003);
  });

  it("a grant on one terminal reaches that terminal only", async () => {
    await admin("POST", `${MOUNT}/api/v1/terminal/create`, { terminal_id: String(OTHER) });
    const one = await userWith("one-terminal", "read", WATCHED);
    const sessions = (await (await call(one, "GET", "api/v1/terminal/sessions")).json()) as { id: number }[];
    expect(sessions.map((s) => s.id)).toEqual([WATCHED]);
    for (const route of ROUTES) {
      if (route.need === "read" && route.watched) {
        const res = await call(one, route.method, route.path, route.body);
        expect([401, 403], `${route.method} ${route.path}: ${res.status}`).not.toContain(res.status);
      }
    }
    for (const path of [`api/v1/terminal/history/${OTHER}`, `api/v1/terminal/raw?terminal_id=${OTHER}`, "api/v1/terminal/raw", "api/config", "api/terminals"]) {
      const res = await call(one, "GET", path);
      expect(res.status, path).toBe(403);
      expect(await res.json(), path).toEqual({ error: "Access denied", code: "ACCESS_DENIED" });
    }
    const viewer = stack.track(await TermClient.connect(wsUrl(`terminal_id=${WATCHED}`), { apiKey: one }));
    expect(viewer.info?.readonly).toBe(true);
    await expect(TermClient.connect(wsUrl(`terminal_id=${OTHER}`), { apiKey: one })).rejects.toMatchObject({ status: 403 });
  });

  it("an admin's read-only token only reads, at the top level too, in the family's shape", async () => {
    await admin("POST", "/api/v1/admin/users", { id: "boss", role: "admin" });
    const ro = (await admin<{ token: string }>("POST", "/api/v1/admin/tokens", { user_id: "boss", scopes: ["read-only"] })).token;
    expect((await call(ro, "GET", "/api/v1/terminal/sessions")).status).toBe(200);
    const create = await call(ro, "POST", "/api/v1/terminal/create", { terminal_id: "44" });
    expect(create.status).toBe(403);
    expect(await create.json()).toMatchObject({ statusCode: 403, error: "Forbidden", code: "READ_ONLY" });
    const files = await call(ro, "GET", "/files/list?directory=.");
    expect(files.status).toBe(403);
    expect(await files.json()).toMatchObject({ code: "READ_ONLY", detail: expect.any(String) });
    expect((await call(ro, "POST", "/api/v1/admin/users", { id: "nope" })).status).toBe(403);
    expect((await call(ro, "GET", "/api/v1/admin/users")).status).toBe(200);
  });
});

describe("share links", () => {
  async function share(ttl_s?: number): Promise<Share> {
    const res = await call(stack.apiKey, "POST", `api/v1/terminal/share/${WATCHED}`, ttl_s === undefined ? {} : { ttl_s });
    expect(res.status).toBe(201);
    return (await res.json()) as Share;
  }
  const attach = (token: string, terminal = WATCHED) => TermClient.connect(wsUrl(`terminal_id=${terminal}`), { protocols: ["edgetty.share", token] });

  it("join their terminal's Open Terminal WebSocket read-only at the top level and under the mount alike", async () => {
    const link = await share();
    const typing = stack.track(await TermClient.connect(wsUrl(`terminal_id=${WATCHED}`), { apiKey: stack.apiKey }));
    for (const base of ["", MOUNT]) {
      const watching = stack.track(await RawClient.connect(`${stack.url}${base}/api/terminals/${WATCHED}`, link.token));
      const marker = `RAWSHARE${base ? "M" : "T"}_$((6*7))`;
      typing.input(`echo ${marker}\r`);
      await watching.waitForText(marker.replace("$((6*7))", "42"));
      expect(watching.closed, base || "/").toBeNull();
    }
  });

  it("open one terminal read-only with no other credential: output arrives, input is refused", async () => {
    const link = await share();
    expect(link.token).toMatch(/^ets_[0-9a-f]{16}_/);
    const fragment = new URLSearchParams(new URL(link.url).hash.slice(1));
    expect(new URL(link.url).pathname).toBe("/share");
    expect(Object.fromEntries(fragment)).toEqual({ server: SERVER, terminal: String(WATCHED), token: link.token });
    expect(link.expires_at - Date.now()).toBeGreaterThan(50 * 60 * 1000); // the 1 h default
    const listed = (await admin<{ id: string }[]>("GET", `${MOUNT}/api/v1/terminal/share/${WATCHED}`)).map((l) => l.id);
    expect(listed).toContain(link.id);
    expect(JSON.stringify(await admin("GET", `${MOUNT}/api/v1/terminal/share/${WATCHED}`))).not.toContain(link.token);

    const viewer = stack.track(await attach(link.token));
    expect(viewer.ws.protocol).toBe("edgetty.share");
    expect(viewer.info).toMatchObject({ readonly: true, terminal_id: WATCHED });
    viewer.input("echo SHAREVIEWER_$((6*7))\r");
    await viewer.waitFor(() => viewer.errors.some((e) => e.code === "READ_ONLY"), "READ_ONLY");
    const typing = stack.track(await TermClient.connect(wsUrl(`terminal_id=${WATCHED}`), { apiKey: stack.apiKey }));
    typing.input("echo SHARED_$((6*7))\r");
    await viewer.waitForText("SHARED_42");
    expect(viewer.text()).not.toContain("SHAREVIEWER_42");
  });

  it("reach that terminal's read routes and nothing else", async () => {
    const { token } = await share();
    for (const path of [`api/v1/terminal/history/${WATCHED}`, `api/v1/terminal/raw?terminal_id=${WATCHED}&format=text`, `api/v1/terminal/screenshot?terminal_id=${WATCHED}`]) {
      expect((await call(token, "GET", path)).status, path).toBe(200);
    }
    expect(((await (await call(token, "GET", "api/v1/terminal/sessions")).json()) as { id: number }[]).map((s) => s.id)).toEqual([WATCHED]);
    for (const [method, path, body] of [
      ["GET", `api/v1/terminal/history/${OTHER}`],
      ["GET", "files/list?directory=."],
      ["POST", "execute", { command: "id" }],
      ["POST", "api/v1/terminal/create", { terminal_id: "45" }],
      ["POST", `api/v1/terminal/share/${WATCHED}`, {}],
      ["DELETE", `api/v1/terminal/${WATCHED}`],
    ] as const) {
      const res = await call(token, method, path, body);
      expect(res.status, `${method} ${path}`).toBe(403);
    }
    for (const path of ["/api/v1/terminals/", "/api/v1/admin/users", "/api/v1/terminal/sessions", "/api/v1/auth/session"]) {
      expect((await call(token, "GET", path)).status, path).toBe(403);
    }
    // On a public route the link is ignored: the answer is anyone's.
    expect((await call(token, "GET", "api/config")).status).toBe(200);
    await expect(attach(token, OTHER)).rejects.toMatchObject({ status: 403 });
    // It signs no browser in.
    const signIn = await fetch(`${stack.url}/api/v1/auth/session`, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ token }) });
    expect(signIn.status).toBe(401);
  });

  it("stop on revocation, and their open WebSockets close", async () => {
    const link = await share();
    const viewer = stack.track(await attach(link.token));
    const revoked = await admin<{ closed_sockets: number }>("DELETE", `${MOUNT}/api/v1/terminal/share/${WATCHED}/${link.id}`);
    expect(revoked.closed_sockets).toBe(1);
    await viewer.waitFor(() => viewer.closed !== null, "the viewer's close", CLOSE_WAIT_MS);
    expect(viewer.closed).toEqual({ code: 4001, reason: "share link revoked" });
    expect((await call(link.token, "GET", `api/v1/terminal/history/${WATCHED}`)).status).toBe(401);
    await expect(attach(link.token)).rejects.toBeInstanceOf(HttpRefusal);
    expect((await call(stack.apiKey, "DELETE", `${MOUNT}/api/v1/terminal/share/${WATCHED}/${link.id}`)).status).toBe(404);
  });

  it("close their Open Terminal WebSockets too, at the top level and under the mount, on revocation and at expiry", async () => {
    for (const base of ["", MOUNT]) {
      const revoked = await share();
      const watching = stack.track(await RawClient.connect(`${stack.url}${base}/api/terminals/${WATCHED}`, revoked.token));
      const typing = stack.track(await TermClient.connect(wsUrl(`terminal_id=${WATCHED}`), { apiKey: stack.apiKey }));
      const marker = `RAWREVOKE${base ? "M" : "T"}_$((6*7))`;
      typing.input(`echo ${marker}\r`);
      await watching.waitForText(marker.replace("$((6*7))", "42")); // joined
      const answer = await admin<{ closed_sockets: number }>("DELETE", `${MOUNT}/api/v1/terminal/share/${WATCHED}/${revoked.id}`);
      expect(answer.closed_sockets, base || "/").toBe(1);
      await watching.waitFor(() => watching.closed !== null, "the revoked link's close", CLOSE_WAIT_MS);
      expect(watching.closed, base || "/").toEqual({ code: 4001, reason: "share link revoked" });

      const expiring = await share(3);
      const until = stack.track(await RawClient.connect(`${stack.url}${base}/api/terminals/${WATCHED}`, expiring.token));
      const again = `RAWEXPIRE${base ? "M" : "T"}_$((6*7))`;
      typing.input(`echo ${again}\r`);
      await until.waitForText(again.replace("$((6*7))", "42"));
      await until.waitFor(() => until.closed !== null, "the close at expiry", CLOSE_WAIT_MS);
      expect(until.closed, base || "/").toEqual({ code: 4001, reason: "credential expired" });
    }
  });

  it("stop when they expire, and their open WebSockets close", async () => {
    const link = await share(3);
    const viewer = stack.track(await attach(link.token));
    await viewer.waitFor(() => viewer.closed !== null, "the close at expiry", CLOSE_WAIT_MS);
    expect(viewer.closed).toEqual({ code: 4001, reason: "credential expired" });
    expect(Date.now()).toBeGreaterThanOrEqual(link.expires_at);
    expect((await call(link.token, "GET", `api/v1/terminal/history/${WATCHED}`)).status).toBe(401);
  });

  it("end with their session: a new session under the same id does not open with an old link", async () => {
    const id = 34;
    await admin("POST", `${MOUNT}/api/v1/terminal/create`, { terminal_id: String(id) });
    const res = await call(stack.apiKey, "POST", `api/v1/terminal/share/${id}`, {});
    const { token } = (await res.json()) as Share;
    expect((await call(token, "GET", `api/v1/terminal/history/${id}`)).status).toBe(200);
    await admin("DELETE", `${MOUNT}/api/v1/terminal/${id}`);
    await admin("POST", `${MOUNT}/api/v1/terminal/create`, { terminal_id: String(id) });
    // Removing the links is part of ending the session, which the DELETE waited for.
    expect((await call(token, "GET", `api/v1/terminal/history/${id}`)).status).toBe(401);
    await expect(attach(token, id)).rejects.toMatchObject({ status: 401 });
  });

  it("refuse bad lifetimes and unknown terminals", async () => {
    for (const ttl_s of [0, -1, 1.5, 8 * 24 * 3600, "x"]) {
      const res = await call(stack.apiKey, "POST", `api/v1/terminal/share/${WATCHED}`, { ttl_s });
      expect(res.status, String(ttl_s)).toBe(400);
      expect(await res.json()).toMatchObject({ statusCode: 400, code: "INVALID_PARAMETERS" });
    }
    expect((await call(stack.apiKey, "POST", "api/v1/terminal/share/4999", {})).status).toBe(404);
    expect((await call(stack.apiKey, "POST", "api/v1/terminal/share/0", {})).status).toBe(400);
    expect((await call(stack.apiKey, "DELETE", `api/v1/terminal/share/${WATCHED}/not-hex`)).status).toBe(400);
  });

  it("leave a trail: attaches, links created, used and revoked", async () => {
    const { events } = await admin<{ events: { actor: string; action: string; terminal_id: number | null }[] }>("GET", "/api/v1/admin/audit?limit=500");
    const actions = new Set(events.map((e) => e.action));
    for (const action of ["terminal.attach.read", "terminal.attach.write", "share.create", "share.revoke", "share.use"]) expect(actions, action).toContain(action);
    expect(events.find((e) => e.action === "share.use" && e.terminal_id === WATCHED)).toMatchObject({ actor: expect.stringMatching(/^share:[0-9a-f]{16}$/) });
    expect(events.find((e) => e.action === "terminal.attach.read" && e.actor === "user:watcher")).toBeTruthy();
    expect(events.find((e) => e.action === "terminal.attach.read" && e.actor.startsWith("share:"))).toBeTruthy();
  });
});
