/** The control link's module and its request table, without a transport. */
import { describe, expect, it } from "vitest";
import { LinkDecodeError } from "../../shared/links/codec.ts";
import { checkResult, checkSessions, decodeAgentToHost, decodeHostToAgent } from "../../shared/links/control.ts";
import { Correlator } from "../../shared/links/correlator.ts";
import { decodeTunnelBinary, encodeBodyFrame, TUN_REQ_BODY, TUN_RES_BODY, TUN_WS_BINARY } from "../../shared/links/tunnel.ts";

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

  it("keeps the ids it hands out below its id limit, skipping ids in flight", () => {
    const table = new Correlator<{ kind: "x" }>(4, 8);
    const held = table.open({ kind: "x" })!;
    for (let i = 0; i < 20; i++) {
      const id = table.open({ kind: "x" })!;
      expect(id).toBeLessThan(8);
      expect(id).not.toBe(held);
      table.take(id);
    }
  });
});

describe("the HTTP tunnel on the control link", () => {
  const head = { t: "tun.head", rid: 7, status: 200, headers: [["content-type", "text/plain"]] };
  const req = { t: "tun.req", rid: 9, scope: "s", session: "", method: "GET", path: "/files/cwd", query: "", headers: [], body: false };

  it("decodes tun.* frames both ways, checked", () => {
    expect(decodeAgentToHost(JSON.stringify(head))).toEqual(head);
    expect(decodeAgentToHost(JSON.stringify({ t: "tun.end", rid: 7 }))).toEqual({ t: "tun.end", rid: 7 });
    expect(decodeHostToAgent(JSON.stringify(req))).toEqual(req);
  });

  it("refuses malformed tun.* frames with LinkDecodeError, naming the rid to abort", () => {
    // The rid is named, so the HostDO fails that call at once (host-link.ts refuse).
    expect(refusal(() => decodeAgentToHost(JSON.stringify({ ...head, status: 99 })))).toMatchObject({ id: 7, t: "tun.head" });
    const many = Array.from({ length: 2000 }, (_, i) => [`x${i}`, "1"]);
    expect(refusal(() => decodeAgentToHost(JSON.stringify({ ...head, headers: many })))).toMatchObject({ id: 7, t: "tun.head" });
    expect(refusal(() => decodeAgentToHost(JSON.stringify({ t: "tun.wstext", rid: 8, text: 42 })))).toMatchObject({ id: 8, t: "tun.wstext" });
    expect(refusal(() => decodeAgentToHost(JSON.stringify({ t: "tun.what", rid: 1 })))).toMatchObject({ t: "tun.what" });
    expect(refusal(() => decodeAgentToHost(JSON.stringify({ t: "tun.end", rid: -1 })))).toBeInstanceOf(LinkDecodeError);
    expect(refusal(() => decodeHostToAgent(JSON.stringify({ ...req, method: "get me" })))).toMatchObject({ id: 9, t: "tun.req" });
    expect(refusal(() => decodeHostToAgent(JSON.stringify({ ...req, path: "files" })))).toMatchObject({ id: 9 });
  });

  it("takes only tunnel body frames of the kinds allowed for a direction", () => {
    const frame = encodeBodyFrame(TUN_RES_BODY, 7, new Uint8Array([1, 2, 3]));
    expect(decodeTunnelBinary(frame, [TUN_RES_BODY, TUN_WS_BINARY])).toEqual({ kind: TUN_RES_BODY, rid: 7, payload: new Uint8Array([1, 2, 3]) });
    expect(refusal(() => decodeTunnelBinary(encodeBodyFrame(TUN_REQ_BODY, 7, new Uint8Array(1)), [TUN_RES_BODY, TUN_WS_BINARY]))).toBeInstanceOf(LinkDecodeError);
    expect(refusal(() => decodeTunnelBinary(new Uint8Array([TUN_RES_BODY, 0, 0]), [TUN_RES_BODY]))).toBeInstanceOf(LinkDecodeError);
    expect(refusal(() => decodeTunnelBinary(new Uint8Array(0), [TUN_RES_BODY]))).toBeInstanceOf(LinkDecodeError);
  });
});
