/**
 * A client that stops reading its socket during a flood, through the real stack (workerd + agent
 * + PTY). workerd's WebSocket queues whatever `send()` is given for a peer that does not read, so
 * the edge holds such a client once it may have its limit unread (edge/client-reading.ts):
 * it is skipped forward, and repainted when it can read again, while another client receives the
 * whole flood. Both kinds of stalled client are covered: one that answers MARKs (released by its
 * ACK once it reads again) and one that predates them (released by the assumed reading rate).
 */
import { readFileSync } from "node:fs";
import type { Socket } from "node:net";
import { join as join_ } from "node:path";
import WebSocket from "ws";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { decodeServerFrame, encodeClientFrame } from "../../shared/links/client.ts";
import { CLIENT_TOO_SLOW_CLOSE, CLIENT_UNPROVEN_MAX_BYTES, CLIENT_UNREAD_CLOSE_BYTES, CLIENT_UNREAD_MAX_BYTES } from "../../edge/client-reading.ts";
import { startStack, type TestStack } from "../support/stack.ts";
import { TermClient } from "../support/term-client.ts";
import { until } from "../support/waiters.ts";

/** What the flood prints, in bytes: far more than a held client may be sent (and the kernel's socket buffers). */
const FLOOD_BYTES = 48 << 20; // 48 MiB
const DONE = "FLOOD-DONE";

let stack: TestStack;
const sockets: WebSocket[] = [];
const clients: TermClient[] = [];

beforeAll(async () => {
  stack = await startStack();
});

afterAll(async () => {
  for (const c of clients) c.close();
  for (const s of sockets) s.terminate();
  await stack?.stop();
});

/** A client with no MARK support, as one written before them: counts OUTPUT bytes, keeps the tail. */
class PlainClient {
  received = 0;
  repaints = 0;
  tail = "";
  closed: number | null = null;
  /** Every OUTPUT payload, in order, when asked to keep them (`keepAll`). */
  readonly payloads: Buffer[] = [];
  constructor(
    readonly ws: WebSocket,
    keepAll = false,
    answersMarks = false,
  ) {
    ws.on("message", (data: Buffer) => {
      const f = decodeServerFrame(data);
      if (f.t === "mark" && answersMarks) ws.send(encodeClientFrame({ t: "ack", mark: f.mark }));
      if (f.t !== "output") return;
      this.received += f.data.byteLength;
      if (keepAll) this.payloads.push(Buffer.from(f.data));
      const text = Buffer.from(f.data).toString("latin1");
      if (text.startsWith("\x1bc")) this.repaints++;
      this.tail = (this.tail + text).slice(-4096);
    });
    ws.on("close", (code) => (this.closed = code));
  }
}

function socketOf(ws: WebSocket): Socket {
  return (ws as unknown as { _socket: Socket })._socket;
}

async function plainClient(id: number, keepAll = false, answersMarks = false): Promise<PlainClient> {
  const ws = new WebSocket(`${stack.url.replace(/^http/, "ws")}/api/v1/terminal/ws?terminal_id=${id}&readonly=1`, { headers: { Authorization: `Bearer ${stack.apiKey}` }, perMessageDeflate: false });
  sockets.push(ws);
  const client = new PlainClient(ws, keepAll, answersMarks);
  await new Promise<void>((resolve, reject) => {
    ws.once("open", () => resolve());
    ws.once("error", reject);
  });
  if (answersMarks) ws.send(encodeClientFrame({ t: "ack", mark: new Uint8Array(0) })); // it answers MARKs (docs/protocol.md)
  return client;
}

async function session(id: number): Promise<TermClient> {
  const create = () => stack.api("/api/v1/terminal/create", { method: "POST", body: JSON.stringify({ terminal_id: id, shell: "sh" }) });
  // After the previous test's flood, a kept-alive connection can be closed by the edge just as
  // fetch reuses it ("other side closed", seen once in CI): a create is idempotent, so try it again.
  const res = await create().catch((error: unknown) => {
    if ((error as { cause?: { code?: string } }).cause?.code !== "UND_ERR_SOCKET") throw error;
    return create();
  });
  expect(res.status, await res.clone().text()).toBe(200);
  const reader = await TermClient.connect(`${stack.url}/api/v1/terminal/ws?terminal_id=${id}`, { apiKey: stack.apiKey, screen: false });
  clients.push(reader);
  await reader.waitFor(() => reader.received > 0, "the reader's repaint");
  return reader;
}

/**
 * Runs the flood in the session; resolves once `reader` has seen the marker after it. The reader
 * keeps receiving throughout: more than a held client can be sent, up to the end. (It gets every
 * byte if it reads faster than the PTY writes; one slower than that is skipped forward too.)
 */
async function flood(reader: TermClient): Promise<void> {
  const before = reader.received;
  reader.input(`yes hello-world-flood | head -c ${FLOOD_BYTES}; echo ${DONE.slice(0, 5)}""${DONE.slice(5)}\r`);
  await reader.waitFor(() => reader.text().includes(DONE), "the end of the flood at the reading client", 240_000);
  expect(reader.closed).toBeNull();
  expect(reader.received - before).toBeGreaterThan(CLIENT_UNREAD_MAX_BYTES);
}

describe("a client that stops reading during a flood", () => {
  it("is held while another client keeps receiving the flood, and repainted once it reads again (a client answering MARKs)", { timeout: 300_000 }, async () => {
    const reader = await session(341);
    const stalled = await TermClient.connect(`${stack.url}/api/v1/terminal/ws?terminal_id=341&readonly=1`, { apiKey: stack.apiKey, screen: false });
    clients.push(stalled);
    await stalled.waitFor(() => stalled.received > 0, "the stalled client's repaint");
    socketOf(stalled.ws).pause();
    await flood(reader);

    const before = stalled.received;
    socketOf(stalled.ws).resume();
    // Its ACKs of the MARKs it reads now release it: it is caught up with a repaint that shows the end.
    await stalled.waitFor(() => stalled.text().includes(DONE), "the stalled client's repaint after the flood", 60_000);
    expect(stalled.closed).toBeNull();
    // Held at CLIENT_UNREAD_MAX_BYTES: what it was sent is that, what the kernel's buffers took, and a repaint — not the flood.
    expect(stalled.received - before).toBeLessThan(FLOOD_BYTES / 2);
    expect(stalled.received - before).toBeGreaterThan(0);
    expect(stalled.text().lastIndexOf("\x1bc")).toBeGreaterThan(-1);
  });

  it("is held the same way when it never answers MARKs, and the session carries on for everyone", { timeout: 300_000 }, async () => {
    const reader = await session(342);
    const stalled = await plainClient(342);
    await until("the plain client's repaint", () => stalled.repaints > 0);
    socketOf(stalled.ws).pause();
    await flood(reader);

    const before = stalled.received;
    const repaints = stalled.repaints;
    socketOf(stalled.ws).resume();
    // Released when the assumed reading rate has brought its estimate down: a repaint showing the end.
    await until("the plain client's repaint after the flood", () => stalled.repaints > repaints && stalled.tail.includes(DONE), { timeoutMs: 120_000 });
    expect(stalled.closed).toBeNull();
    expect(stalled.received - before).toBeLessThan(FLOOD_BYTES / 2);
    expect(CLIENT_UNPROVEN_MAX_BYTES).toBeLessThan(FLOOD_BYTES / 4);
    // Both still in the session: the reader's input still echoes.
    reader.input('echo still""-here\r');
    await reader.waitFor(() => reader.text().includes("still-here"), "the reader's echo after the flood");
  });

  it("receives intact what it was sent before it was held, though the ring gave those frames' memory back long before", { timeout: 300_000 }, async () => {
    // The ring detaches each frame it evicts (edge/output-ring.ts), while the frames a stalled
    // client was sent still wait in workerd's queue for its socket (up to CLIENT_UNREAD_MAX_BYTES
    // for one that answers MARKs, past what the kernel's buffers take): they must arrive as sent.
    const lines = 3_000_000; // ~21 MB of `seq`: past that limit
    const reader = await session(344);
    const stalled = await plainClient(344, true, true);
    await until("the plain client's repaint", () => stalled.repaints > 0);
    const first = stalled.payloads.length;
    socketOf(stalled.ws).pause();
    reader.input(`seq 1 ${lines}; echo ${DONE.slice(0, 5)}""${DONE.slice(5)}\r`);
    await reader.waitFor(() => reader.text().includes(DONE), "the end of the flood at the reading client", 240_000);
    socketOf(stalled.ws).resume();
    await until("the plain client's repaint after the flood", () => stalled.tail.includes(DONE), { timeoutMs: 120_000 });
    // Up to its next repaint, what it received is the flood from its first line, byte for byte.
    const got = Buffer.concat(stalled.payloads.slice(first)).toString("latin1");
    const beforeRepaint = got.slice(got.indexOf("1\r\n"), got.indexOf("\x1bc") === -1 ? undefined : got.indexOf("\x1bc"));
    const sent = beforeRepaint.slice(0, beforeRepaint.lastIndexOf("\r\n") + 2); // whole lines (the last may be cut)
    const count = sent.split("\r\n").length - 1;
    expect(sent.length).toBeGreaterThan(CLIENT_UNREAD_MAX_BYTES / 2); // most of what it may be sent
    expect(count).toBeLessThan(lines); // and then held: a repaint followed
    let expected = "";
    for (let n = 1; n <= count; n++) expected += `${n}\r\n`;
    expect(sent === expected, "the bytes before the repaint are the flood's lines, in order").toBe(true);
  });
});

describe("a client closed for not reading", () => {
  let small: TestStack;
  beforeAll(async () => {
    // Three places, two of them for read-only clients (client-slots.ts).
    small = await startStack({ edgeVars: { EDGETTY_MAX_CLIENTS: "3" } });
  }, 120_000);
  afterAll(async () => {
    await small?.stop();
  });

  /** A client of `small` that has its INFO; resolves with its socket, or rejects with the HTTP refusal. */
  function join(id: number): Promise<WebSocket> {
    const ws = new WebSocket(`${small.url.replace(/^http/, "ws")}/api/v1/terminal/ws?terminal_id=${id}&readonly=1`, { headers: { Authorization: `Bearer ${small.apiKey}` }, perMessageDeflate: false });
    sockets.push(ws);
    return new Promise((resolve, reject) => {
      ws.once("message", () => resolve(ws));
      ws.once("unexpected-response", (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
      ws.once("error", reject);
    });
  }

  it("keeps its place until its socket is gone: closing it frees no memory while it does not read", { timeout: 120_000 }, async () => {
    const res = await small.api("/api/v1/terminal/create", { method: "POST", body: JSON.stringify({ terminal_id: 343, shell: "sh" }) });
    expect(res.status, await res.clone().text()).toBe(200);
    await join(343); // one place
    const stalled = await join(343); // the other
    let closedWith: number | null = null;
    stalled.on("close", (code) => (closedWith = code));
    socketOf(stalled).pause();
    // PINGs it does not read the PONGs of: the edge closes it 4008, which it does not read either.
    const ping = Buffer.concat([Buffer.of(0x04), Buffer.alloc((1 << 20) - 16)]);
    for (let i = 0; i < (CLIENT_UNREAD_CLOSE_BYTES >> 20) + 2; i++) stalled.send(ping);
    await until("the edge closing the stalled client", () => readFileSync(join_(small.stateDir, "wrangler.log"), "utf8").includes("terminal.client_not_reading"));
    // Its PONGs (and the close) are still queued at the edge: its place is not free.
    await expect(join(343)).rejects.toThrow("HTTP 403");
    // It reads again: it gets the close, answers it, and its socket is gone.
    socketOf(stalled).resume();
    await until("the stalled client's close", () => closedWith !== null);
    expect(closedWith).toBe(CLIENT_TOO_SLOW_CLOSE.code);
    await until("a place for a new client", () => join(343).then(() => true, () => false));
  });
});
