/**
 * EdgeExecRelay in workerd, with the agent's end of a real WebSocketPair: calls become exec.req,
 * answers and streams come back as HTTP responses, acks follow the reader, and nothing is left
 * hanging when the client or the agent goes away.
 */
import { describe, expect, it } from "vitest";
import { EdgeExecRelay, execRequest } from "../../edge/exec-relay.ts";
import type { ExecEdgeMsg, ExecOp } from "../../shared/exec-protocol.ts";
import { Waiters } from "../support/waiters.ts";

const syncOp: ExecOp = { op: "execute", call: { mode: "sync", spec: { command: "echo hi", cwd: null, env: null }, timeout: 30 } };
const streamOp: ExecOp = { op: "execute", call: { mode: "stream", spec: { command: "yes", cwd: null, env: null }, timeout: null } };

/** The relay wired to the agent's end of a WebSocketPair, which records what the relay sends. */
function setup(online = true) {
  const pair = new WebSocketPair();
  const [agentEnd, relayEnd] = [pair[0], pair[1]];
  agentEnd.accept();
  relayEnd.accept();
  const sent: ExecEdgeMsg[] = [];
  const waiters = new Waiters();
  agentEnd.addEventListener("message", (event) => {
    sent.push(JSON.parse(event.data as string) as ExecEdgeMsg);
    waiters.notify();
  });
  let up = online;
  const relay = new EdgeExecRelay(() => (up ? relayEnd : null));
  return {
    relay,
    sent,
    /** Resolves with the first message the relay sent that matches. */
    async next<T extends ExecEdgeMsg["t"]>(t: T, rid?: number): Promise<Extract<ExecEdgeMsg, { t: T }>> {
      const find = () => sent.find((m) => m.t === t && (rid === undefined || m.rid === rid));
      await waiters.until(() => find() !== undefined, `an ${t} from the relay`, 5_000, () => `; sent: ${JSON.stringify(sent)}`);
      return find() as Extract<ExecEdgeMsg, { t: T }>;
    },
    goOffline() {
      up = false;
    },
  };
}

describe("EdgeExecRelay", () => {
  it("answers 503 in the Open Terminal shape while the agent is away", async () => {
    const { relay } = setup(false);
    const res = await relay.start("", syncOp);
    expect(res.status).toBe(503);
    expect(await res.json()).toMatchObject({ code: "AGENT_OFFLINE", detail: expect.any(String) });
  });

  it("relays a call as exec.req and answers with the agent's exec.res", async () => {
    const s = setup();
    const answer = s.relay.start("alice", syncOp);
    const req = await s.next("exec.req");
    expect(req).toEqual({ t: "exec.req", rid: req.rid, scope: "alice", op: syncOp });
    expect(s.relay.size).toBe(1);
    s.relay.onAgentMessage({ t: "exec.res", rid: req.rid, status: 200, body: { exit_code: 0, stdout: "hi\n" } });
    const res = await answer;
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ exit_code: 0, stdout: "hi\n" });
    expect(s.relay.size).toBe(0);
  });

  it("refuses a malformed call from the Worker with 400 BAD_EXEC_CALL", async () => {
    const s = setup();
    const res = await s.relay.fetch(new Request("https://host/exec", { method: "POST", body: "{not json" }));
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ code: "BAD_EXEC_CALL" });
    const ok = s.relay.fetch(execRequest("", { op: "list" }));
    const req = await s.next("exec.req");
    s.relay.onAgentMessage({ t: "exec.res", rid: req.rid, status: 200, body: [] });
    expect(await (await ok).json()).toEqual([]);
  });

  it("streams exec.data into the response, acks each chunk once the reader has it, and ends on exec.end", async () => {
    const s = setup();
    const answer = s.relay.start("", streamOp);
    const { rid } = await s.next("exec.req");
    s.relay.onAgentMessage({ t: "exec.head", rid });
    const res = await answer;
    expect(res.status).toBe(200);
    expect(res.headers.get("Content-Type")).toBe("application/x-ndjson");
    const reader = res.body!.getReader();
    const line = '{"type": "stdout", "data": "y\\n"}\n';
    s.relay.onAgentMessage({ t: "exec.data", rid, ndjson: line });
    expect(new TextDecoder().decode((await reader.read()).value)).toBe(line);
    expect(await s.next("exec.ack", rid)).toEqual({ t: "exec.ack", rid, bytes: line.length });
    s.relay.onAgentMessage({ t: "exec.end", rid });
    expect((await reader.read()).done).toBe(true);
    expect(s.relay.size).toBe(0);
  });

  it("cancels the command when the HTTP client goes away", async () => {
    const s = setup();
    const answer = s.relay.start("", streamOp);
    const { rid } = await s.next("exec.req");
    s.relay.onAgentMessage({ t: "exec.head", rid });
    await (await answer).body!.cancel();
    expect(await s.next("exec.cancel", rid)).toEqual({ t: "exec.cancel", rid });
    expect(s.relay.size).toBe(0);
  });

  it("answers waiting calls 503 and cuts streams short when the agent goes away", async () => {
    const s = setup();
    const waiting = s.relay.start("", syncOp);
    const { rid: syncRid } = await s.next("exec.req");
    const streaming = s.relay.start("", streamOp);
    const streamRid = (await s.next("exec.req", syncRid + 1)).rid;
    s.relay.onAgentMessage({ t: "exec.head", rid: streamRid });
    const reader = (await streaming).body!.getReader();
    s.goOffline();
    s.relay.agentGone();
    const res = await waiting;
    expect(res.status).toBe(503);
    expect(await res.json()).toMatchObject({ code: "AGENT_OFFLINE" });
    await expect(reader.read()).rejects.toThrow();
    expect(s.relay.size).toBe(0);
  });

  it("ignores malformed agent messages and tells the agent to stop data nobody waits for", async () => {
    const s = setup();
    for (const bad of [null, "x", { t: "exec.res", rid: -1, status: 200 }, { t: "exec.res", rid: 1, status: 99 }, { t: "exec.data", rid: 1 }, { t: "exec.bogus", rid: 1 }]) {
      expect(() => s.relay.onAgentMessage(bad)).not.toThrow();
    }
    s.relay.onAgentMessage({ t: "exec.data", rid: 424242, ndjson: "{}\n" });
    expect(await s.next("exec.cancel", 424242)).toEqual({ t: "exec.cancel", rid: 424242 });
  });
});
