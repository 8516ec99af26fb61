/**
 * The terminal fan-out core, driven directly through its Sink interface (no transport): joins,
 * repaints, resends, pauses, read-only clients and exits.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { decodeEdgeFrame, encodeAgentFrame, encodeOutput, encodeSnapshot } from "../../shared/links/data.ts";
import { decodeServerFrame, encodeClientFrame, encodeServerFrame, type ServerFrame } from "../../shared/links/client.ts";
import { REPAINT_REUSE_MAX_BYTES, REPAINT_REUSE_REPLAY_MAX_BYTES } from "../../edge/repaint-reuse.ts";
import {
  ACK_AT_ONCE_BELOW_BYTES,
  ACK_EVERY_BYTES,
  CLIENT_FRAME_MAX_BYTES,
  RESIZE_FORWARD_INTERVAL_MS,
  TerminalHub,
  type ClientState,
  type Sink,
} from "../../edge/terminal-hub.ts";
import {
  CLIENT_READ_FLOOR_BYTES_PER_SEC,
  CLIENT_TOO_SLOW_CLOSE,
  CLIENT_UNPROVEN_MAX_BYTES,
  CLIENT_UNPROVEN_RESUME_BYTES,
  CLIENT_UNREAD_CLOSE_BYTES,
  CLIENT_UNREAD_MAX_BYTES,
  CLIENT_UNREAD_RESUME_BYTES,
  savedReading,
  TERMINAL_UNREAD_MAX_BYTES,
} from "../../edge/client-reading.ts";

/** A Sink that keeps what it was sent. */
class RecordingSink implements Sink {
  sent: Uint8Array[] = [];
  closed: { code: number; reason: string } | null = null;
  send(bytes: Uint8Array) {
    this.sent.push(bytes.slice());
  }
  close(code: number, reason: string) {
    this.closed = { code, reason };
  }
  frames(): ServerFrame[] {
    return this.sent.map((b) => decodeServerFrame(b));
  }
  /** All OUTPUT payloads as text. */
  output(): string {
    return this.frames()
      .filter((f): f is Extract<ServerFrame, { t: "output" }> => f.t === "output")
      .map((f) => new TextDecoder().decode(f.data))
      .join("");
  }
  take() {
    const sent = this.sent;
    this.sent = [];
    return sent;
  }
}

const enc = (s: string) => new TextEncoder().encode(s);
const buf = (u: Uint8Array) => u.buffer.slice(u.byteOffset, u.byteOffset + u.byteLength) as ArrayBuffer;
const client = (over: Partial<ClientState> = {}): ClientState => ({ id: "c", readonly: false, paused: false, offset: null, trustNext: false, ...over });
const hello = (end: number, oldest = end) => buf(encodeAgentFrame({ t: "hello", hello: { end, oldest, size: { cols: 80, rows: 24 }, meta: { terminal_id: 1, shell: "sh", cwd: "/", started_at: "2026-01-01T00:00:00.000Z", ephemeral: false } } }));

let hub: TerminalHub;
let agent: RecordingSink;
let exits: number;
let refusals: string[];

function output(offset: number, text: string) {
  hub.onAgentMessage(agent, buf(encodeOutput(offset, [enc(text)], enc(text).byteLength)));
}

function agentFrames() {
  return agent.take().map((b) => decodeEdgeFrame(b));
}

/** Answers the hub's pending snapshot request with `screen` at `offset`. */
function answerSnapshot(offset: number, screen: string) {
  const req = agentFrames().find((f) => f.t === "snapshot-request");
  if (!req || req.t !== "snapshot-request") throw new Error("no snapshot request");
  hub.onAgentMessage(agent, buf(encodeSnapshot(req.id, offset, enc(screen))));
}

/** The PTY's size as the hub's host knows it (the agent's SIZE frames update it). */
let size: { cols: number; rows: number };
/** The window title as the hub's host knows it (the agent's TITLE frames update it). */
let title: string | undefined;

beforeEach(() => {
  exits = 0;
  refusals = [];
  size = { cols: 80, rows: 24 };
  title = undefined;
  hub = new TerminalHub({
    info: (c) => ({ t: "info", info: { server_id: "s", terminal_id: 1, shell: "sh", cwd: "/", ...size, ...(title !== undefined ? { title } : {}), readonly: c.readonly, clients: 1, started_at: "t", ephemeral: false, agent_online: true } }),
    onHello: () => true,
    refused: (reason) => refusals.push(reason),
    onTitle: (t) => (title = t),
    onSize: (s) => (size = s),
    onExit: () => exits++,
    onClientChanged: () => {},
  });
  agent = new RecordingSink();
  hub.attachAgent(agent, false);
  hub.onAgentMessage(agent, hello(0));
  expect(agentFrames()).toEqual([{ t: "resume", offset: 0 }]);
});

describe("TerminalHub", () => {
  it("sends a joiner INFO, then the repaint, then the output that followed it", () => {
    output(0, "old ");
    const c = new RecordingSink();
    hub.addClient(c, client());
    expect(c.frames()[0]!.t).toBe("info");
    output(4, "during ");
    answerSnapshot(4, "SCREEN|");
    output(11, "after");
    expect(c.output()).toBe("SCREEN|during after");
  });

  it("repaints a client that joins during a flood larger than the ring", () => {
    output(0, "start ");
    const c = new RecordingSink();
    hub.addClient(c, client());
    const big = "z".repeat(512 << 10);
    let at = 6;
    for (let i = 0; i < 8; i++, at += big.length) output(at, big); // 4 MiB while the snapshot is away
    answerSnapshot(6 + 2 * big.length, "SCREEN|");
    output(at, "tail");
    const text = c.output();
    expect(text.startsWith("SCREEN|")).toBe(true);
    expect(text.length).toBe("SCREEN|".length + 6 * big.length + "tail".length);
    expect(text.endsWith("tail")).toBe(true);
  });

  it("repaints a joiner from the last snapshot while little output followed it, without asking the agent", () => {
    output(0, "old ");
    const first = new RecordingSink();
    hub.addClient(first, client());
    answerSnapshot(4, "SCREEN|");
    output(4, "more");
    agentFrames();
    const second = new RecordingSink();
    hub.addClient(second, client());
    expect(agentFrames()).toEqual([]);
    expect(second.output()).toBe("SCREEN|more");
    output(8, "!");
    expect(second.output()).toBe(first.output());
  });

  it("asks the agent again once too much output followed the last snapshot", () => {
    const first = new RecordingSink();
    hub.addClient(first, client());
    answerSnapshot(0, "SCREEN|");
    const big = "q".repeat(REPAINT_REUSE_REPLAY_MAX_BYTES + 1);
    output(0, big);
    agentFrames();
    const second = new RecordingSink();
    hub.addClient(second, client());
    expect(second.output()).toBe("");
    answerSnapshot(big.length, "FRESH|");
    expect(second.output()).toBe("FRESH|");
  });

  it("does not reuse a snapshot across a resize, nor one asked for before it", () => {
    const writer = new RecordingSink();
    hub.addClient(writer, client());
    answerSnapshot(0, "SMALL|");
    hub.onClientMessage(writer, buf(encodeClientFrame({ t: "resize", size: { cols: 100, rows: 30 } })));
    agentFrames();
    const a = new RecordingSink();
    hub.addClient(a, client());
    expect(a.output()).toBe("");
    // The agent's SIZE comes after a snapshot asked for before it: that one is sent, not kept.
    hub.onAgentMessage(agent, buf(encodeAgentFrame({ t: "size", size: { cols: 100, rows: 30 } })));
    answerSnapshot(0, "OLD|");
    expect(a.output()).toBe("OLD|");
    const b = new RecordingSink();
    hub.addClient(b, client());
    expect(b.output()).toBe("");
    answerSnapshot(0, "BIG|");
    expect(b.output()).toBe("BIG|");
    const c = new RecordingSink();
    hub.addClient(c, client());
    expect(agentFrames()).toEqual([]);
    expect(c.output()).toBe("BIG|");
  });

  it("keeps no snapshot over REPAINT_REUSE_MAX_BYTES, and none across an agent reconnect", () => {
    const a = new RecordingSink();
    hub.addClient(a, client());
    answerSnapshot(0, "h".repeat(REPAINT_REUSE_MAX_BYTES + 1));
    const b = new RecordingSink();
    hub.addClient(b, client());
    answerSnapshot(0, "KEPT|");
    const again = new RecordingSink();
    hub.attachAgent(again, false);
    hub.onAgentMessage(again, hello(0));
    agent = again;
    agentFrames();
    const c = new RecordingSink();
    hub.addClient(c, client());
    expect(c.output()).toBe("");
    answerSnapshot(0, "NEW|");
    expect(c.output()).toBe("NEW|");
  });

  it("acknowledges output and drops resends it already holds", () => {
    output(0, "abc");
    expect(agentFrames()).toEqual([{ t: "ack", offset: 3 }]);
    const c = new RecordingSink();
    hub.addClient(c, client());
    answerSnapshot(3, "");
    output(0, "abc"); // resent after a reconnect
    output(1, "bcdef"); // overlaps what we hold
    expect(c.output()).toBe("def");
    expect(agentFrames().filter((f) => f.t === "ack").pop()).toEqual({ t: "ack", offset: 6 });
  });

  it("acknowledges a flood once per ACK_EVERY_BYTES, and small frames at once", () => {
    const big = "b".repeat(ACK_AT_ONCE_BELOW_BYTES);
    const perAck = Math.ceil(ACK_EVERY_BYTES / big.length);
    let at = 0;
    output(at, big); // the first frame on a link is acknowledged at once
    at += big.length;
    expect(agentFrames()).toEqual([{ t: "ack", offset: at }]);
    for (let i = 0; i < perAck * 3; i++, at += big.length) output(at, big);
    const acks = agentFrames();
    expect(acks).toHaveLength(3);
    expect(acks.at(-1)).toEqual({ t: "ack", offset: at });
    output(at, "$ "); // the tail of the burst: acknowledged at once, up to the end
    expect(agentFrames()).toEqual([{ t: "ack", offset: at + 2 }]);
  });

  it("resumes an agent that reconnects from exactly what it holds", () => {
    output(0, "12345");
    agentFrames();
    const again = new RecordingSink();
    hub.onAgentMessage(again, hello(9, 2));
    expect(again.take().map((b) => decodeEdgeFrame(b))).toEqual([{ t: "resume", offset: 5 }]);
  });

  /** A client's frames as `output:<text>` and `info:<cols>x<rows>`, in order. */
  const sizeStory = (sink: RecordingSink) =>
    sink.frames().map((f) => (f.t === "output" ? `output:${new TextDecoder().decode(f.data)}` : f.t === "info" ? `info:${f.info.cols}x${f.info.rows}` : f.t));
  /** The agent reports the PTY resized to cols × rows, at this point of the stream. */
  const resized = (cols: number, rows: number) => hub.onAgentMessage(agent, buf(encodeAgentFrame({ t: "size", size: { cols, rows } })));

  it("tells read-only clients the PTY's new size where the stream resized it, and writers nothing", () => {
    const writer = new RecordingSink();
    const viewer = new RecordingSink();
    const paused = new RecordingSink();
    hub.addClient(writer, client());
    hub.addClient(viewer, client({ readonly: true }));
    hub.addClient(paused, client({ readonly: true }));
    answerSnapshot(0, "S|");
    hub.onClientMessage(paused, buf(encodeClientFrame({ t: "pause" })));
    output(0, "before ");
    resized(100, 30);
    output(7, "after ");
    resized(100, 30); // the same size again: nothing to tell
    const late = new RecordingSink();
    hub.addClient(late, client({ readonly: true })); // told 100x30 at join: no second INFO with its repaint
    answerSnapshot(13, "L|");
    expect(sizeStory(writer)).toEqual(["info:80x24", "output:S|", "output:before ", "output:after "]);
    expect(sizeStory(viewer)).toEqual(["info:80x24", "output:S|", "output:before ", "info:100x30", "output:after "]);
    expect(sizeStory(late)).toEqual(["info:100x30", "output:L|"]);
    // The paused viewer missed output on both sides of the resize: on RESUME it is repainted, told the size first.
    expect(sizeStory(paused)).toEqual(["info:80x24", "output:S|"]);
    hub.onClientMessage(paused, buf(encodeClientFrame({ t: "resume" }))); // the late joiner's repaint is current: reused
    expect(sizeStory(paused)).toEqual(["info:80x24", "output:S|", "info:100x30", "output:L|"]);
  });

  it("tells a writer that asked for size updates the PTY's new size as it tells viewers", () => {
    const follower = new RecordingSink();
    const plain = new RecordingSink();
    hub.addClient(follower, client({ sizeUpdates: true }));
    hub.addClient(plain, client());
    answerSnapshot(0, "S|");
    output(0, "before ");
    resized(68, 17);
    output(7, "after ");
    expect(sizeStory(follower)).toEqual(["info:80x24", "output:S|", "output:before ", "info:68x17", "output:after "]);
    expect(sizeStory(plain)).toEqual(["info:80x24", "output:S|", "output:before ", "output:after "]);
  });

  it("tells a client the title that changed while it waited for its repaint, once, after the repaint", () => {
    /** A client's frames as `output:<text>`, `info:<title>` and `title:<title>`, in order. */
    const story = (sink: RecordingSink) =>
      sink.frames().map((f) => (f.t === "output" ? `output:${new TextDecoder().decode(f.data)}` : f.t === "info" ? `info:${f.info.title ?? ""}` : f.t === "title" ? `title:${f.title}` : f.t));
    const titled = (t: string) => hub.onAgentMessage(agent, buf(encodeAgentFrame({ t: "title", frame: encodeServerFrame({ t: "title", title: t }) })));
    output(0, "prompt ");
    titled("first");
    const joiner = new RecordingSink();
    hub.addClient(joiner, client()); // told "first" in its INFO
    titled("second"); // passes the joiner by: it waits for its repaint
    output(7, "more ");
    answerSnapshot(12, "J|");
    const late = new RecordingSink();
    hub.addClient(late, client()); // told "second" in its INFO: the reused repaint adds no TITLE
    titled("third"); // both live now
    expect(story(joiner)).toEqual(["info:first", "output:J|", "title:second", "title:third"]);
    expect(story(late)).toEqual(["info:second", "output:J|", "title:third"]);
  });

  it("catches a paused client up from the ring when it resumes", () => {
    const c = new RecordingSink();
    hub.addClient(c, client());
    answerSnapshot(0, "");
    hub.onClientMessage(c, buf(encodeClientFrame({ t: "pause" })));
    output(0, "while ");
    output(6, "paused");
    expect(c.output()).toBe("");
    hub.onClientMessage(c, buf(encodeClientFrame({ t: "resume" })));
    expect(c.output()).toBe("while paused");
  });

  it("skips a client forward with a fresh repaint when it fell out of the ring", () => {
    const c = new RecordingSink();
    hub.addClient(c, client());
    answerSnapshot(0, "");
    hub.onClientMessage(c, buf(encodeClientFrame({ t: "pause" })));
    const big = "x".repeat(1 << 20);
    for (let i = 0; i < 6; i++) output(i * big.length, big); // 6 MiB > the 4 MiB ring
    agentFrames();
    hub.onClientMessage(c, buf(encodeClientFrame({ t: "resume" })));
    answerSnapshot(6 * big.length, "FRESH");
    expect(c.output()).toBe("FRESH");
  });

  it("repaints a resumed client that missed more than it is worth replaying", () => {
    const c = new RecordingSink();
    hub.addClient(c, client());
    answerSnapshot(0, "");
    hub.onClientMessage(c, buf(encodeClientFrame({ t: "pause" })));
    const chunk = "y\n".repeat(100_000); // 200 KB, twice: past the catch-up limit, inside the ring
    output(0, chunk);
    output(chunk.length, chunk);
    agentFrames();
    hub.onClientMessage(c, buf(encodeClientFrame({ t: "resume" })));
    answerSnapshot(2 * chunk.length, "NOW");
    expect(c.output()).toBe("NOW");
  });

  it("refuses a read-only client's input and resize, and forwards a writer's verbatim", () => {
    const viewer = new RecordingSink();
    const writer = new RecordingSink();
    hub.addClient(viewer, client({ readonly: true }));
    hub.addClient(writer, client());
    agentFrames();
    hub.onClientMessage(viewer, buf(encodeClientFrame({ t: "input", data: enc("rm") })));
    hub.onClientMessage(viewer, buf(encodeClientFrame({ t: "resize", size: { cols: 10, rows: 10 } })));
    expect(viewer.frames().filter((f) => f.t === "error").map((f) => f.t === "error" && f.error.code)).toEqual(["READ_ONLY", "READ_ONLY"]);
    hub.onClientMessage(writer, "ls\r");
    hub.onClientMessage(writer, buf(encodeClientFrame({ t: "resize", size: { cols: 100, rows: 30 } })));
    expect(agentFrames()).toEqual([
      { t: "input", data: enc("ls\r") },
      { t: "resize", size: { cols: 100, rows: 30 } },
    ]);
  });

  it("refuses a frame over CLIENT_FRAME_MAX_BYTES, counting a text frame's UTF-8 bytes, not its characters", () => {
    const writer = new RecordingSink();
    hub.addClient(writer, client());
    agentFrames();
    const errors = () => writer.frames().filter((f) => f.t === "error").map((f) => f.t === "error" && f.error.code);
    // 500 000 characters, 1.5 MB of UTF-8: under the limit in UTF-16 units, over it in bytes.
    hub.onClientMessage(writer, "€".repeat(500_000));
    hub.onClientMessage(writer, buf(new Uint8Array(CLIENT_FRAME_MAX_BYTES + 1)));
    expect(errors()).toEqual(["FRAME_TOO_LARGE", "FRAME_TOO_LARGE"]);
    hub.onClientMessage(writer, "€".repeat(300_000)); // 900 000 bytes: under it
    const forwarded = agentFrames();
    expect(forwarded.map((f) => f.t)).toEqual(["input"]);
    const data = (forwarded[0] as { data: Uint8Array }).data;
    const want = enc("€".repeat(300_000));
    expect(data.byteLength === want.byteLength && data.every((b, i) => b === want[i])).toBe(true);
  });

  it("merges a writer's flood of resizes: the first goes at once, then the newest once per interval", () => {
    vi.useFakeTimers();
    try {
      const writer = new RecordingSink();
      hub.addClient(writer, client());
      agentFrames();
      const resize = (cols: number) => hub.onClientMessage(writer, buf(encodeClientFrame({ t: "resize", size: { cols, rows: 30 } })));
      for (let cols = 20; cols < 2_020; cols++) resize(cols % 1000 || 1);
      expect(agentFrames()).toEqual([{ t: "resize", size: { cols: 20, rows: 30 } }]);
      resize(91);
      vi.advanceTimersByTime(RESIZE_FORWARD_INTERVAL_MS);
      expect(agentFrames()).toEqual([{ t: "resize", size: { cols: 91, rows: 30 } }]);
      // Nothing more waits: the interval ends quietly, and the next resize goes at once.
      vi.advanceTimersByTime(RESIZE_FORWARD_INTERVAL_MS);
      expect(agentFrames()).toEqual([]);
      resize(92);
      expect(agentFrames()).toEqual([{ t: "resize", size: { cols: 92, rows: 30 } }]);
    } finally {
      vi.useRealTimers();
    }
  });

  it("answers PING with PONG and malformed frames with ERROR, and keeps going", () => {
    const c = new RecordingSink();
    hub.addClient(c, client());
    hub.onClientMessage(c, buf(encodeClientFrame({ t: "ping", data: enc("p1") })));
    hub.onClientMessage(c, buf(new Uint8Array([0x42])));
    hub.onClientMessage(c, buf(new Uint8Array([0x01, 0x7b])));
    const frames = c.frames().slice(1);
    expect(frames[0]).toEqual({ t: "pong", data: enc("p1") });
    expect(frames.slice(1).map((f) => f.t === "error" && f.error.code)).toEqual(["INVALID_FRAME", "INVALID_FRAME"]);
  });

  it("tells clients when the agent goes away and refuses their input meanwhile", () => {
    const c = new RecordingSink();
    hub.addClient(c, client());
    hub.detachAgent(agent);
    hub.onClientMessage(c, "x");
    expect(c.frames().filter((f) => f.t === "error").map((f) => f.t === "error" && f.error.code)).toEqual(["AGENT_OFFLINE", "AGENT_OFFLINE"]);
    expect(hub.agentOnline).toBe(false);
  });

  it("sends EXIT to every client and closes them and the agent link", () => {
    const a = new RecordingSink();
    const b = new RecordingSink();
    hub.addClient(a, client());
    hub.addClient(b, client());
    hub.onAgentMessage(agent, buf(encodeAgentFrame({ t: "exit", exit: { exit_code: 3, signal: 0 } })));
    for (const c of [a, b]) {
      expect(c.frames().pop()).toEqual({ t: "exit", exit: { exit_code: 3, signal: 0 } });
      expect(c.closed?.code).toBe(1000);
    }
    expect(agent.closed?.code).toBe(1000);
    expect(exits).toBe(1);
  });

  it("stamps the edge's reason on the agent's EXIT for its kill, and forgets a reason taken back", () => {
    const a = new RecordingSink();
    hub.addClient(a, client());
    hub.endingBecause("deleted");
    hub.endingBecause(null); // the DELETE failed: the shell lives on
    hub.endingBecause("idle");
    hub.onAgentMessage(agent, buf(encodeAgentFrame({ t: "exit", exit: { exit_code: -1, signal: 9 } })));
    expect(a.frames().pop()).toEqual({ t: "exit", exit: { exit_code: -1, signal: 9, reason: "idle" } });
  });

  it("sends no reason when the edge did not end the session", () => {
    const a = new RecordingSink();
    hub.addClient(a, client());
    hub.endingBecause("deleted");
    hub.endingBecause(null);
    hub.onAgentMessage(agent, buf(encodeAgentFrame({ t: "exit", exit: { exit_code: 0, signal: 0 } })));
    expect(a.frames().pop()).toEqual({ t: "exit", exit: { exit_code: 0, signal: 0 } });
  });

  it("says why a session failed with an ERROR before its EXIT", () => {
    const a = new RecordingSink();
    hub.addClient(a, client());
    const error = { code: "SSH_CONNECTION_LOST", message: "SSH to u@h:22 lost: Connection reset" };
    hub.onAgentMessage(agent, buf(encodeAgentFrame({ t: "exit", exit: { exit_code: 255, signal: 0, error } })));
    expect(a.frames().slice(-2)).toEqual([
      { t: "error", error },
      { t: "exit", exit: { exit_code: 255, signal: 0, error } },
    ]);
    expect(a.closed?.code).toBe(1000);
  });

  // Some of these move TERMINAL_UNREAD_MAX_BYTES (256 MiB) through the hub: 1–3 s alone, past
  // the default 5 s on a loaded two-core machine.
  describe("a client that does not read", { timeout: 30_000 }, () => {
    /** Says for `sink` that it answers MARKs (an empty ACK), as the web app does at open. */
    function optIn(sink: RecordingSink) {
      hub.onClientMessage(sink, buf(encodeClientFrame({ t: "ack", mark: new Uint8Array(0) })));
    }

    /** A new client of the hub with `state`; with `answersMarks`, it says so at once. */
    function joined(state: Partial<ClientState>, answersMarks = false): RecordingSink {
      const sink = new RecordingSink();
      hub.addClient(sink, client(state));
      if (answersMarks) optIn(sink);
      return sink;
    }

    afterEach(() => {
      vi.useRealTimers();
    });

    /** Output of `mib` MiB in 256 KiB frames from `at`; answers the edge's MARKs to `readers` after each frame. Returns the end. */
    function flood(at: number, mib: number, readers: RecordingSink[] = []): number {
      const chunk = "f".repeat(256 << 10);
      for (let i = 0; i < mib * 4; i++, at += chunk.length) {
        output(at, chunk);
        for (const r of readers) answerMarks(r);
      }
      return at;
    }

    const answered = new WeakMap<RecordingSink, number>();
    /** Answers the MARKs `sink` received since the last call, as a reading client does. */
    function answerMarks(sink: RecordingSink) {
      const from = answered.get(sink) ?? 0;
      answered.set(sink, sink.sent.length);
      for (const bytes of sink.sent.slice(from)) {
        const f = decodeServerFrame(bytes);
        if (f.t === "mark") hub.onClientMessage(sink, buf(encodeClientFrame({ t: "ack", mark: f.mark })));
      }
    }

    const bytesSent = (sink: RecordingSink) => sink.sent.reduce((n, b) => n + b.byteLength, 0);

    it("holds a client that proves nothing at CLIENT_UNPROVEN_MAX_BYTES, and repaints it once the assumed reading rate has drained it", () => {
      vi.useFakeTimers();
      const stalled = new RecordingSink();
      hub.addClient(stalled, client({ id: "stalled", readonly: true }));
      answerSnapshot(0, "");
      const end = flood(0, 12);
      // Held: never more than the limit went out, whatever the PTY printed.
      expect(bytesSent(stalled)).toBeLessThanOrEqual(CLIENT_UNPROVEN_MAX_BYTES + 4096);
      expect(stalled.output().length).toBeGreaterThan(CLIENT_UNPROVEN_MAX_BYTES - (512 << 10));
      // Once the estimate is under CLIENT_UNPROVEN_RESUME_BYTES (at CLIENT_READ_FLOOR_BYTES_PER_SEC: at most about a second), a repaint.
      const drainMs = Math.ceil(((bytesSent(stalled) - CLIENT_UNPROVEN_RESUME_BYTES) / CLIENT_READ_FLOOR_BYTES_PER_SEC) * 1000);
      expect(drainMs).toBeLessThanOrEqual(1000);
      stalled.take();
      agentFrames();
      vi.advanceTimersByTime(drainMs - 100);
      expect(agentFrames()).toEqual([]); // still held: no repaint asked for yet
      vi.advanceTimersByTime(200);
      answerSnapshot(end, "FRESH");
      output(end, "live");
      expect(stalled.output()).toBe("FRESHlive");
      expect(stalled.closed).toBeNull();
    });

    it("holds a client that answers MARKs until it acknowledges what it read, while a reader gets every byte", () => {
      const reader = joined({ id: "reader" }, true);
      const stalled = joined({ id: "stalled", readonly: true }, true);
      answerSnapshot(0, "");
      const end = flood(0, 24, [reader]);
      expect(reader.output().length).toBe(24 << 20);
      expect(bytesSent(stalled)).toBeLessThanOrEqual(CLIENT_UNREAD_MAX_BYTES + 64 * 1024);
      expect(bytesSent(stalled)).toBeGreaterThan(CLIENT_UNREAD_MAX_BYTES - (512 << 10));
      // A MARK covers everything it was sent: no time passes, yet acknowledging it releases the client.
      const marks = stalled.frames().filter((f) => f.t === "mark");
      expect(marks.length).toBeGreaterThan(1);
      stalled.take();
      hub.onClientMessage(stalled, buf(encodeClientFrame({ t: "ack", mark: new Uint8Array(8) }))); // an id never sent proves nothing
      expect(stalled.sent).toEqual([]);
      hub.onClientMessage(stalled, buf(encodeClientFrame({ t: "ack", mark: (marks.at(-1) as Extract<ServerFrame, { t: "mark" }>).mark })));
      answerSnapshot(end, "FRESH");
      expect(stalled.output()).toBe("FRESH");
      expect(stalled.closed).toBeNull();
    });

    it("closes a client that keeps provoking frames it does not read (4008), and no one else", () => {
      const reader = joined({ id: "reader" }, true);
      const stalled = joined({ id: "stalled" });
      answerSnapshot(0, "");
      flood(0, 5, [reader]);
      const ping = buf(encodeClientFrame({ t: "ping", data: new Uint8Array((1 << 20) - 1) }));
      for (let i = 0; i <= CLIENT_UNREAD_CLOSE_BYTES >> 20 && !stalled.closed; i++) hub.onClientMessage(stalled, ping);
      expect(stalled.closed).toEqual(CLIENT_TOO_SLOW_CLOSE);
      expect(hub.clients.has(stalled)).toBe(false);
      expect(reader.closed).toBeNull();
      output(5 << 20, "after");
      expect(reader.output().endsWith("after")).toBe(true);
    });

    it("holds the client with the most unread once the clients together pass TERMINAL_UNREAD_MAX_BYTES, never a reader", () => {
      const reader = new RecordingSink();
      hub.addClient(reader, client({ id: "reader" }));
      const stalled = Array.from({ length: Math.ceil(TERMINAL_UNREAD_MAX_BYTES / CLIENT_UNREAD_MAX_BYTES) + 2 }, (_, i) => {
        const sink = new RecordingSink();
        hub.addClient(sink, client({ id: `stalled-${i}`, readonly: true }));
        return sink;
      });
      for (const c of [reader, ...stalled]) optIn(c);
      answerSnapshot(0, "");
      flood(0, 96, [reader]);
      expect(reader.output().length).toBe(96 << 20);
      expect(reader.closed).toBeNull();
      // Each stalled client alone stays under its own limit; together they are held at the terminal's.
      const sent = stalled.map(bytesSent);
      expect(Math.max(...sent)).toBeLessThanOrEqual(CLIENT_UNREAD_MAX_BYTES + 64 * 1024);
      expect(sent.reduce((a, b) => a + b, 0)).toBeLessThanOrEqual(TERMINAL_UNREAD_MAX_BYTES + stalled.length * (256 << 10));
      for (const c of stalled) expect(c.closed).toBeNull();
    });

    /**
     * Says `sink` answers MARKs and stalls it through output until it is held with under
     * CATCH_UP_MAX_BYTES missed (so its release catches it up from the ring); returns the end of
     * the output and the last MARK it was sent.
     */
    function heldReader(sink: RecordingSink, state: Partial<ClientState> = {}) {
      hub.addClient(sink, client({ id: "held", ...state }));
      optIn(sink);
      answerSnapshot(0, "");
      let end = flood(0, (CLIENT_UNREAD_MAX_BYTES >> 20) - 0.25);
      for (const bytes of [200 << 10, 100 << 10]) {
        output(end, "h".repeat(bytes));
        end += bytes;
      }
      const marks = sink.frames().filter((f): f is Extract<ServerFrame, { t: "mark" }> => f.t === "mark");
      expect(sink.output().length).toBe(end - (100 << 10));
      return { end, last: marks.at(-1)!.mark };
    }
    const ack = (sink: RecordingSink, mark: Uint8Array) => hub.onClientMessage(sink, buf(encodeClientFrame({ t: "ack", mark })));

    it("tells a held client the title that changed while it was held when it is caught up", () => {
      const c = new RecordingSink();
      const { end, last } = heldReader(c);
      hub.onAgentMessage(agent, buf(encodeAgentFrame({ t: "title", frame: encodeServerFrame({ t: "title", title: "while held" }) })));
      output(end, "tail");
      c.take();
      ack(c, last);
      // Caught up from the ring (it missed little), then told the title.
      expect(c.output()).toBe("h".repeat(100 << 10) + "tail");
      expect(c.frames().filter((f) => f.t !== "mark").at(-1)).toEqual({ t: "title", title: "while held" });
    });

    it("repaints a held read-only client after a resize instead of telling it the size ahead of the output before it", () => {
      const viewer = new RecordingSink();
      const { end, last } = heldReader(viewer, { readonly: true });
      viewer.take();
      hub.onAgentMessage(agent, buf(encodeAgentFrame({ t: "size", size: { cols: 100, rows: 30 } })));
      output(end, "after resize");
      expect(viewer.frames().filter((f) => f.t === "info")).toEqual([]);
      agentFrames();
      ack(viewer, last);
      answerSnapshot(end + "after resize".length, "FRESH");
      const frames = viewer.frames().filter((f) => f.t !== "mark");
      expect(frames.map((f) => f.t)).toEqual(["info", "output"]);
      expect(frames[0]).toMatchObject({ info: { cols: 100, rows: 30 } });
      expect(viewer.output()).toBe("FRESH");
    });

    it("closes held clients whose PINGs would take the terminal's clients past TERMINAL_UNREAD_MAX_BYTES", () => {
      const reader = new RecordingSink();
      hub.addClient(reader, client({ id: "reader" }));
      optIn(reader);
      const count = Math.ceil(TERMINAL_UNREAD_MAX_BYTES / CLIENT_UNREAD_MAX_BYTES) + 2;
      const stalled = Array.from({ length: count }, (_, i) => {
        const sink = new RecordingSink();
        hub.addClient(sink, client({ id: `stalled-${i}`, readonly: true }));
        optIn(sink);
        return sink;
      });
      answerSnapshot(0, "");
      const end = flood(0, (CLIENT_UNREAD_MAX_BYTES >> 20) + 1, [reader]);
      // Every stalled client is held now; each pings as much as its own limit would allow.
      const ping = buf(encodeClientFrame({ t: "ping", data: new Uint8Array((1 << 20) - 16) }));
      for (const c of stalled) for (let i = 0; i < CLIENT_UNREAD_CLOSE_BYTES >> 20 && !c.closed; i++) hub.onClientMessage(c, ping);
      const sent = (c: RecordingSink) => c.sent.reduce((n, b) => n + b.byteLength, 0);
      // What the clients still open may have unread stays within the terminal's limit (a closed one's queue goes with its socket).
      const open = stalled.filter((c) => !c.closed);
      expect(open.reduce((n, c) => n + sent(c), 0)).toBeLessThanOrEqual(TERMINAL_UNREAD_MAX_BYTES + (2 << 20));
      expect(stalled.some((c) => c.closed?.code === CLIENT_TOO_SLOW_CLOSE.code)).toBe(true);
      expect(reader.closed).toBeNull();
      output(end, "after");
      expect(reader.output().endsWith("after")).toBe(true);
    });

    it("closes clients that PING without reading once the terminal's clients pass TERMINAL_UNREAD_MAX_BYTES, held or not, but not a reader that pings", () => {
      const reader = new RecordingSink();
      hub.addClient(reader, client({ id: "reader" }));
      optIn(reader);
      answerSnapshot(0, "");
      // No output at all: what they are sent is only what they provoke, and the closed keep counting until their sockets are gone.
      const count = Math.ceil(TERMINAL_UNREAD_MAX_BYTES / CLIENT_UNREAD_CLOSE_BYTES) + 4;
      const ping = buf(encodeClientFrame({ t: "ping", data: new Uint8Array((1 << 20) - 16) }));
      const stalled = Array.from({ length: count }, (_, i) => {
        const sink = new RecordingSink();
        hub.addClient(sink, client({ id: `pinger-${i}`, readonly: true }));
        optIn(sink);
        for (let k = 0; k <= CLIENT_UNREAD_CLOSE_BYTES >> 20 && !sink.closed; k++) hub.onClientMessage(sink, ping);
        return sink;
      });
      const sent = (c: RecordingSink) => c.sent.reduce((n, b) => n + b.byteLength, 0);
      // Past the limit each is held once it has over CLIENT_UNREAD_RESUME_BYTES, and closed by its next PING.
      expect(stalled.reduce((n, c) => n + sent(c), 0)).toBeLessThanOrEqual(TERMINAL_UNREAD_MAX_BYTES + count * (CLIENT_UNREAD_RESUME_BYTES + (1 << 20)));
      for (const c of stalled) expect(c.closed).toEqual(CLIENT_TOO_SLOW_CLOSE);
      hub.onClientMessage(reader, buf(encodeClientFrame({ t: "ping", data: enc("hb") })));
      expect(reader.frames().at(-1)).toEqual({ t: "pong", data: enc("hb") });
      expect(reader.closed).toBeNull();
    });

    it("counts nothing sent to a client it closed for not reading (the terminal's sum goes back to zero)", () => {
      vi.useFakeTimers();
      const reader = new RecordingSink();
      hub.addClient(reader, client({ id: "reader", readonly: true }));
      optIn(reader);
      const stalled = new RecordingSink();
      hub.addClient(stalled, client({ id: "stalled", readonly: true }));
      // Waiting for its repaint, it pings until one more INFO would take it past the close limit.
      const infoBytes = encodeServerFrame({ t: "info", info: { server_id: "s", terminal_id: 1, shell: "sh", cwd: "/", cols: 100, rows: 30, readonly: true, clients: 1, started_at: "t", ephemeral: false, agent_online: true } }).byteLength;
      const sent = (c: RecordingSink) => c.sent.reduce((n, b) => n + b.byteLength, 0);
      const room = () => CLIENT_UNREAD_CLOSE_BYTES - sent(stalled) - 1;
      while (room() > infoBytes) hub.onClientMessage(stalled, buf(encodeClientFrame({ t: "ping", data: new Uint8Array(Math.min((1 << 20) - 16, room() - 1)) })));
      expect(stalled.closed).toBeNull();
      hub.onAgentMessage(agent, buf(encodeAgentFrame({ t: "size", size: { cols: 100, rows: 30 } })));
      answerSnapshot(0, "S".repeat(64 << 10));
      expect(stalled.closed).toEqual(CLIENT_TOO_SLOW_CLOSE);
      hub.removeClient(stalled);
      hub.removeClient(reader);
      expect((hub as unknown as { reading: { total: number } }).reading.total).toBe(0);
    });

    it("keeps, across a wake-up, that a client answers MARKs and that it is held", () => {
      const saved = new Map<RecordingSink, ClientState>();
      const c = new RecordingSink();
      const { end } = heldReader(c);
      // What the host keeps of the client (terminal-do.ts keeps it in the socket's attachment).
      saved.set(c, { ...hub.clients.get(c)!, offset: null, trustNext: false, flow: undefined });
      const reading = savedReading(hub.clients.get(c)!.flow);
      expect(reading).toEqual({ acks: true, held: true });

      // A new instance: the sockets are still there, nothing else.
      hub = new TerminalHub({ info: () => ({ t: "error", error: { code: "X", message: "x" } }), onHello: () => true, refused: () => {}, onTitle: () => {}, onExit: () => {}, onClientChanged: () => {} });
      agent = new RecordingSink();
      hub.attachAgent(agent, true);
      c.take();
      hub.restoreClient(c, saved.get(c)!, reading);
      // Still held: the output that follows is not sent; a MARK asks it to prove it read.
      output(end, "after the wake-up");
      expect(c.output()).toBe("");
      const mark = c.frames().find((f): f is Extract<ServerFrame, { t: "mark" }> => f.t === "mark");
      expect(mark).toBeDefined();
      // Proving it released, it is repainted, and still answers MARKs (a reader's 16 MiB, not 4 MiB unproven).
      ack(c, mark!.mark);
      answerSnapshot(end + "after the wake-up".length, "FRESH");
      expect(c.output()).toBe("FRESH");
      flood(end + "after the wake-up".length, (CLIENT_UNPROVEN_MAX_BYTES >> 20) + 2, [c]);
      expect(c.output().length).toBe("FRESH".length + (((CLIENT_UNPROVEN_MAX_BYTES >> 20) + 2) << 20));
    });

    it("brings the terminal's sum back to exactly zero when its clients leave, however time passed", () => {
      vi.useFakeTimers();
      const sinks = Array.from({ length: 8 }, (_, i) => {
        const sink = new RecordingSink();
        hub.addClient(sink, client({ id: `c-${i}`, readonly: true }));
        if (i % 2) optIn(sink);
        return sink;
      });
      answerSnapshot(0, "");
      let at = 0;
      for (let i = 0; i < 200; i++) {
        output(at, "x".repeat(32 << 10));
        at += 32 << 10;
        vi.advanceTimersByTime(1 + (i % 7));
        if (i % 10 === 0) hub.onClientMessage(sinks[i % 8]!, buf(encodeClientFrame({ t: "ping", data: new Uint8Array(i) })));
      }
      for (const sink of sinks) hub.removeClient(sink);
      expect((hub as unknown as { reading: { total: number } }).reading.total).toBe(0);
    });

    it("keeps counting a client it closed for not reading, and its place, until its socket is gone (what was queued for it is still there)", () => {
      vi.useFakeTimers();
      const stalled = new RecordingSink();
      hub.addClient(stalled, client({ id: "stalled" }));
      answerSnapshot(0, "");
      const ping = buf(encodeClientFrame({ t: "ping", data: new Uint8Array((1 << 20) - 16) }));
      for (let i = 0; i <= CLIENT_UNREAD_CLOSE_BYTES >> 20 && !stalled.closed; i++) hub.onClientMessage(stalled, ping);
      expect(stalled.closed).toEqual(CLIENT_TOO_SLOW_CLOSE);
      const total = () => (hub as unknown as { reading: { total: number } }).reading.total;
      // Closed, it gets nothing more; but until its socket is gone it still takes a place, and its unread still counts, however long.
      expect(hub.clients.has(stalled)).toBe(false);
      expect(hub.clientCount).toBe(1);
      vi.advanceTimersByTime(60_000);
      expect(total()).toBeGreaterThan(CLIENT_UNREAD_CLOSE_BYTES - (1 << 20));
      // Its socket is gone (the host's close event): the place and the bytes are free.
      hub.removeClient(stalled);
      expect(hub.clientCount).toBe(0);
      expect(total()).toBe(0);
    });

    it("still sends a held client EXIT and closes it cleanly, and forgets every timer and byte", () => {
      vi.useFakeTimers();
      const acks = new RecordingSink();
      const { end } = heldReader(acks);
      const plain = new RecordingSink();
      hub.addClient(plain, client({ id: "plain", readonly: true }));
      answerSnapshot(end, "");
      flood(end, (CLIENT_UNPROVEN_MAX_BYTES >> 20) + 1);
      expect(hub.clients.get(plain)!.flow!.held).toBe(true);
      expect(vi.getTimerCount()).toBe(1); // the plain client's release
      hub.onAgentMessage(agent, buf(encodeAgentFrame({ t: "exit", exit: { exit_code: 0, signal: 0 } })));
      for (const c of [acks, plain]) {
        expect(c.frames().filter((f) => f.t !== "mark").at(-1)).toEqual({ t: "exit", exit: { exit_code: 0, signal: 0 } });
        expect(c.closed?.code).toBe(1000);
      }
      expect(vi.getTimerCount()).toBe(0);
      expect((hub as unknown as { reading: { total: number } }).reading.total).toBe(0);
    });

    it("gives every byte to a reader that starts answering MARKs after output began", () => {
      const reader = new RecordingSink();
      hub.addClient(reader, client({ id: "late" }));
      answerSnapshot(0, "");
      let at = flood(0, (CLIENT_UNPROVEN_MAX_BYTES >> 20) - 1);
      optIn(reader);
      at = flood(at, 2 * (CLIENT_UNREAD_MAX_BYTES >> 20), [reader]);
      expect(reader.output().length).toBe(at);
      expect(hub.clients.get(reader)!.flow!.held).toBe(false);
    });

    it("refuses an ACK whose id is neither empty nor 8 bytes", () => {
      const c = new RecordingSink();
      hub.addClient(c, client());
      c.take();
      hub.onClientMessage(c, buf(Uint8Array.of(0x05, 1, 2, 3)));
      expect(c.frames()).toMatchObject([{ t: "error", error: { code: "INVALID_FRAME" } }]);
    });
  });
});
