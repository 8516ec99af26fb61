/**
 * Small pieces of the Open Terminal API on their own: the tunnel's frames and message checks,
 * file-route validation, Python's splitlines, session working directories and the
 * rotated JSONL log.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { randomBytes } from "node:crypto";
import { tmpdir } from "node:os";
import { Writable } from "node:stream";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { parseGlobQuery, parseGrepQuery, parseReadQuery, parseReplaceBody } from "../../shared/open-terminal.ts";
import { checkTunnelAgentMsg, checkTunnelEdgeMsg, decodeBodyFrame, encodeBodyFrame, headerListProblem, sendableCloseCode, TUN_REQ_BODY, TUN_RES_BODY, TUNNEL_DIRECT_SEGMENT_BYTES, TUNNEL_HEADERS_MAX, type HeaderList } from "../../shared/links/tunnel.ts";
import { TunnelServer } from "../../worker/agent/files/tunnel-server.ts";
import { until, Waiters } from "../support/waiters.ts";
import { ProcessLogFile } from "../../worker/agent/exec/process-log-file.ts";
import { CwdStore } from "../../worker/agent/files/cwd-store.ts";
import { splitLines, viewFile } from "../../worker/agent/files/file-routes.ts";
import { DIRECT_READ_BUFFERS, DirectBodyReader, writeBody } from "../../worker/agent/files/direct-body.ts";
import { resolvePath } from "../../worker/agent/files/paths.ts";

const dir = mkdtempSync(join(tmpdir(), "edgetty-ot-units-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("the tunnel protocol", () => {
  it("frames bodies with their kind and request id", () => {
    const frame = encodeBodyFrame(TUN_REQ_BODY, 0xfffffffe, new Uint8Array([9, 8]));
    expect(decodeBodyFrame(frame, TUN_REQ_BODY)).toEqual({ rid: 0xfffffffe, payload: new Uint8Array([9, 8]) });
    expect(decodeBodyFrame(frame, TUN_RES_BODY)).toBeNull();
    expect(decodeBodyFrame(new Uint8Array([TUN_REQ_BODY, 0]), TUN_REQ_BODY)).toBeNull();
  });

  it("accepts well-formed requests and names what is wrong with others", () => {
    const req = { t: "tun.req", rid: 1, scope: "s", session: "", method: "GET", path: "/files/list", query: "", headers: [["accept", "*/*"]], body: false };
    expect(checkTunnelEdgeMsg(req)).toEqual(req);
    expect(checkTunnelEdgeMsg({ ...req, path: "files" })).toEqual({ error: "tun.req path malformed", rid: 1 });
    expect(checkTunnelEdgeMsg({ ...req, method: "get;" })).toEqual({ error: "tun.req method malformed", rid: 1 });
    expect(checkTunnelEdgeMsg({ ...req, headers: [["a"]] })).toEqual({ error: "tun.req headers malformed", rid: 1 });
    expect(checkTunnelEdgeMsg({ t: "tun.wsopen", rid: 2, path: "/files/x", query: "", protocols: [] })).toMatchObject({ rid: 2, error: expect.any(String) });
    expect(checkTunnelEdgeMsg({ t: "nope" })).toEqual({ error: "tunnel message without a valid rid", rid: null });
    expect(checkTunnelAgentMsg({ t: "tun.head", rid: 3, status: 99, headers: [] })).toBeNull();
    expect(checkTunnelAgentMsg({ t: "tun.head", rid: 3, status: 200, headers: [] })).toEqual({ t: "tun.head", rid: 3, status: 200, headers: [] });
    // Direct bodies: a key of 32 hex digits, `direct` only true.
    const key = "0123456789abcdef0123456789abcdef";
    expect(checkTunnelEdgeMsg({ ...req, key })).toEqual({ ...req, key });
    expect(checkTunnelEdgeMsg({ ...req, key: "x" })).toEqual({ error: "tun.req key malformed", rid: 1 });
    expect(checkTunnelAgentMsg({ t: "tun.head", rid: 3, status: 200, headers: [], direct: true })).toEqual({ t: "tun.head", rid: 3, status: 200, headers: [], direct: true });
    expect(checkTunnelAgentMsg({ t: "tun.head", rid: 3, status: 200, headers: [], direct: 1 })).toBeNull();
  });

  it("names why a head's headers cannot cross the tunnel", () => {
    const n = (count: number): HeaderList => Array.from({ length: count }, (_, i) => [`x${i}`, "1"]);
    expect(headerListProblem(n(TUNNEL_HEADERS_MAX))).toBeNull();
    expect(headerListProblem(n(TUNNEL_HEADERS_MAX + 1))).toBe(`${TUNNEL_HEADERS_MAX + 1} headers (at most ${TUNNEL_HEADERS_MAX})`);
    expect(headerListProblem([["X-Long", "l".repeat(20_000)]])).toBe('header "X-Long" is 20000 characters long (at most 16384)');
    const fat = Array.from({ length: 5 }, (_, i): [string, string] => [`x${i}`, "v".repeat(16_000)]);
    expect(headerListProblem(fat)).toBe("80010 characters of headers (at most 65536)");
    expect(headerListProblem([["n".repeat(300), "1"]])).toMatch(/^header name "n{40}"… is 300 characters \(at most 256\)$/);
    expect(checkTunnelAgentMsg({ t: "tun.head", rid: 3, status: 200, headers: n(TUNNEL_HEADERS_MAX + 1) })).toBeNull();
  });

  it("the agent answers 502 rather than send a head the edge would refuse", async () => {
    const sent: { t: string; status?: number; headers?: HeaderList }[] = [];
    const bodies: Uint8Array[] = [];
    const waiters = new Waiters();
    const many = new Headers(Array.from({ length: 2000 }, (_, i): [string, string] => [`x${i}`, "1"]));
    const server = new TunnelServer(
      async () => new Response("a body never sent", { headers: many }),
      (text) => (sent.push(JSON.parse(text)), waiters.notify(), true),
      (frame) => (bodies.push(frame), waiters.notify(), true),
    );
    server.handle({ t: "tun.req", rid: 5, scope: "s", session: "", method: "GET", path: "/proxy/1/", query: "", headers: [], body: false });
    await waiters.until(() => sent.some((m) => m.t === "tun.end"), "the call's tun.end");
    const head = sent.find((m) => m.t === "tun.head")!;
    expect(head.status).toBe(502);
    expect(checkTunnelAgentMsg(head)).not.toBeNull();
    const body = JSON.parse(new TextDecoder().decode(Buffer.concat(bodies.map((f) => decodeBodyFrame(f, TUN_RES_BODY)!.payload))));
    // 2000 and the Content-Type of the text body.
    expect(body).toEqual({ detail: "The answer's head is too large to relay: 2001 headers (at most 100)", code: "BAD_GATEWAY" });
  });

  it("sends a large answer as direct-body segments that split its chunks where a segment ends", async () => {
    const sent: { t: string; direct?: boolean; reason?: string }[] = [];
    const segments: { offset: number; size: number; bytes: number; first: number; last: number }[] = [];
    const waiters = new Waiters();
    // 64 MiB + 3 bytes in chunks of 1,000,003 bytes (each filled with its index), so a chunk straddles the segment's end.
    const total = TUNNEL_DIRECT_SEGMENT_BYTES + 3;
    const chunkBytes = 1_000_003;
    const body = (length: number) =>
      new ReadableStream<Uint8Array>({
        start(controller) {
          for (let at = 0, i = 0; at < length; at += chunkBytes, i++) controller.enqueue(new Uint8Array(Math.min(chunkBytes, length - at)).fill(i % 256));
          controller.close();
        },
      });
    const sendSegment = async (segment: { offset: number; size: number; chunks: AsyncIterable<Uint8Array> }) => {
      let bytes = 0;
      let first = -1;
      let last = -1;
      for await (const chunk of segment.chunks) {
        if (first < 0) first = chunk[0]!;
        last = chunk[chunk.byteLength - 1]!;
        bytes += chunk.byteLength;
      }
      segments.push({ offset: segment.offset, size: segment.size, bytes, first, last });
      waiters.notify();
    };
    const server = new TunnelServer(
      async (request) => {
        const length = Number(new URL(request.url).searchParams.get("length"));
        const declared = Number(new URL(request.url).searchParams.get("declare"));
        return new Response(body(length), { headers: { "Content-Length": String(declared) } });
      },
      (text) => (sent.push(JSON.parse(text)), waiters.notify(), true),
      () => true,
      () => 0,
      undefined,
      sendSegment,
    );
    const key = "0123456789abcdef0123456789abcdef";
    server.handle({ t: "tun.req", rid: 1, scope: "s", session: "", method: "GET", path: "/files/view", query: `length=${total}&declare=${total}`, headers: [], body: false, key });
    await waiters.until(() => segments.length === 2, "both segments");
    expect(sent).toEqual([expect.objectContaining({ t: "tun.head", rid: 1, direct: true })]);
    const straddler = Math.floor(TUNNEL_DIRECT_SEGMENT_BYTES / chunkBytes) % 256;
    expect(segments).toEqual([
      { offset: 0, size: TUNNEL_DIRECT_SEGMENT_BYTES, bytes: TUNNEL_DIRECT_SEGMENT_BYTES, first: 0, last: straddler },
      { offset: TUNNEL_DIRECT_SEGMENT_BYTES, size: 3, bytes: 3, first: straddler, last: straddler },
    ]);

    // A body that comes short of its length ends the call with tun.abort; without a key, frames as before.
    server.handle({ t: "tun.req", rid: 2, scope: "s", session: "", method: "GET", path: "/files/view", query: `length=${2 << 20}&declare=${3 << 20}`, headers: [], body: false, key });
    await waiters.until(() => sent.some((m) => m.t === "tun.abort"), "the short body's tun.abort");
    expect(sent.find((m) => m.t === "tun.abort")!.reason).toMatch(/ended 1048576 bytes short of its segment/);
    server.handle({ t: "tun.req", rid: 3, scope: "s", session: "", method: "GET", path: "/files/view", query: `length=${2 << 20}&declare=${2 << 20}`, headers: [], body: false });
    await waiters.until(() => sent.some((m) => m.t === "tun.end"), "the framed call's tun.end");
    expect(sent.filter((m) => m.t === "tun.head").map((m) => m.direct)).toEqual([true, true, undefined]);
  });

  it("reads a file's direct body into a few reused buffers, byte-exact, and closes the file", async () => {
    // 5 MiB + 7 bytes of a pattern that tells every position apart (a read at the wrong position would
    // show; early reuse of a buffer is the writeBody test's, below, whose writer copies a turn later).
    const total = (5 << 20) + 7;
    const content = Buffer.alloc(total);
    for (let i = 0; i + 4 <= total; i += 4) content.writeUInt32LE(i, i);
    const path = join(dir, "direct.bin");
    writeFileSync(path, content);
    const openFiles = () => readdirSync("/proc/self/fd").length;
    const before = openFiles();
    const body = new DirectBodyReader((await viewFile(path)).body!);
    const received: Buffer[] = [];
    const signal = new AbortController().signal;
    // Pieces cut at odd sizes, as segment ends cut them; each written a turn later, as a socket would.
    for (let piece = 0; ; piece++) {
      const chunk = await body.read(piece % 2 ? 100_003 : 1 << 20, signal);
      if (!chunk) break;
      received.push(Buffer.from(chunk));
      setImmediate(() => body.written(chunk));
    }
    expect(Buffer.concat(received).equals(content)).toBe(true);
    expect(body.buffersMade).toBeLessThanOrEqual(DIRECT_READ_BUFFERS);
    await until("the file closed", () => openFiles() === before, { describe: () => `${openFiles()} descriptors open, ${before} before` });

    // A read that waits for a buffer the sender never gives back ends when the call is aborted; cancel closes the file.
    const stuck = new DirectBodyReader((await viewFile(path)).body!);
    const abort = new AbortController();
    for (let i = 0; i < DIRECT_READ_BUFFERS; i++) expect(await stuck.read(1 << 20, abort.signal)).not.toBeNull();
    const waiting = stuck.read(1 << 20, abort.signal);
    abort.abort();
    await expect(waiting).rejects.toThrow();
    await stuck.cancel();
    await until("the second file closed", () => openFiles() === before, { describe: () => `${openFiles()} descriptors open, ${before} before` });
  });

  it("gives a reader without buffers of its own pieces no larger than the file", async () => {
    const path = join(dir, "small.txt");
    writeFileSync(path, "ten bytes!");
    const reader = (await viewFile(path)).body!.getReader();
    const first = await reader.read();
    expect(new TextDecoder().decode(first.value)).toBe("ten bytes!");
    // Its own allocation, not a frame-sized one holding ten bytes.
    expect(first.value!.buffer.byteLength).toBe(10);
    expect((await reader.read()).done).toBe(true);
  });

  it("writes a file's body to a slow writable, each buffer reused only after its write completed", async () => {
    const total = (3 << 20) + 5;
    const content = randomBytes(total);
    const path = join(dir, "helper-body.bin");
    writeFileSync(path, content);
    const received: Buffer[] = [];
    // Takes each chunk's bytes a turn later, as a socket does: a buffer read into again before the
    // callback would show here as wrong or missing bytes.
    const out = new Writable({
      highWaterMark: 64 << 10,
      write(chunk: Buffer, _encoding, done) {
        setImmediate(() => {
          received.push(Buffer.from(chunk));
          done();
        });
      },
    });
    const finished = new Promise((resolve) => out.on("finish", resolve));
    await writeBody((await viewFile(path)).body!, out, new AbortController().signal);
    await finished;
    expect(Buffer.concat(received).equals(content)).toBe(true);
  });

  it("only lets close codes through that a Worker may send", () => {
    expect([1000, 1001, 1006, 1013, 2999, 3000, 4999, 5000, "x"].map(sendableCloseCode)).toEqual([1000, 1000, 1000, 1000, 1000, 3000, 4999, 1000, 1000]);
  });
});

describe("file-route validation", () => {
  it("reads queries as FastAPI does: defaults, repeats, bounds", () => {
    expect(parseGrepQuery(new URLSearchParams("query=x&include=*.py&include=*.ts"))).toEqual({
      ok: true,
      value: { query: "x", path: ".", regex: true, case_insensitive: false, include: ["*.py", "*.ts"], match_per_line: true, max_results: 50 },
    });
    expect(parseGrepQuery(new URLSearchParams("query=x&max_results=501"))).toMatchObject({ ok: false, reply: { status: 422 } });
    expect(parseGlobQuery(new URLSearchParams("pattern=*&type=any&exclude=null"))).toMatchObject({ ok: true, value: { exclude: [], type: "any" } });
    expect(parseReadQuery(new URLSearchParams("path=a%00b"))).toMatchObject({ ok: false });
  });

  it("checks every replacement and names its place", () => {
    const r = parseReplaceBody(JSON.stringify({ path: "f", replacements: [{ target: "a", replacement: "b" }, { target: 1, replacement: "c", start_line: 0 }] }));
    expect(r.ok).toBe(false);
    const detail = (r as { reply: { body: { detail: { loc: unknown[] }[] } } }).reply.body.detail;
    expect(detail.map((d) => d.loc)).toEqual([["body", "replacements", 1, "target"], ["body", "replacements", 1, "start_line"]]);
  });
});

describe("agent file helpers", () => {
  it("splits lines as Python's splitlines(keepends=True)", () => {
    expect(splitLines("a\nb\r\nc\rd")).toEqual(["a\n", "b\r\n", "c\r", "d"]);
    expect(splitLines("")).toEqual([]);
    expect(splitLines("x\u2028y\n")).toEqual(["x\u2028", "y\n"]);
  });

  it("resolves paths against a base, with ~ as home, without a jail", () => {
    expect(resolvePath("a/../b", "/base", "/home/u")).toBe("/base/b");
    expect(resolvePath("~/x", "/base", "/home/u")).toBe("/home/u/x");
    expect(resolvePath("/etc//passwd", "/base", "/home/u")).toBe("/etc/passwd");
    expect(resolvePath("../../..", "/base", "/home/u")).toBe("/");
  });

  it("keeps session working directories per scope, forgetting them after their TTL", () => {
    const store = new CwdStore(1000);
    store.set("u1", "chat", "/a", 0);
    expect(store.get("u1", "chat", 500)).toBe("/a");
    expect(store.get("u2", "chat", 500)).toBeUndefined();
    expect(store.get("u1", "chat", 1400)).toBe("/a"); // sliding: used at 500
    expect(store.get("u1", "chat", 2500)).toBeUndefined();
    store.set("u1", "", "/b", 0);
    expect(store.get("u1", "", 0)).toBeUndefined();
  });

  it("rotates a log file to its newest half, at a line boundary", () => {
    const log = new ProcessLogFile(join(dir, "p.jsonl"), 10_000);
    for (let i = 0; i < 500; i++) log.append({ type: "output", data: `line ${i}\r\n` });
    log.close();
    const size = statSync(join(dir, "p.jsonl")).size;
    expect(size).toBeLessThanOrEqual(10_000);
    const lines = readFileSync(join(dir, "p.jsonl"), "utf8").trim().split("\n");
    expect(JSON.parse(lines[0]!)).toMatchObject({ type: "output" });
    expect(JSON.parse(lines.at(-1)!)).toEqual({ type: "output", data: "line 499\r\n" });
  });
});
