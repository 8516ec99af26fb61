/**
 * PtySession with a real PTY (sh) and a real `ws` server on port 0 playing the TerminalDO's end
 * of the data link: HELLO, then RESUME; output as offset-addressed frames; input, resize, acks,
 * snapshots and the exit, all through the link.
 */
import { mkdtempSync, rmSync } from "node:fs";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import xterm from "@xterm/headless";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import WebSocket, { WebSocketServer } from "ws";
import { decodeAgentFrame, encodeEdgeFrame, type AgentDataFrame, type EdgeDataFrame } from "../../shared/links/data.ts";
import { decodeServerFrame, type ExitInfo } from "../../shared/links/client.ts";
import { agentIdentity, processTag } from "../../worker/agent/launch.ts";
import { PtySession } from "../../worker/agent/pty-session.ts";
import { UNACKED_MAX_BYTES } from "../../worker/agent/pty-output-log.ts";
import type { SpawnPlan } from "../../worker/agent/spawn.ts";
import { until, Waiters } from "../support/waiters.ts";

/** The TerminalDO's end of the data link: folds the agent's frames into state. */
class EdgeEnd {
  readonly server = new WebSocketServer({ port: 0, host: "127.0.0.1" });
  readonly frames: AgentDataFrame[] = [];
  readonly authorizations: (string | undefined)[] = [];
  /** Output bytes by offset, as the edge would keep them. */
  output = "";
  outputEnd = 0;
  socket: WebSocket | null = null;
  readonly waiters = new Waiters();

  constructor() {
    this.server.on("connection", (ws, req) => {
      this.socket = ws;
      this.authorizations.push(req.headers.authorization);
      ws.on("message", (data: Buffer) => {
        const f = decodeAgentFrame(new Uint8Array(data));
        this.frames.push(f);
        if (f.t === "output") {
          const payload = decodeServerFrame(f.frame);
          if (payload.t === "output" && f.offset === this.outputEnd) {
            this.output += Buffer.from(payload.data).toString("latin1");
            this.outputEnd += payload.data.byteLength;
          }
        }
        this.waiters.notify();
      });
      ws.on("close", () => this.waiters.notify());
      this.waiters.notify();
    });
  }

  get url(): string {
    return `ws://127.0.0.1:${(this.server.address() as AddressInfo).port}/agent/v1/data`;
  }

  send(f: EdgeDataFrame): void {
    this.socket!.send(encodeEdgeFrame(f));
  }

  of<T extends AgentDataFrame["t"]>(t: T): Extract<AgentDataFrame, { t: T }>[] {
    return this.frames.filter((f): f is Extract<AgentDataFrame, { t: T }> => f.t === t);
  }

  until(predicate: () => boolean, what: string): Promise<void> {
    return this.waiters.until(predicate, what, 15_000, () => `; output so far: ${JSON.stringify(this.output.slice(-300))}`);
  }

  close(): Promise<void> {
    for (const ws of this.server.clients) ws.terminate();
    return new Promise((r) => this.server.close(() => r()));
  }
}

/** The output payloads among `frames`, concatenated (latin1). */
function outputOf(frames: AgentDataFrame[]): string {
  let out = "";
  for (const f of frames) {
    if (f.t !== "output") continue;
    const payload = decodeServerFrame(f.frame);
    if (payload.t === "output") out += Buffer.from(payload.data).toString("latin1");
  }
  return out;
}

/** The rows and cursor of a terminal's screen. */
function screenOf(term: xterm.Terminal): { rows: string[]; cursor: [number, number] } {
  const b = term.buffer.active;
  return { rows: Array.from({ length: term.rows }, (_, y) => b.getLine(b.viewportY + y)?.translateToString(true) ?? ""), cursor: [b.cursorX, b.cursorY] };
}

/**
 * Asks `s` for a repaint and checks it shows what a terminal of `initial` size shows after taking
 * the frames the edge received, in their order (output written, SIZE applied), up to the repaint.
 */
async function expectRepaintOfLinkOrder(initial: { cols: number; rows: number }): Promise<void> {
  const asked = edge.of("snapshot").length;
  edge.send({ t: "snapshot-request", id: 100 + asked });
  await edge.until(() => edge.of("snapshot").length > asked, "the repaint");
  const at = edge.frames.findLastIndex((f) => f.t === "snapshot");
  const snap = edge.frames[at] as Extract<AgentDataFrame, { t: "snapshot" }>;
  const oracle = new xterm.Terminal({ ...initial, allowProposedApi: true });
  let end = 0;
  for (const f of edge.frames.slice(0, at)) {
    if (f.t === "size") oracle.resize(f.size.cols, f.size.rows);
    if (f.t !== "output") continue;
    const payload = decodeServerFrame(f.frame);
    if (payload.t !== "output" || f.offset !== end) continue;
    const data = payload.data.subarray(0, Math.max(0, snap.offset - f.offset));
    end += payload.data.byteLength;
    await new Promise<void>((r) => oracle.write(data, r));
  }
  const repaint = decodeServerFrame(snap.frame);
  const term = new xterm.Terminal({ cols: oracle.cols, rows: oracle.rows, allowProposedApi: true });
  if (repaint.t === "output") await new Promise<void>((r) => term.write(repaint.data, r));
  expect(screenOf(term)).toEqual(screenOf(oracle));
  term.dispose();
  oracle.dispose();
}

let edge: EdgeEnd;
let dir: string;
let sessions: { s: PtySession; exits: ExitInfo[] }[] = [];

/** A session on `edge`, with the exits its owner was told of. */
function session(extra: { initialInput?: string; onOutput?: (chunk: Buffer) => void } = {}): { s: PtySession; exits: ExitInfo[] } {
  const exits: ExitInfo[] = [];
  const plan: SpawnPlan = {
    shell: "sh",
    shellPath: "/bin/sh",
    account: { name: "me", uid: process.getuid!(), gid: process.getgid!(), home: dir, shell: "/bin/sh" },
    switchUser: false,
    setpriv: null,
    cwd: dir,
    env: {},
  };
  const s = new PtySession({
    meta: { terminal_id: 7, shell: "sh", cwd: dir, started_at: new Date().toISOString(), ephemeral: false },
    plan,
    file: "/bin/sh",
    args: [],
    env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: dir, TERM: "xterm-256color", PS1: "$ " },
    size: { cols: 80, rows: 24 },
    linkUrl: edge.url,
    token: "agent-token",
    tag: processTag(agentIdentity(dir), { kind: "t", id: `7-${sessions.length + 1}` }),
    onExit: (exit) => {
      exits.push(exit);
      edge.waiters.notify();
    },
    log: () => {},
    ...extra,
  });
  sessions.push({ s, exits });
  return { s, exits };
}

/** A session whose HELLO was answered with RESUME from 0 and whose shell is ready. */
async function streamingSession(): Promise<{ s: PtySession; exits: ExitInfo[] }> {
  const started = session();
  await resume();
  await started.s.ready();
  return started;
}

/** Waits for HELLO and answers RESUME from `offset`, as the TerminalDO does. */
async function resume(offset = 0): Promise<void> {
  const hellos = edge.of("hello").length;
  await edge.until(() => edge.of("hello").length > hellos || (hellos > 0 && edge.socket !== null), "the HELLO");
  edge.send({ t: "resume", offset });
}

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), "edgetty-pty-session-"));
  edge = new EdgeEnd();
  await new Promise((r) => edge.server.once("listening", r));
});
afterEach(async () => {
  // Each shell ends before the next test, so no exit is reported into another test.
  for (const { s, exits } of sessions) {
    s.kill();
    await edge.until(() => exits.length > 0, "the shell to end");
    s.dispose();
  }
  sessions = [];
  await edge.close();
  rmSync(dir, { recursive: true, force: true });
});

describe("PtySession", () => {
  it("says HELLO with its metadata and the agent token, then streams the shell's output in order", async () => {
    const { s } = session();
    await edge.until(() => edge.of("hello").length === 1, "the HELLO");
    expect(edge.authorizations).toEqual(["Bearer agent-token"]);
    expect(edge.of("hello")[0]!.hello).toMatchObject({ oldest: 0, size: { cols: 80, rows: 24 }, meta: { terminal_id: 7, shell: "sh", pid: s.pid } });
    edge.send({ t: "resume", offset: 0 });
    await s.ready();
    edge.send({ t: "input", data: new TextEncoder().encode("echo out-$((6*7))\r") });
    await edge.until(() => edge.output.includes("out-42"), "the command's output");
    // Offsets are contiguous: every frame starts where the previous one ended.
    let end = 0;
    for (const f of edge.of("output")) {
      expect(f.offset).toBe(end);
      end += f.frame.byteLength - 1;
    }
  });

  it("holds input typed before the shell is ready and delivers it", async () => {
    const { s } = session({ initialInput: "echo early-$((1+1))\r" });
    await resume();
    await s.ready();
    await edge.until(() => edge.output.includes("early-2"), "the early command's output");
  });

  it("resizes the PTY and tells the edge the new size", async () => {
    const { s } = await streamingSession();
    edge.send({ t: "resize", size: { cols: 100, rows: 30 } });
    await edge.until(() => edge.of("size").length === 1, "the SIZE frame");
    expect(edge.of("size")[0]!.size).toEqual({ cols: 100, rows: 30 });
    edge.send({ t: "input", data: new TextEncoder().encode("stty size\r") });
    await edge.until(() => edge.output.includes("30 100"), "stty's answer");
  });

  it("merges a flood of resizes: few are applied, and the last one wins", async () => {
    const { s } = await streamingSession();
    for (let i = 0; i < 5_000; i++) edge.send({ t: "resize", size: { cols: 20 + (i % 300), rows: 10 + (i % 200) } });
    edge.send({ t: "resize", size: { cols: 91, rows: 33 } });
    await edge.until(() => edge.of("size").at(-1)?.size.cols === 91, "the last size");
    expect(edge.of("size").at(-1)!.size).toEqual({ cols: 91, rows: 33 });
    // Each applied resize is one SIZE frame; the flood took far less than 5,000 of them.
    expect(edge.of("size").length).toBeLessThan(100);
    edge.send({ t: "input", data: new TextEncoder().encode("stty size\r") });
    await edge.until(() => edge.output.includes("33 91"), "stty's answer");
    expect(s.live(undefined)).toMatchObject({ cols: 91, rows: 33 });
  });

  it("sends SIZE after the output read before the resize, and the screen model takes that output at the old size", async () => {
    // The resize lands while the chunk holding MARK is read but not yet sealed into a frame (the
    // output hook runs right there): that chunk was written at the old size.
    let resized = false;
    const started = session({
      onOutput: (chunk) => {
        if (resized || !chunk.includes("MARK")) return;
        resized = true;
        started.s.resize({ cols: 40, rows: 24 });
      },
    });
    await resume();
    await started.s.ready();
    // \115 is M: the command's echo does not contain MARK, its output does.
    edge.send({ t: "input", data: new TextEncoder().encode("printf '\\033[2J\\033[1;80HX\\033[3;1H\\115ARK'\r") });
    await edge.until(() => edge.of("size").length === 1, "the SIZE frame");
    const at = edge.frames.findIndex((f) => f.t === "size");
    expect(outputOf(edge.frames.slice(0, at))).toContain("MARK");
    await expectRepaintOfLinkOrder({ cols: 80, rows: 24 });
  });

  it("sends SIZE for a resize made while output is held for a repaint after that repaint", async () => {
    const { s } = await streamingSession();
    edge.send({ t: "input", data: new TextEncoder().encode("printf '\\033[2J\\033[1;80HX\\033[3;1H\\110ELD'\r") });
    await edge.until(() => edge.output.includes("HELD"), "the output");
    // Resize right as the repaint's serialization is asked for, with output held until it is sent.
    const screen = (s as unknown as { screen: { snapshot(): Promise<unknown> } }).screen;
    const snapshot = screen.snapshot.bind(screen);
    screen.snapshot = () => {
      const made = snapshot();
      s.resize({ cols: 40, rows: 24 });
      return made;
    };
    edge.send({ t: "snapshot-request", id: 1 });
    await edge.until(() => edge.of("size").length === 1 && edge.of("snapshot").length === 1, "the repaint and the SIZE");
    expect(edge.frames.findIndex((f) => f.t === "snapshot")).toBeLessThan(edge.frames.findIndex((f) => f.t === "size"));
    screen.snapshot = snapshot;
    await expectRepaintOfLinkOrder({ cols: 80, rows: 24 });
  });

  it("after the link drops, resends a resize it missed at its place in the output it resends", async () => {
    const { s } = await streamingSession();
    edge.send({ t: "input", data: new TextEncoder().encode("printf '\\102EFORE\\n'\r") });
    await edge.until(() => edge.output.includes("BEFORE\r\n"), "the output");
    s.dropLink();
    s.resize({ cols: 40, rows: 24 });
    await edge.until(() => edge.of("hello").length === 2, "the second HELLO");
    expect(edge.of("hello")[1]!.hello.size).toEqual({ cols: 40, rows: 24 });
    const from = edge.frames.length;
    edge.output = "";
    edge.outputEnd = 0;
    edge.send({ t: "resume", offset: 0 });
    await edge.until(() => edge.of("size").length === 2, "both SIZE frames");
    const after = edge.frames.slice(from);
    // The resent output was written at 80 columns until the resize, at 40 after: the edge hears
    // of the old size first (HELLO said the new one), then of the resize where it happened.
    expect(after[0]).toEqual({ t: "size", size: { cols: 80, rows: 24 } });
    const second = after.findIndex((f, i) => i > 0 && f.t === "size");
    expect(after[second]).toEqual({ t: "size", size: { cols: 40, rows: 24 } });
    expect(outputOf(after.slice(0, second))).toContain("BEFORE\r\n");
    // After the resize only what the shell printed since (its prompt may come late, or be redrawn).
    expect(outputOf(after.slice(second))).not.toContain("BEFORE");
  });

  it("answers a snapshot request with the screen as of the output sent before it", async () => {
    const { s } = await streamingSession();
    edge.send({ t: "input", data: new TextEncoder().encode("echo snap-$((2*3))\r") });
    await edge.until(() => edge.output.includes("snap-6"), "the output");
    edge.send({ t: "snapshot-request", id: 5 });
    await edge.until(() => edge.of("snapshot").length === 1, "the snapshot");
    const snap = edge.of("snapshot")[0]!;
    expect(snap.id).toBe(5);
    expect(snap.offset).toBeLessThanOrEqual(edge.outputEnd);
    const repaint = decodeServerFrame(snap.frame);
    expect(repaint.t).toBe("output");
    const term = new xterm.Terminal({ cols: 80, rows: 24, allowProposedApi: true });
    await new Promise<void>((r) => term.write((repaint as { data: Uint8Array }).data, r));
    const screen = Array.from({ length: 24 }, (_, y) => term.buffer.active.getLine(y)?.translateToString(true) ?? "").join("\n");
    expect(screen).toMatch(/^snap-6$/m);
    term.dispose();
  });

  it("during a flood, repaints exactly the output sent before the snapshot, so nothing is left to replay", async () => {
    const { s } = session();
    await resume();
    await s.ready();
    // 1 MB stays under the unacknowledged window: this edge never acknowledges.
    edge.send({ t: "input", data: new TextEncoder().encode("yes 'flood line' | head -c 1000000; echo fl''ood-done\r") });
    await edge.until(() => edge.outputEnd > 100_000, "the flood to start");
    edge.send({ t: "snapshot-request", id: 9 });
    await edge.until(() => edge.output.includes("flood-done"), "the end of the flood");
    const at = edge.frames.findIndex((f) => f.t === "snapshot");
    expect(at).toBeGreaterThan(0);
    const before = edge.frames.slice(0, at).filter((f) => f.t === "output");
    const sentBefore = before.reduce((end, f) => Math.max(end, f.offset + f.frame.byteLength - 1), 0);
    const snap = edge.frames[at] as Extract<AgentDataFrame, { t: "snapshot" }>;
    expect(snap.offset).toBe(sentBefore);
    expect(sentBefore).toBeLessThan(edge.outputEnd);
  });

  it("resends unacknowledged output from the edge's offset after the link drops", async () => {
    const { s } = await streamingSession();
    edge.send({ t: "input", data: new TextEncoder().encode("echo before-drop\r") });
    await edge.until(() => edge.output.includes("before-drop\r\n"), "the output");
    const have = edge.outputEnd;
    // The edge lost the last 5 bytes it had: it resumes from there and gets them again.
    const keep = edge.output.slice(0, -5);
    s.dropLink();
    await edge.until(() => edge.of("hello").length === 2, "the second HELLO");
    edge.output = keep;
    edge.outputEnd = have - 5;
    edge.send({ t: "resume", offset: have - 5 });
    edge.send({ t: "input", data: new TextEncoder().encode("echo after-drop\r") });
    await edge.until(() => edge.output.includes("after-drop\r\n"), "output after the drop");
    expect(edge.output).toContain("before-drop\r\n");
  });

  it("pauses the PTY while too much output is unacknowledged, and resumes it once the edge acknowledges", async () => {
    const { s } = await streamingSession();
    const state = s as unknown as { paused: boolean; output: { end: number } };
    edge.send({ t: "input", data: new TextEncoder().encode("yes flood\r") });
    await until("the PTY to pause", () => state.paused, { timeoutMs: 60_000, describe: () => `; ${state.output.end} bytes read` });
    // Paused on the chunk that crossed the limit: what it holds is bounded by the limit plus one read.
    expect(state.output.end).toBeLessThan(UNACKED_MAX_BYTES + (1 << 20));
    const pausedAt = state.output.end;
    await until("the PTY to resume once everything received is acknowledged", () => {
      edge.send({ t: "ack", offset: edge.outputEnd });
      return !state.paused;
    }, { timeoutMs: 60_000 });
    await edge.until(() => edge.outputEnd > pausedAt + (1 << 20), "output flowing again");
  }, 120_000);

  it("reports the exit to its owner and over the link", async () => {
    const { s, exits } = session();
    await resume();
    await s.ready();
    edge.send({ t: "input", data: new TextEncoder().encode("exit 3\r") });
    await edge.until(() => exits.length === 1, "the exit (owner)");
    await edge.until(() => edge.of("exit").length === 1, "the exit (link)");
    expect(edge.of("exit")[0]!.exit).toEqual({ exit_code: 3, signal: 0 });
    expect(exits).toEqual([{ exit_code: 3, signal: 0 }]);
  });

  it("ignores a malformed frame from the edge and keeps working", async () => {
    const { s } = await streamingSession();
    edge.socket!.send(Buffer.from([0xff, 1, 2]));
    edge.send({ t: "input", data: new TextEncoder().encode("echo still-$((3*3))\r") });
    await edge.until(() => edge.output.includes("still-9"), "output after the bad frame");
  });
});
