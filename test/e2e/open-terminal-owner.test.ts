/**
 * Whose Open Terminal sessions, processes and terminals a user's credential reaches, through the
 * real local stack: a user's token always acts as that user (whatever `X-User-Id` it sends, or
 * none) on `/api/terminals` (HTTP under the mount, the top-level WebSocket and the proxied one)
 * and on the process routes; another user's session is `Session not found` (404, 4004). The API
 * key keeps acting for the `X-User-Id` it sends (or for everyone without one). And a grant on
 * some terminals only attaches to one that exists: creating one by attaching takes what
 * `POST create` takes.
 */
import { describe, expect, it } from "vitest";
import { RawClient } from "../support/raw-client.ts";
import { useStack } from "../support/stack.ts";
import { TermClient } from "../support/term-client.ts";

const stack = useStack();
const SERVER = "local";
const MOUNT = `/api/v1/terminals/${SERVER}`;
/** How long a server-closed socket's close may take to be seen, in ms (see ws-proxy.test.ts). */
const CLOSE_WAIT_MS = 45_000;
const SLOW_TEST_MS = 180_000;

function call(token: string, method: string, path: string, headers: Record<string, string> = {}, body?: unknown): Promise<Response> {
  return fetch(`${stack.url}${path.startsWith("/") ? path : `${MOUNT}/${path}`}`, {
    method,
    headers: { Authorization: `Bearer ${token}`, ...(body !== undefined ? { "Content-Type": "application/json" } : {}), ...headers },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
}

async function admin<T = Record<string, unknown>>(method: string, path: string, body?: unknown): Promise<T> {
  const res = await call(stack.apiKey, method, path, {}, body);
  const text = await res.text();
  expect(res.status, `${method} ${path}: ${text}`).toBeLessThan(300);
  return (text ? JSON.parse(text) : {}) as T;
}

/** A user with a grant on `local` (or on one terminal of it) and a token; answers the token. */
async function userWith(id: string, access: "read" | "write", terminalId?: number): Promise<string> {
  const made = await call(stack.apiKey, "POST", "/api/v1/admin/users", {}, { id });
  expect([201, 409]).toContain(made.status); // 409: made by an earlier test of this file
  await admin("PUT", "/api/v1/admin/grants", { server_id: SERVER, principal_type: "user", principal_id: id, access, ...(terminalId ? { terminal_id: terminalId } : {}) });
  return (await admin<{ token: string }>("POST", "/api/v1/admin/tokens", { user_id: id })).token;
}

async function ids(res: Response): Promise<string[]> {
  expect(res.status).toBe(200);
  return ((await res.json()) as { id: string }[]).map((t) => t.id);
}

async function create(token: string, headers: Record<string, string>): Promise<string> {
  const res = await call(token, "POST", "api/terminals", headers);
  expect(res.status, await res.clone().text()).toBe(200);
  return ((await res.json()) as { id: string }).id;
}

const topLevel = (name: string, query = "") => `${stack.url}/api/terminals/${encodeURIComponent(name)}${query}`;
const proxied = (name: string) => `${stack.url}${MOUNT}/api/terminals/${encodeURIComponent(name)}`;

describe("a user's token on /api/terminals", () => {
  it("lists, gets and deletes only its own sessions, whatever X-User-Id it sends", { timeout: SLOW_TEST_MS }, async () => {
    const alice = await userWith("alice", "write");
    const eve = await userWith("eve", "write");
    const bob = await userWith("bob", "read");
    expect(await create(alice, { "X-User-Id": "alice", "X-Session-Id": "alice2" })).toBe("alice2");
    const owui = await create(stack.apiKey, { "X-User-Id": "owui-1" });

    // eve, with no header, with alice's, and with the API key's user: none of them.
    const variants: Record<string, string>[] = [{}, { "X-User-Id": "alice" }, { "X-User-Id": "owui-1" }];
    for (const headers of variants) {
      const seen = await ids(await call(eve, "GET", "api/terminals", headers));
      expect(seen).not.toContain("alice2");
      expect(seen).not.toContain(owui);
      const got = await call(eve, "GET", "api/terminals/alice2", headers);
      expect(got.status).toBe(404);
      expect(await got.json()).toEqual({ error: "Session not found", code: "SESSION_NOT_FOUND" });
      const deleted = await call(eve, "DELETE", "api/terminals/alice2", headers);
      expect(deleted.status).toBe(404);
      expect(await deleted.json()).toEqual({ error: "Session not found", code: "SESSION_NOT_FOUND" });
    }
    expect((await call(bob, "GET", "api/terminals/alice2")).status).toBe(404);

    // alice sees hers with any header or none; the API key without a user sees every session, with one only that user's.
    expect(await ids(await call(alice, "GET", "api/terminals"))).toEqual(["alice2"]);
    expect(await ids(await call(alice, "GET", "api/terminals", { "X-User-Id": "someone-else" }))).toEqual(["alice2"]);
    expect((await call(alice, "GET", "api/terminals/alice2")).status).toBe(200);
    expect(await ids(await call(stack.apiKey, "GET", "api/terminals"))).toEqual(expect.arrayContaining(["alice2", owui]));
    expect(await ids(await call(stack.apiKey, "GET", "api/terminals", { "X-User-Id": "owui-1" }))).toEqual([owui]);

    expect(await (await call(alice, "DELETE", "api/terminals/alice2", { "X-User-Id": "another-name" })).json()).toEqual({ status: "deleted" });
  });

  it("owns the sessions it makes without X-User-Id: another user can neither take the name nor attach", { timeout: SLOW_TEST_MS }, async () => {
    const alice = await userWith("alice", "write");
    const eve = await userWith("eve", "write");
    const bob = await userWith("bob", "read");
    expect(await create(alice, { "X-Session-Id": "alice-sess" })).toBe("alice-sess");

    const taken = await call(eve, "POST", "api/terminals", { "X-Session-Id": "alice-sess" });
    expect(taken.status).toBe(409);
    expect(((await taken.json()) as { code: string }).code).toBe("SESSION_ID_TAKEN");
    expect(await ids(await call(eve, "GET", "api/terminals"))).not.toContain("alice-sess");
    expect((await call(bob, "GET", "api/terminals/alice-sess")).status).toBe(404);

    // The same session asked again by alice, with another X-User-Id, resumes.
    expect(await create(alice, { "X-Session-Id": "alice-sess", "X-User-Id": "alias" })).toBe("alice-sess");

    // Top level and proxied, with or without ?user_id=: 4004 for eve and bob; alice types in it.
    for (const url of [topLevel("alice-sess"), topLevel("alice-sess", "?user_id=alice"), proxied("alice-sess")]) {
      for (const intruder of [eve, bob]) {
        const client = stack.track(await RawClient.connect(url, intruder));
        expect(await client.waitForClose(CLOSE_WAIT_MS), url).toEqual({ code: 4004, reason: "Session not found" });
      }
    }
    const own = stack.track(await RawClient.connect(topLevel("alice-sess"), alice));
    own.type("echo OWNED_$((6*7))\r");
    await own.waitForText("OWNED_42");
  });

  it("cannot type into another user's session over the top-level WebSocket", { timeout: SLOW_TEST_MS }, async () => {
    const alice = await userWith("alice", "write");
    const eve = await userWith("eve", "write");
    await create(alice, { "X-User-Id": "alice", "X-Session-Id": "alice3" });
    const mine = stack.track(await RawClient.connect(topLevel("alice3"), alice));
    mine.type("echo READY_$((6*7))\r");
    await mine.waitForText("READY_42");
    const intruder = stack.track(await RawClient.connect(topLevel("alice3"), eve));
    intruder.type("echo INTRUDER_$((6*7))\r");
    expect(await intruder.waitForClose(CLOSE_WAIT_MS)).toEqual({ code: 4004, reason: "Session not found" });
    mine.type("echo AFTER_$((6*7))\r");
    await mine.waitForText("AFTER_42");
    expect(mine.text()).not.toContain("INTRUDER_42");
  });

  it("keeps the API key's sessions to the key: a user is told Session not found", { timeout: SLOW_TEST_MS }, async () => {
    const eve = await userWith("eve", "write");
    const single = await create(stack.apiKey, {});
    const owui = await create(stack.apiKey, { "X-User-Id": "owui-2" });
    for (const name of [single, owui]) {
      const client = stack.track(await RawClient.connect(topLevel(name), eve));
      expect(await client.waitForClose(CLOSE_WAIT_MS)).toEqual({ code: 4004, reason: "Session not found" });
      expect((await call(eve, "DELETE", `api/terminals/${name}`)).status).toBe(404);
    }
    // The key itself still reaches them, as before.
    const key = stack.track(await RawClient.connect(topLevel(owui, "?user_id=owui-2"), stack.apiKey));
    key.type("echo KEY_$((6*7))\r");
    await key.waitForText("KEY_42");
  });
});

describe("a user's token on the process routes", () => {
  it("reaches its own processes whatever X-User-Id it sends, and no one else's", { timeout: SLOW_TEST_MS }, async () => {
    const alice = await userWith("alice", "write");
    const eve = await userWith("eve", "write");
    const started = await call(alice, "POST", "execute", { "X-User-Id": "a1" }, { command: "sleep 30" });
    expect(started.status).toBe(200);
    const id = ((await started.json()) as { id: string }).id;
    const list = async (token: string, user: string) => ((await (await call(token, "GET", "execute", { "X-User-Id": user })).json()) as { id: string }[]).map((p) => p.id);
    expect(await list(alice, "a2")).toContain(id);
    expect((await call(alice, "GET", `execute/${id}/status`)).status).toBe(200);
    expect(await list(eve, "a1")).not.toContain(id);
    expect((await call(eve, "GET", `execute/${id}/status`, { "X-User-Id": "a1" })).status).toBe(404);
    expect((await call(eve, "DELETE", `execute/${id}?force=true`, { "X-User-Id": "a1" })).status).toBe(404);
    expect((await call(alice, "DELETE", `execute/${id}?force=true`)).status).toBe(200);
  });
});

describe("creating a terminal by attaching", () => {
  const wsUrl = (query: string) => `${stack.url}${MOUNT}/api/v1/terminal/ws?${query}`;

  it("takes server-wide write: a grant on one terminal attaches to it, but a missing one is 404", { timeout: SLOW_TEST_MS }, async () => {
    await admin("POST", `${MOUNT}/api/v1/terminal/create`, { terminal_id: "51" });
    const one = await userWith("one-terminal", "write", 51);
    const attached = stack.track(await TermClient.connect(wsUrl("terminal_id=51"), { apiKey: one }));
    expect(attached.info?.readonly).toBe(false);
    attached.close();
    await admin("DELETE", `${MOUNT}/api/v1/terminal/51`);
    await expect(TermClient.connect(wsUrl("terminal_id=51&shell=sh&cmd=id"), { apiKey: one })).rejects.toMatchObject({ status: 404 });
    expect((await call(one, "POST", "api/v1/terminal/create", {}, { terminal_id: "51" })).status).toBe(403);
    expect(((await (await call(stack.apiKey, "GET", "api/v1/terminal/sessions")).json()) as { id: number }[]).map((s) => s.id)).not.toContain(51);

    // A server-wide read grant plus write on one terminal: the same.
    expect((await call(stack.apiKey, "POST", "/api/v1/admin/users", {}, { id: "mixed" })).status).toBe(201);
    await admin("PUT", "/api/v1/admin/grants", { server_id: SERVER, principal_type: "user", principal_id: "mixed", access: "read" });
    const mixed = await userWith("mixed", "write", 52);
    await expect(TermClient.connect(wsUrl("terminal_id=52&shell=sh"), { apiKey: mixed })).rejects.toMatchObject({ status: 404 });

    // A server-wide write grant still creates by attaching.
    const writer = await userWith("server-writer", "write");
    const made = stack.track(await TermClient.connect(wsUrl("terminal_id=53"), { apiKey: writer }));
    expect(made.info?.readonly).toBe(false);
  });
});
