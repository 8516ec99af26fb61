/**
 * Command history at the edge, in workerd: the HistoryStore on a real Durable Object's SQLite,
 * and HISTORY frames from a played agent's data link served by the history route and listings.
 */
import { env, exports } from "cloudflare:workers";
import { runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { AgentOp, decodeEdgeFrame, encodeAgentFrame, encodeOutput } from "../../shared/links/data.ts";
import type { CommandRecord } from "../../shared/history.ts";
import { HISTORY_MAX_RECORDS, HistoryStore } from "../../edge/history.ts";

const KEY = "test-admin-key";
const BASE = "http://edge.test";
const worker = (exports as unknown as { default: { fetch(input: string, init?: RequestInit): Promise<Response> } }).default;
const TERMINAL = (env as unknown as { TERMINAL: DurableObjectNamespace }).TERMINAL;
const api = (path: string, init: RequestInit = {}) => worker.fetch(BASE + path, { ...init, headers: { Authorization: `Bearer ${KEY}`, "Content-Type": "application/json", ...init.headers } });

function rec(id: number, status: CommandRecord["status"] = "done"): CommandRecord {
  return {
    id,
    command: `cmd ${id}`,
    cwd: "/home/x",
    exit_code: status === "done" ? id % 2 : null,
    started_at: "2026-01-01T00:00:00.000Z",
    finished_at: status === "done" ? "2026-01-01T00:00:01.000Z" : null,
    duration_ms: status === "done" ? 1000 : null,
    status,
  };
}

describe("HistoryStore", () => {
  it("upserts by id, keeps the newest HISTORY_MAX_RECORDS and lists command lines", async () => {
    await runInDurableObject(TERMINAL.get(TERMINAL.idFromName("store:1")), (_instance, state) => {
      const store = new HistoryStore(state.storage.sql);
      store.upsert(rec(1, "running"));
      expect(store.records()).toEqual([rec(1, "running")]);
      store.upsert(rec(1));
      expect(store.records()).toEqual([rec(1)]);
      for (let id = 2; id <= HISTORY_MAX_RECORDS + 5; id++) store.upsert(rec(id));
      const all = store.records();
      expect(all).toHaveLength(HISTORY_MAX_RECORDS);
      expect(all[0]!.id).toBe(6);
      expect(store.records(2)).toEqual([rec(HISTORY_MAX_RECORDS + 4), rec(HISTORY_MAX_RECORDS + 5)]);
      expect(store.commandLines(2)).toEqual([`cmd ${HISTORY_MAX_RECORDS + 4}`, `cmd ${HISTORY_MAX_RECORDS + 5}`]);
      expect(store.commandLines(0)).toEqual([]);
      store.clear();
      expect(store.records()).toEqual([]);
    });
  });

  it("keeps the newest HISTORY_MAX_RECORDS by id even when ids arrive going down", async () => {
    await runInDurableObject(TERMINAL.get(TERMINAL.idFromName("store:down")), (_instance, state) => {
      const store = new HistoryStore(state.storage.sql);
      const top = 5_000_000;
      for (let i = 0; i < HISTORY_MAX_RECORDS + 500; i++) store.upsert(rec(top - i));
      const count = state.storage.sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM command_history").one().n;
      expect(count).toBe(HISTORY_MAX_RECORDS);
      const kept = store.records();
      expect(kept[0]!.id).toBe(top - HISTORY_MAX_RECORDS + 1);
      expect(kept.at(-1)!.id).toBe(top);
    });
  });

  it("recreates its table after the storage was wiped", async () => {
    await runInDurableObject(TERMINAL.get(TERMINAL.idFromName("store:2")), async (_instance, state) => {
      const store = new HistoryStore(state.storage.sql);
      store.upsert(rec(1));
      await state.storage.deleteAll();
      store.dropped();
      expect(store.records()).toEqual([]);
      store.upsert(rec(2));
      expect(store.records()).toEqual([rec(2)]);
    });
  });
});

describe("history from the agent's data link", () => {
  it("stores HISTORY frames and serves them by path, query and in the session listing", async () => {
    const token = ((await (await api("/api/v1/admin/servers/hist", { method: "PUT", body: "{}" })).json()) as { token: string }).token;
    const meta = { terminal_id: 4, shell: "bash", cwd: "/home/x", started_at: "2026-01-01T00:00:00.000Z", ephemeral: false };
    const control = (await worker.fetch(`${BASE}/agent/v1/control?server=hist`, { headers: { Upgrade: "websocket", Authorization: `Bearer ${token}` } })).webSocket!;
    control.accept();
    control.addEventListener("message", (event) => {
      const msg = JSON.parse(event.data as string) as { id: number; op: string };
      const result = msg.op === "create" ? { status: "created", meta } : { sessions: [] };
      control.send(JSON.stringify({ t: "reply", id: msg.id, ok: true, result }));
    });
    control.send(JSON.stringify({ t: "hello", agent: { version: "t", hostname: "h", platform: "linux", is_root: false }, sessions: [] }));

    const data = (await worker.fetch(`${BASE}/agent/v1/data?server=hist&terminal_id=4`, { headers: { Upgrade: "websocket", Authorization: `Bearer ${token}` } })).webSocket!;
    data.accept();
    const acks: number[] = [];
    let acked: (() => void) | null = null;
    data.addEventListener("message", async (event) => {
      // workerd hands a client socket's binary messages over as Blobs.
      const bytes = event.data instanceof Blob ? await event.data.arrayBuffer() : (event.data as ArrayBuffer);
      const f = decodeEdgeFrame(new Uint8Array(bytes));
      if (f.t === "ack") {
        acks.push(f.offset);
        acked?.();
      }
    });
    data.send(encodeAgentFrame({ t: "hello", hello: { end: 0, oldest: 0, size: { cols: 80, rows: 24 }, meta } }));
    expect((await api("/api/v1/terminals/hist/api/v1/terminal/create", { method: "POST", body: JSON.stringify({ terminal_id: 4 }) })).status).toBe(200);

    data.send(encodeAgentFrame({ t: "history", record: rec(1, "running") }));
    data.send(encodeAgentFrame({ t: "history", record: rec(1) }));
    data.send(encodeAgentFrame({ t: "history", record: rec(2, "running") }));
    // Refused (logged), changing nothing: not JSON, and not a record.
    data.send(new Uint8Array([AgentOp.HISTORY, ...new TextEncoder().encode("{not json")]));
    data.send(new Uint8Array([AgentOp.HISTORY, ...new TextEncoder().encode(JSON.stringify({ ...rec(3), id: -1 }))]));
    // Frames are processed in order: once output sent after them is acknowledged, they are stored.
    const stored = new Promise<void>((resolve) => (acked = resolve));
    const byte = new Uint8Array([0x78]);
    data.send(encodeOutput(0, [byte], 1));
    await stored;
    expect(acks).toContain(1);

    const byPath = await api("/api/v1/terminals/hist/api/v1/terminal/history/4");
    expect(await byPath.json()).toEqual([rec(1), rec(2, "running")]);
    const byQuery = await api("/api/v1/terminals/hist/api/v1/terminal/history?terminal_id=4");
    expect(await byQuery.json()).toEqual([rec(1), rec(2, "running")]);
    const listing = (await (await api("/api/v1/terminals/hist/api/v1/terminal/sessions?history_limit=1")).json()) as { command_history: string[] }[];
    expect(listing[0]!.command_history).toEqual(["cmd 2"]);
    const unknown = await api("/api/v1/terminals/hist/api/v1/terminal/history/5");
    expect(unknown.status).toBe(404);
    expect(await unknown.json()).toMatchObject({ statusCode: 404, code: "SESSION_NOT_FOUND" });
    data.close();
    control.close();
  });

  it("drops the history of a session whose EXIT is still being forgotten when its DELETE's end comes", async () => {
    // As the agent's EXIT on the data link (an ended session keeps its history), then at once the
    // DELETE's end (which drops it): the first forgetting still waits on D1 (the share links) when
    // the second runs, and must not finish last and keep the history.
    await runInDurableObject(TERMINAL.get(TERMINAL.idFromName("hist-race:9")), async (instance) => {
      const terminal = instance as unknown as {
        configure(meta: object, config: object): Promise<unknown>;
        history: HistoryStore;
        hub: { exit(exit: object): void };
        end(exit: object, keepHistory: boolean): Promise<void>;
        forgetting: Promise<void>;
        commandRecords(): Promise<{ ok: boolean; error?: { code: string } }>;
      };
      await terminal.configure({ terminal_id: 9, shell: "bash", cwd: "/", started_at: "2026-01-01T00:00:00.000Z", ephemeral: false }, { maxClients: 8, idleTimeoutMs: 0 });
      terminal.history.upsert(rec(1));
      terminal.hub.exit({ exit_code: 0, signal: 1 });
      await terminal.end({ exit_code: -1, signal: 9 }, false);
      await terminal.forgetting; // whatever forgetting is still under way, as later requests would see
      expect(await terminal.commandRecords()).toMatchObject({ ok: false, error: { code: "SESSION_NOT_FOUND" } });
    });
  });
});
