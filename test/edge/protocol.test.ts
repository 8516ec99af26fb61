/** The wire codecs, checked inside workerd (the agent's side runs them under Node). */
import { describe, expect, it } from "vitest";
import {
  decodeAgentFrame,
  decodeEdgeFrame,
  encodeAgentFrame,
  encodeEdgeFrame,
  encodeOutput,
  encodeSnapshot,
} from "../../shared/links/data.ts";
import { decodeClientFrame, decodeServerFrame, encodeClientFrame, encodeServerFrame, LinkDecodeError } from "../../shared/links/client.ts";

const bytes = (s: string) => new TextEncoder().encode(s);

describe("client protocol", () => {
  it("round-trips every client frame", () => {
    for (const f of [
      { t: "input", data: bytes("ls\r") },
      { t: "resize", size: { cols: 120, rows: 40 } },
      { t: "pause" },
      { t: "resume" },
      { t: "ping", data: bytes("42") },
    ] as const) {
      expect(decodeClientFrame(encodeClientFrame(f))).toEqual(f);
    }
  });

  it("round-trips every server frame", () => {
    const info = { server_id: "local", terminal_id: 5, shell: "bash", cwd: "/", cols: 80, rows: 24, readonly: false, clients: 1, started_at: "t", ephemeral: false, agent_online: true };
    for (const f of [
      { t: "output", data: bytes("hi") },
      { t: "title", title: "vim — ü" },
      { t: "info", info },
      { t: "exit", exit: { exit_code: 1, signal: 0 } },
      { t: "pong", data: bytes("x") },
      { t: "error", error: { code: "READ_ONLY", message: "no" } },
    ] as const) {
      expect(decodeServerFrame(encodeServerFrame(f))).toEqual(f);
    }
  });

  it("rejects empty, unknown and malformed frames with a reason", () => {
    expect(() => decodeClientFrame(new Uint8Array(0))).toThrow(LinkDecodeError);
    expect(() => decodeClientFrame(new Uint8Array([0x09]))).toThrow(/unknown client frame type 0x09/);
    expect(() => decodeClientFrame(new Uint8Array([0x01, 0x7b]))).toThrow(/not JSON/);
    expect(() => decodeClientFrame(encodeClientFrame({ t: "resize", size: { cols: 0, rows: 10 } }))).toThrow(/RESIZE/);
    expect(() => decodeClientFrame(new Uint8Array([0x01, ...bytes('{"cols":5000,"rows":1}')]))).toThrow(LinkDecodeError);
  });
});

describe("agent link protocol", () => {
  it("embeds a ready client OUTPUT frame in OUTPUT, at a 64-bit offset", () => {
    const offset = 2 ** 40 + 7;
    const f = decodeAgentFrame(encodeOutput(offset, [bytes("ab"), bytes("cd")], 4));
    expect(f).toMatchObject({ t: "output", offset });
    if (f.t !== "output") throw new Error("wrong frame");
    expect(decodeServerFrame(f.frame)).toEqual({ t: "output", data: bytes("abcd") });
  });

  it("refuses OUTPUT whose bytes would reach past 2^53 (offsets a double cannot hold exactly)", () => {
    expect(decodeAgentFrame(encodeOutput(Number.MAX_SAFE_INTEGER - 2, [bytes("ab")], 2))).toMatchObject({ t: "output", offset: Number.MAX_SAFE_INTEGER - 2 });
    expect(() => decodeAgentFrame(encodeOutput(Number.MAX_SAFE_INTEGER - 1, [bytes("ab")], 2))).toThrow(/past 2\^53/);
  });

  it("embeds the repaint in SNAPSHOT with its request id and offset", () => {
    const f = decodeAgentFrame(encodeSnapshot(9, 1234, bytes("\x1bcscreen")));
    expect(f).toMatchObject({ t: "snapshot", id: 9, offset: 1234 });
    if (f.t !== "snapshot") throw new Error("wrong frame");
    expect(decodeServerFrame(f.frame)).toEqual({ t: "output", data: bytes("\x1bcscreen") });
  });

  it("round-trips HELLO, EXIT, SIZE and TITLE", () => {
    const hello = { end: 10, oldest: 2, size: { cols: 80, rows: 24 }, meta: { terminal_id: 1, shell: "sh", cwd: "/", started_at: "2026-01-01T00:00:00.000Z", ephemeral: false } };
    expect(decodeAgentFrame(encodeAgentFrame({ t: "hello", hello }))).toEqual({ t: "hello", hello });
    expect(decodeAgentFrame(encodeAgentFrame({ t: "exit", exit: { exit_code: 0, signal: 15 } }))).toEqual({ t: "exit", exit: { exit_code: 0, signal: 15 } });
    expect(decodeAgentFrame(encodeAgentFrame({ t: "size", size: { cols: 1, rows: 2 } }))).toEqual({ t: "size", size: { cols: 1, rows: 2 } });
    const title = encodeServerFrame({ t: "title", title: "x" });
    expect(decodeAgentFrame(encodeAgentFrame({ t: "title", frame: title }))).toEqual({ t: "title", frame: title });
  });

  it("shares INPUT and RESIZE bytes with the client protocol", () => {
    const input = encodeClientFrame({ t: "input", data: bytes("x") });
    expect(decodeEdgeFrame(input)).toEqual({ t: "input", data: bytes("x") });
    expect(encodeEdgeFrame({ t: "input", data: bytes("x") })).toEqual(input);
    expect(decodeEdgeFrame(encodeEdgeFrame({ t: "ack", offset: 2 ** 33 }))).toEqual({ t: "ack", offset: 2 ** 33 });
    expect(decodeEdgeFrame(encodeEdgeFrame({ t: "resume", offset: 5 }))).toEqual({ t: "resume", offset: 5 });
    expect(decodeEdgeFrame(encodeEdgeFrame({ t: "snapshot-request", id: 3 }))).toEqual({ t: "snapshot-request", id: 3 });
  });

  it("rejects short and unknown link frames", () => {
    expect(() => decodeAgentFrame(new Uint8Array([0x80, 1, 2]))).toThrow(LinkDecodeError);
    expect(() => decodeAgentFrame(new Uint8Array([0x7f]))).toThrow(LinkDecodeError);
    expect(() => decodeEdgeFrame(new Uint8Array([0xa0, 0]))).toThrow(LinkDecodeError);
  });

  it("refuses frames whose fields are out of range", () => {
    const hello = (h: unknown) => new Uint8Array([0x82, ...bytes(JSON.stringify(h))]);
    const meta = { terminal_id: 1, shell: "sh", cwd: "/", started_at: "2026-01-01T00:00:00.000Z", ephemeral: false };
    const size = { cols: 80, rows: 24 };
    expect(() => decodeAgentFrame(hello({ end: 1, oldest: 2, size, meta }))).toThrow(/oldest is past end/);
    expect(() => decodeAgentFrame(hello({ end: -1, oldest: 0, size, meta }))).toThrow(/HELLO\.end/);
    expect(() => decodeAgentFrame(hello({ end: 1, oldest: 0, size, meta: { ...meta, terminal_id: 70000 } }))).toThrow(/meta\.terminal_id/);
    expect(() => decodeAgentFrame(hello({ end: 1, oldest: 0, size, meta: { ...meta, started_at: "yesterday" } }))).toThrow(/started_at/);
    // An OUTPUT frame must embed a client OUTPUT frame, and its offset must be exact in JS.
    expect(() => decodeAgentFrame(new Uint8Array([0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0x05, 1]))).toThrow(/embeds/);
    expect(() => decodeAgentFrame(new Uint8Array([0x80, 0xff, 0, 0, 0, 0, 0, 0, 0, 0x00, 1]))).toThrow(/2\^53/);
    expect(() => decodeAgentFrame(new Uint8Array([0x84, 0x00, 65]))).toThrow(/TITLE embeds/);
    expect(() => decodeAgentFrame(new Uint8Array([0x83, ...bytes('{"exit_code":"0","signal":0}')]))).toThrow(/EXIT\.exit_code/);
  });
});
