/** ExecRelay driven by a stand-in for the HostDO: requests, streams paced by acks, cancel, bad messages. */
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { LinkDecodeError } from "../../shared/links/codec.ts";
import { decodeHostToAgent } from "../../shared/links/control.ts";
import { EXEC_STREAM_FRAME_BYTES, EXEC_STREAM_WINDOW_BYTES } from "../../shared/links/exec.ts";
import type { ExecAgentMsg, ExecOp } from "../../shared/links/exec.ts";
import { ExecManager } from "../../worker/agent/exec/exec-manager.ts";
import { ExecRelay } from "../../worker/agent/exec/exec-relay.ts";
import { uniqueSize, untilBlocked } from "../support/ndjson.ts";
import { ShellGate } from "../support/shell-gate.ts";
import { until } from "../support/waiters.ts";
import { alive, pidsIn } from "./exec-helpers.ts";

const spec = (command: string, cwd: string | null = null) => ({ command, cwd, env: null });
const streamOp = (command: string, cwd: string | null = null): ExecOp => ({ op: "execute", call: { mode: "stream", spec: spec(command, cwd), timeout: null } });

/** The edge's side of one link: records what the agent sends, acknowledges data when told to. */
class FakeEdge {
  readonly got: { at: number; msg: ExecAgentMsg }[] = [];
  readonly manager = new ExecManager({ defaultCwd: "/tmp" });
  readonly relay: ExecRelay;
  autoAck = true;
  private readonly t0 = performance.now();

  constructor() {
    this.relay = new ExecRelay(this.manager, (msg) => {
      this.got.push({ at: performance.now() - this.t0, msg });
      if (this.autoAck && msg.t === "exec.data") queueMicrotask(() => this.relay.handle({ t: "exec.ack", id: msg.id, bytes: msg.ndjson.length }));
    });
  }

  req(rid: number, op: ExecOp, scope = ""): void {
    this.relay.handle({ t: "exec.req", id: rid, scope, session: "", op });
  }

  /** A control frame as the agent receives it: decoded by the link, refused frames reported. */
  feed(raw: unknown): void {
    try {
      const msg = decodeHostToAgent(JSON.stringify(raw));
      if (msg.t.startsWith("exec.")) this.relay.handle(msg as Exclude<typeof msg, { t: "req" } | { t: `tun.${string}` }>);
    } catch (error) {
      if (!(error instanceof LinkDecodeError)) throw error;
      this.relay.refused(error);
    }
  }

  of(rid: number): ExecAgentMsg[] {
    return this.got.filter((g) => g.msg.id === rid).map((g) => g.msg);
  }

  async until(check: () => boolean, timeoutMs?: number): Promise<void> {
    await until("the relay's messages", check, { ...(timeoutMs ? { timeoutMs } : {}), describe: () => `; got: ${JSON.stringify(this.got.slice(-5))}` });
  }

  ndjson(rid: number): string {
    return this.of(rid)
      .map((m) => (m.t === "exec.data" ? m.ndjson : ""))
      .join("");
  }

  /** The stdout text streamed so far for `rid`. */
  stdout(rid: number): string {
    return this.ndjson(rid)
      .split("\n")
      .filter((l) => l !== "")
      .map((l) => JSON.parse(l) as { type: string; data: unknown })
      .map((ev) => (ev.type === "stdout" ? String(ev.data) : ""))
      .join("");
  }
}

let edges: FakeEdge[] = [];
function edge(): FakeEdge {
  const e = new FakeEdge();
  edges.push(e);
  return e;
}
afterEach(async () => {
  for (const e of edges) e.relay.closeAll();
  await Promise.all(edges.map((e) => e.manager.shutdown()));
  edges = [];
});

describe("the exec relay", () => {
  it("answers a plain request with exec.res", async () => {
    const e = edge();
    e.req(1, { op: "execute", call: { mode: "sync", spec: spec("echo hi"), timeout: 30 } });
    await e.until(() => e.of(1).length > 0);
    expect(e.of(1)).toEqual([{ t: "exec.res", id: 1, status: 200, body: expect.objectContaining({ exit_code: 0, stdout: "hi\n", stderr: "" }) }]);
  });

  it("streams head, NDJSON lines as they are printed, then end", async () => {
    const e = edge();
    const [g1, g2] = [new ShellGate(), new ShellGate()];
    e.req(2, streamOp(`echo 1; ${g1.wait}; echo 2; ${g2.wait}; echo 3`));
    // Each line arrives while the command is held at the gate after it.
    await e.until(() => e.stdout(2) === "1\n");
    g1.open();
    await e.until(() => e.stdout(2) === "1\n2\n");
    g2.open();
    await e.until(() => e.of(2).some((m) => m.t === "exec.end"));
    const msgs = e.of(2);
    expect(msgs[0]).toEqual({ t: "exec.head", id: 2 });
    expect(msgs.at(-1)).toEqual({ t: "exec.end", id: 2 });
    expect(e.ndjson(2)).toBe('{"type": "stdout", "data": "1\\n"}\n{"type": "stdout", "data": "2\\n"}\n{"type": "stdout", "data": "3\\n"}\n{"type": "exit", "data": 0}\n');
  });

  it("stops at the window until the edge acknowledges, then delivers everything", async () => {
    const e = edge();
    e.autoAck = false;
    const size = uniqueSize(5_000_000);
    e.req(3, streamOp(`head -c ${size} /dev/zero | tr '\\0' x`));
    await e.until(() => e.of(3).length > 1);
    // Unacknowledged, the relay stops reading: `head` ends up blocked on its pipe.
    await untilBlocked(["head", "-c", String(size), "/dev/zero"]);
    const sent = () => e.ndjson(3).length;
    expect(sent()).toBeLessThanOrEqual(EXEC_STREAM_WINDOW_BYTES + 2 * EXEC_STREAM_FRAME_BYTES + 1024);
    e.autoAck = true;
    e.relay.handle({ t: "exec.ack", id: 3, bytes: sent() });
    await e.until(() => e.of(3).some((m) => m.t === "exec.end"), 20_000);
    const lines = e.ndjson(3).trimEnd().split("\n").map((l) => JSON.parse(l) as { type: string; data: string | number });
    expect(lines.filter((l) => l.type === "stdout").reduce((n, l) => n + String(l.data).length, 0)).toBe(size);
    expect(lines.at(-1)).toEqual({ type: "exit", data: 0 });
  });

  it("kills the process group when the edge cancels, and sends nothing more", async () => {
    const e = edge();
    e.req(4, streamOp("echo $$; sleep 30 & echo $!; wait"));
    await e.until(() => pidsIn(e.stdout(4)).length >= 2);
    const pids = pidsIn(e.stdout(4));
    const before = e.of(4).length;
    e.relay.handle({ t: "exec.cancel", id: 4 });
    await e.until(() => pids.every((p) => !alive(p)));
    // A later request's answer: the killed command's exit and closed pipes were handled first.
    e.req(40, { op: "execute", call: { mode: "sync", spec: spec("true"), timeout: 30 } });
    await e.until(() => e.of(40).length > 0);
    expect(e.of(4)).toHaveLength(before);
  });

  it("kills a synchronous run's group when the edge cancels it or the link drops, and frees its slot", async () => {
    const dir = mkdtempSync(join(tmpdir(), "exec-relay-sync-"));
    try {
      const e = edge();
      const sync = (rid: number, name: string) =>
        e.req(rid, { op: "execute", call: { mode: "sync", spec: spec(`sleep 30 & printf '%s\\n%s\\n' $$ $! > ${dir}/${name}.tmp; mv ${dir}/${name}.tmp ${dir}/${name}; wait`), timeout: null } });
      const pidsOf = async (name: string) => {
        await e.until(() => existsSync(join(dir, name)));
        return pidsIn(readFileSync(join(dir, name), "utf8"));
      };
      sync(12, "cancelled");
      const cancelled = await pidsOf("cancelled");
      e.relay.handle({ t: "exec.cancel", id: 12 });
      await e.until(() => cancelled.every((p) => !alive(p)));
      sync(13, "dropped");
      const dropped = await pidsOf("dropped");
      e.relay.closeAll();
      await e.until(() => dropped.every((p) => !alive(p)));
      // Neither answered (no one listens), and neither holds a running slot.
      expect(e.of(12)).toEqual([]);
      expect(e.of(13)).toEqual([]);
      await until("the slots freed", () => (e.manager as unknown as { active: Set<unknown> }).active.size === 0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("answers a stream that cannot start with exec.res instead of a head", async () => {
    const e = edge();
    e.req(5, streamOp("true", "/no/such/dir"));
    await e.until(() => e.of(5).length > 0);
    expect(e.of(5)).toEqual([{ t: "exec.res", id: 5, status: 400, body: { detail: "Working directory not found: /no/such/dir", code: "CWD_NOT_FOUND" } }]);
  });

  it("answers malformed and duplicate requests with 400 and never throws", async () => {
    const e = edge();
    expect(() => e.feed("garbage")).not.toThrow();
    expect(() => e.feed({ t: "exec.req", id: 6, scope: "", op: { op: "bogus" } })).not.toThrow();
    expect(e.of(6)).toEqual([{ t: "exec.res", id: 6, status: 400, body: { detail: expect.stringMatching(/^exec\.req\.op\.op: /), code: "BAD_RELAY_MESSAGE" } }]);
    e.req(7, { op: "status", id: "x", query: { wait: 2, offset: 0, tail: null } });
    e.req(7, { op: "list" });
    await e.until(() => e.of(7).length === 2);
    expect(e.of(7)[0]).toMatchObject({ status: 400, body: { detail: "request 7 is already in flight" } });
    expect(e.of(7)[1]).toMatchObject({ status: 404, body: { detail: "Process not found" } });
    expect(e.got.filter((g) => g.msg.id !== 6 && g.msg.id !== 7)).toEqual([]);
  });

  it("keeps processes per scope across requests", async () => {
    const e = edge();
    e.req(8, { op: "execute", call: { mode: "background", spec: spec("echo bg"), wait: 5, tail: null } }, "alice");
    await e.until(() => e.of(8).length > 0);
    e.req(9, { op: "list" }, "alice");
    e.req(10, { op: "list" }, "bob");
    await e.until(() => e.of(9).length > 0 && e.of(10).length > 0);
    expect((e.of(9)[0] as { body: unknown[] }).body).toHaveLength(1);
    expect((e.of(10)[0] as { body: unknown[] }).body).toEqual([]);
  });

  it("closeAll kills running streams when the link drops", async () => {
    const e = edge();
    e.req(11, streamOp("echo $$; sleep 30"));
    await e.until(() => pidsIn(e.stdout(11)).length > 0);
    const [pid] = pidsIn(e.stdout(11));
    e.relay.closeAll();
    await e.until(() => !alive(pid!));
  });
});
