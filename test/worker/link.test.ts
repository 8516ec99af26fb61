/** Link (the agent's self-redialling WebSocket) against a real `ws` server on port 0. */
import type { IncomingMessage } from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import WebSocket, { WebSocketServer } from "ws";
import { BACKOFF_BASE_MS, BACKOFF_MAX_MS, backoffDelay, Link, type LinkOptions } from "../../worker/agent/link.ts";
import { Waiters } from "../support/waiters.ts";

/** A real server that records each connection and what it was sent. */
class Edge {
  readonly server: WebSocketServer;
  readonly sockets: WebSocket[] = [];
  readonly authorizations: (string | undefined)[] = [];
  readonly received: { data: string; isBinary: boolean }[] = [];
  readonly closes: { code: number; reason: string }[] = [];
  /** Answer the upgrade with this HTTP status instead of accepting it. */
  refuseWith: number | null = null;
  refusals = 0;
  readonly waiters = new Waiters();

  constructor() {
    this.server = new WebSocketServer({
      port: 0,
      host: "127.0.0.1",
      verifyClient: (_info: { req: IncomingMessage }, done: (ok: boolean, code?: number) => void) => {
        if (this.refuseWith === null) return done(true);
        this.refusals++;
        this.waiters.notify();
        done(false, this.refuseWith);
      },
    });
    this.server.on("connection", (ws, req) => {
      this.sockets.push(ws);
      this.authorizations.push(req.headers.authorization);
      ws.on("message", (data: Buffer, isBinary) => {
        this.received.push({ data: data.toString(), isBinary });
        this.waiters.notify();
      });
      ws.on("close", (code, reason) => {
        this.closes.push({ code, reason: reason.toString() });
        this.waiters.notify();
      });
      this.waiters.notify();
    });
  }

  get url(): string {
    return `ws://127.0.0.1:${(this.server.address() as AddressInfo).port}/agent`;
  }

  until(predicate: () => boolean, what: string): Promise<void> {
    return this.waiters.until(predicate, what);
  }

  close(): Promise<void> {
    for (const ws of this.server.clients) ws.terminate();
    return new Promise((r) => this.server.close(() => r()));
  }
}

let edge: Edge;
let links: Link[] = [];

/** A link to `edge` whose events are recorded and wake the edge's waiters. */
function link(extra: Partial<LinkOptions> = {}) {
  const events = { opens: 0, messages: [] as { data: string; isBinary: boolean }[], closes: [] as { code: number; reason: string }[], logs: [] as string[] };
  const l = new Link({
    url: edge.url,
    token: "agent-token",
    onOpen: (ws) => {
      events.opens++;
      ws.send("hello");
      edge.waiters.notify();
    },
    onMessage: (data, isBinary) => {
      events.messages.push({ data: data.toString(), isBinary });
      edge.waiters.notify();
    },
    onClose: (code, reason) => {
      events.closes.push({ code, reason });
      edge.waiters.notify();
    },
    log: (line) => {
      events.logs.push(line);
      edge.waiters.notify();
    },
    ...extra,
  });
  links.push(l);
  return { l, events };
}

beforeEach(async () => {
  edge = new Edge();
  await new Promise((r) => edge.server.once("listening", r));
});
afterEach(async () => {
  for (const l of links) l.stop();
  links = [];
  await edge.close();
});

describe("Link", () => {
  it("dials with the bearer token, sends its first frame on open and delivers messages with their kind", async () => {
    const { l, events } = link();
    expect(l.send("too early")).toBe(false);
    l.start();
    await edge.until(() => edge.received.length === 1, "the first frame");
    expect(edge.authorizations).toEqual(["Bearer agent-token"]);
    expect(edge.received[0]).toEqual({ data: "hello", isBinary: false });
    expect(l.send(new Uint8Array([1, 2, 3]))).toBe(true);
    await edge.until(() => edge.received.length === 2, "the binary frame");
    expect(edge.received[1]).toEqual({ data: "\x01\x02\x03", isBinary: true });
    edge.sockets[0]!.send("text");
    edge.sockets[0]!.send(Buffer.from("bin"), { binary: true });
    await edge.until(() => events.messages.length === 2, "two messages");
    expect(events.messages).toEqual([
      { data: "text", isBinary: false },
      { data: "bin", isBinary: true },
    ]);
  });

  it("redials after a drop, and the new socket gets the first frame again", async () => {
    const { l, events } = link();
    l.start();
    await edge.until(() => events.opens === 1, "the first open");
    l.drop();
    await edge.until(() => events.closes.length === 1, "the close");
    expect(l.send("while down")).toBe(false);
    await edge.until(() => events.opens === 2 && edge.received.filter((r) => r.data === "hello").length === 2, "the redial");
    expect(edge.sockets).toHaveLength(2);
  });

  it("redials after the edge closes the socket, but not after a final close code", async () => {
    const { l, events } = link({ finalCodes: [4404] });
    l.start();
    await edge.until(() => events.opens === 1, "the first open");
    edge.sockets[0]!.close(4000, "going away");
    await edge.until(() => events.opens === 2, "the redial");
    edge.sockets[1]!.close(4404, "session ended");
    await edge.until(() => events.closes.length === 2, "the final close");
    expect(events.closes[1]).toEqual({ code: 4404, reason: "session ended" });
    // Stopped for good: no retry is scheduled (state, since absence takes no time to show).
    expect((l as unknown as { retryTimer: unknown }).retryTimer).toBeNull();
    expect(l.socket).toBeNull();
  });

  it("closes with its code and reason on stop and does not redial", async () => {
    const { l, events } = link();
    l.start();
    await edge.until(() => events.opens === 1, "the open");
    l.stop(1001, "upgrade");
    await edge.until(() => edge.closes.length === 1, "the close at the edge");
    expect(edge.closes[0]).toEqual({ code: 1001, reason: "upgrade" });
    expect((l as unknown as { retryTimer: unknown }).retryTimer).toBeNull();
  });

  it("declares a link dead when pongs stop, without any close, and redials", async () => {
    const { events } = link({ heartbeatIntervalMs: 20, heartbeatTimeoutMs: 100 });
    links[0]!.start();
    await edge.until(() => events.opens === 1, "the first open");
    // The edge stops reading (a link that died silently): its pongs stop, no close is sent.
    (edge.sockets[0] as unknown as { _socket: import("node:net").Socket })._socket.pause();
    await edge.until(() => events.opens === 2, "the redial");
    expect(events.logs).toContain("heartbeat timed out; redialing");
  });

  it("logs a refused upgrade without the token and keeps trying", async () => {
    edge.refuseWith = 401;
    const { l, events } = link();
    l.start();
    await edge.until(() => edge.refusals >= 2, "a second attempt");
    expect(events.logs).toContain("edge refused the link: HTTP 401");
    expect(events.logs.join("\n")).not.toContain("agent-token");
    expect(events.opens).toBe(0);
    edge.refuseWith = null;
    await edge.until(() => events.opens === 1, "the link once the edge accepts it");
  });
});

describe("backoffDelay", () => {
  it("keeps at least half of a capped exponential, never more than all of it", () => {
    for (const attempt of [0, 1, 5, 20, 100]) {
      const cap = Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** attempt);
      expect(backoffDelay(attempt, () => 0)).toBe(Math.round(cap / 2));
      expect(backoffDelay(attempt, () => 0.999999)).toBeLessThanOrEqual(cap);
    }
    expect(backoffDelay(100, () => 1)).toBe(BACKOFF_MAX_MS);
  });
});
