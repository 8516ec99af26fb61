/**
 * EdgeExecRelay (the edge end of /execute) in workerd: a real WebSocketPair stands for the
 * agent's control link (the test reads the relay's frames off the far end with the agent's own
 * decoder) and real workerd streams carry the NDJSON answers. The HostDO around it is not needed:
 * the relay takes the link and the request table as arguments.
 */
import { describe, expect, it } from "vitest";
import { decodeAgentToHost, decodeHostToAgent, LINK_INFLIGHT_MAX } from "../../shared/links/control.ts";
import { Correlator } from "../../shared/links/correlator.ts";
import type { ExecAgentMsg, ExecEdgeMsg, ExecOp } from "../../shared/links/exec.ts";
import { EdgeExecRelay, EXEC_MAX_INFLIGHT, execRequest, type ExecJob } from "../../edge/exec-relay.ts";
import { UNCOMPRESSED_JSON_MAX_CHARS } from "../../edge/http.ts";
import { Waiters } from "../support/waiters.ts";

const LIST: ExecOp = { op: "list" };
const STREAM: ExecOp = { op: "execute", call: { mode: "stream", spec: { command: "yes", cwd: null, env: null }, timeout: null } };

/** A relay on a fresh link, the frames the agent end received, and a way to answer as the agent. */
function relayOnLink(tableMax = LINK_INFLIGHT_MAX) {
  const [agentEnd, edgeEnd] = Object.values(new WebSocketPair()) as [WebSocket, WebSocket];
  agentEnd.accept();
  edgeEnd.accept();
  const sent: ExecEdgeMsg[] = [];
  const waiters = new Waiters();
  agentEnd.addEventListener("message", (event) => {
    sent.push(decodeHostToAgent(event.data as string) as ExecEdgeMsg);
    waiters.notify();
  });
  const link = { online: true };
  const table = new Correlator<ExecJob | { kind: string }>(tableMax);
  const relay = new EdgeExecRelay(() => (link.online ? edgeEnd : null), table);
  return {
    relay,
    table,
    sent,
    link,
    /** The agent's frame, through the HostDO's decoder, to the relay. */
    reply(msg: object): void {
      relay.onAgentMessage(decodeAgentToHost(JSON.stringify(msg)) as ExecAgentMsg);
    },
    /** A stream call the agent has started (exec.head): its id and the HTTP answer. */
    async openStream(): Promise<{ id: number; res: Response }> {
      const answer = relay.start("s", STREAM);
      const { id } = await this.frame("exec.req", undefined, STREAM);
      this.reply({ t: "exec.head", id });
      return { id, res: await answer };
    },
    /** The first frame sent of type `t` (with `id` and `op`, when given), once it arrives. */
    async frame<T extends ExecEdgeMsg["t"]>(t: T, id?: number, op?: ExecOp): Promise<Extract<ExecEdgeMsg, { t: T }>> {
      const match = () => sent.find((m) => m.t === t && (id === undefined || m.id === id) && (op === undefined || (m.t === "exec.req" && JSON.stringify(m.op) === JSON.stringify(op))));
      await waiters.until(() => match() !== undefined, `an ${t} frame`, undefined, () => `; sent: ${JSON.stringify(sent)}`);
      return match() as Extract<ExecEdgeMsg, { t: T }>;
    },
  };
}

describe("EdgeExecRelay", () => {
  it("sends one exec.req with the caller's scope and session, and answers with the agent's exec.res", async () => {
    const r = relayOnLink();
    const answer = r.relay.start("scope-1", LIST, "sess-1");
    const req = await r.frame("exec.req");
    expect(req).toMatchObject({ scope: "scope-1", session: "sess-1", op: LIST });
    expect(r.relay.size).toBe(1);
    r.reply({ t: "exec.res", id: req.id, status: 201, body: { ok: 1 } });
    const res = await answer;
    expect(res.status).toBe(201);
    expect(await res.json()).toEqual({ ok: 1 });
    expect(r.relay.size).toBe(0);
  });

  it("marks a short JSON answer uncompressed (Content-Encoding: identity) and leaves a long one to the platform's compression", async () => {
    const r = relayOnLink();
    const short = r.relay.start("s", LIST);
    r.reply({ t: "exec.res", id: (await r.frame("exec.req")).id, status: 200, body: [{ id: "a", output: "hi" }] });
    const shortRes = await short;
    expect(shortRes.headers.get("Content-Type")).toBe("application/json");
    expect(shortRes.headers.get("Content-Encoding")).toBe("identity");
    expect(await shortRes.json()).toEqual([{ id: "a", output: "hi" }]);

    const r2 = relayOnLink();
    const long = r2.relay.start("s", LIST);
    const longBody = { output: "x".repeat(UNCOMPRESSED_JSON_MAX_CHARS) };
    r2.reply({ t: "exec.res", id: (await r2.frame("exec.req")).id, status: 200, body: longBody });
    const longRes = await long;
    expect(longRes.headers.get("Content-Encoding")).toBeNull();
    expect(await longRes.json()).toEqual(longBody);
  });

  it("answers 503 AGENT_OFFLINE at once when the agent is away", async () => {
    const r = relayOnLink();
    r.link.online = false;
    const res = await r.relay.start("s", LIST);
    expect(res.status).toBe(503);
    expect(await res.json()).toMatchObject({ code: "AGENT_OFFLINE" });
    expect(r.table.size).toBe(0);
  });

  it("streams exec.data into the body, acknowledging each frame once the reader has taken it, and ends on exec.end", async () => {
    const r = relayOnLink();
    const { id, res } = await r.openStream();
    expect(res.status).toBe(200);
    expect(res.headers.get("Content-Type")).toMatch(/ndjson/);
    const reader = res.body!.getReader();
    const line = '{"type": "output", "data": "y\\n"}\n';
    r.reply({ t: "exec.data", id, ndjson: line });
    const chunk = await reader.read();
    expect(new TextDecoder().decode(chunk.value)).toBe(line);
    expect(await r.frame("exec.ack", id)).toEqual({ t: "exec.ack", id, bytes: line.length });
    r.reply({ t: "exec.end", id });
    expect((await reader.read()).done).toBe(true);
    expect(r.relay.size).toBe(0);
  });

  it("cancels the command at the agent when the HTTP client goes away mid-stream", async () => {
    const r = relayOnLink();
    const { id, res } = await r.openStream();
    await res.body!.cancel();
    expect(await r.frame("exec.cancel", id)).toEqual({ t: "exec.cancel", id });
    expect(r.relay.size).toBe(0);
  });

  it("answers 502 and cancels when the agent sends a malformed frame for a call", async () => {
    const r = relayOnLink();
    const answer = r.relay.start("s", LIST);
    const { id } = await r.frame("exec.req");
    r.relay.badReply(id);
    const res = await answer;
    expect(res.status).toBe(502);
    expect(await res.json()).toMatchObject({ code: "AGENT_BAD_REPLY" });
    expect(await r.frame("exec.cancel", id)).toEqual({ t: "exec.cancel", id });
  });

  it("refuses an exec.res whose status cannot carry its JSON body (204, 205, 304), so the call fails at once", () => {
    for (const status of [204, 205, 304]) {
      expect(() => decodeAgentToHost(JSON.stringify({ t: "exec.res", id: 7, status, body: { a: 1 } }))).toThrow(/no body/);
    }
    expect(decodeAgentToHost(JSON.stringify({ t: "exec.res", id: 7, status: 200, body: { a: 1 } }))).toMatchObject({ status: 200 });
  });

  it("tells the agent to stop a stream nobody waits for", async () => {
    const r = relayOnLink();
    r.reply({ t: "exec.data", id: 12345, ndjson: "{}\n" });
    expect(await r.frame("exec.cancel", 12345)).toEqual({ t: "exec.cancel", id: 12345 });
  });

  it("answers waiting calls 503 and cuts streams short when the agent goes away", async () => {
    const r = relayOnLink();
    const waiting = r.relay.start("s", LIST);
    const streaming = r.relay.start("s", STREAM);
    const streamReq = await r.frame("exec.req", undefined, STREAM);
    r.reply({ t: "exec.head", id: streamReq.id });
    const stream = await streaming;
    r.relay.agentGone(r.table.drain().map(([, job]) => job as ExecJob));
    const res = await waiting;
    expect(res.status).toBe(503);
    expect(await res.json()).toMatchObject({ code: "AGENT_OFFLINE" });
    await expect(stream.body!.getReader().read()).rejects.toThrow(/offline/);
  });

  it(`answers 429 past ${EXEC_MAX_INFLIGHT} calls in flight, and when the link's table is full`, async () => {
    const r = relayOnLink();
    const calls = Array.from({ length: EXEC_MAX_INFLIGHT }, () => r.relay.start("s", LIST));
    expect(r.relay.size).toBe(EXEC_MAX_INFLIGHT);
    const over = await r.relay.start("s", LIST);
    expect(over.status).toBe(429);
    r.relay.agentGone(r.table.drain().map(([, job]) => job as ExecJob));
    await Promise.all(calls);

    const full = relayOnLink(1);
    full.table.open({ kind: "control" });
    expect((await full.relay.start("s", LIST)).status).toBe(429);
  });

  it("takes the Worker's execRequest and refuses a malformed one with 400", async () => {
    const r = relayOnLink();
    const answer = r.relay.fetch(execRequest("scope-2", LIST, "sess-2"));
    const req = await r.frame("exec.req");
    expect(req).toMatchObject({ scope: "scope-2", session: "sess-2", op: LIST });
    r.reply({ t: "exec.res", id: req.id, status: 200, body: [] });
    expect((await answer).status).toBe(200);

    const bad = await r.relay.fetch(new Request("https://host/exec", { method: "POST", body: JSON.stringify({ scope: "s", op: { op: "rm -rf" } }) }));
    expect(bad.status).toBe(400);
    expect(await bad.json()).toMatchObject({ code: "BAD_EXEC_CALL" });
  });
});
