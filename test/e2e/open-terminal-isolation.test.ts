/**
 * Per-user isolation in the Open Terminal API, as Open WebUI uses it: one API key for all its
 * users, told apart by `X-User-Id` (and `?user_id=` on the terminal WebSocket). Each user sees
 * and reaches only their own terminals, processes and session working directories; a caller that
 * asserts no user is the single-user owner and sees everything.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { RawClient } from "../support/raw-client.ts";
import { startStack, type TestStack } from "../support/stack.ts";

let stack: TestStack;
const clients: RawClient[] = [];

beforeAll(async () => {
  stack = await startStack();
});

afterEach(() => {
  for (const c of clients.splice(0)) c.close();
});

afterAll(async () => {
  await stack?.stop();
});

const as = (user: string, extra: Record<string, string> = {}) => ({ "X-User-Id": user, ...extra });

async function call(method: string, path: string, headers: Record<string, string>, body?: unknown): Promise<{ status: number; body: any }> { // eslint-disable-line @typescript-eslint/no-explicit-any
  const res = await stack.api(path, { method, headers: { ...headers, ...(body ? { "Content-Type": "application/json" } : {}) }, ...(body ? { body: JSON.stringify(body) } : {}) });
  return { status: res.status, body: await res.json() };
}

describe("two Open WebUI users on one key", () => {
  it("see and reach only their own terminals, by name, over HTTP and the WebSocket", async () => {
    const mine = await call("POST", "/api/terminals", as("alice", { "X-Session-Id": "chat-alice" }));
    expect(mine.body).toMatchObject({ id: "chat-alice" });
    // Asking again for the same chat's panel resumes the same session.
    expect((await call("POST", "/api/terminals", as("alice", { "X-Session-Id": "chat-alice" }))).body).toEqual(mine.body);
    expect((await call("POST", "/api/terminals", as("bob", { "X-Session-Id": "chat-alice" }))).status).toBe(409);

    expect((await call("GET", "/api/terminals", as("alice"))).body.map((t: { id: string }) => t.id)).toEqual(["chat-alice"]);
    expect((await call("GET", "/api/terminals", as("bob"))).body).toEqual([]);
    expect((await call("GET", "/api/terminals/chat-alice", as("bob"))).status).toBe(404);
    expect((await call("DELETE", "/api/terminals/chat-alice", as("bob"))).status).toBe(404);
    // The single-user owner (no X-User-Id) sees every session.
    expect((await call("GET", "/api/terminals", {})).body.map((t: { id: string }) => t.id)).toContain("chat-alice");

    const bob = await RawClient.connect(`${stack.url}/api/terminals/chat-alice?user_id=bob`, stack.apiKey);
    clients.push(bob);
    await bob.waitFor(() => bob.closed !== null, "bob's socket closed");
    expect(bob.closed).toEqual({ code: 4004, reason: "Session not found" });
    // A client that can set headers may name its user with X-User-Id, as on HTTP.
    const bobByHeader = await RawClient.connect(`${stack.url}/api/terminals/chat-alice`, stack.apiKey, { "X-User-Id": "bob" });
    clients.push(bobByHeader);
    expect(await bobByHeader.waitForClose()).toEqual({ code: 4004, reason: "Session not found" });
    const alice = await RawClient.connect(`${stack.url}/api/terminals/chat-alice?user_id=alice`, stack.apiKey);
    clients.push(alice);
    alice.type("echo alice-$((20+22))\r");
    await alice.waitForText("alice-42");

    expect((await call("DELETE", "/api/terminals/chat-alice", as("alice"))).body).toEqual({ status: "deleted" });
  });

  it("leave the single user's sessions to a WebSocket that names an empty user, as HTTP does an empty X-User-Id", async () => {
    expect((await call("POST", "/api/terminals", { "X-Session-Id": "chat-solo" })).body).toMatchObject({ id: "chat-solo" });
    expect((await call("GET", "/api/terminals/chat-solo", as(""))).status).toBe(200);
    const solo = await RawClient.connect(`${stack.url}/api/terminals/chat-solo?user_id=`, stack.apiKey);
    clients.push(solo);
    solo.type("echo solo-$((20+22))\r");
    await solo.waitForText("solo-42");
    expect((await call("DELETE", "/api/terminals/chat-solo", {})).body).toEqual({ status: "deleted" });
  });

  it("see and reach only their own processes", async () => {
    const started = await call("POST", "/execute", as("alice"), { command: "sleep 30" });
    const id = started.body.id as string;
    expect((await call("GET", "/execute", as("bob"))).body.map((p: { id: string }) => p.id)).not.toContain(id);
    expect((await call("GET", `/execute/${id}/status`, as("bob"))).status).toBe(404);
    expect((await call("POST", `/execute/${id}/input`, as("bob"), { input: "x" })).status).toBe(404);
    expect((await call("DELETE", `/execute/${id}`, as("bob"))).status).toBe(404);
    expect((await call("GET", "/execute", as("alice"))).body.map((p: { id: string }) => p.id)).toContain(id);
    expect((await call("DELETE", `/execute/${id}?force=true`, as("alice"))).body).toEqual({ status: "killed" });
  });

  it("keep separate working directories for the same chat id", async () => {
    await call("POST", "/files/mkdir", as("alice"), { path: "alice-dir" });
    expect((await call("POST", "/files/cwd", as("alice", { "X-Session-Id": "chat-1" }), { path: "alice-dir" })).status).toBe(200);
    expect((await call("GET", "/files/cwd", as("alice", { "X-Session-Id": "chat-1" }))).body.cwd).toBe(`${stack.home}/alice-dir`);
    expect((await call("GET", "/files/cwd", as("bob", { "X-Session-Id": "chat-1" }))).body.cwd).toBe(stack.home);
  });
});
