/**
 * permessage-deflate on client WebSockets, decided by the edge (edge/ws-compression.ts), through
 * the real local stack: a client offering deflate exactly as Chromium does gets no extension on
 * any client WebSocket route by default, and gets it (and a working compressed link) when the
 * operator sets EDGETTY_CLIENT_WS_DEFLATE=on. The 101 is read as it crossed the socket, from a
 * plain HTTP upgrade, so the test sees what a browser sees.
 */
import { request, type IncomingHttpHeaders } from "node:http";
import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import WebSocket from "ws";
import { encodeClientFrame, ServerOp } from "../../shared/links/client.ts";
import { useStack, type StackFixture } from "../support/stack.ts";
import { Waiters } from "../support/waiters.ts";

/** Chromium's offer, byte for byte (`new WebSocket(url)` in Chromium sends exactly this). */
const CHROMIUM_OFFER = "permessage-deflate; client_max_window_bits";

/** The status and headers of the answer to a WebSocket upgrade of `url` offering Chromium's extension. */
function upgrade(url: string, headers: Record<string, string>): Promise<{ status: number; headers: IncomingHttpHeaders }> {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const req = request({
      host: u.hostname,
      port: u.port,
      path: u.pathname + u.search,
      headers: {
        Connection: "Upgrade",
        Upgrade: "websocket",
        "Sec-WebSocket-Version": "13",
        "Sec-WebSocket-Key": randomBytes(16).toString("base64"),
        "Sec-WebSocket-Extensions": CHROMIUM_OFFER,
        ...headers,
      },
    });
    req.on("upgrade", (res, socket) => {
      socket.destroy();
      resolve({ status: res.statusCode ?? 0, headers: res.headers });
    });
    req.on("response", (res) => {
      res.resume();
      resolve({ status: res.statusCode ?? 0, headers: res.headers });
    });
    req.on("error", reject);
    req.end();
  });
}

/** The next session-API terminal id a test creates. */
let nextTerminalId = 10;

/** The client WebSocket routes of fresh terminals (session API and Open Terminal, both mounts). */
async function clientRoutes(stack: StackFixture): Promise<string[]> {
  const id = nextTerminalId++;
  const created = await stack.api("/api/v1/terminal/create", { method: "POST", body: JSON.stringify({ terminal_id: id, shell: "sh" }) });
  expect(created.status).toBe(200);
  const named = await stack.api("/api/terminals", { method: "POST", body: "{}" });
  expect(named.status).toBe(200);
  const name = ((await named.json()) as { id: string }).id;
  return [
    `/api/v1/terminal/ws?terminal_id=${id}`,
    `/api/v1/terminals/local/api/v1/terminal/ws?terminal_id=${id}`,
    `/api/terminals/${name}`,
    `/api/v1/terminals/local/api/terminals/${name}`,
  ];
}

/** A `ws` client offering deflate as Chromium does, on the session WebSocket; resolves once open. */
function openOffering(stack: StackFixture, path: string): Promise<{ ws: WebSocket; output: () => string; waiters: Waiters }> {
  const ws = new WebSocket(stack.url.replace(/^http/, "ws") + path, { headers: { Authorization: `Bearer ${stack.apiKey}` }, perMessageDeflate: true });
  const waiters = new Waiters();
  let text = "";
  ws.on("message", (data: Buffer) => {
    if (data[0] === ServerOp.OUTPUT) text += data.subarray(1).toString("latin1");
    waiters.notify();
  });
  return new Promise((resolve, reject) => {
    ws.once("open", () => resolve({ ws, output: () => text, waiters }));
    ws.once("error", reject);
  });
}

describe("by default", () => {
  const stack = useStack();

  it("answers Chromium's offer on every client WebSocket route with no extension", async () => {
    for (const path of await clientRoutes(stack)) {
      const res = await upgrade(stack.url + path, { Authorization: `Bearer ${stack.apiKey}` });
      expect({ path, status: res.status }).toEqual({ path, status: 101 });
      expect({ path, extensions: res.headers["sec-websocket-extensions"] }).toEqual({ path, extensions: undefined });
    }
  });

  it("a client offering deflate gets a working link without it", async () => {
    const [path] = await clientRoutes(stack);
    const client = await openOffering(stack, path!);
    try {
      expect(client.ws.extensions).toBe("");
      client.ws.send(encodeClientFrame({ t: "input", data: new TextEncoder().encode("echo plain''-link\r") }));
      await client.waiters.until(() => client.output().includes("plain-link"), "the echo", undefined, () => `; got ${JSON.stringify(client.output().slice(-200))}`);
    } finally {
      client.ws.close();
    }
  });
});

describe("with EDGETTY_CLIENT_WS_DEFLATE=on", () => {
  const stack = useStack({ edgeVars: { EDGETTY_CLIENT_WS_DEFLATE: "on" } });

  it("accepts Chromium's offer on the client WebSocket routes", async () => {
    for (const path of await clientRoutes(stack)) {
      const res = await upgrade(stack.url + path, { Authorization: `Bearer ${stack.apiKey}` });
      expect({ path, status: res.status }).toEqual({ path, status: 101 });
      expect({ path, extensions: res.headers["sec-websocket-extensions"] }).toEqual({ path, extensions: expect.stringMatching(/^permessage-deflate\b/) });
    }
  });

  it("a client offering deflate gets a working compressed link", async () => {
    const [path] = await clientRoutes(stack);
    const client = await openOffering(stack, path!);
    try {
      expect(client.ws.extensions).toMatch(/^permessage-deflate\b/);
      client.ws.send(encodeClientFrame({ t: "input", data: new TextEncoder().encode("echo deflated''-link\r") }));
      await client.waiters.until(() => client.output().includes("deflated-link"), "the echo", undefined, () => `; got ${JSON.stringify(client.output().slice(-200))}`);
    } finally {
      client.ws.close();
    }
  });
});
