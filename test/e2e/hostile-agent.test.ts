/**
 * A hostile agent, through the real edge: a raw WebSocket client holding the server's valid agent
 * token sends a hello with 300 sessions (cap 256) full of junk, and malformed frames on the
 * control and data links. The HostDO and TerminalDO refuse what is bad entry by entry and frame
 * by frame, keep a consistent index, and the real agent works as before once it is back.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { until } from "../support/waiters.ts";
import { startStack, type TestStack } from "../support/stack.ts";
import { TermClient } from "../support/term-client.ts";

let stack: TestStack;
const clients: TermClient[] = [];

beforeAll(async () => {
  stack = await startStack();
});

afterAll(async () => {
  for (const c of clients) c.close();
  await stack?.stop();
});

interface Listing {
  id: number;
  agent_online: boolean;
  [key: string]: unknown;
}

async function listing(): Promise<Listing[]> {
  const res = await stack.api("/api/v1/terminal/sessions");
  expect(res.status).toBe(200);
  return (await res.json()) as Listing[];
}

const ids = (list: Listing[]) => list.map((s) => s.id).sort((a, b) => a - b);

/** A raw agent link: the real token, frames of our choosing. Answers every request with junk. */
async function hostileLink(path: string): Promise<{ ws: WebSocket; closed: Promise<number>; requests: unknown[] }> {
  const ws = new WebSocket(`${stack.url.replace(/^http/, "ws")}${path}`, { headers: { Authorization: `Bearer ${stack.agentToken}` } });
  const requests: unknown[] = [];
  const closed = new Promise<number>((resolve) => ws.on("close", (code) => resolve(code)));
  ws.on("message", (data, isBinary) => {
    if (isBinary) return;
    const req = JSON.parse(data.toString()) as { t: string; id: number; op: string };
    requests.push(req);
    // A reply whose result does not fit its op: the HostDO must refuse it, not wait 20 s.
    if (req.t === "req") ws.send(JSON.stringify({ t: "reply", id: req.id, ok: true, result: { sessions: "all of them", killed: "yes" } }));
  });
  await new Promise<void>((resolve, reject) => {
    ws.once("open", () => resolve());
    ws.once("error", reject);
  });
  return { ws, closed, requests };
}

const started = new Date().toISOString();
const valid = (id: number) => ({ terminal_id: id, shell: "bash", cwd: "/tmp", started_at: started, ephemeral: false, cols: 80, rows: 24 });

/** Entry i of a 300-entry hello: one in fifteen is well-formed (with junk fields), the rest each malformed their own way. */
function junkEntry(i: number): unknown {
  const id = 1000 + i;
  switch (i % 15) {
    case 0:
      return { ...valid(id), junk: "x".repeat(64), extra: { deep: [1, 2, 3] } };
    case 1:
      return { ...valid(id), cols: 0 };
    case 2:
      return { ...valid(id), started_at: "soon" };
    case 3:
      return { ...valid(id), terminal_id: String(id) };
    case 4:
      return { ...valid(id), shell: { nested: ["x"] } };
    case 5:
      return "not a session";
    case 6:
      return null;
    case 7:
      return { ...valid(id), terminal_id: 70_000 + i };
    case 8:
      return { ...valid(id), pid: -1 };
    case 9:
      return { ...valid(id), display: "; rm -rf /" };
    case 10:
      return { ...valid(id), cwd: "x".repeat(5000) };
    case 11:
      return { ...valid(id), ephemeral: "yes" };
    case 12:
      return { ...valid(id), title: 42 };
    case 13:
      return { ...valid(1000), junk: "a repeated id" };
    default:
      return [valid(id)];
  }
}

/** Data-link frames that are each malformed in their own way. */
const HOSTILE_DATA_FRAMES: number[][] = [
  [],
  [0x80, 1, 2],
  [0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0x05, 0x41],
  [0x80, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0x00, 0x41],
  [0x81, 0, 0, 0, 1],
  [0x82, ...Buffer.from('{"end":-1}')],
  [0x83, ...Buffer.from("{}")],
  [0x84, 0x00],
  [0x85, ...Buffer.from('{"cols":0,"rows":1e9}')],
  [0x86, ...Buffer.from('{"id":"one"}')],
  [0x99],
];

describe("a hostile agent", () => {
  it("cannot get junk adopted, break the index or the DOs, and the real agent carries on after", async () => {
    // A real session with a client, before anything hostile happens.
    const created = await stack.api("/api/v1/terminal/create", { method: "POST", body: JSON.stringify({ terminal_id: 7, shell: "bash" }) });
    expect(created.status).toBe(200);
    const client = await TermClient.connect(`${stack.url}/api/v1/terminal/ws?terminal_id=7`, { apiKey: stack.apiKey });
    clients.push(client);
    client.input("echo before-$((6*7))\r");
    await client.waitForText("before-42");
    const real = (await listing()).find((s) => s.id === 7)!;
    const seven = { terminal_id: 7, shell: real.shell, cwd: real.cwd, started_at: real.started_at, ephemeral: false, cols: 80, rows: 24 };

    const agentPid = stack.agent.pid!;
    process.kill(agentPid, "SIGSTOP");
    try {
      // --- the control link -----------------------------------------------------------------
      const control = await hostileLink("/agent/v1/control?server=local");
      control.ws.send(Buffer.from([0x82, 0x7b]), { binary: true });
      for (const frame of [
        "not json",
        "[]",
        JSON.stringify({ t: "nope" }),
        JSON.stringify({ t: "reply", id: "x", ok: true }),
        JSON.stringify({ t: "reply", id: 123_456, ok: true, result: {} }),
        JSON.stringify({ t: "exited", terminal_id: "7", exit: { exit_code: 0, signal: 0 } }),
        JSON.stringify({ t: "exec.data", id: 5, ndjson: 42 }),
        JSON.stringify({ t: "hello", agent: { version: 1 }, sessions: "all of them" }),
      ]) {
        control.ws.send(frame);
      }
      // 300 entries: the real session, 20 good ones with junk fields, 279 malformed ones.
      const entries = [seven, ...Array.from({ length: 299 }, (_, i) => junkEntry(i))];
      const good = [7, ...Array.from({ length: 299 }, (_, i) => i).filter((i) => i % 15 === 0).map((i) => 1000 + i)];
      const agent = { version: "9.9.9", hostname: "evil", platform: "linux", is_root: true, junk: "x".repeat(1000) };
      control.ws.send(JSON.stringify({ t: "hello", agent, sessions: entries }));
      await until("the listing to hold the good sessions", async () => ids(await listing()).join() === good.join(), { timeoutMs: 30_000, everyMs: 200 });
      const adopted = await listing();
      expect(adopted.length).toBeLessThanOrEqual(256);
      for (const s of adopted) expect(Object.keys(s)).not.toContain("junk");
      // The listing asked the "agent", got a malformed reply, and fell back to the index at once.
      expect(control.requests.some((r) => (r as { op?: string }).op === "list")).toBe(true);

      // --- the data link of a session the hostile hello got adopted ------------------------------
      const data = await hostileLink("/agent/v1/data?server=local&terminal_id=1015");
      for (const frame of HOSTILE_DATA_FRAMES) data.ws.send(Buffer.from(frame), { binary: true });
      data.ws.send("a text frame");
      // A hello for another terminal is refused: the link is closed with 4400.
      const other = { end: 0, oldest: 0, size: { cols: 80, rows: 24 }, meta: { terminal_id: 9, shell: "sh", cwd: "/", started_at: started, ephemeral: false } };
      data.ws.send(Buffer.from([0x82, ...Buffer.from(JSON.stringify(other))]), { binary: true });
      expect(await data.closed).toBe(4400);
      control.ws.close();
      await control.closed;
    } finally {
      process.kill(agentPid, "SIGCONT");
    }

    // --- the real agent is back: its hello reconciles the index to what it really runs ------------
    await until(
      "terminal 7 listed with its agent online",
      async () => {
        const list = await listing();
        return ids(list).join() === "7" && list[0]!.agent_online;
      },
      { timeoutMs: 60_000, everyMs: 200 },
    );
    // Malformed frames on terminal 7's data link (replacing the real one for a moment): the
    // TerminalDO drops them, the real agent's link comes back, and the client carries on.
    client.info = null;
    const data7 = await hostileLink("/agent/v1/data?server=local&terminal_id=7");
    for (const frame of HOSTILE_DATA_FRAMES) data7.ws.send(Buffer.from(frame), { binary: true });
    data7.ws.close();
    await data7.closed;
    await client.waitFor(() => client.info?.agent_online === true, "the real agent's data link to say HELLO again", 30_000);
    client.input("echo after-$((6*7))\r");
    await client.waitForText("after-42", 30_000);
    const second = await stack.api("/api/v1/terminal/create", { method: "POST", body: JSON.stringify({ terminal_id: 8, shell: "bash" }) });
    expect(second.status).toBe(200);
    const other = await TermClient.connect(`${stack.url}/api/v1/terminal/ws?terminal_id=8`, { apiKey: stack.apiKey });
    clients.push(other);
    other.input("echo new-$((6*7))\r");
    await other.waitForText("new-42");
    expect(ids(await listing())).toEqual([7, 8]);
  }, 240_000);
});
