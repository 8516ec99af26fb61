/**
 * The terminals proxy's WebSocket `/api/v1/terminals/{server}/api/terminals/{session}` through
 * the real local stack (reference/open-webui-terminals.md §2.4): first-message auth and each
 * refusal's close code, one connection per step; frames relayed unchanged to an agent server's
 * PTY and to a URL server (a `ws` server on loopback that records what it receives); and
 * revocation, sign-out, a disabled user and expiry closing live WebSockets.
 */
import { execFile } from "node:child_process";
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import WebSocket, { WebSocketServer } from "ws";
import { RawClient } from "../support/raw-client.ts";
import { useStack } from "../support/stack.ts";
import { TermClient } from "../support/term-client.ts";
import { until } from "../support/waiters.ts";

const stack = useStack();
const UPSTREAM_KEY = "upstream-ws-key";

/** What the URL server's WebSocket saw of one connection. */
interface UpstreamConn {
  url: string;
  headers: IncomingHttpHeaders;
  messages: { data: Buffer; binary: boolean }[];
  socket: WebSocket;
}
const upstreamConns: UpstreamConn[] = [];
let upstream: Server;

const json = (body: unknown) => ({ body: JSON.stringify(body), headers: { "Content-Type": "application/json" } });
const admin = (path: string, method: string, body?: unknown) => stack.api(path, { method, ...(body === undefined ? {} : json(body)) });

async function token(user: string, ttl_s?: number): Promise<{ id: string; token: string }> {
  const res = await admin("/api/v1/admin/tokens", "POST", { user_id: user, ...(ttl_s ? { ttl_s } : {}) });
  expect(res.status).toBe(201);
  return (await res.json()) as { id: string; token: string };
}

async function grant(user: string, server: string, access: "read" | "write"): Promise<void> {
  expect((await admin("/api/v1/admin/grants", "PUT", { server_id: server, principal_type: "user", principal_id: user, access })).status).toBe(200);
}

/** Opens the proxy WebSocket (the upgrade must be accepted) and sends `first` as its first message. */
async function open(path: string, first?: string | Buffer): Promise<RawClient> {
  const client = stack.track(await RawClient.open(`${stack.url}/api/v1/terminals/${path}`));
  if (typeof first === "string") client.ws.send(first);
  else if (first) client.ws.send(first, { binary: true });
  return client;
}

const auth = (t: string) => JSON.stringify({ type: "auth", token: t });

/**
 * How long a close may take to be seen, in ms: the edge sends its close frame at once, but the
 * local stack may hold the TCP close (which `ws` waits for) a while longer.
 */
const CLOSE_WAIT_MS = 40_000;

async function closeOf(client: TermClient): Promise<{ code: number; reason: string } | null> {
  await client.waitFor(() => client.closed !== null, "the attach to close", CLOSE_WAIT_MS);
  return client.closed;
}

/** Creates an `/api/terminals` session on `local` as `bearer`; answers its id. */
async function createSession(bearer: string, userId?: string): Promise<string> {
  const res = await fetch(`${stack.url}/api/v1/terminals/local/api/terminals`, {
    method: "POST",
    headers: { Authorization: `Bearer ${bearer}`, ...(userId ? { "X-User-Id": userId } : {}) },
  });
  expect(res.status).toBe(200);
  return ((await res.json()) as { id: string }).id;
}

beforeAll(async () => {
  upstream = createServer((_req, res) => res.writeHead(404).end());
  const wss = new WebSocketServer({ server: upstream, perMessageDeflate: false });
  wss.on("connection", (socket, req) => {
    const conn: UpstreamConn = { url: req.url ?? "", headers: req.headers, messages: [], socket };
    upstreamConns.push(conn);
    socket.on("message", (data: Buffer, binary: boolean) => conn.messages.push({ data: Buffer.from(data), binary }));
  });
  await new Promise<void>((resolve) => upstream.listen(0, "127.0.0.1", resolve));
  const upstreamUrl = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;

  for (const id of ["wanda", "wilma", "rita", "nora"]) expect((await admin("/api/v1/admin/users", "POST", { id })).status).toBe(201);
  for (const id of ["off", "away", "ot"]) expect((await admin(`/api/v1/admin/servers/${id}`, "PUT", { name: id })).status).toBe(200);
  expect((await admin("/api/v1/admin/servers/off/enabled", "PUT", { enabled: false })).status).toBe(200);
  expect((await admin("/api/v1/admin/servers/ot/url", "PUT", { url: upstreamUrl, key: UPSTREAM_KEY })).status).toBe(200);
  await grant("wanda", "local", "write");
  await grant("wanda", "ot", "write");
  await grant("wilma", "local", "write");
  await grant("rita", "local", "read");
  await grant("rita", "ot", "read");
}, 60_000);

afterAll(async () => {
  for (const c of upstreamConns) c.socket.terminate();
  await new Promise((resolve) => upstream?.close(resolve));
});

describe("the proxy WebSocket's auth and checks", () => {
  it("accepts the upgrade, then closes each refusal with the contract's code and reason", async () => {
    const wanda = (await token("wanda")).token;
    const rita = (await token("rita")).token;
    const nora = (await token("nora")).token;
    const steps: [string, string | Buffer, { code: number; reason: string }][] = [
      ["local/api/terminals/x", "not json", { code: 4001, reason: "Auth timeout or invalid payload" }],
      ["local/api/terminals/x", Buffer.from(auth(wanda)), { code: 4001, reason: "Auth timeout or invalid payload" }],
      ["local/api/terminals/x", JSON.stringify({ type: "resize", cols: 80, rows: 24 }), { code: 4001, reason: "Expected auth message" }],
      ["local/api/terminals/x", auth("not-a-token"), { code: 4001, reason: "Invalid token" }],
      ["nowhere/api/terminals/x", auth(wanda), { code: 4004, reason: "Terminal server not found" }],
      ["nowhere/api/terminals/x", auth("not-a-token"), { code: 4001, reason: "Invalid token" }],
      ["off/api/terminals/x", auth(stack.apiKey), { code: 4003, reason: "Terminal server disabled" }],
      ["local/api/terminals/x", auth(nora), { code: 4003, reason: "Access denied" }],
      ["away/api/terminals/x", auth(stack.apiKey), { code: 4003, reason: "Terminal server not reachable" }],
      // A read grant passes the checks (it would join read-only); the URL server's relay cannot keep it so.
      ["local/api/terminals/x", auth(rita), { code: 4004, reason: "Session not found" }],
      ["local/api/terminals/no-such-session", auth(wanda), { code: 4004, reason: "Session not found" }],
      ["ot/api/terminals/x", JSON.stringify({ type: "ping" }), { code: 4001, reason: "Expected auth message" }],
      ["ot/api/terminals/x", auth(nora), { code: 4003, reason: "Access denied" }],
      ["ot/api/terminals/x", auth(rita), { code: 4003, reason: "Read-only access" }],
    ];
    for (const [path, first, expected] of steps) {
      const client = await open(path, first);
      expect({ path, first: String(first).slice(0, 40), close: await client.waitForClose() }).toEqual({ path, first: String(first).slice(0, 40), close: expected });
      expect(client.text() + client.texts.join("")).toBe("");
    }
    // None of them reached the URL server.
    expect(upstreamConns).toHaveLength(0);
  });

  it("closes 4001 when no first message comes within 10 s, wherever the socket is held", async () => {
    const silent = await Promise.all(["local/api/terminals/x", "nowhere/api/terminals/x", "ot/api/terminals/x"].map((p) => open(p)));
    for (const client of silent) expect(await client.waitForClose(40_000)).toEqual({ code: 4001, reason: "Auth timeout or invalid payload" });
  });

  it("keeps a user out of another user's session (Session not found)", async () => {
    const id = await createSession((await token("wanda")).token, "owui-1");
    const wilma = await open(`local/api/terminals/${id}?user_id=owui-1`, auth((await token("wilma")).token));
    expect(await wilma.waitForClose()).toEqual({ code: 4004, reason: "Session not found" });
  });
});

describe("the proxy WebSocket's relay", () => {
  it("carries raw PTY bytes both ways to an agent server's session, and is audited", async () => {
    const wanda = (await token("wanda")).token;
    const id = await createSession(wanda);
    const client = await open(`local/api/terminals/${id}`, auth(wanda));
    client.resize(100, 30);
    client.type(Buffer.from("printf 'relay-%s\\n' \"$(stty size)\" é€\r"));
    await client.waitForText("relay-30 100");
    await client.waitForText("é€");
    expect(client.texts).toEqual([]);
    const audit = (await (await stack.api("/api/v1/admin/audit?limit=50")).json()) as { events: { actor: string; action: string; server_id: string; detail: string }[] };
    expect(audit.events).toContainEqual(expect.objectContaining({ actor: "user:wanda", action: "proxy", server_id: "local", detail: `WS /api/terminals/${id} (write)` }));
  });

  it("dials a URL server's WebSocket with its key and relays frames unchanged; ends the client with 1000", async () => {
    const wanda = (await token("wanda")).token;
    upstreamConns.length = 0;
    const client = await open("ot/api/terminals/chat%20one?user_id=spoofed", auth(wanda));
    // Sent at once, while the edge checks the token and dials: it waits, in order.
    const bytes = Buffer.from([0, 1, 2, 0xfe, 0xff, 0x1b, 0x5b]);
    client.type(bytes);
    await until("the URL server to be dialled and authenticated", () => (upstreamConns[0]?.messages.length ?? 0) >= 1);
    const conn = upstreamConns[0]!;
    expect(conn.url).toBe("/api/terminals/chat%20one?user_id=wanda");
    expect(conn.headers["origin"]).toBeUndefined();
    expect(conn.headers["authorization"]).toBeUndefined();
    expect(conn.messages[0]).toEqual({ data: Buffer.from(JSON.stringify({ type: "auth", token: UPSTREAM_KEY })), binary: false });
    client.ws.send("text frame é");
    await until("both frames upstream", () => conn.messages.length >= 3);
    expect(conn.messages.slice(1)).toEqual([
      { data: bytes, binary: true },
      { data: Buffer.from("text frame é"), binary: false },
    ]);
    conn.socket.send(Buffer.from("binary-out"), { binary: true });
    conn.socket.send("text-out");
    await client.waitFor(() => client.text() === "binary-out" && client.texts.join() === "text-out", "both frames back");

    conn.socket.close(4004, "Session not found");
    expect(await client.waitForClose()).toEqual({ code: 1000, reason: "" });
  });
});

describe("revocation and expiry", () => {
  it("revoking a token closes its live WebSockets: proxy (agent and URL server) and terminal attach", async () => {
    const t = await token("wanda");
    const id = await createSession(t.token);
    const proxied = await open(`local/api/terminals/${id}`, auth(t.token));
    proxied.type("echo before-revoke\r");
    await proxied.waitForText("before-revoke");
    upstreamConns.length = 0;
    const relayed = await open("ot/api/terminals/r1", auth(t.token));
    await until("the URL server to be dialled", () => upstreamConns.length === 1);
    const attached = stack.track(await TermClient.connect(`${stack.url}/api/v1/terminals/local/api/v1/terminal/ws?terminal_id=${id}`, { apiKey: t.token }));

    const revoke = await admin(`/api/v1/admin/tokens/${t.id}`, "DELETE");
    expect(await revoke.json()).toEqual({ status: "revoked", id: t.id, closed_websockets: 3 });
    const revoked = { code: 4001, reason: "Token revoked" };
    const closes = await Promise.all([proxied.waitForClose(CLOSE_WAIT_MS), relayed.waitForClose(CLOSE_WAIT_MS), closeOf(attached)]);
    expect(closes).toEqual([revoked, revoked, revoked]);
    // The URL server's socket was closed too, and the next request with the token fails.
    await until("the URL server's socket to close", () => upstreamConns[0]!.socket.readyState === WebSocket.CLOSED);
    const next = await fetch(`${stack.url}/api/v1/terminals/local/api/terminals`, { headers: { Authorization: `Bearer ${t.token}` } });
    expect(next.status).toBe(401);
    const again = await open(`local/api/terminals/${id}`, auth(t.token));
    expect(await again.waitForClose()).toEqual({ code: 4001, reason: "Invalid token" });
  });

  it("`edgetty token revoke` closes them too, and says how many", async () => {
    const t = await token("wanda");
    const id = await createSession(t.token);
    const proxied = await open(`local/api/terminals/${id}`, auth(t.token));
    proxied.type("echo cli-revoke\r");
    await proxied.waitForText("cli-revoke");
    const out = await new Promise<string>((resolve, reject) =>
      execFile(process.execPath, ["bin/edgetty.js", "token", "revoke", t.id, "--edge", stack.url, "--api-key", stack.apiKey], (error, stdout) => (error ? reject(error) : resolve(stdout))),
    );
    expect(out.trim()).toBe(`revoked token ${t.id} (closed 1 open WebSocket)`);
    expect(await proxied.waitForClose(CLOSE_WAIT_MS)).toEqual({ code: 4001, reason: "Token revoked" });
  });

  it("signing a browser out closes the WebSockets its cookie opened", async () => {
    const t = await token("wanda");
    const signIn = await fetch(`${stack.url}/api/v1/auth/session`, { method: "POST", ...json({ token: t.token }) });
    expect(signIn.status).toBe(204);
    const cookie = /^(edgetty_session=[^;]+)/.exec(signIn.headers.get("Set-Cookie") ?? "")![1]!;
    const browser = { Cookie: cookie, Origin: stack.url };
    const attached = stack.track(await TermClient.connect(`${stack.url}/api/v1/terminals/local/api/v1/terminal/ws`, { headers: browser }));
    attached.input("echo signed-in\r");
    await attached.waitForText("signed-in");
    // Another credential of the same user stays open.
    const other = stack.track(await TermClient.connect(`${stack.url}/api/v1/terminals/local/api/v1/terminal/ws?terminal_id=${attached.info!.terminal_id}`, { apiKey: t.token }));
    expect((await fetch(`${stack.url}/api/v1/auth/session`, { method: "DELETE", headers: browser })).status).toBe(204);
    expect(await closeOf(attached)).toEqual({ code: 4001, reason: "Signed out" });
    other.input("echo still-here\r");
    await other.waitForText("still-here");
  });

  it("disabling a user closes every WebSocket of theirs", async () => {
    expect((await admin("/api/v1/admin/users", "POST", { id: "dora" })).status).toBe(201);
    await grant("dora", "local", "write");
    const t = await token("dora");
    const attached = stack.track(await TermClient.connect(`${stack.url}/api/v1/terminals/local/api/v1/terminal/ws`, { apiKey: t.token }));
    expect((await admin("/api/v1/admin/users/dora", "PATCH", { disabled: true })).status).toBe(200);
    expect(await closeOf(attached)).toEqual({ code: 4001, reason: "User disabled" });
  });

  it("a token's WebSockets close when it expires", async () => {
    const id = await createSession((await token("wanda")).token);
    const t = await token("wanda", 8);
    const proxied = await open(`local/api/terminals/${id}`, auth(t.token));
    proxied.type("echo expiring\r");
    await proxied.waitForText("expiring");
    expect(await proxied.waitForClose(CLOSE_WAIT_MS)).toEqual({ code: 4001, reason: "credential expired" });
  });
});
