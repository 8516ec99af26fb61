/**
 * RawClients (the Open Terminal WebSocket `/api/terminals/{id}`) inside a real TerminalDO in
 * workerd: raw sockets and the agent's data link are opened on the DO itself, the agent is played
 * over its WebSocket with the data link's own codec, and the auth window runs through the DO's
 * real alarm. What is checked: first-message auth and its refusals (which never tell a keyless
 * caller whether the session exists), input framed once for the agent, output reduced to PTY
 * bytes, the pending-socket cap and the auth deadline.
 */
import { env } from "cloudflare:workers";
import { runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { terminalStub } from "../../edge/addresses.ts";
import type { Env } from "../../edge/env.ts";
import { RAW_PENDING_MAX, RAW_TAG, type RawAttachment } from "../../edge/raw-terminal.ts";
import { decodeEdgeFrame, encodeAgentFrame, encodeOutput, encodeSnapshot, type EdgeDataFrame } from "../../shared/links/data.ts";
import { ServerOp } from "../../shared/links/client.ts";
import { TERMINAL_WS_AUTH_TIMEOUT_MS, TerminalWsClose } from "../../shared/open-terminal-terminals.ts";
import { Waiters } from "../support/waiters.ts";

const KEY = "test-admin-key";
const bindings = env as unknown as Env;
const encoder = new TextEncoder();
const decoder = new TextDecoder();
let terminals = 0;

/** workerd hands a client socket's binary messages over as Blobs (or ArrayBuffers). */
async function bytesOf(data: unknown): Promise<Uint8Array | string> {
  if (typeof data === "string") return data;
  return new Uint8Array(data instanceof Blob ? await data.arrayBuffer() : (data as ArrayBuffer));
}

/** A socket opened on the DO, with what it received and how it closed. */
function watch(ws: WebSocket, waiters: Waiters) {
  const seen = { messages: [] as (Uint8Array | string)[], close: null as { code: number; reason: string } | null };
  let chain = Promise.resolve();
  ws.accept();
  ws.addEventListener("message", (event) => {
    // In order, although Blob bytes arrive asynchronously.
    chain = chain.then(async () => {
      seen.messages.push(await bytesOf(event.data));
      waiters.notify();
    });
  });
  ws.addEventListener("close", (event) => {
    seen.close = { code: event.code, reason: event.reason };
    waiters.notify();
  });
  return seen;
}

/** A fresh TerminalDO; `known`: an agent says hello for terminal 1 on its data link first. */
async function terminal(known: boolean, maxClients = 8) {
  const server = `raw-${++terminals}`;
  const stub = terminalStub(bindings, server, 1);
  const waiters = new Waiters();
  let agent: WebSocket | null = null;
  let agentSeen: ReturnType<typeof watch> | null = null;
  const frames = (): EdgeDataFrame[] => agentSeen?.messages.map((m) => decodeEdgeFrame(m as Uint8Array)) ?? [];
  if (known) {
    agent = (await stub.fetch("https://do/agent", { headers: { Upgrade: "websocket" } })).webSocket!;
    agentSeen = watch(agent, waiters);
    const meta = { terminal_id: 1, shell: "bash", cwd: "/", started_at: "2026-01-01T00:00:00.000Z", ephemeral: false };
    agent.send(encodeAgentFrame({ t: "hello", hello: { end: 0, oldest: 0, size: { cols: 80, rows: 24 }, meta } }));
    await waiters.until(() => frames().some((f) => f.t === "resume"), "the DO's RESUME");
    await stub.configure(meta, { maxClients, idleTimeoutMs: 0 });
  }
  return {
    stub,
    waiters,
    agent,
    /** Frames the agent received, decoded. */
    frames,
    /** Opens a raw socket on this terminal. */
    async raw() {
      const res = await stub.fetch("https://do/raw", { headers: { Upgrade: "websocket" } });
      expect(res.status).toBe(101);
      const ws = res.webSocket!;
      return { ws, seen: watch(ws, waiters) };
    },
    /** Waits for the agent to have received a frame matching `match`; answers it. */
    async agentGot<T extends EdgeDataFrame>(what: string, match: (f: EdgeDataFrame) => f is T): Promise<T> {
      await waiters.until(() => frames().some(match), what, undefined, () => `; agent got ${JSON.stringify(frames())}`);
      return frames().find(match)!;
    },
  };
}

/** Raw sockets the DO holds open (its side: a close it makes shows at once). */
function openRaw(stub: DurableObjectStub): Promise<number> {
  return runInDurableObject(stub, (_instance, state) => state.getWebSockets(RAW_TAG).filter((ws) => ws.readyState === WebSocket.OPEN).length);
}

const isInput = (f: EdgeDataFrame): f is Extract<EdgeDataFrame, { t: "input" }> => f.t === "input";
const isResize = (f: EdgeDataFrame): f is Extract<EdgeDataFrame, { t: "resize" }> => f.t === "resize";
const isSnapshotRequest = (f: EdgeDataFrame): f is Extract<EdgeDataFrame, { t: "snapshot-request" }> => f.t === "snapshot-request";
const auth = (token: string) => JSON.stringify({ type: "auth", token });

describe("RawClients", () => {
  it("lets a key holder in: its bytes, sent right behind the auth message, reach the agent as INPUT in order, a resize as RESIZE", async () => {
    const t = await terminal(true);
    const { ws } = await t.raw();
    // Sent back to back with the auth message, before the DO has checked the key.
    ws.send(auth(KEY));
    ws.send(encoder.encode("ec"));
    ws.send(encoder.encode("ho\r"));
    ws.send(JSON.stringify({ type: "resize", cols: 100, rows: 30 }));
    await t.waiters.until(() => t.frames().filter(isInput).length === 2 && t.frames().some(isResize), "two inputs and a resize at the agent");
    expect(t.frames().filter(isInput).map((f) => decoder.decode(f.data))).toEqual(["ec", "ho\r"]);
    expect(t.frames().find(isResize)!.size).toEqual({ cols: 100, rows: 30 });
  });

  it("sends a joiner the repaint and live output as bare PTY bytes, and nothing of INFO or TITLE", async () => {
    const t = await terminal(true);
    const { ws, seen } = await t.raw();
    ws.send(auth(KEY));
    const request = await t.agentGot("a snapshot request", isSnapshotRequest);
    t.agent!.send(encodeSnapshot(request.id, 0, encoder.encode("SCREEN")));
    t.agent!.send(encodeAgentFrame({ t: "title", frame: new Uint8Array([ServerOp.TITLE, ...encoder.encode("a title")]) }));
    t.agent!.send(encodeOutput(0, [encoder.encode("live")], 4));
    await t.waiters.until(() => seen.messages.length >= 2, "the repaint and the output");
    expect(seen.messages.map((m) => decoder.decode(m as Uint8Array))).toEqual(["SCREEN", "live"]);
  });

  it("closes a wrong key 4001 'Invalid API key', and a first message that is not an auth message 4001 'Auth timeout'", async () => {
    const t = await terminal(true);
    const wrong = await t.raw();
    wrong.ws.send(auth("not-the-key"));
    const binary = await t.raw();
    binary.ws.send(encoder.encode("ls\r"));
    await t.waiters.until(() => wrong.seen.close !== null && binary.seen.close !== null, "both closes");
    expect(wrong.seen.close).toEqual(TerminalWsClose.INVALID_KEY);
    expect(binary.seen.close).toEqual(TerminalWsClose.AUTH_TIMEOUT);
    expect(t.frames().filter(isInput)).toEqual([]);
  });

  it("tells only a key holder that a session does not exist", async () => {
    const t = await terminal(false);
    const keyless = await t.raw();
    keyless.ws.send(auth("guess"));
    const keyed = await t.raw();
    keyed.ws.send(auth(KEY));
    await t.waiters.until(() => keyless.seen.close !== null && keyed.seen.close !== null, "both closes");
    expect(keyless.seen.close).toEqual(TerminalWsClose.INVALID_KEY);
    expect(keyed.seen.close).toEqual(TerminalWsClose.NOT_FOUND);
  });

  it("closes a key holder 4009 when the session has as many clients as it may", async () => {
    const t = await terminal(true, 1);
    const first = await t.raw();
    first.ws.send(auth(KEY));
    await t.agentGot("the first client's snapshot request", isSnapshotRequest);
    const second = await t.raw();
    second.ws.send(auth(KEY));
    await t.waiters.until(() => second.seen.close !== null, "the second client's close");
    expect(second.seen.close!.code).toBe(TerminalWsClose.ALREADY_CONNECTED.code);
    expect(first.seen.close).toBeNull();
  });

  it(`keeps at most ${RAW_PENDING_MAX} sockets waiting to authenticate: a newer one closes an older one`, async () => {
    const t = await terminal(false);
    const sockets: Awaited<ReturnType<typeof t.raw>>[] = [];
    for (let i = 0; i <= RAW_PENDING_MAX; i++) sockets.push(await t.raw());
    await t.waiters.until(() => sockets.some((s) => s.seen.close !== null), "an eviction");
    const closed = sockets.filter((s) => s.seen.close !== null);
    expect(closed).toHaveLength(1);
    expect(closed[0]!.seen.close).toEqual(TerminalWsClose.AUTH_TIMEOUT);
    expect(closed[0]).not.toBe(sockets[RAW_PENDING_MAX]);
    expect(await openRaw(t.stub)).toBe(RAW_PENDING_MAX);
  });

  it("arms the DO's alarm for the auth window and closes a silent socket when it runs past its deadline", async () => {
    const t = await terminal(false);
    const before = Date.now();
    const silent = await t.raw();
    const alarm = await runInDurableObject(t.stub, (_instance, state) => state.storage.getAlarm());
    expect(alarm).toBeGreaterThanOrEqual(before + TERMINAL_WS_AUTH_TIMEOUT_MS);
    expect(alarm).toBeLessThanOrEqual(Date.now() + TERMINAL_WS_AUTH_TIMEOUT_MS);
    // An alarm that runs early closes nobody (alarms may run ahead of their time), and re-arms.
    await runDurableObjectAlarm(t.stub);
    expect(await openRaw(t.stub)).toBe(1);
    expect(await runInDurableObject(t.stub, (_instance, state) => state.storage.getAlarm())).toBe(alarm);
    // Its deadline passed (moved back in the attachment the DO keeps across hibernation).
    await runInDurableObject(t.stub, (_instance, state) => {
      for (const ws of state.getWebSockets(RAW_TAG)) {
        ws.serializeAttachment({ ...(ws.deserializeAttachment() as RawAttachment), authDeadline: Date.now() - 1 });
      }
    });
    expect(await runDurableObjectAlarm(t.stub)).toBe(true);
    await t.waiters.until(() => silent.seen.close !== null, "the close at the deadline");
    expect(silent.seen.close).toEqual(TerminalWsClose.AUTH_TIMEOUT);
  });
});
