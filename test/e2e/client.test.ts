/**
 * The typed client (`edgetty/client`) against the real local stack: every group of methods with
 * real calls on both mounts (the default server at the top level, and `local` under
 * `/api/v1/terminals/local/`), and the mapping of each family's refusals to EdgettyError.
 */
import { describe, expect, it } from "vitest";
import { EdgettyClient, EdgettyError, type ServerClient, type StreamEvent } from "edgetty/client";
import { useStack } from "../support/stack.ts";
import { until } from "../support/waiters.ts";

const stack = useStack();

const client = (token = stack.apiKey, extra: Partial<ConstructorParameters<typeof EdgettyClient>[0]> = {}) => new EdgettyClient({ url: stack.url, token, ...extra });

/** The EdgettyError a call rejects with (fails the test when it resolves or throws anything else). */
async function refusal(call: Promise<unknown>): Promise<EdgettyError> {
  try {
    await call;
  } catch (error) {
    if (error instanceof EdgettyError) return error;
    throw error;
  }
  throw new Error("the call succeeded; expected an EdgettyError");
}

/** Both mounts of the default server. */
const mounts: [string, () => ServerClient][] = [
  ["top level", () => client()],
  ["/api/v1/terminals/local/", () => client().server("local")],
];

describe.each(mounts)("terminal sessions at the %s", (_name, at) => {
  it("create, list, attach and see output, history, raw, screenshot, delete", async () => {
    const et = at();
    const id = et.mount === "" ? 701 : 702;
    expect(await et.sessions.create({ terminal_id: id, shell: "bash", cols: 100, rows: 30 })).toMatchObject({ status: "created", terminal_id: id, shell: "bash" });
    expect((await et.sessions.list()).map((s) => s.id)).toContain(id);

    const conn = stack.track(await et.sessions.connect({ terminal_id: id }));
    expect(conn.info).toMatchObject({ server_id: "local", terminal_id: id, readonly: false, cols: 100, rows: 30 });
    conn.write("echo client-$((6*7))\r");
    await conn.waitForOutput("client-42");
    await conn.ping();

    const history = await until("the command in the history", async () => (await et.sessions.history(id)).find((r) => r.command === "echo client-$((6*7))" && r.status === "done"));
    expect(history.exit_code).toBe(0);

    const raw = await et.sessions.raw(id);
    expect(raw.contentType).toBe("application/octet-stream");
    expect(new TextDecoder().decode(raw.content)).toContain("client-42");
    const text = await et.sessions.raw(id, { format: "text", tail: 5 });
    expect(text.content).toContain("client-42");

    const shot = await et.sessions.screenshot(id, { format: "png", fontsize: 10, save: false });
    expect(shot.contentType).toBe("image/png");
    expect([...shot.image.subarray(0, 4)]).toEqual([0x89, 0x50, 0x4e, 0x47]);
    expect(shot.path).toBeNull();
    expect(shot.width).toBe(100 * 6);

    expect(await et.sessions.delete(id)).toEqual({ status: "deleted", terminal_id: id });
    const closed = await conn.closed;
    expect(closed.code).toBe(1000);
    const gone = await refusal(et.sessions.delete(id));
    expect(gone).toMatchObject({ status: 404, code: "SESSION_NOT_FOUND", family: "session" });
    const rawGone = await refusal(et.sessions.raw(id));
    expect(rawGone).toMatchObject({ status: 404, code: "SESSION_NOT_FOUND" });
  });

  it("refuses a read-only attach to a missing session with the upgrade's 404", async () => {
    const error = await refusal(at().sessions.connect({ terminal_id: 709, readonly: true }));
    expect(error).toMatchObject({ status: 404, code: "SESSION_NOT_FOUND", family: "session" });
  });
});

describe.each(mounts)("execute at the %s", (_name, at) => {
  it("runs in the background, waits, pages, takes input and kills", async () => {
    const et = at();
    const done = await et.exec.run("echo bg-$((40+2))", { wait: 30 });
    expect(done).toMatchObject({ status: "done", exit_code: 0 });
    expect(done.output.map((e) => e.data).join("")).toContain("bg-42");

    const reader = await et.exec.run("read line; echo got-$line");
    expect(reader.status).toBe("running");
    expect((await et.exec.list()).map((p) => p.id)).toContain(reader.id);
    expect(await et.exec.input(reader.id, "abc\n")).toEqual({ status: "ok" });
    // Ask until the process has ended (a CI run once got the view without the echo), then check it.
    const after = await until("the reader's end", async () => {
      const view = await et.exec.status(reader.id, { wait: 5 });
      return view.status === "running" ? null : view;
    });
    expect(after).toMatchObject({ status: "done", exit_code: 0 });
    expect(after.output.map((e) => e.data).join("")).toContain("got-abc");

    const sleeper = await et.exec.run("sleep 300");
    expect(await et.exec.kill(sleeper.id, { force: true })).toEqual({ status: "killed" });
    expect(await refusal(et.exec.status(sleeper.id))).toMatchObject({ status: 404, family: "open-terminal", message: "Process not found" });
  });

  it("runs seed 004's synchronous call and NDJSON stream", async () => {
    const et = at();
    expect(await et.exec.runSync("echo out; echo err >&2; exit 3", { timeout: 30 })).toEqual({ exit_code: 3, stdout: "out\n", stderr: "err\n" });
    const events: StreamEvent[] = [];
    for await (const event of et.exec.stream("echo one; echo two >&2; echo three")) events.push(event);
    expect(events.at(-1)).toEqual({ type: "exit", data: 0 });
    expect(events.filter((e) => e.type === "stdout").map((e) => e.data).join("")).toBe("one\nthree\n");
    expect(events.filter((e) => e.type === "stderr").map((e) => e.data).join("")).toBe("two\n");
  });

  it("answers a validation failure as a 422 with the fields named", async () => {
    const error = await refusal(at().exec.status("x", { wait: 1000 }));
    expect(error).toMatchObject({ status: 422, code: "VALIDATION_ERROR", family: "open-terminal" });
    expect(error.message).toContain("query.wait");
  });
});

describe.each(mounts)("files at the %s", (_name, at) => {
  it("write, read, list, grep, glob, move, mkdir, delete", async () => {
    const et = at();
    const dir = `${stack.home}/files-${et.mount === "" ? "top" : "mount"}`;
    expect(await et.files.mkdir(dir)).toEqual({ path: dir });
    expect(await et.files.write(`${dir}/a.txt`, "alpha\nbeta\n")).toEqual({ path: `${dir}/a.txt`, size: 11 });
    expect(await et.files.read(`${dir}/a.txt`, { start_line: 2 })).toMatchObject({ total_lines: 2, content: "beta\n" });
    expect((await et.files.list(dir)).entries).toMatchObject([{ name: "a.txt", type: "file", size: 11 }]);
    expect((await et.files.grep("bet", { path: dir })).matches).toMatchObject([{ file: `${dir}/a.txt`, line: 2 }]);
    expect((await et.files.glob("*.txt", { path: dir })).matches.map((m) => m.path)).toEqual(["a.txt"]);
    expect(await et.files.replace(`${dir}/a.txt`, [{ target: "beta", replacement: "gamma" }])).toMatchObject({ size: 12 });
    expect(await et.files.move(`${dir}/a.txt`, `${dir}/b.txt`)).toEqual({ source: `${dir}/a.txt`, destination: `${dir}/b.txt` });
    expect(await et.files.display(`${dir}/b.txt`)).toEqual({ path: `${dir}/b.txt`, exists: true });
    const missing = await refusal(et.files.read(`${dir}/a.txt`));
    expect(missing).toMatchObject({ status: 404, family: "open-terminal", message: "File not found" });
    expect(await et.files.delete(dir)).toEqual({ path: dir, type: "directory" });
  });

  it("uploads a stream and downloads it back as a stream, byte for byte", async () => {
    const et = at();
    const dir = `${stack.home}/up-${et.mount === "" ? "top" : "mount"}`;
    const CHUNK_BYTES = 256 * 1024;
    const CHUNKS = 12; // 3 MiB
    const chunk = (i: number) => new Uint8Array(CHUNK_BYTES).map((_, j) => (i * 31 + j) & 0xff);
    async function* source(): AsyncGenerator<Uint8Array> {
      for (let i = 0; i < CHUNKS; i++) yield chunk(i);
    }
    expect(await et.files.upload(dir, "../evil/blob.bin", source())).toEqual({ path: `${dir}/blob.bin`, size: CHUNK_BYTES * CHUNKS });

    const down = await et.files.download(`${dir}/blob.bin`);
    let offset = 0;
    let same = true;
    for await (const piece of down.chunks()) {
      for (let k = 0; k < piece.byteLength; k++, offset++) if (piece[k] !== ((Math.floor(offset / CHUNK_BYTES) * 31 + (offset % CHUNK_BYTES)) & 0xff)) same = false;
    }
    expect(offset).toBe(CHUNK_BYTES * CHUNKS);
    expect(same).toBe(true);

    expect(await et.files.upload(dir, "note.txt", "hello upload", { type: "text/plain" })).toEqual({ path: `${dir}/note.txt`, size: 12 });
    expect(await (await et.files.serve(`${dir}/note.txt`)).text()).toBe("hello upload");
    const zip = await et.files.archive([`${dir}/note.txt`]);
    expect(zip.contentType).toBe("application/zip");
    expect([...(await zip.bytes()).subarray(0, 2)]).toEqual([0x50, 0x4b]);
  });
});

describe.each(mounts)("Open Terminal sessions at the %s", (_name, at) => {
  it("create, list, attach the raw WebSocket, type, delete", async () => {
    const et = at();
    const info = await et.terminals.create();
    expect((await et.terminals.list()).map((t) => t.id)).toContain(info.id);
    expect(await et.terminals.get(info.id)).toEqual(info);
    const raw = stack.track(await et.terminals.connect(info.id));
    raw.resize(90, 20);
    raw.write("echo raw-$((7*6))\r");
    await raw.waitForOutput("raw-42");
    expect(await et.terminals.delete(info.id)).toEqual({ status: "deleted" });
    await raw.closed;
    expect(await refusal(et.terminals.get(info.id))).toMatchObject({ status: 404, family: "terminals", message: "Session not found" });
  });

  it("maps the WebSocket's close codes: 4001 for a wrong token", async () => {
    const et = at();
    const info = await et.terminals.create();
    const error = await refusal(et.terminals.connect(info.id, { token: "wrong" }));
    expect(error).toMatchObject({ status: 401, code: "UNAUTHORIZED", family: "websocket", closeCode: 4001 });
    await et.terminals.delete(info.id);
  });
});

describe("discovery", () => {
  it("health, config, openapi, system on both mounts", async () => {
    for (const [, at] of mounts) {
      const et = at();
      expect(await et.openTerminal.health()).toEqual({ status: "ok" });
      expect((await et.openTerminal.config()).features.terminal).toBe(true);
      expect((await et.openTerminal.openapi())["paths"]).toHaveProperty("/execute");
      expect((await et.openTerminal.system()).prompt).toBeTruthy();
      expect(Array.isArray((await et.openTerminal.ports()).ports)).toBe(true);
    }
  });

  it("reaches any route of a server through its mount as fetch, answering the Response as is", async () => {
    const res = await client().server("local").fetch("api/v1/terminal/sessions", { query: { history_limit: 0 } });
    expect(res.status).toBe(200);
    expect(Array.isArray(await res.json())).toBe(true);
    const missing = await client().server("local").fetch("/no/such/route");
    expect(missing.status).toBe(404);
    await missing.body?.cancel();
  });
});

describe("admin and users", () => {
  it("creates a user, group, grant and token; the user lists and reads only what is granted", async () => {
    const et = client();
    expect(await et.admin.users.create({ id: "carol", email: "carol@example.com" })).toMatchObject({ id: "carol", role: "user", disabled: false });
    expect((await et.admin.users.list()).map((u) => u.id)).toContain("carol");
    expect(await et.admin.groups.create({ id: "ops" })).toMatchObject({ id: "ops", members: [] });
    await et.admin.groups.addMember("ops", "carol");
    expect((await et.admin.groups.list()).find((g) => g.id === "ops")?.members).toEqual(["carol"]);
    expect(await et.admin.grants.put({ server_id: "local", principal_type: "group", principal_id: "ops", access: "read" })).toMatchObject({ terminal_id: 0, access: "read" });
    const token = await et.admin.tokens.create({ user_id: "carol", name: "client-test", ttl_s: 3600 });
    expect(token.token).toMatch(/^ett_/);
    expect((await et.admin.tokens.list("carol")).map((t) => t.id)).toEqual([token.id]);

    const carol = client(token.token);
    expect(await carol.auth.whoami()).toEqual({ role: "user", user_id: "carol", read_only: false });
    expect((await carol.servers.list()).map((s) => [s.id, s.access])).toEqual([["local", "read"]]);
    const local = carol.server("local");
    expect(Array.isArray(await local.sessions.list())).toBe(true);
    // A read grant looks but does not change anything.
    expect(await refusal(local.sessions.create({ terminal_id: 720 }))).toMatchObject({ status: 403, code: "READ_ONLY", family: "terminals" });
    // Users never reach the admin API or the default server's un-prefixed routes.
    expect(await refusal(carol.admin.users.list())).toMatchObject({ status: 403, code: "ADMIN_ONLY", family: "session" });
    expect(await refusal(carol.sessions.list())).toMatchObject({ status: 403, code: "ADMIN_ONLY" });

    const audit = [];
    for await (const event of et.admin.auditEvents({ pageSize: 2, max: 50 })) audit.push(event.action);
    expect(audit).toEqual(expect.arrayContaining(["user.create", "group.create", "group.member", "grant.put", "token.create"]));

    expect(await et.admin.tokens.revoke(token.id)).toEqual({ status: "revoked", id: token.id, closed_websockets: 0 });
    expect(await refusal(carol.servers.list())).toMatchObject({ status: 401, family: "terminals" });
    expect(await et.admin.grants.delete({ server_id: "local", principal_type: "group", principal_id: "ops" })).toEqual({ status: "deleted", closed_websockets: 0 });
    expect(await et.admin.users.delete("carol")).toEqual({ status: "deleted", id: "carol" });
  });

  it("adds, disables and removes a server; stats answer", async () => {
    const et = client();
    const added = await et.admin.servers.put("client-srv", { name: "Client server" });
    expect(added).toMatchObject({ id: "client-srv", name: "Client server" });
    expect(added.token.length).toBeGreaterThanOrEqual(16);
    expect(await et.admin.servers.setEnabled("client-srv", false)).toMatchObject({ id: "client-srv", enabled: false, kind: "agent" });
    expect(await refusal(et.server("client-srv").sessions.list())).toMatchObject({ status: 403, code: "SERVER_DISABLED", family: "terminals" });
    expect((await et.admin.servers.stats()).servers.map((s) => s.id)).toContain("local");
    expect(await et.admin.servers.delete("client-srv")).toEqual({ status: "deleted", id: "client-srv" });
  });
});

describe("errors in each family's shape", () => {
  it("401 without a valid token, on every family and on the session WebSocket", async () => {
    const bad = client("not-the-key");
    expect(await refusal(bad.sessions.list())).toMatchObject({ status: 401, code: "UNAUTHORIZED", family: "session" });
    expect(await refusal(bad.exec.list())).toMatchObject({ status: 401, family: "open-terminal", message: "Invalid API key" });
    expect(await refusal(bad.servers.list())).toMatchObject({ status: 401, family: "terminals" });
    expect(await refusal(bad.admin.users.list())).toMatchObject({ status: 401, family: "session" });
    expect(await refusal(bad.sessions.connect({ terminal_id: 730 }))).toMatchObject({ status: 401, family: "session" });
  });

  it("404 for an unknown server on any family, in the terminals family's shape", async () => {
    const nope = client().server("no-such-server");
    for (const call of [() => nope.sessions.list(), () => nope.exec.list(), () => nope.files.list("/")]) {
      expect(await refusal(call())).toMatchObject({ status: 404, code: "SERVER_NOT_FOUND", family: "terminals", message: "Terminal server not found" });
    }
  });

  it("a network failure is an EdgettyError with status 0", async () => {
    const error = await refusal(new EdgettyClient({ url: "http://127.0.0.1:9", token: "x" }).openTerminal.health());
    expect(error).toMatchObject({ status: 0, code: "NETWORK_ERROR" });
  });
});

describe("the global-WebSocket path (browsers, Deno, Node ≥ 22)", () => {
  it("attaches, and explains a refused upgrade by asking again without it", async () => {
    // This Node has no global WebSocket: stand `ws` in for one (it takes undici's `{headers}` init too).
    const { WebSocket: Ws } = await import("ws");
    const g = globalThis as { WebSocket?: unknown };
    const before = g.WebSocket;
    g.WebSocket = Ws;
    try {
      const et = client();
      await et.sessions.create({ terminal_id: 740 });
      const conn = stack.track(await et.sessions.connect({ terminal_id: 740 }));
      conn.write("echo global-$((2*21))\r");
      await conn.waitForOutput("global-42");
      await et.sessions.delete(740);
      await conn.closed;
      // A 401 answers the same without the upgrade, so the client can tell it.
      expect(await refusal(client("wrong").sessions.connect({ terminal_id: 740 }))).toMatchObject({ status: 401, code: "UNAUTHORIZED", family: "session" });
      // A refusal that needs the upgrade to show cannot be read through this API: said as such.
      expect(await refusal(et.sessions.connect({ terminal_id: 741, readonly: true }))).toMatchObject({ status: 0, code: "WEBSOCKET_REFUSED" });
    } finally {
      g.WebSocket = before;
    }
  });
});

describe("back-pressure on the session WebSocket", () => {
  it("asks the edge to hold output while it is unread, and goes on with the end of it", async () => {
    const et = client();
    const conn = stack.track(await et.sessions.connect({ terminal_id: 750 }));
    // 32 MB of output the test does not read, then a line to find. The client pauses at 1 MiB
    // unread; the edge may have sent more before the PAUSE reaches it (a loaded machine once let
    // a whole 4 MB flood through first), but not most of 32 MB.
    conn.write("head -c 32000000 /dev/zero | tr '\\0' x; echo; echo flood-$((3*3))\r");
    await until("the flood's end in the raw output", async () => new TextDecoder().decode((await et.sessions.raw(750, { tail: 2 })).content).includes("flood-9"));
    expect(conn.paused).toBe(true);
    expect(conn.unreadBytes).toBeLessThan(16_000_000);
    await conn.waitForOutput("flood-9", 30_000);
    expect(conn.paused).toBe(false);
    await et.sessions.delete(750);
  });
});

describe("a stream cut short", () => {
  // Last in the file: it stops the agent (and with it every session).
  it("throws STREAM_INCOMPLETE when the agent goes away before the command's exit", async () => {
    const events = client().exec.stream("echo started; sleep 60");
    expect((await events.next()).value).toEqual({ type: "stdout", data: "started\n" });
    await stack.stopAgent();
    try {
      expect(await refusal(events.next())).toMatchObject({ status: 0, code: "STREAM_INCOMPLETE" });
    } finally {
      await stack.restartAgent();
    }
  });
});
