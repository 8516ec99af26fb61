/**
 * The Worker under test, called in-process inside workerd, and a fetch helper that sends the
 * admin key the edge project's bindings set (vitest.config.ts); server registration, and a
 * test-played agent control link that answers create/kill/list the way the real agent does.
 */
import { createExecutionContext } from "cloudflare:test";
import { env, exports } from "cloudflare:workers";
import { expect } from "vitest";
import type { Env } from "../../edge/env.ts";
import type { terminalStub } from "../../edge/addresses.ts";
import handler from "../../edge/index.ts";
import { decodeEdgeFrame, encodeAgentFrame } from "../../shared/links/data.ts";
import { Waiters } from "../support/waiters.ts";

export const KEY = "test-admin-key";
export const BASE = "http://edge.test";
export const worker = (exports as unknown as { default: { fetch(input: string, init?: RequestInit): Promise<Response> } }).default;

/**
 * The same Worker's fetch handler called in this isolate, with the real bindings (Durable
 * Objects, D1). For request volume: going through `exports`/`SELF` costs more per request the
 * more requests were made (400 requests: ~30 s that way, ~0.1 s this way).
 */
export function handle(input: string, init?: RequestInit): Promise<Response> {
  return handler.fetch(new Request(input, init), env as unknown as Env, createExecutionContext());
}

/** `fetch(BASE + path)` through the Worker with `Authorization: Bearer <key>` (none for null); a body without a Content-Type is sent as JSON. */
export function api(path: string, init: RequestInit = {}, key: string | null = KEY): Promise<Response> {
  const headers = new Headers(init.headers);
  if (key) headers.set("Authorization", `Bearer ${key}`);
  // The JSON routes take JSON only (415 otherwise); a body without a type is sent as JSON.
  if (init.body !== undefined && !headers.has("Content-Type")) headers.set("Content-Type", "application/json");
  return worker.fetch(BASE + path, { ...init, headers });
}

/** Registers a server; answers its agent token. */
export async function registerServer(id: string): Promise<string> {
  const res = await api(`/api/v1/admin/servers/${id}`, { method: "PUT", body: JSON.stringify({ name: `Server ${id}` }) });
  expect(res.status).toBe(200);
  return ((await res.json()) as { token: string }).token;
}

/** An admin call that must succeed (status < 300); answers the JSON body. */
export async function adminJson(path: string, method: string, body?: unknown): Promise<unknown> {
  const res = await api(path, { method, ...(body !== undefined ? { body: JSON.stringify(body) } : {}) });
  expect(res.status, `${method} ${path}: ${res.status}`).toBeLessThan(300);
  return res.json();
}

/** Registers a server with a fakeAgent connected, once the HostDO has taken the agent's hello. */
export async function onlineServer(id: string): Promise<void> {
  await fakeAgent(id, await registerServer(id));
  // Messages reach a DO in order: once this request is answered, the hello has been processed.
  await api(`/api/v1/terminals/${id}/api/v1/terminal/sessions`);
}

/** Plays the agent's control link: answers create/kill/list the way the real agent does. */
export async function fakeAgent(serverId: string, token: string) {
  const res = await worker.fetch(`${BASE}/agent/v1/control?server=${serverId}`, { headers: { Upgrade: "websocket", Authorization: `Bearer ${token}` } });
  expect(res.status).toBe(101);
  const ws = res.webSocket!;
  ws.accept();
  const seen: { op: string; params: Record<string, unknown> }[] = [];
  ws.addEventListener("message", (event) => {
    const msg = JSON.parse(event.data as string) as { id: number; op: string; params: Record<string, unknown> };
    seen.push(msg);
    const meta = { terminal_id: msg.params["terminal_id"], shell: "bash", cwd: "/home/x", started_at: "2026-01-01T00:00:00.000Z", ephemeral: false };
    const result = msg.op === "create" ? { status: "created", meta } : msg.op === "kill" ? { killed: true } : { sessions: [] };
    ws.send(JSON.stringify({ t: "reply", id: msg.id, ok: true, result }));
  });
  ws.send(JSON.stringify({ t: "hello", agent: { version: "test", hostname: "h", platform: "linux", is_root: false }, sessions: [] }));
  return { ws, seen };
}

/** A `tun.*` frame the edge sent a test-played agent (the fields tests look at). */
export interface TunnelFrame {
  t: string;
  rid: number;
  path?: string;
  key?: string;
}

/**
 * Plays an agent's control link for the tunnel: answers control requests with an empty list,
 * records every `tun.*` frame it is sent in `seen` (notifying `waiters`), and hands each to
 * `onTunnel` with the socket to answer on.
 */
export async function tunnelAgent(server: string, token: string, onTunnel: (msg: TunnelFrame, ws: WebSocket) => void): Promise<{ seen: TunnelFrame[]; waiters: Waiters }> {
  const res = await worker.fetch(`${BASE}/agent/v1/control?server=${server}`, { headers: { Upgrade: "websocket", Authorization: `Bearer ${token}` } });
  expect(res.status).toBe(101);
  const ws = res.webSocket!;
  ws.accept();
  const seen: TunnelFrame[] = [];
  const waiters = new Waiters();
  ws.addEventListener("message", (event) => {
    if (typeof event.data !== "string") return;
    const msg = JSON.parse(event.data) as TunnelFrame & { id?: number };
    if (msg.t === "req") ws.send(JSON.stringify({ t: "reply", id: msg.id, ok: true, result: { sessions: [] } }));
    if (!msg.t.startsWith("tun.")) return;
    seen.push(msg);
    waiters.notify();
    onTunnel(msg, ws);
  });
  ws.send(JSON.stringify({ t: "hello", agent: { version: "test", hostname: "h", platform: "linux", is_root: false }, sessions: [] }));
  return { seen, waiters };
}

/** A WebSocket message's bytes (workerd hands binary messages over as ArrayBuffer or Blob). */
export async function bytesOf(data: unknown): Promise<Uint8Array> {
  return new Uint8Array(data instanceof Blob ? await data.arrayBuffer() : (data as ArrayBuffer));
}

/** Accepts `ws` and collects its binary messages, in order (Blob bytes arrive asynchronously), notifying `waiters` at each. */
export function collect(ws: WebSocket, waiters: Waiters): Uint8Array[] {
  const got: Uint8Array[] = [];
  let chain = Promise.resolve();
  ws.accept();
  ws.addEventListener("message", (event) => {
    chain = chain.then(async () => {
      got.push(await bytesOf(event.data));
      waiters.notify();
    });
  });
  return got;
}

/**
 * Attaches a test-played agent to terminal `stub` (its HELLO, for terminal 1, answered by the DO's
 * RESUME) and configures the terminal (8 clients, no idle timeout).
 */
export async function withAgent(stub: ReturnType<typeof terminalStub>): Promise<{ waiters: Waiters; agent: WebSocket; toAgent: Uint8Array[] }> {
  const waiters = new Waiters();
  const agent = (await stub.fetch("https://do/agent", { headers: { Upgrade: "websocket" } })).webSocket!;
  const toAgent = collect(agent, waiters);
  const meta = { terminal_id: 1, shell: "bash", cwd: "/", started_at: "2026-01-01T00:00:00.000Z", ephemeral: false };
  agent.send(encodeAgentFrame({ t: "hello", hello: { end: 0, oldest: 0, size: { cols: 80, rows: 24 }, meta } }));
  await waiters.until(() => toAgent.some((m) => decodeEdgeFrame(m).t === "resume"), "the DO's RESUME");
  await stub.configure(meta, { maxClients: 8, idleTimeoutMs: 0 });
  return { waiters, agent, toAgent };
}
