/**
 * RawClients (the Open Terminal raw WebSocket) in workerd, on a real Durable Object's WebSocket
 * state with a real TerminalHub: first-message auth, the auth window, input and resize reaching
 * the agent, PTY bytes reaching the client, and every refusal's close code.
 */
import { env } from "cloudflare:workers";
import { runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { Env } from "../../edge/env.ts";
import { RAW_TAG, RawClients, rawSinkOf, type RawHost } from "../../edge/raw-terminal.ts";
import { TerminalHub, type Sink } from "../../edge/terminal-hub.ts";
import { decodeEdgeFrame, type EdgeDataFrame } from "../../shared/links/data.ts";
import { TERMINAL_WS_AUTH_TIMEOUT_MS, TerminalWsClose } from "../../shared/open-terminal.ts";
import { frame, ServerOp } from "../../shared/links/client.ts";
import { Waiters } from "../support/waiters.ts";

const KEY = "raw-test-key";

/** The client's end of an accepted raw socket: what it received and how it was closed. */
class ClientEnd {
  readonly received: string[] = [];
  closed: { code: number; reason: string } | null = null;
  private readonly waiters = new Waiters();

  constructor(readonly ws: WebSocket) {
    ws.accept();
    ws.addEventListener("message", (e) => {
      // workerd hands binary messages over as Blobs (or ArrayBuffers).
      const data = e.data as string | ArrayBuffer | Blob;
      const text = typeof data === "string" ? Promise.resolve(`text:${data}`) : data instanceof Blob ? data.text() : Promise.resolve(new TextDecoder().decode(data));
      void text.then((t) => {
        this.received.push(t);
        this.waiters.notify();
      });
    });
    ws.addEventListener("close", (e) => {
      this.closed = { code: e.code, reason: e.reason };
      this.waiters.notify();
    });
  }

  until(predicate: () => boolean, what: string): Promise<void> {
    return this.waiters.until(predicate, what, 5_000, () => `; received ${JSON.stringify(this.received)}, closed ${JSON.stringify(this.closed)}`);
  }

  async closeCode(): Promise<{ code: number; reason: string }> {
    await this.until(() => this.closed !== null, "the close");
    return this.closed!;
  }
}

interface Setup {
  raw: RawClients;
  hub: TerminalHub;
  /** Frames the hub sent the agent. */
  agentFrames: EdgeDataFrame[];
  joins: number;
  deadlines: (number | null)[];
  /** Accepts a raw client; returns its client end and the server end RawClients works on. */
  open(): { client: ClientEnd; server: WebSocket };
}

/** Runs `fn` with RawClients on a fresh TerminalDO's state. */
async function withRaw(opts: { known?: boolean; maxClients?: number }, fn: (s: Setup) => Promise<void>): Promise<void> {
  const ns = (env as unknown as Env).TERMINAL;
  await runInDurableObject(ns.get(ns.newUniqueId()), async (_instance, ctx) => {
    const sinks = new Map<WebSocket, Sink>();
    const hub = new TerminalHub({
      info: () => ({ t: "info", info: { terminal_id: 1, shell: "sh", cwd: "/", cols: 80, rows: 24, readonly: false, agent_online: true } as never }),
      onHello: () => true,
      refused: () => {},
      onTitle: () => {},
      onExit: () => {},
      onClientChanged: () => {},
    });
    const agentFrames: EdgeDataFrame[] = [];
    hub.attachAgent({ send: (b) => agentFrames.push(decodeEdgeFrame(b.slice())), close: () => {} }, false);
    const s: Setup = {
      hub,
      agentFrames,
      joins: 0,
      deadlines: [],
      raw: null as unknown as RawClients,
      open() {
        const res = s.raw.accept();
        expect(res.status).toBe(101);
        const client = new ClientEnd(res.webSocket!);
        const servers = ctx.getWebSockets(RAW_TAG);
        return { client, server: servers[servers.length - 1]! };
      },
    };
    const host: RawHost = {
      ctx,
      hub,
      apiKey: () => KEY,
      sessionKnown: () => opts.known ?? true,
      maxClients: () => opts.maxClients ?? 8,
      clientTag: "client",
      sinkFor(ws) {
        let sink = sinks.get(ws);
        if (!sink) sinks.set(ws, (sink = rawSinkOf(ws)));
        return sink;
      },
      onJoin: () => void s.joins++,
      armAuthDeadline: async (at) => void s.deadlines.push(at),
    };
    s.raw = new RawClients(host);
    await fn(s);
  });
}

const auth = (token: string) => JSON.stringify({ type: "auth", token });
const bytes = (text: string) => new TextEncoder().encode(text).buffer as ArrayBuffer;

describe("RawClients", () => {
  it("refuses a session that does not exist with 4004", async () => {
    await withRaw({ known: false }, async (s) => {
      const client = new ClientEnd(s.raw.accept().webSocket!);
      expect(await client.closeCode()).toEqual(TerminalWsClose.NOT_FOUND);
    });
  });

  it("refuses a client past the session's maximum with 4009", async () => {
    await withRaw({ maxClients: 1 }, async (s) => {
      s.open();
      const second = new ClientEnd(s.raw.accept().webSocket!);
      expect((await second.closeCode()).code).toBe(TerminalWsClose.ALREADY_CONNECTED.code);
    });
  });

  it("opens an auth window on accept and closes it once the client authenticates", async () => {
    await withRaw({}, async (s) => {
      const before = Date.now();
      const { server } = s.open();
      await new Promise<void>((r) => queueMicrotask(r));
      expect(s.deadlines[0]).toBeGreaterThanOrEqual(before + TERMINAL_WS_AUTH_TIMEOUT_MS);
      await s.raw.onMessage(server, auth(KEY));
      expect(s.joins).toBe(1);
      expect(s.deadlines.at(-1)).toBeNull();
    });
  });

  it("closes 4001 for a wrong key, a binary first message, and a first message that is not JSON", async () => {
    await withRaw({}, async (s) => {
      for (const [first, close] of [
        [auth("wrong"), TerminalWsClose.INVALID_KEY],
        [bytes("ls\r"), TerminalWsClose.AUTH_TIMEOUT],
        ["not json", TerminalWsClose.AUTH_TIMEOUT],
      ] as const) {
        const { client, server } = s.open();
        await s.raw.onMessage(server, first);
        expect(await client.closeCode()).toEqual(close);
      }
      expect(s.joins).toBe(0);
    });
  });

  it("after auth, sends binary frames to the agent as input and text resizes as resizes, in order", async () => {
    await withRaw({}, async (s) => {
      const { server } = s.open();
      const authed = s.raw.onMessage(server, auth(KEY));
      // Sent while the key is being checked: held, then delivered in order.
      await s.raw.onMessage(server, bytes("echo hi\r"));
      await authed;
      await s.raw.onMessage(server, JSON.stringify({ type: "resize", cols: 100, rows: 30 }));
      await s.raw.onMessage(server, JSON.stringify({ type: "auth", token: KEY })); // ignored once in
      const sent = s.agentFrames.filter((f) => f.t === "input" || f.t === "resize");
      expect(sent.map((f) => (f.t === "input" ? { t: "input", text: new TextDecoder().decode(f.data) } : f))).toEqual([
        { t: "input", text: "echo hi\r" },
        { t: "resize", size: { cols: 100, rows: 30 } },
      ]);
    });
  });

  it("gives the client PTY bytes only (no INFO or other frames)", async () => {
    await withRaw({}, async (s) => {
      const { client, server } = s.open();
      await s.raw.onMessage(server, auth(KEY)); // the hub sends INFO on join: dropped for raw clients
      const sink = rawSinkOf(server);
      sink.send(frame(ServerOp.OUTPUT, new TextEncoder().encode("hello\r\n")));
      await client.until(() => client.received.length > 0, "the output");
      expect(client.received).toEqual(["hello\r\n"]);
    });
  });

  it("closes silent sockets 4001 when their deadline passes, and pending ones 4004 when the session ends", async () => {
    await withRaw({}, async (s) => {
      const silent = s.open();
      s.raw.onDeadline(Date.now() + TERMINAL_WS_AUTH_TIMEOUT_MS + 1);
      expect(await silent.client.closeCode()).toEqual(TerminalWsClose.AUTH_TIMEOUT);
      const pending = s.open();
      s.raw.closePending();
      expect(await pending.client.closeCode()).toEqual(TerminalWsClose.ENDED);
    });
  });
});
