/**
 * Open Terminal's `/api/terminals` end to end: one PTY session, two doors (this API and the
 * terminal session API), the raw WebSocket with first-message auth and its close codes, and the
 * session limit.
 */
import { mkdirSync, readlinkSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { OPEN_TERMINAL_MAX_SESSIONS, TERMINAL_WS_PENDING_MAX as RAW_PENDING_MAX } from "../../shared/open-terminal.ts";
import { useStack } from "../support/stack.ts";
import { INPUT_IN_FLIGHT_MAX_BYTES } from "../../shared/links/data.ts";
import { RawClient } from "../support/raw-client.ts";
import { TermClient } from "../support/term-client.ts";
import { until } from "../support/waiters.ts";

interface TerminalInfo {
  id: string;
  created_at: string;
  pid: number;
}

const stack = useStack();
const PREFIX = "/api/v1/terminals/local";

async function createTerminal(base = ""): Promise<TerminalInfo> {
  const res = await stack.api(`${base}/api/terminals`, { method: "POST" });
  expect(res.status).toBe(200);
  return (await res.json()) as TerminalInfo;
}

async function sessionIds(): Promise<number[]> {
  const res = await stack.api("/api/v1/terminal/sessions");
  return ((await res.json()) as { id: number }[]).map((s) => s.id);
}

async function raw(id: string, base = ""): Promise<RawClient> {
  const client = await RawClient.connect(`${stack.url}${base}/api/terminals/${id}`, stack.apiKey);
  stack.track(client);
  return client;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe("/api/terminals", () => {
  it("lists one session per name: an X-Session-Id equal to a session-API terminal's id keeps the name", async () => {
    const named = (await (await stack.api("/api/terminals", { method: "POST", headers: { "X-Session-Id": "77" } })).json()) as TerminalInfo;
    expect((await stack.api("/api/v1/terminal/create", { method: "POST", body: JSON.stringify({ terminal_id: 77 }) })).status).toBe(200);
    const list = (await (await stack.api("/api/terminals")).json()) as TerminalInfo[];
    expect(list.filter((t) => t.id === "77")).toEqual([named]);
    expect((await stack.api("/api/terminals/77", { method: "DELETE" })).status).toBe(200);
    // The named session went; the session API's terminal 77 stays.
    expect(alive(named.pid)).toBe(false);
    expect(await sessionIds()).toContain(77);
  });

  it("takes an empty X-Session-Id for none (a fresh id, as the reference) and refuses a malformed one", async () => {
    const res = await stack.api("/api/terminals", { method: "POST", headers: { "X-Session-Id": "" } });
    expect(res.status).toBe(200);
    const made = (await res.json()) as TerminalInfo;
    expect(made.id).not.toBe("");
    expect((await stack.api(`/api/terminals/${made.id}`, { method: "DELETE" })).status).toBe(200);
    const bad = await stack.api("/api/terminals", { method: "POST", headers: { "X-Session-Id": "a/b" } });
    expect(bad.status).toBe(400);
    expect(await bad.json()).toMatchObject({ error: expect.stringContaining("X-Session-Id") });
  });

  it("starts a session made with X-Session-Id in that session's working directory (POST /files/cwd)", async () => {
    const dir = join(stack.home, "ot-cwd-session");
    mkdirSync(dir, { recursive: true });
    const headers = { "X-Session-Id": "chat-cwd", "Content-Type": "application/json" };
    expect((await stack.api("/files/cwd", { method: "POST", headers, body: JSON.stringify({ path: dir }) })).status).toBe(200);
    const res = await stack.api("/api/terminals", { method: "POST", headers: { "X-Session-Id": "chat-cwd" } });
    const t = (await res.json()) as TerminalInfo;
    // The pid comes back once the PTY's child is forked; it changes directory when it next runs
    // (on a loaded machine, after this test reads /proc), so wait for that.
    const cwdOf = (pid: number) => readlinkSync(`/proc/${pid}/cwd`);
    const other = await createTerminal(); // another session, or none, starts at home as before
    try {
      await until("the session's shell in its working directory", () => cwdOf(t.pid) === dir, { describe: () => cwdOf(t.pid) });
      await until("the other shell at home", () => cwdOf(other.pid) === stack.home, { describe: () => cwdOf(other.pid) });
    } finally {
      for (const id of [t.id, other.id]) expect((await stack.api(`/api/terminals/${id}`, { method: "DELETE" })).status).toBe(200);
    }
  });

  it("creates a session in the reference's shape, visible through both APIs", async () => {
    const t = await createTerminal();
    expect(Object.keys(t).sort()).toEqual(["created_at", "id", "pid"]);
    expect(t.id).toMatch(/^\d+$/);
    expect(t.created_at).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{6})?Z$/);
    expect(alive(t.pid)).toBe(true);
    expect(await sessionIds()).toContain(Number(t.id));
    const list = (await (await stack.api("/api/terminals")).json()) as TerminalInfo[];
    expect(list).toContainEqual(t);
    expect(await (await stack.api(`/api/terminals/${t.id}`)).json()).toEqual(t);
  });

  it("takes an empty X-User-Id for none, as /execute and the files routes do: the same sessions as without it", async () => {
    const t = await createTerminal();
    const empty = { headers: { "X-User-Id": "" } };
    const listed = (await (await stack.api("/api/terminals", empty)).json()) as TerminalInfo[];
    expect(listed).toContainEqual(t);
    expect((await stack.api(`/api/terminals/${t.id}`, empty)).status).toBe(200);
  });

  it("lists a session the terminal session API created, under its terminal id", async () => {
    await stack.api("/api/v1/terminal/create", { method: "POST", body: JSON.stringify({ terminal_id: 21 }) });
    const list = (await (await stack.api("/api/terminals")).json()) as TerminalInfo[];
    expect(list.map((t) => t.id)).toContain("21");
  });

  it("deletes a session for both doors, then answers 404 {error: Session not found}", async () => {
    const t = await createTerminal(PREFIX);
    const attached = await raw(t.id);
    attached.type("echo attached\r");
    await attached.waitForText("attached");
    const res = await stack.api(`${PREFIX}/api/terminals/${t.id}`, { method: "DELETE" });
    expect(await res.json()).toEqual({ status: "deleted" });
    expect((await attached.waitForClose()).code).toBe(1000);
    expect(await sessionIds()).not.toContain(Number(t.id));
    await until("the shell to end", () => !alive(t.pid));
    for (const init of [{}, { method: "DELETE" }]) {
      const gone = await stack.api(`/api/terminals/${t.id}`, init);
      expect(gone.status).toBe(404);
      expect(await gone.json()).toMatchObject({ error: "Session not found" });
    }
    expect((await stack.api("/api/terminals/not-a-session")).status).toBe(404);
  });

  it("answers 401 {detail: Invalid API key} without the key", async () => {
    for (const init of [{ method: "POST" }, {}]) {
      const res = await fetch(`${stack.url}/api/terminals`, init);
      expect(res.status).toBe(401);
      expect(await res.json()).toMatchObject({ detail: "Invalid API key" });
    }
  });
});

describe("the WebSocket /api/terminals/{id}", () => {
  it("carries raw PTY bytes both ways after first-message auth", async () => {
    const t = await createTerminal();
    const client = await raw(t.id);
    client.type("echo raw-$((6*7))\r");
    await client.waitForText("raw-42");
    expect(client.texts).toEqual([]);
  });

  it("delivers a paste larger than one input frame whole, and closes 1009 past the message limit", async () => {
    const t = await createTerminal();
    const client = await raw(t.id);
    // Raw mode first: the line discipline would keep only 4 KiB of a line without a newline.
    client.type("stty raw -echo; echo ready-$((1+1)); head -c 1500000 | wc -c; echo paste-$((40+2))\r");
    await client.waitForText("ready-2");
    client.type(Buffer.alloc(1_500_000, 0x61));
    await client.waitForText(/1500000\s+paste-42/);
    const big = await raw(t.id);
    // The raw socket's message limit is the input window (edge/raw-terminal.ts RAW_MESSAGE_MAX_BYTES).
    big.type(Buffer.alloc(INPUT_IN_FLIGHT_MAX_BYTES + 1, 0x61));
    expect(await big.waitForClose()).toEqual({ code: 1009, reason: "Message too big" });
  });

  it("is one session with the terminal session API: each sees the other's typing", async () => {
    const t = await createTerminal();
    const rawClient = await raw(t.id, PREFIX);
    const framed = await TermClient.connect(`${stack.url}/api/v1/terminal/ws?terminal_id=${t.id}`, { apiKey: stack.apiKey });
    stack.track(framed);
    rawClient.type("echo from-raw-$((1+1))\r");
    await framed.waitForText("from-raw-2");
    framed.input("echo from-framed-$((2+2))\r");
    await rawClient.waitForText("from-framed-4");
  });

  it("repaints a raw client that joins a running session", async () => {
    const t = await createTerminal();
    const first = await raw(t.id);
    first.type("printf 'painted-%s\\n' one two\r");
    await first.waitForText("painted-two");
    const late = await raw(t.id);
    await late.waitForText("painted-two");
  });

  it("resizes the PTY with a text message", async () => {
    const t = await createTerminal();
    const client = await raw(t.id);
    client.resize(111, 33);
    client.type("stty size\r");
    await client.waitForText("33 111");
  });

  it("closes 4001 for a wrong key, a payload that is not auth JSON, and silence", async () => {
    const t = await createTerminal();
    const wrong = await RawClient.open(`${stack.url}/api/terminals/${t.id}`);
    wrong.auth("not-the-key");
    expect(await wrong.waitForClose()).toEqual({ code: 4001, reason: "Invalid API key" });

    const binary = await RawClient.open(`${stack.url}/api/terminals/${t.id}`);
    binary.type("ls\r");
    expect(await binary.waitForClose()).toEqual({ code: 4001, reason: "Auth timeout or invalid payload" });

    const silent = await RawClient.open(`${stack.url}/api/terminals/${t.id}`);
    const opened = Date.now();
    // The close frame comes at 10 s; the local stack may hold the TCP close a while longer.
    expect(await silent.waitForClose(40_000)).toEqual({ code: 4001, reason: "Auth timeout or invalid payload" });
    expect(Date.now() - opened).toBeGreaterThan(9_000);
    expect(silent.text()).toBe(""); // nothing of the session leaked before auth
  });

  it("closes 4004 for a session that does not exist, on both mounts, once the key checks out", async () => {
    for (const path of ["/api/terminals/39999", "/api/terminals/nope", "/api/terminals/0", `${PREFIX}/api/terminals/39999`]) {
      const client = await RawClient.connect(stack.url + path, stack.apiKey);
      expect(await client.waitForClose()).toEqual({ code: 4004, reason: "Session not found" });
    }
  });

  it("tells a caller without the key nothing about which sessions exist, on both mounts", async () => {
    const t = await createTerminal();
    // The same answers, known id or not: a wrong key, a payload that is not auth JSON, silence.
    const probe = async (path: string) => {
      const wrongKey = await RawClient.open(stack.url + path);
      wrongKey.auth("not-the-key");
      const binary = await RawClient.open(stack.url + path);
      binary.type("ls\r");
      const silent = await RawClient.open(stack.url + path);
      const closes = [await wrongKey.waitForClose(), await binary.waitForClose(), await silent.waitForClose(40_000)];
      return { closes, received: [wrongKey, binary, silent].map((c) => c.text() + c.texts.join("")) };
    };
    // The top level (the API key's door) and a server's mount (the terminals proxy's, ws-proxy.ts).
    const mounts = [
      { paths: [`/api/terminals/${t.id}`, "/api/terminals/39998", "/api/terminals/nope"], wrongKey: "Invalid API key" },
      { paths: [`${PREFIX}/api/terminals/${t.id}`, `${PREFIX}/api/terminals/39998`, "/api/v1/terminals/no-server/api/terminals/1"], wrongKey: "Invalid token" },
    ];
    const answers = await Promise.all(mounts.map((m) => Promise.all(m.paths.map(probe))));
    mounts.forEach((mount, i) => {
      for (const answer of answers[i]!) {
        expect(answer).toEqual({
          closes: [
            { code: 4001, reason: mount.wrongKey },
            { code: 4001, reason: "Auth timeout or invalid payload" },
            { code: 4001, reason: "Auth timeout or invalid payload" },
          ],
          received: ["", "", ""],
        });
      }
    });
  });

  it("lets a keyed client in past 40 silent sockets, which hold no client slot", async () => {
    const t = await createTerminal();
    const silent: RawClient[] = [];
    for (let i = 0; i < 40; i++) {
      const client = await RawClient.open(`${stack.url}/api/terminals/${t.id}`);
      stack.track(client);
      silent.push(client);
    }
    const keyed = await raw(t.id);
    keyed.type("echo keyed-$((20+22))\r");
    await keyed.waitForText("keyed-42");
    // The waiting sockets never joined: the session counts one client.
    const sessions = (await (await stack.api("/api/v1/terminal/sessions")).json()) as { id: number; clients: number }[];
    expect(sessions.find((s) => s.id === Number(t.id))?.clients).toBe(1);
    // Each newcomer past RAW_PENDING_MAX closed the longest-waiting one as an auth timeout (the
    // local stack may hold the TCP close a while after the close frame).
    const evicted = silent.slice(0, 40 - RAW_PENDING_MAX);
    for (const close of await Promise.all(evicted.map((c) => c.waitForClose(40_000)))) {
      expect(close).toEqual({ code: 4001, reason: "Auth timeout or invalid payload" });
    }
  });
});

describe("the session limit", () => {
  it(`answers 429 once the server holds ${OPEN_TERMINAL_MAX_SESSIONS} ephemeral sessions`, async () => {
    const made: string[] = [];
    let refused: Response | null = null;
    for (let i = 0; i <= OPEN_TERMINAL_MAX_SESSIONS && !refused; i++) {
      const res = await stack.api("/api/terminals", { method: "POST" });
      if (res.status === 429) refused = res;
      else if (res.status !== 200) throw new Error(`POST /api/terminals: ${res.status} ${await res.text()}`);
      else made.push(((await res.json()) as TerminalInfo).id);
    }
    expect(refused).not.toBeNull();
    expect(await refused!.json()).toEqual({
      error: `Maximum number of terminal sessions (${OPEN_TERMINAL_MAX_SESSIONS}) reached`,
      code: "TOO_MANY_SESSIONS",
    });
    const list = (await (await stack.api("/api/terminals")).json()) as TerminalInfo[];
    expect(list.filter((t) => Number(t.id) >= 40_000)).toHaveLength(OPEN_TERMINAL_MAX_SESSIONS);
    for (const id of made) await stack.api(`/api/terminals/${id}`, { method: "DELETE" });
    expect((await stack.api("/api/terminals", { method: "POST" })).status).toBe(200);
  });

  it("holds when many creates come at once (they counted before any was made, and all passed)", async () => {
    const ephemeral = async () => ((await (await stack.api("/api/terminals")).json()) as TerminalInfo[]).filter((t) => Number(t.id) >= 40_000);
    for (const t of await ephemeral()) await stack.api(`/api/terminals/${t.id}`, { method: "DELETE" });
    const calls = 3 * OPEN_TERMINAL_MAX_SESSIONS;
    const answers = await Promise.all(Array.from({ length: calls }, () => stack.api("/api/terminals", { method: "POST" })));
    const made = await Promise.all(answers.filter((r) => r.status === 200).map(async (r) => ((await r.json()) as TerminalInfo).id));
    const refused = answers.filter((r) => r.status === 429);
    expect(made.length + refused.length).toBe(calls);
    expect(made).toHaveLength(OPEN_TERMINAL_MAX_SESSIONS);
    expect(await refused[0]!.json()).toEqual({ error: `Maximum number of terminal sessions (${OPEN_TERMINAL_MAX_SESSIONS}) reached`, code: "TOO_MANY_SESSIONS" });
    expect(await ephemeral()).toHaveLength(OPEN_TERMINAL_MAX_SESSIONS);
    for (const id of made) await stack.api(`/api/terminals/${id}`, { method: "DELETE" });
  });
});
