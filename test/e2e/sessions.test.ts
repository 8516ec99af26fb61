/**
 * The terminal session API end to end: real workerd, real agent, real shells.
 */
import { describe, expect, it } from "vitest";
import { useStack } from "../support/stack.ts";
import { HttpRefusal, TermClient } from "../support/term-client.ts";
import { until } from "../support/waiters.ts";

const stack = useStack();

async function create(body: Record<string, unknown>): Promise<Response> {
  return stack.api("/api/v1/terminal/create", { method: "POST", body: JSON.stringify(body) });
}

async function attach(query: string, opts: { cols?: number; rows?: number } = {}): Promise<TermClient> {
  const client = await TermClient.connect(`${stack.url}/api/v1/terminal/ws?${query}`, { apiKey: stack.apiKey, ...opts });
  stack.track(client);
  return client;
}

async function refusal(query: string, headers: Record<string, string> = {}, apiKey: string | null = stack.apiKey): Promise<HttpRefusal> {
  try {
    const c = await TermClient.connect(`${stack.url}/api/v1/terminal/ws?${query}`, { ...(apiKey !== null ? { apiKey } : {}), headers });
    c.close();
  } catch (error) {
    if (error instanceof HttpRefusal) return error;
    throw error;
  }
  throw new Error("the WebSocket was accepted");
}

describe("terminal sessions end to end", () => {
  it("creates a session, then answers exists for the same id", async () => {
    const first = await create({ terminal_id: "11", shell: "bash" });
    expect(first.status).toBe(200);
    expect(await first.json()).toEqual({ status: "created", terminal_id: 11, shell: "bash" });
    const again = await create({ terminal_id: 11 });
    expect(await again.json()).toMatchObject({ status: "exists", terminal_id: 11 });
  });

  it("shares one PTY between two clients: one types, both see it", async () => {
    await create({ terminal_id: "12", shell: "bash" });
    const a = await attach("terminal_id=12");
    const b = await attach("terminal_id=12");
    expect(a.info).toMatchObject({ terminal_id: 12, shell: "bash", readonly: false, agent_online: true });
    a.input("echo shared-$((40+2))\r");
    await a.waitForText("shared-42");
    await b.waitForText("shared-42");
  });

  it("refuses a read-only client's input and resize, and still shows it the output", async () => {
    await create({ terminal_id: "13" });
    const writer = await attach("terminal_id=13");
    const viewer = await attach("terminal_id=13&readonly=1");
    expect(viewer.info?.readonly).toBe(true);
    viewer.input("echo from-viewer\r");
    viewer.resize(100, 40);
    await viewer.waitFor(() => viewer.errors.length >= 2, "two READ_ONLY errors");
    expect(viewer.errors.map((e) => e.code)).toEqual(["READ_ONLY", "READ_ONLY"]);
    writer.input("echo from-writer\r");
    await viewer.waitForText("from-writer");
    expect(viewer.text()).not.toContain("from-viewer");
  });

  it("repaints a late joiner with the screen as it is", async () => {
    await create({ terminal_id: "14" });
    const early = await attach("terminal_id=14");
    early.input("printf 'early-%s\\n' one two three\r");
    await early.waitForText("early-three");
    const late = await attach("terminal_id=14");
    await late.waitForScreen("early-three");
    const screen = (await late.screen()).join("\n");
    expect(screen).toContain("early-one");
    expect(screen).toContain("early-two");
  });

  it("delivers a resize to the PTY", async () => {
    await create({ terminal_id: "15", cols: 80, rows: 24 });
    const c = await attach("terminal_id=15");
    c.resize(132, 43);
    c.input("stty size\r");
    await c.waitForText("43 132");
  });

  it("deletes a session: clients get EXIT and are closed, the listing forgets it", async () => {
    await create({ terminal_id: "16" });
    const c = await attach("terminal_id=16");
    const res = await stack.api("/api/v1/terminal/16", { method: "DELETE" });
    expect(await res.json()).toEqual({ status: "deleted", terminal_id: 16 });
    await c.waitFor(() => c.exit !== null && c.closed !== null, "EXIT and close");
    // The EXIT says the edge ended it, whichever came first: the agent's for the kill or the edge's.
    expect(c.exit).toMatchObject({ reason: "deleted" });
    const sessions = (await (await stack.api("/api/v1/terminal/sessions")).json()) as { id: number }[];
    expect(sessions.map((s) => s.id)).not.toContain(16);
    const again = await stack.api("/api/v1/terminal/16", { method: "DELETE" });
    expect(again.status).toBe(404);
    expect(await again.json()).toMatchObject({ statusCode: 404, error: "Not Found", code: "SESSION_NOT_FOUND" });
    // An attach-only socket (the web app's, reconnecting) does not bring it back as a new shell.
    expect((await refusal("terminal_id=16&create=false")).json()).toMatchObject({ statusCode: 404, code: "SESSION_NOT_FOUND" });
    const listed = (await (await stack.api("/api/v1/terminal/sessions")).json()) as { id: number }[];
    expect(listed.map((s) => s.id)).not.toContain(16);
  });

  it("attaches with create=false only to a terminal that exists", async () => {
    await create({ terminal_id: "35" });
    const c = await attach("terminal_id=35&create=0");
    expect(c.info).toMatchObject({ terminal_id: 35, readonly: false });
    expect((await refusal("terminal_id=36&create=0")).json()).toMatchObject({ statusCode: 404, code: "SESSION_NOT_FOUND" });
    expect((await refusal("terminal_id=36&create=maybe")).json()).toMatchObject({ statusCode: 400, code: "INVALID_PARAMETERS" });
    expect((await stack.api("/api/v1/terminal/36", { method: "DELETE" })).status).toBe(404);
  });

  it("creates a missing session from the WebSocket query, with cmd and env", async () => {
    const cmd = Buffer.from("echo $GREETING-from-cmd").toString("base64");
    const c = await attach(`terminal_id=17&shell=sh&cmd=${encodeURIComponent(cmd)}&env=GREETING=hello`);
    await c.waitForText("hello-from-cmd");
    expect(c.info).toMatchObject({ terminal_id: 17, shell: "sh" });
  });

  it("generates a terminal id when the WebSocket names none", async () => {
    const c = await attach("shell=bash");
    expect(c.info?.terminal_id).toBeGreaterThanOrEqual(40000);
  });

  it("gives ephemeral sessions a free id in 40000-65535 and no DISPLAY", async () => {
    const res = await create({ ephemeral: true, display: "7" });
    const body = (await res.json()) as { terminal_id: number };
    expect(body.terminal_id).toBeGreaterThanOrEqual(40000);
    expect(body.terminal_id).toBeLessThanOrEqual(65535);
    const c = await attach(`terminal_id=${body.terminal_id}`);
    c.input("echo display=[$DISPLAY]\r");
    await c.waitForText("display=[]");
  });

  it("sets DISPLAY and reports it", async () => {
    const res = await create({ terminal_id: 18, display: "5", wait_until_display: false });
    expect(await res.json()).toMatchObject({ status: "created", terminal_id: 18, display: ":5" });
    const c = await attach("terminal_id=18");
    c.input("echo display=[$DISPLAY]\r");
    await c.waitForText("display=[:5]");
  });

  it("starts in the requested cwd, creating it when asked", async () => {
    const dir = `${stack.stateDir}/made/by/create`;
    const missing = await create({ terminal_id: 19, cwd: dir });
    expect(missing.status).toBe(400);
    const made = await create({ terminal_id: 19, cwd: dir, cwd_auto_create: true });
    expect(made.status).toBe(200);
    const c = await attach("terminal_id=19");
    c.input("pwd\r");
    await c.waitForText(dir);
  });

  it.runIf(process.getuid?.() === 0)("starts the shell as another user, with that user's groups only", async () => {
    const res = await create({ terminal_id: 23, user: "nobody", shell: "sh", cwd: "/tmp" });
    expect(await res.json()).toMatchObject({ status: "created", terminal_id: 23 });
    const c = await attach("terminal_id=23");
    c.input("echo who=$(id -un) groups=$(id -G)\r");
    await c.waitForText(/who=nobody groups=\d+\r\n/);
    expect(c.text()).not.toMatch(/groups=[\d ]*\b0\b/);
  });

  it.runIf(process.getuid?.() === 0)("keeps shell integration for a shell started as another user (its history is recorded)", async () => {
    // The stack's data folder is private (0700), as `npm start`'s is: the agent's runtime folder
    // must still be reachable by the other user's shell (shell-integration.ts prepareRuntimeDir).
    const res = await create({ terminal_id: 24, user: "nobody", shell: "bash", cwd: "/tmp" });
    expect(res.status).toBe(200);
    const c = await attach("terminal_id=24");
    c.input("echo integrated-as-$(id -un)\r");
    await c.waitForText("integrated-as-nobody");
    await until("the command in terminal 24's history", async () => {
      const records = (await (await stack.api("/api/v1/terminal/history/24")).json()) as { command?: string }[];
      return records.some((r) => r.command?.includes("integrated-as-"));
    });
    expect(c.text()).not.toContain("Permission denied");
  });

  it("lists sessions with shell, cwd, start time, clients and agent state", async () => {
    await create({ terminal_id: 20, shell: "bash", cwd: "/tmp" });
    await attach("terminal_id=20");
    const res = await stack.api("/api/v1/terminal/sessions?history_limit=5");
    const sessions = (await res.json()) as Record<string, unknown>[];
    const s = sessions.find((x) => x["id"] === 20);
    expect(s).toMatchObject({ id: 20, shell: "bash", cwd: "/tmp", clients: 1, agent_online: true, command_history: [] });
    expect(Date.parse(String(s?.["started_at"]))).not.toBeNaN();
  });

  it("answers bad ids, params and auth with the seed's codes", async () => {
    const missing = await create({ shell: "bash" });
    expect(missing.status).toBe(400);
    expect(await missing.json()).toEqual({ statusCode: 400, error: "Bad Request", message: "terminal_id is required", code: "MISSING_TERMINAL_ID" });
    for (const bad of ["0", "65536", "abc", "-1", "1.5"]) {
      const res = await create({ terminal_id: bad });
      expect((await res.json()) as object).toMatchObject({ statusCode: 400, code: "INVALID_TERMINAL_ID" });
    }
    expect(await (await create({ terminal_id: 30, shell: "tcsh" })).json()).toMatchObject({ statusCode: 400, code: "INVALID_SHELL" });
    expect(await (await create({ terminal_id: 30, user: "no-such-user-here" })).json()).toMatchObject({ statusCode: 400, code: "INVALID_USER" });
    expect(await (await create({ terminal_id: 30, ssh_host: "example" })).json()).toMatchObject({ statusCode: 400, code: "INVALID_PARAMETERS" });
    const notJson = await stack.api("/api/v1/terminal/create", { method: "POST", body: "{nope" });
    expect(await notJson.json()).toMatchObject({ statusCode: 400, code: "INVALID_JSON" });
    const huge = await stack.api("/api/v1/terminal/create", { method: "POST", body: JSON.stringify({ terminal_id: 1, pad: "x".repeat(200_000) }) });
    expect(huge.status).toBe(413);

    expect((await refusal("terminal_id=99999")).json()).toMatchObject({ statusCode: 400, code: "INVALID_TERMINAL_ID" });
    expect((await refusal("terminal_id=31&cols=0")).json()).toMatchObject({ statusCode: 400, code: "INVALID_PARAMETERS" });
    expect((await refusal("terminal_id=31&env=1BAD=x")).json()).toMatchObject({ statusCode: 400, code: "INVALID_PARAMETERS" });
    expect((await refusal("terminal_id=31", { Origin: "https://evil.example" })).json()).toMatchObject({ statusCode: 403, code: "ORIGIN_CHECK_FAILED" });
    expect((await refusal("terminal_id=32&readonly=1")).json()).toMatchObject({ statusCode: 404, code: "SESSION_NOT_FOUND" });
    const noAuth = await refusal("terminal_id=31", {}, null);
    expect(noAuth.status).toBe(401);
    const wrongKey = await refusal("terminal_id=31", {}, "not-the-key");
    expect(wrongKey.status).toBe(401);

    const unauth = await fetch(`${stack.url}/api/v1/terminal/sessions`);
    expect(unauth.status).toBe(401);
    expect(await unauth.json()).toMatchObject({ statusCode: 401, code: "UNAUTHORIZED" });
    expect((await fetch(`${stack.url}/health`)).status).toBe(200);
  });

  it("serves every route under /api/v1/terminals/{server_id}/ too", async () => {
    const res = await stack.api("/api/v1/terminals/local/api/v1/terminal/create", { method: "POST", body: JSON.stringify({ terminal_id: 21 }) });
    expect(await res.json()).toMatchObject({ status: "created", terminal_id: 21 });
    const c = await TermClient.connect(`${stack.url}/api/v1/terminals/local/api/v1/terminal/ws?terminal_id=21`, { apiKey: stack.apiKey });
    stack.track(c);
    c.input("echo scoped-ok\r");
    await c.waitForText("scoped-ok");
    const unknown = await stack.api("/api/v1/terminals/nope/api/v1/terminal/sessions");
    expect(unknown.status).toBe(404);
    expect(await unknown.json()).toMatchObject({ error: "Terminal server not found" });
    const servers = (await (await stack.api("/api/v1/terminals/")).json()) as Record<string, unknown>[];
    expect(servers).toEqual([expect.objectContaining({ id: "local", name: expect.any(String), url: expect.any(String), online: true })]);
  });

  it("signs a browser in with a cookie that opens the WebSocket", async () => {
    const signIn = await fetch(`${stack.url}/api/v1/auth/session`, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ token: stack.apiKey }) });
    expect(signIn.status).toBe(204);
    const cookie = signIn.headers.get("set-cookie") ?? "";
    expect(cookie).toMatch(/HttpOnly/);
    expect(cookie).toMatch(/SameSite=Strict/);
    const value = cookie.split(";")[0]!;
    await create({ terminal_id: 22 });
    const c = await TermClient.connect(`${stack.url}/api/v1/terminal/ws?terminal_id=22`, { headers: { Cookie: value, Origin: stack.url } });
    stack.track(c);
    c.input("echo cookie-ok\r");
    await c.waitForText("cookie-ok");
    const bad = await fetch(`${stack.url}/api/v1/auth/session`, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ token: "wrong" }) });
    expect(bad.status).toBe(401);
    const forged = await fetch(`${stack.url}/api/v1/terminal/sessions`, { headers: { Cookie: "edgetty_session=admin.99999999999999.AAAA" } });
    expect(forged.status).toBe(401);
  });

  it("answers joins racing a session's end with the session or its end, never AGENT_OFFLINE", async () => {
    // The shell exits; the agent closes the data link and reports the exit on its control link.
    // Joins that land between the two must not be told the (connected) agent is offline.
    const outcomes: string[] = [];
    for (let round = 0; round < 4; round++) {
      expect((await create({ terminal_id: 95 })).status).toBe(200);
      const live = await attach("terminal_id=95");
      live.input("exit\r");
      const joins = await Promise.all(
        Array.from({ length: 6 }, () =>
          TermClient.connect(`${stack.url}/api/v1/terminal/ws?terminal_id=95`, { apiKey: stack.apiKey }).then(
            (c) => (stack.track(c), "joined"),
            (error: unknown) => (error instanceof HttpRefusal ? `${error.status} ${JSON.parse(error.body).code}` : String(error)),
          ),
        ),
      );
      outcomes.push(...joins);
      await stack.api("/api/v1/terminal/95", { method: "DELETE" });
    }
    // A join either reaches the session (or, once it ended, a new one: the seed's attach creates)
    // or is told it is gone or still being created; an agent that never went away is not offline.
    for (const outcome of outcomes) expect(outcome).toMatch(/^(joined|404 SESSION_NOT_FOUND|409 CREATE_IN_PROGRESS)$/);
  });
});
