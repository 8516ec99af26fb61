/**
 * The benchmark's counting WebSocket client against a real `ws` server: handshake, frame parsing
 * across reads and fragments, masking of what it sends, ping, refusal.
 */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { WebSocketServer, type WebSocket } from "ws";
import { ServerOp } from "../../shared/links/client.ts";
import { CountingWebSocket, OutputCounter } from "../../bench/counting-client.ts";

const servers: Server[] = [];
const clients: CountingWebSocket[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r))));
});

/** A ws server; resolves with its URL and the server side of the next connection. */
async function serve(options: { refuse?: boolean } = {}): Promise<{ url: string; peer: Promise<WebSocket> }> {
  const http = createServer((_req, res) => res.writeHead(401).end("no"));
  servers.push(http);
  const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false });
  const peer = new Promise<WebSocket>((resolve) => {
    http.on("upgrade", (req, socket, head) => {
      if (options.refuse) {
        socket.end("HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n");
        return;
      }
      wss.handleUpgrade(req, socket, head, (ws) => resolve(ws));
    });
  });
  await new Promise<void>((resolve) => http.listen(0, "127.0.0.1", resolve));
  return { url: `ws://127.0.0.1:${(http.address() as AddressInfo).port}/x?y=1`, peer };
}

async function connected(): Promise<{ client: CountingWebSocket; peer: WebSocket }> {
  const { url, peer } = await serve();
  const client = await CountingWebSocket.open(url, { Authorization: "Bearer k" });
  clients.push(client);
  return { client, peer: await peer };
}

const output = (payload: Uint8Array | string): Buffer => Buffer.concat([Buffer.from([ServerOp.OUTPUT]), Buffer.from(payload)]);

describe("CountingWebSocket", () => {
  it("counts OUTPUT payloads of every size, and nothing else", async () => {
    const { client, peer } = await connected();
    const sizes = [0, 1, 125, 126, 65_535, 65_536, 3 << 20];
    for (const n of sizes) peer.send(output(Buffer.alloc(n, 0x61)));
    peer.send(Buffer.from([0x03, 0x7b, 0x7d])); // another frame type: not output
    peer.send("\u0000text is not output either");
    const done = client.output.until("END");
    peer.send(output("END"));
    await done;
    expect(client.output.bytes).toBe(sizes.reduce((a, b) => a + b, 0) + 3);
  });

  it("reads fragmented messages by their first byte and finds a marker split across frames", async () => {
    const { client, peer } = await connected();
    const found = client.output.until("MARKER");
    peer.send(output("abc MAR"), { fin: false });
    peer.send(Buffer.from("KER def"), { fin: true });
    await found;
    expect(client.output.bytes).toBe("abc MARKER def".length);
  });

  it("sends masked binary messages the server reads back exactly", async () => {
    const { client, peer } = await connected();
    const sizes = [0, 5, 125, 126, 65_535, 65_536, 200_000];
    const received: Buffer[] = [];
    const all = new Promise<void>((resolve) =>
      peer.on("message", (data: Buffer) => {
        received.push(data);
        if (received.length === sizes.length) resolve();
      }),
    );
    const sent = sizes.map((n) => Buffer.from(Array.from({ length: n }, (_, i) => (i * 31) & 0xff)));
    for (const payload of sent) client.send(payload);
    await all;
    expect(received.map((b) => b.toString("hex"))).toEqual(sent.map((b) => b.toString("hex")));
  });

  it("answers a ping with a pong carrying its payload", async () => {
    const { peer } = await connected();
    const pong = new Promise<Buffer>((resolve) => peer.once("pong", resolve));
    peer.ping(Buffer.from("hello"));
    expect((await pong).toString()).toBe("hello");
  });

  it("fails to open when the upgrade is refused", async () => {
    const { url } = await serve({ refuse: true });
    await expect(CountingWebSocket.open(url)).rejects.toThrow(/upgrade refused: HTTP\/1.1 401/);
  });
});

describe("OutputCounter", () => {
  it("finds a marker only in output fed after it was asked for, across pieces", async () => {
    const counter = new OutputCounter();
    const enc = (t: string) => new TextEncoder().encode(t);
    counter.feed(enc("old output ends with DONE"));
    let found = false;
    const wait = counter.until("DONE").then(() => (found = true));
    counter.feed(enc("$ next command D"));
    await Promise.resolve();
    expect(found).toBe(false); // the earlier DONE does not count
    counter.feed(enc("ON"));
    counter.feed(enc("E\r\n"));
    await wait;
    expect(counter.bytes).toBe(25 + 16 + 2 + 3);
  });
});
