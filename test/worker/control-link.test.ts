/** The control link's module and its request table, without a transport. */
import { describe, expect, it } from "vitest";
import { LinkDecodeError } from "../../shared/links/codec.ts";
import { checkResult, checkSessions, decodeAgentToHost, decodeHostToAgent } from "../../shared/links/control.ts";
import { Correlator } from "../../shared/links/correlator.ts";

const started = "2026-01-01T00:00:00.000Z";
const live = (id: number) => ({ terminal_id: id, shell: "bash", cwd: "/", started_at: started, ephemeral: false, cols: 80, rows: 24 });
const create = { terminal_id: 3, ephemeral: false, cwd_auto_create: false, welcome: false, debug: false, cols: 80, rows: 24, env: { A: "1" } };

function refusal(decode: () => unknown): LinkDecodeError {
  try {
    decode();
  } catch (error) {
    if (error instanceof LinkDecodeError) return error;
    throw error;
  }
  throw new Error("accepted");
}

describe("the control link's decoders", () => {
  it("decode a request with its params checked for its op", () => {
    const req = { t: "req", id: 4, op: "create", params: { ...create, junk: 1 } };
    expect(decodeHostToAgent(JSON.stringify(req))).toEqual({ t: "req", id: 4, op: "create", params: create });
  });

  it("refuse bad params with the request's id, and an unknown op with 501", () => {
    const bad = refusal(() => decodeHostToAgent(JSON.stringify({ t: "req", id: 5, op: "create", params: { ...create, cols: 0 } })));
    expect(bad).toMatchObject({ id: 5, t: "req", status: 400 });
    expect(bad.message).toMatch(/^create params\.cols: /);
    expect(refusal(() => decodeHostToAgent(JSON.stringify({ t: "req", id: 6, op: "format-disk", params: {} })))).toMatchObject({ id: 6, status: 501 });
    expect(refusal(() => decodeHostToAgent(JSON.stringify({ t: "req", id: 7, op: "create", params: { ...create, env: { "A=B": "x" } } })))).toMatchObject({ id: 7 });
    expect(refusal(() => decodeHostToAgent('{"t":"req","id":-1,"op":"list","params":{}}'))).toMatchObject({ id: null });
    expect(refusal(() => decodeHostToAgent("[1]")).message).toBe("control frame has no type");
  });

  it("decode the agent's frames and refuse malformed ones naming the field", () => {
    const exited = { t: "exited", terminal_id: 3, exit: { exit_code: 0, signal: 0 } };
    expect(decodeAgentToHost(JSON.stringify(exited))).toEqual(exited);
    expect(decodeAgentToHost('{"t":"reply","id":1,"ok":false,"error":{"status":404,"code":"X","message":"m"}}')).toMatchObject({ ok: false });
    expect(refusal(() => decodeAgentToHost('{"t":"reply","id":1,"ok":false,"error":{"status":200,"code":"X","message":"m"}}')).message).toMatch(/error\.status/);
    expect(refusal(() => decodeAgentToHost('{"t":"exited","terminal_id":70000,"exit":{"exit_code":0,"signal":0}}'))).toMatchObject({ t: "exited" });
    expect(refusal(() => decodeAgentToHost(`{"t":"hello","agent":{"version":"1","hostname":"h","platform":"linux","is_root":false},"sessions":${JSON.stringify(Array(4097).fill(0))}}`)).message).toMatch(/hello\.sessions/);
  });

  it("check a reply's result against its op", () => {
    expect(checkResult("kill", 1, { killed: true })).toEqual({ killed: true });
    expect(refusal(() => checkResult("create", 2, { status: "created", meta: { ...live(3), started_at: "later" } }))).toMatchObject({ id: 2 });
    expect(refusal(() => checkResult("screen", 3, { content_type: "text/plain", body: "x", encoding: "hex" })).message).toMatch(/encoding/);
  });

  it("refuse bad session entries one by one, repeats, and those past the cap", () => {
    const { accepted, refused } = checkSessions([live(1), { ...live(2), cols: "80" }, live(1), live(3), live(4)], 2);
    expect(accepted.map((s) => s.terminal_id)).toEqual([1, 3]);
    expect(refused).toEqual([expect.stringMatching(/^#1 cols: /), "#2: terminal 1 listed twice", "#4: terminal 4 is past the cap of 2 sessions"]);
  });
});

describe("Correlator", () => {
  it("gives fresh ids, counts by kind and holds to its cap", () => {
    const table = new Correlator<{ kind: "a" | "b" }>(3);
    const a = { kind: "a" as const };
    const ids = [table.open(a), table.open({ kind: "b" }), table.open({ kind: "a" })];
    expect(new Set(ids).size).toBe(3);
    expect(table.open({ kind: "b" })).toBeNull();
    expect(table.count("a")).toBe(2);
    expect(table.take(ids[0]!, { kind: "a" })).toBeUndefined(); // not the entry it holds
    expect(table.take(ids[0]!, a)).toBe(a);
    expect(table.count("a")).toBe(1);
    expect(table.drain().map(([id]) => id).sort()).toEqual([ids[1], ids[2]].sort());
    expect(table.size).toBe(0);
    expect(table.count("b")).toBe(0);
  });

  it("accepts a peer's ids once each, within its cap", () => {
    const table = new Correlator<{ kind: "x" }>(2);
    expect(table.accept(7, { kind: "x" })).toBe(true);
    expect(table.accept(7, { kind: "x" })).toBe(false);
    expect(table.accept(8, { kind: "x" })).toBe(true);
    expect(table.accept(9, { kind: "x" })).toBe(false);
    expect(table.open({ kind: "x" })).toBeNull();
  });
});
