/** Request validation in FastAPI's shapes, the NDJSON encoding, the relay's routing and checks, and small pure pieces. */
import { describe, expect, it } from "vitest";
import { decodeHostToAgent } from "../../shared/links/control.ts";
import { parseExecHttp, replyDeadlineMs } from "../../shared/links/exec.ts";
import {
  apiConfig,
  ndjsonLine,
  parseExecuteRequest,
  parseInputRequest,
  parseKillQuery,
  parseStatusQuery,
  parseTerminalWsText,
  pyFloat,
  pyIsoUtc,
  timeoutMessage,
} from "../../shared/open-terminal.ts";
import { LineSplitter } from "../../worker/agent/exec/line-splitter.ts";
import { ProcessOutputLog, TailText } from "../../worker/agent/exec/process-output-log.ts";

const q = (s = "") => new URLSearchParams(s);
const body = (v: unknown) => JSON.stringify(v);
const spec = { command: "ls", cwd: null, env: null };

describe("POST /execute picks its mode", () => {
  it("is today's background model when neither stream nor timeout is sent", () => {
    expect(parseExecuteRequest(q(), body({ command: "ls" }))).toEqual({ ok: true, value: { mode: "background", spec, wait: null, tail: null } });
  });

  it("is seed 004's synchronous run when the body has a timeout and the query no wait/tail", () => {
    expect(parseExecuteRequest(q(), body({ command: "ls", timeout: 30 }))).toEqual({ ok: true, value: { mode: "sync", spec, timeout: 30 } });
    expect(parseExecuteRequest(q(), body({ command: "ls", timeout: null }))).toMatchObject({ value: { mode: "sync", timeout: null } });
    expect(parseExecuteRequest(q("wait=1"), body({ command: "ls", timeout: 30 }))).toMatchObject({ value: { mode: "background", wait: 1 } });
    expect(parseExecuteRequest(q(), body({ command: "ls", timeout: "2.5" }))).toMatchObject({ value: { mode: "sync", timeout: 2.5 } });
  });

  it("streams with stream=true, honouring a timeout only when one was sent", () => {
    expect(parseExecuteRequest(q("stream=true"), body({ command: "ls" }))).toEqual({ ok: true, value: { mode: "stream", spec, timeout: null } });
    expect(parseExecuteRequest(q("stream=yes"), body({ command: "ls", timeout: 5 }))).toMatchObject({ value: { mode: "stream", timeout: 5 } });
    expect(parseExecuteRequest(q("stream=false"), body({ command: "ls" }))).toMatchObject({ value: { mode: "background" } });
  });

  it("is the background model when wait or tail is present, even wait=null", () => {
    expect(parseExecuteRequest(q("wait=5"), body({ command: "ls" }))).toEqual({ ok: true, value: { mode: "background", spec, wait: 5, tail: null } });
    expect(parseExecuteRequest(q("wait=null"), body({ command: "ls" }))).toMatchObject({ value: { mode: "background", wait: null } });
    expect(parseExecuteRequest(q("tail=3"), body({ command: "ls" }))).toMatchObject({ value: { mode: "background", wait: null, tail: 3 } });
  });

  it("takes cwd and env from the body", () => {
    const r = parseExecuteRequest(q("wait=1"), body({ command: "env", cwd: "/tmp", env: { A: "1" } }));
    expect(r).toMatchObject({ value: { spec: { command: "env", cwd: "/tmp", env: { A: "1" } } } });
  });
});

describe("validation errors answer 422 in FastAPI's shape", () => {
  it("names a missing command", () => {
    expect(parseExecuteRequest(q(), body({ cmd: "ls" }))).toEqual({
      ok: false,
      reply: { status: 422, body: { code: "VALIDATION_ERROR", detail: [{ type: "missing", loc: ["body", "command"], msg: "Field required", input: { cmd: "ls" } }] } },
    });
  });

  it("reports every bad field, query first", () => {
    const r = parseExecuteRequest(q("stream=true&wait=500&tail=0"), body({ command: 1, env: { A: 2 }, timeout: -1 }));
    expect(r.ok).toBe(false);
    const detail = (r as { reply: { body: { detail: { type: string; loc: unknown[]; msg: string }[] } } }).reply.body.detail;
    expect(detail.map((d) => [d.type, d.loc])).toEqual([
      ["less_than_equal", ["query", "wait"]],
      ["greater_than_equal", ["query", "tail"]],
      ["string_type", ["body", "command"]],
      ["string_type", ["body", "env", "A"]],
      ["greater_than_equal", ["body", "timeout"]],
    ]);
    expect(detail[0]!.msg).toBe("Input should be less than or equal to 300");
  });

  it("rejects unparsable numbers and booleans", () => {
    const r = parseExecuteRequest(q("wait=soon&stream=maybe"), body({ command: "ls" }));
    expect(r).toMatchObject({
      ok: false,
      reply: {
        status: 422,
        body: {
          detail: [
            { type: "bool_parsing", loc: ["query", "stream"], msg: "Input should be a valid boolean, unable to interpret input", input: "maybe" },
            { type: "float_parsing", loc: ["query", "wait"], msg: "Input should be a valid number, unable to parse string as a number", input: "soon" },
          ],
        },
      },
    });
  });

  it("rejects a missing body, bad JSON and a body that is not an object", () => {
    expect(parseExecuteRequest(q(), null)).toMatchObject({ reply: { status: 422, body: { detail: [{ type: "missing", loc: ["body"] }] } } });
    expect(parseExecuteRequest(q(), "{nope")).toMatchObject({ reply: { status: 422, body: { detail: [{ type: "json_invalid", msg: "JSON decode error" }] } } });
    expect(parseExecuteRequest(q(), "[1]")).toMatchObject({ reply: { status: 422, body: { detail: [{ type: "model_attributes_type", loc: ["body"] }] } } });
  });

  it("rejects NUL bytes and malformed environment names the shell could not take", () => {
    const r = parseExecuteRequest(q(), body({ command: "a\u0000b", env: { "A=B": "x" } }));
    expect(r).toMatchObject({ reply: { status: 422, body: { detail: [{ type: "value_error", loc: ["body", "command"] }, { type: "value_error", loc: ["body", "env", "A=B"] }] } } });
  });

  it("checks status, input and kill requests", () => {
    expect(parseStatusQuery(q("wait=2&offset=4&tail=1"))).toEqual({ ok: true, value: { wait: 2, offset: 4, tail: 1 } });
    expect(parseStatusQuery(q("offset=null&wait=null"))).toEqual({ ok: true, value: { wait: null, offset: 0, tail: null } });
    expect(parseStatusQuery(q("offset=-1"))).toMatchObject({ reply: { status: 422, body: { detail: [{ type: "greater_than_equal", loc: ["query", "offset"] }] } } });
    expect(parseStatusQuery(q("offset=1.5"))).toMatchObject({ reply: { body: { detail: [{ type: "int_parsing" }] } } });
    expect(parseInputRequest(body({ input: "x\n" }))).toEqual({ ok: true, value: { input: "x\n" } });
    expect(parseInputRequest(body({ input: 3 }))).toMatchObject({ reply: { status: 422, body: { detail: [{ type: "string_type", loc: ["body", "input"] }] } } });
    expect(parseKillQuery(q("force=true"))).toEqual({ ok: true, value: { force: true } });
    expect(parseKillQuery(q())).toEqual({ ok: true, value: { force: false } });
  });
});

describe("the NDJSON stream", () => {
  it("is written exactly as Python's json.dumps writes it", () => {
    expect(ndjsonLine({ type: "stdout", data: "1\n" })).toBe('{"type": "stdout", "data": "1\\n"}\n');
    expect(ndjsonLine({ type: "exit", data: 0 })).toBe('{"type": "exit", "data": 0}\n');
    expect(ndjsonLine({ type: "stderr", data: 'caf\u00e9 "\u{1F600}"\t\u001b' })).toBe('{"type": "stderr", "data": "caf\\u00e9 \\"\\ud83d\\ude00\\"\\t\\u001b"}\n');
  });

  it("formats the timeout message with Python's float repr", () => {
    expect(timeoutMessage(30)).toBe("Command timed out after 30.0s");
    expect(timeoutMessage(0.5)).toBe("Command timed out after 0.5s");
    expect([pyFloat(1e16), pyFloat(1.5e-7), pyFloat(0.0001), pyFloat(123456.789)]).toEqual(["1e+16", "1.5e-07", "0.0001", "123456.789"]);
  });
});

describe("the relay's HTTP mapping and message checks", () => {
  it("maps each execute route to its op", () => {
    expect(parseExecHttp("GET", "/execute", q(), null)).toEqual({ ok: true, value: { op: "list" } });
    expect(parseExecHttp("POST", "/execute", q("wait=1"), body({ command: "ls" }))).toMatchObject({ value: { op: "execute", call: { mode: "background" } } });
    expect(parseExecHttp("GET", "/execute/a%20b/status", q("offset=3"), null)).toEqual({ ok: true, value: { op: "status", id: "a b", query: { wait: null, offset: 3, tail: null } } });
    expect(parseExecHttp("POST", "/execute/x/input", q(), body({ input: "y" }))).toEqual({ ok: true, value: { op: "input", id: "x", input: "y" } });
    expect(parseExecHttp("DELETE", "/execute/x", q("force=1"), null)).toEqual({ ok: true, value: { op: "kill", id: "x", force: true } });
    expect(parseExecHttp("PUT", "/execute", q(), null)).toBeNull();
    expect(parseExecHttp("GET", "/files/list", q(), null)).toBeNull();
    expect(parseExecHttp("PUT", "/execute/x/status", q(), null)).toBeNull();
    // An id no process can have is not found, whatever the rest of the call says.
    const long = `/execute/${"a".repeat(300)}`;
    for (const [method, path] of [["GET", `${long}/status`], ["DELETE", long], ["POST", `${long}/input`]] as const) {
      expect(parseExecHttp(method, path, q("wait=bad"), "{")).toEqual({ ok: false, reply: { status: 404, body: { detail: "Process not found", code: "PROCESS_NOT_FOUND" } } });
    }
  });

  it("hands the relay only calls its schema takes: huge numbers, long cwds and env values are settled at the edge", () => {
    const decode = (op: unknown) => decodeHostToAgent(JSON.stringify({ t: "exec.req", id: 1, scope: "", op }));
    const relayed = (method: string, path: string, query: string, text: string | null) => {
      const parsed = parseExecHttp(method, path, q(query), text);
      if (!parsed?.ok) return parsed;
      return decode(parsed.value); // throws what the agent would answer 400 BAD_RELAY_MESSAGE
    };
    const huge = "9".repeat(400); // Infinity as a JavaScript number, a plain int to Python
    // Past any output and any tail: the same as the largest exact integer.
    expect(relayed("GET", "/execute/x/status", `offset=${huge}&tail=${huge}`, null)).toMatchObject({ op: { query: { offset: Number.MAX_SAFE_INTEGER, tail: Number.MAX_SAFE_INTEGER } } });
    expect(relayed("GET", "/execute/x/status", "offset=9007199254740993", null)).toMatchObject({ op: { query: { offset: Number.MAX_SAFE_INTEGER } } });
    expect(relayed("POST", "/execute", `tail=${huge}`, body({ command: "ls" }))).toMatchObject({ op: { call: { tail: Number.MAX_SAFE_INTEGER } } });
    // Too long for the relay: a 422 naming the field, not a malformed relay message.
    expect(relayed("POST", "/execute", "", body({ command: "ls", cwd: `/${"a".repeat(5000)}` }))).toMatchObject({
      ok: false,
      reply: { status: 422, body: { detail: [{ type: "string_too_long", loc: ["body", "cwd"], ctx: { max_length: 4096 } }] } },
    });
    expect(relayed("POST", "/execute", "", body({ command: "ls", env: { K: "v".repeat((1 << 20) + 1) } }))).toMatchObject({
      ok: false,
      reply: { status: 422, body: { detail: [{ type: "string_too_long", loc: ["body", "env", "K"] }] } },
    });
    expect(relayed("POST", "/execute", "", body({ command: "ls", cwd: `/${"a".repeat(4095)}`, env: { K: "v".repeat(1 << 20) } }))).toMatchObject({ op: { op: "execute" } });
  });

  it("knows how long the edge should wait for an answer", () => {
    expect(replyDeadlineMs({ op: "execute", call: { mode: "sync", spec, timeout: null } })).toBeNull();
    expect(replyDeadlineMs({ op: "execute", call: { mode: "sync", spec, timeout: 30 } })).toBe(45_000);
    expect(replyDeadlineMs({ op: "status", id: "x", query: { wait: 300, offset: 0, tail: null } })).toBe(315_000);
  });

  it("accepts well-formed messages and names what is wrong with others", () => {
    const decode = (x: unknown) => decodeHostToAgent(JSON.stringify(x));
    const refusal = (x: unknown) => {
      try {
        decode(x);
      } catch (error) {
        return { id: (error as { id: unknown }).id, message: (error as Error).message };
      }
      throw new Error("accepted");
    };
    const req = { t: "exec.req", id: 1, scope: "", op: { op: "execute", call: { mode: "stream", spec, timeout: null } } };
    expect(decode(req)).toEqual({ ...req, session: "" });
    expect(decode({ ...req, session: "chat-1" })).toEqual({ ...req, session: "chat-1" });
    expect(refusal({ ...req, session: "x".repeat(257) })).toMatchObject({ id: 1, message: expect.stringContaining("session") });
    expect(decode({ t: "exec.ack", id: 1, bytes: 10 })).toEqual({ t: "exec.ack", id: 1, bytes: 10 });
    expect(refusal({ t: "exec.req", id: 2, scope: "", op: { op: "execute", call: { mode: "sync", spec: { command: 5 } } } })).toMatchObject({ id: 2, message: expect.stringContaining("exec.req.op.call") });
    expect(refusal({ t: "exec.req", id: -1 })).toMatchObject({ id: null });
    expect(refusal("junk")).toMatchObject({ id: null });
    expect(refusal({ t: "exec.what", id: 3 })).toMatchObject({ id: 3 });
  });
});

describe("small pieces", () => {
  it("keeps the newest output within its caps with absolute offsets", () => {
    const log = new ProcessOutputLog(10, 3);
    for (const s of ["aaaa", "bbbb", "cc", "dd"]) log.append("stdout", s);
    expect(log.total).toBe(4);
    expect(log.read()).toEqual({ output: [{ type: "stdout", data: "bbbb" }, { type: "stdout", data: "cc" }, { type: "stdout", data: "dd" }], next_offset: 4, truncated: true });
    expect(log.read(2)).toEqual({ output: [{ type: "stdout", data: "cc" }, { type: "stdout", data: "dd" }], next_offset: 4, truncated: false });
    expect(log.read(9)).toEqual({ output: [], next_offset: 4, truncated: false });
    expect(log.read(1, 1)).toEqual({ output: [{ type: "stdout", data: "dd" }], next_offset: 4, truncated: true });
  });

  it("says truncated when `tail` entries came back from the start, cut or not (the reference's quirk)", () => {
    const log = new ProcessOutputLog();
    log.append("output", "only");
    expect(log.read(0, 1)).toEqual({ output: [{ type: "output", data: "only" }], next_offset: 1, truncated: true });
    expect(log.read(0, 2)).toEqual({ output: [{ type: "output", data: "only" }], next_offset: 1, truncated: false });
    expect(log.read(1, 1)).toEqual({ output: [], next_offset: 1, truncated: false });
  });

  it("keeps the newest characters of a synchronous run's stream", () => {
    const tail = new TailText(5);
    for (const s of ["abc", "defg", "h"]) tail.append(s);
    expect(tail.toString()).toBe("efgh".padStart(5, "d"));
  });

  it("splits lines, reassembles UTF-8 across reads and bounds line length", async () => {
    const lines: string[] = [];
    const s = new LineSplitter((l) => lines.push(l), 4, 1_000);
    const euro = Buffer.from("\u20ac\n");
    s.push(Buffer.from("ab\ncd"));
    s.push(euro.subarray(0, 1));
    s.push(euro.subarray(1));
    s.push(Buffer.from("123456789"));
    s.end();
    expect(lines).toEqual(["ab\n", "cd\u20ac\n", "1234", "5678", "9"]);
  });

  it("answers the reference's /api/config and reads terminal WebSocket text frames", () => {
    expect(apiConfig()).toEqual({ features: { terminal: true, notebooks: false, system: true } });
    expect(parseTerminalWsText('{"type":"auth","token":"k"}')).toEqual({ type: "auth", token: "k" });
    expect(parseTerminalWsText('{"type":"resize","cols":120}')).toEqual({ type: "resize", cols: 120, rows: 24 });
    expect(parseTerminalWsText("ls\n")).toBeNull();
    expect(pyIsoUtc(new Date(Date.UTC(2026, 2, 2, 12, 34, 56, 789)))).toBe("2026-03-02T12:34:56.789000Z");
    expect(pyIsoUtc(new Date(Date.UTC(2026, 2, 2, 12, 34, 56)))).toBe("2026-03-02T12:34:56Z");
  });
});

