import { describe, expect, it } from "vitest";
import { LinkDecodeError } from "../../shared/links/codec.ts";
import { AgentOp, decodeAgentFrame, encodeAgentFrame } from "../../shared/links/data.ts";
import { parseCommandRecord, type CommandRecord } from "../../shared/history.ts";

const RECORD: CommandRecord = {
  id: 3,
  command: "cd /tmp",
  cwd: "/home/user",
  exit_code: 0,
  started_at: "2025-01-15T10:30:00.000Z",
  finished_at: "2025-01-15T10:30:00.012Z",
  duration_ms: 12,
  status: "done",
};

describe("the HISTORY data-link frame", () => {
  it("round-trips a command record", () => {
    const bytes = encodeAgentFrame({ t: "history", record: RECORD });
    expect(bytes[0]).toBe(AgentOp.HISTORY);
    expect(decodeAgentFrame(bytes)).toEqual({ t: "history", record: RECORD });
  });

  it("refuses a payload that is not a command record", () => {
    const bad = (value: unknown) => {
      const body = new TextEncoder().encode(JSON.stringify(value));
      const frame = new Uint8Array([AgentOp.HISTORY, ...body]);
      return () => decodeAgentFrame(frame);
    };
    expect(bad({ ...RECORD, id: 0 })).toThrow(LinkDecodeError);
    expect(bad({ ...RECORD, status: "weird" })).toThrow(LinkDecodeError);
    expect(bad({ ...RECORD, command: "x".repeat(5000) })).toThrow(LinkDecodeError);
    expect(bad("nope")).toThrow(LinkDecodeError);
    expect(() => decodeAgentFrame(new Uint8Array([AgentOp.HISTORY, 0x7b]))).toThrow(LinkDecodeError);
  });
});

describe("parseCommandRecord", () => {
  it("accepts a running record and copies only known fields", () => {
    const running = { ...RECORD, exit_code: null, finished_at: null, duration_ms: null, status: "running", extra: 1 };
    expect(parseCommandRecord(running)).toEqual({ ...RECORD, exit_code: null, finished_at: null, duration_ms: null, status: "running" });
  });

  it("refuses wrong types and bad times", () => {
    expect(parseCommandRecord({ ...RECORD, exit_code: "0" })).toBeNull();
    expect(parseCommandRecord({ ...RECORD, started_at: "yesterday" })).toBeNull();
    expect(parseCommandRecord({ ...RECORD, cwd: 5 })).toBeNull();
    expect(parseCommandRecord(null)).toBeNull();
  });
});
