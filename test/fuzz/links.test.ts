/**
 * Fuzzes every decoder of every link (shared/links/) with fast-check: garbage bytes and text,
 * frames with a real type byte and a random payload, valid frames with bytes flipped or cut, and
 * JSON messages whose every field may be of the wrong type or out of range. A decoder may accept a
 * frame or refuse it with LinkDecodeError; anything else thrown (a TypeError, a RangeError from a
 * DataView) fails. Valid frames must round-trip.
 *
 * Runs: EDGETTY_FUZZ_RUNS cases in all (default 4,000, shared across the properties below);
 * `npm run fuzz` runs 100,000.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  ClientOp,
  decodeClientFrame,
  decodeServerFrame,
  encodeClientFrame,
  encodeServerFrame,
  ServerOp,
  type ClientFrame,
  type ServerFrame,
} from "../../shared/links/client.ts";
import { LinkDecodeError } from "../../shared/links/codec.ts";
import { CONTROL_OPS, checkResult, checkSessions, decodeAgentToHost, decodeHostToAgent, type ControlOp } from "../../shared/links/control.ts";
import { AgentOp, decodeAgentFrame, decodeEdgeFrame, EdgeOp, encodeAgentFrame, encodeEdgeFrame, encodeOutput, encodeSnapshot } from "../../shared/links/data.ts";

const TOTAL_RUNS = Number(process.env.EDGETTY_FUZZ_RUNS ?? 4000);
const PROPERTIES = 12;
/** Cases per property: the total shared out, at least 20 each. */
const numRuns = Math.max(20, Math.floor(TOTAL_RUNS / PROPERTIES));
/** Long runs (npm run fuzz) need more than the default test timeout. */
const TIMEOUT_MS = Math.max(60_000, numRuns * 5);

/** Calls `decode`; passes when it returns or throws LinkDecodeError, fails on anything else. */
function survives(decode: () => unknown): boolean {
  try {
    decode();
    return true;
  } catch (error) {
    if (error instanceof LinkDecodeError) return true;
    throw error;
  }
}

/** Runs a property over this file's share of the cases. */
const check = <Ts extends unknown[]>(property: fc.IPropertyWithHooks<Ts>) => fc.assert(property, { numRuns });

// --- building blocks ---------------------------------------------------------------------------

/** Numbers a hostile peer would try: edges of every range, fractions, negatives, NaN-ish, huge. */
const nastyNumber = fc.oneof(
  fc.integer(),
  fc.constantFrom(0, -1, 1, 255, 256, 1000, 1001, 65_535, 65_536, 2 ** 31, 2 ** 32, 2 ** 53, -(2 ** 53), 1.5, 1e308, -0),
  fc.double(),
);
/** Any JSON-ish field value, biased to numbers and strings. */
const field = fc.oneof(nastyNumber, fc.string(), fc.boolean(), fc.constant(null), fc.jsonValue({ maxDepth: 2 }));
/** An ISO time, or something that looks like one. */
const timeish = fc.oneof(fc.date({ noInvalidDate: true }).map((d) => d.toISOString()), fc.string({ maxLength: 50 }));

/** An object that has the right keys, each with a value that is right or wrong. */
function shaped(keys: Record<string, fc.Arbitrary<unknown>>): fc.Arbitrary<Record<string, unknown>> {
  const entries = Object.fromEntries(Object.entries(keys).map(([k, good]) => [k, fc.oneof(good, field)]));
  return fc.record(entries, { requiredKeys: [] }) as fc.Arbitrary<Record<string, unknown>>;
}

const sizeish = shaped({ cols: fc.integer({ min: 1, max: 1000 }), rows: fc.integer({ min: 1, max: 1000 }) });
const metaish = shaped({
  terminal_id: fc.integer({ min: 1, max: 65_535 }),
  shell: fc.constantFrom("bash", "/bin/sh"),
  cwd: fc.string(),
  started_at: timeish,
  ephemeral: fc.boolean(),
  display: fc.constantFrom(":1", ":0.1"),
  pid: fc.integer({ min: 1, max: 4_194_304 }),
});
const liveish = fc.tuple(metaish, sizeish, shaped({ title: fc.string() })).map(([m, s, t]) => ({ ...m, ...s, ...t }));

const enc = (value: unknown) => new TextEncoder().encode(JSON.stringify(value));
const withOp = (op: number, payload: Uint8Array) => {
  const out = new Uint8Array(1 + payload.byteLength);
  out[0] = op;
  out.set(payload, 1);
  return out;
};

/** A frame of one of `ops` whose payload is random bytes or JSON-ish. */
function typedFrame(ops: readonly number[], json: fc.Arbitrary<unknown>): fc.Arbitrary<Uint8Array> {
  return fc.tuple(fc.constantFrom(...ops), fc.oneof(fc.uint8Array({ maxLength: 64 }), json.map(enc))).map(([op, p]) => withOp(op, p));
}

/** `frame` with a few bytes flipped, or cut short. */
function mutated(frames: fc.Arbitrary<Uint8Array>): fc.Arbitrary<Uint8Array> {
  return fc.tuple(frames, fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 4 }), fc.option(fc.nat())).map(([f, flips, cut]) => {
    const out = Uint8Array.from(f);
    for (const [at, byte] of flips) if (out.length > 0) out[at % out.length] = byte;
    return cut === null ? out : out.subarray(0, cut % (out.length + 1));
  });
}

// --- valid frames (for round trips, and as seeds for mutation) ------------------------------------

const bytes = fc.uint8Array({ maxLength: 64 });
const size = fc.record({ cols: fc.integer({ min: 1, max: 1000 }), rows: fc.integer({ min: 1, max: 1000 }) });
const exit = fc.record({ exit_code: fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }), signal: fc.integer({ min: 0, max: 64 }) });
const offset = fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER });
const meta = fc.record({
  terminal_id: fc.integer({ min: 1, max: 65_535 }),
  shell: fc.string({ maxLength: 20 }),
  cwd: fc.string({ maxLength: 40 }),
  started_at: fc.date({ min: new Date(0), max: new Date(4e12), noInvalidDate: true }).map((d) => d.toISOString()),
  ephemeral: fc.boolean(),
});

const validClient: fc.Arbitrary<ClientFrame> = fc.oneof(
  bytes.map((data) => ({ t: "input" as const, data })),
  size.map((s) => ({ t: "resize" as const, size: s })),
  fc.constant({ t: "pause" as const }),
  fc.constant({ t: "resume" as const }),
  bytes.map((data) => ({ t: "ping" as const, data })),
  fc.oneof(fc.constant(0), fc.constant(8)).chain((n) => fc.uint8Array({ minLength: n, maxLength: n })).map((mark) => ({ t: "ack" as const, mark })),
);
const validServer: fc.Arbitrary<ServerFrame> = fc.oneof(
  bytes.map((data) => ({ t: "output" as const, data })),
  fc.string({ maxLength: 40 }).map((title) => ({ t: "title" as const, title: title.replace(/[\uD800-\uDFFF]/g, "") })),
  exit.map((e) => ({ t: "exit" as const, exit: e })),
  bytes.map((data) => ({ t: "pong" as const, data })),
  fc.record({ code: fc.string({ maxLength: 20 }), message: fc.string({ maxLength: 60 }) }).map((error) => ({ t: "error" as const, error })),
  fc.uint8Array({ minLength: 8, maxLength: 8 }).map((mark) => ({ t: "mark" as const, mark })),
);
const validAgentData = fc.oneof(
  // A valid OUTPUT's bytes end at or before 2^53 - 1 (past it the decoder refuses it: its end could not be acknowledged exactly).
  fc.tuple(offset, bytes).map(([o, b]) => encodeOutput(Math.min(o, Number.MAX_SAFE_INTEGER - b.byteLength), [b], b.byteLength)),
  fc.tuple(fc.nat({ max: 2 ** 32 - 1 }), offset, bytes).map(([id, o, b]) => encodeSnapshot(id, o, b)),
  fc.tuple(offset, offset, size, meta).map(([a, b, s, m]) => encodeAgentFrame({ t: "hello", hello: { end: Math.max(a, b), oldest: Math.min(a, b), size: s, meta: m } })),
  exit.map((e) => encodeAgentFrame({ t: "exit", exit: e })),
  size.map((s) => encodeAgentFrame({ t: "size", size: s })),
  fc.string({ maxLength: 40 }).map((title) => encodeAgentFrame({ t: "title", frame: encodeServerFrame({ t: "title", title }) })),
);
const validEdgeData = fc.oneof(
  bytes.map((data) => encodeEdgeFrame({ t: "input", data })),
  size.map((s) => encodeEdgeFrame({ t: "resize", size: s })),
  offset.map((o) => encodeEdgeFrame({ t: "ack", offset: o })),
  offset.map((o) => encodeEdgeFrame({ t: "resume", offset: o })),
  fc.nat({ max: 2 ** 32 - 1 }).map((id) => encodeEdgeFrame({ t: "snapshot-request", id })),
);

// --- control link messages -----------------------------------------------------------------------

const idish = fc.oneof(fc.nat(), nastyNumber, fc.string({ maxLength: 5 }));
const opNames = Object.keys(CONTROL_OPS) as ControlOp[];
const execOpish = fc.oneof(
  fc.record({ op: fc.constant("execute"), call: shaped({ mode: fc.constantFrom("sync", "stream", "background"), spec: shaped({ command: fc.string(), cwd: fc.option(fc.string()), env: fc.option(fc.dictionary(fc.string(), fc.string())) }), timeout: fc.option(nastyNumber), wait: fc.option(nastyNumber), tail: fc.option(nastyNumber) }) }),
  fc.record({ op: fc.constantFrom("list", "status", "input", "kill", "bogus"), id: fc.oneof(fc.string(), field), query: shaped({ wait: fc.option(nastyNumber), offset: nastyNumber, tail: fc.option(nastyNumber) }), input: fc.string(), force: fc.boolean() }, { requiredKeys: ["op"] }),
  field,
);
const hostToAgentish = fc.oneof(
  fc.record({ t: fc.constant("req"), id: idish, op: fc.oneof(fc.constantFrom(...opNames), fc.string()), params: fc.oneof(field, shaped({ terminal_id: fc.integer({ min: 0, max: 70_000 }), ephemeral: fc.boolean(), cwd_auto_create: fc.boolean(), welcome: fc.boolean(), debug: fc.boolean(), cols: nastyNumber, rows: nastyNumber, env: fc.dictionary(fc.string(), field), kind: fc.constantFrom("raw", "text", "html", "screenshot"), format: fc.constantFrom("png", "bmp"), fontsize: nastyNumber, save: fc.boolean(), tail: nastyNumber })) }, { requiredKeys: ["t"] }),
  fc.record({ t: fc.constantFrom("exec.req", "exec.ack", "exec.cancel", "exec.nope"), id: idish, scope: fc.string(), op: execOpish, bytes: nastyNumber }, { requiredKeys: ["t"] }),
  fc.record({ t: fc.constantFrom("tun.req", "tun.reqend", "tun.ack", "tun.cancel", "tun.wsopen", "tun.wstext", "tun.wsclose", "tun.nope"), rid: idish, scope: fc.oneof(fc.string(), field), session: fc.oneof(fc.string(), field), method: fc.oneof(fc.constantFrom("GET", "POST"), fc.string(), field), path: fc.oneof(fc.constantFrom("/files/read", "/proxy/80/"), fc.string(), field), query: fc.oneof(fc.string(), field), headers: fc.oneof(fc.array(fc.array(fc.oneof(fc.string(), field), { maxLength: 3 }), { maxLength: 4 }), field), body: fc.oneof(fc.boolean(), field), bytes: nastyNumber, protocols: fc.oneof(fc.array(fc.oneof(fc.string(), field), { maxLength: 3 }), field), text: fc.oneof(fc.string(), field), code: nastyNumber, reason: fc.oneof(fc.string(), field) }, { requiredKeys: ["t"] }),
);
const agentToHostish = fc.oneof(
  fc.record({ t: fc.constant("hello"), agent: shaped({ version: fc.string(), hostname: fc.string(), platform: fc.string(), is_root: fc.boolean() }), sessions: fc.oneof(fc.array(fc.oneof(liveish, field), { maxLength: 20 }), field) }, { requiredKeys: ["t"] }),
  fc.record({ t: fc.constant("reply"), id: idish, ok: fc.oneof(fc.boolean(), field), result: fc.oneof(field, fc.record({ sessions: fc.array(liveish, { maxLength: 5 }) }), fc.record({ status: fc.constantFrom("created", "exists"), meta: metaish })), error: shaped({ status: fc.integer({ min: 100, max: 700 }), code: fc.string(), message: fc.string() }) }, { requiredKeys: ["t"] }),
  fc.record({ t: fc.constant("exited"), terminal_id: nastyNumber, exit: shaped({ exit_code: nastyNumber, signal: nastyNumber }) }, { requiredKeys: ["t"] }),
  fc.record({ t: fc.constantFrom("exec.res", "exec.head", "exec.data", "exec.end", "exec.nope"), id: idish, status: nastyNumber, body: field, ndjson: fc.oneof(fc.string(), field) }, { requiredKeys: ["t"] }),
  fc.record({ t: fc.constantFrom("tun.head", "tun.end", "tun.abort", "tun.ack", "tun.wsready", "tun.wstext", "tun.wsclose", "tun.nope"), rid: idish, status: nastyNumber, headers: fc.oneof(fc.array(fc.array(fc.oneof(fc.string(), field), { maxLength: 3 }), { maxLength: 4 }), field), reason: fc.oneof(fc.string(), field), bytes: nastyNumber, protocol: fc.oneof(fc.string(), field), text: fc.oneof(fc.string(), field), code: nastyNumber }, { requiredKeys: ["t"] }),
);
const text = (json: fc.Arbitrary<unknown>) => fc.oneof(json.map((v) => JSON.stringify(v)), fc.string(), fc.jsonValue().map((v) => JSON.stringify(v)));

const cell = (n: number) => Number.isInteger(n) && n >= 1 && n <= 1000;
/** Throws (a plain Error, which fails the property) when an accepted agent frame has a field out of range. */
function inRange(f: ReturnType<typeof decodeAgentFrame>): void {
  const ok = (() => {
    switch (f.t) {
      case "output":
        return Number.isSafeInteger(f.offset) && f.offset >= 0 && f.frame[0] === ServerOp.OUTPUT;
      case "snapshot":
        return Number.isSafeInteger(f.offset) && f.offset >= 0 && f.frame[0] === ServerOp.OUTPUT;
      case "hello": {
        const { end, oldest, size: s, meta: m } = f.hello;
        return Number.isSafeInteger(end) && Number.isSafeInteger(oldest) && 0 <= oldest && oldest <= end && cell(s.cols) && cell(s.rows) && Number.isInteger(m.terminal_id) && m.terminal_id >= 1 && m.terminal_id <= 65_535 && !Number.isNaN(Date.parse(m.started_at));
      }
      case "size":
        return cell(f.size.cols) && cell(f.size.rows);
      case "exit":
        return Number.isInteger(f.exit.exit_code) && Number.isInteger(f.exit.signal);
      case "title":
        return f.frame[0] === ServerOp.TITLE;
      case "history":
        return Number.isSafeInteger(f.record.id);
      case "input-ack":
        return typeof f.refused === "boolean" && Number.isInteger(f.bytes) && f.bytes >= 0 && f.bytes <= 0xffff_ffff;
      default:
        // A frame kind added to the data link must get its range check here.
        return f satisfies never;
    }
  })();
  if (!ok) throw new Error(`accepted an out-of-range ${f.t} frame`);
}

// --- the properties ------------------------------------------------------------------------------

describe("fuzzing the link decoders", { timeout: TIMEOUT_MS }, () => {
  it("client link: any bytes either decode or are refused with LinkDecodeError", () => {
    const anyClient = fc.oneof(fc.uint8Array({ maxLength: 128 }), typedFrame(Object.values(ClientOp), sizeish), mutated(validClient.map(encodeClientFrame)));
    check(fc.property(anyClient, (b) => survives(() => decodeClientFrame(b))));
    const anyServer = fc.oneof(fc.uint8Array({ maxLength: 128 }), typedFrame(Object.values(ServerOp), field), mutated(validServer.map(encodeServerFrame)));
    check(fc.property(anyServer, (b) => survives(() => decodeServerFrame(b))));
  });

  it("client link: valid frames round-trip", () => {
    check(
      fc.property(validClient, (f) => {
        expect(decodeClientFrame(encodeClientFrame(f))).toEqual(f);
      }),
    );
    check(
      fc.property(validServer, (f) => {
        expect(decodeServerFrame(encodeServerFrame(f))).toEqual(f);
      }),
    );
  });

  it("data link: any agent frame either decodes or is refused with LinkDecodeError", () => {
    const hello = fc.record({ end: nastyNumber, oldest: nastyNumber, size: sizeish, meta: metaish }, { requiredKeys: [] });
    const frames = fc.oneof(
      fc.uint8Array({ maxLength: 128 }),
      typedFrame(Object.values(AgentOp), fc.oneof(hello, sizeish, field)),
      mutated(validAgentData),
    );
    check(fc.property(frames, (b) => survives(() => inRange(decodeAgentFrame(b)))));
  });

  it("data link: any edge frame either decodes or is refused with LinkDecodeError", () => {
    const frames = fc.oneof(fc.uint8Array({ maxLength: 64 }), typedFrame(Object.values(EdgeOp), sizeish), mutated(validEdgeData));
    check(fc.property(frames, (b) => survives(() => decodeEdgeFrame(b))));
  });

  it("data link: valid frames round-trip, and decoded fields are in range", () => {
    check(
      fc.property(validAgentData, (b) => {
        const f = decodeAgentFrame(b);
        if (f.t === "output" || f.t === "snapshot") expect(Number.isSafeInteger(f.offset)).toBe(true);
        if (f.t === "hello") expect(f.hello.oldest).toBeLessThanOrEqual(f.hello.end);
      }),
    );
    check(
      fc.property(validEdgeData, (b) => {
        expect(encodeEdgeFrame(decodeEdgeFrame(b))).toEqual(b);
      }),
    );
  });

  it("control link: any agent → HostDO text either decodes or is refused with LinkDecodeError", () => {
    check(fc.property(text(agentToHostish), (s) => survives(() => decodeAgentToHost(s))));
  });

  it("control link: any HostDO → agent text either decodes or is refused with LinkDecodeError", () => {
    check(fc.property(text(hostToAgentish), (s) => survives(() => decodeHostToAgent(s))));
  });

  it("control link: any reply result is checked against its op without crashing", () => {
    const result = fc.oneof(field, fc.record({ sessions: fc.array(liveish, { maxLength: 5 }) }), fc.record({ status: fc.string(), meta: metaish }), fc.record({ killed: field }));
    check(fc.property(fc.constantFrom(...opNames), result, (op, r) => survives(() => checkResult(op, 1, r))));
  });

  it("control link: session lists refuse bad entries one by one and never pass the cap", () => {
    check(
      fc.property(fc.array(fc.oneof(liveish, field), { maxLength: 40 }), fc.integer({ min: 0, max: 30 }), (entries, cap) => {
        const { accepted, refused } = checkSessions(entries, cap);
        expect(accepted.length + refused.length).toBe(entries.length);
        expect(accepted.length).toBeLessThanOrEqual(cap);
        expect(new Set(accepted.map((s) => s.terminal_id)).size).toBe(accepted.length);
      }),
    );
  });
});
