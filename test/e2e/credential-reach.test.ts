/**
 * What a credential reaches, and for how long, through the real local stack (the fixes of an
 * attacker's trial): a browser session ends with the token it was signed in with; removing a
 * grant, a membership that carried one, or disabling the server closes the live WebSockets it
 * allowed; a cookie GET with side effects needs the edge's own origin; 401s and unknown paths
 * answer in their family's shape and words; and the agent's token is in no process's
 * environment or command line.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdirSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { useStack } from "../support/stack.ts";
import { TermClient } from "../support/term-client.ts";
import { until } from "../support/waiters.ts";

const stack = useStack();

const json = (body: unknown) => ({ body: JSON.stringify(body), headers: { "Content-Type": "application/json" } });
const admin = (path: string, method = "GET", body?: unknown) => stack.api(path, { method, ...(body === undefined ? {} : json(body)) });

/** How long a close may take to be seen, in ms (the local stack may hold the TCP close a while). */
const CLOSE_WAIT_MS = 40_000;
/** An agent started by a test compiles the CLI's TypeScript first (tsx). */
const AGENT_ONLINE_TIMEOUT_MS = 60_000;

async function user(id: string): Promise<void> {
  expect((await admin("/api/v1/admin/users", "POST", { id })).status).toBe(201);
}

async function token(userId: string, extra: Record<string, unknown> = {}): Promise<{ id: string; token: string }> {
  const res = await admin("/api/v1/admin/tokens", "POST", { user_id: userId, ...extra });
  expect(res.status).toBe(201);
  return (await res.json()) as { id: string; token: string };
}

async function grant(principal: { user: string } | { group: string }, access: "read" | "write", server = "local"): Promise<void> {
  const who = "user" in principal ? { principal_type: "user", principal_id: principal.user } : { principal_type: "group", principal_id: principal.group };
  expect((await admin("/api/v1/admin/grants", "PUT", { server_id: server, access, ...who })).status).toBe(200);
}

async function signIn(secret: string): Promise<{ cookie: string; setCookie: string }> {
  const res = await fetch(`${stack.url}/api/v1/auth/session`, { method: "POST", ...json({ token: secret }) });
  expect(res.status).toBe(204);
  const setCookie = res.headers.get("Set-Cookie") ?? "";
  return { cookie: /^(edgetty_session=[^;]+)/.exec(setCookie)![1]!, setCookie };
}

/** Attaches to a new terminal on `local` through the mount as `auth` (a bearer token or browser headers). */
async function attach(auth: { bearer: string } | { headers: Record<string, string> }, query = ""): Promise<TermClient> {
  const url = `${stack.url}/api/v1/terminals/local/api/v1/terminal/ws${query}`;
  const client = stack.track(await TermClient.connect(url, "bearer" in auth ? { apiKey: auth.bearer } : { headers: auth.headers }));
  const mark = `ready-${Math.random().toString(36).slice(2, 8)}`;
  if (!query.includes("readonly=1")) {
    client.input(`echo ${mark}\r`);
    await client.waitForText(mark);
  }
  return client;
}

async function closeOf(client: TermClient): Promise<{ code: number; reason: string } | null> {
  await client.waitFor(() => client.closed !== null, "the attach to close", CLOSE_WAIT_MS);
  return client.closed;
}

describe("a browser session ends with the token it was signed in with", () => {
  it("revoking the token signs the browser out and closes the WebSockets its cookie opened", async () => {
    await user("sam");
    await grant({ user: "sam" }, "write");
    const t = await token("sam");
    const { cookie } = await signIn(t.token);
    const browser = { Cookie: cookie, Origin: stack.url };
    const attached = await attach({ headers: browser });
    expect((await fetch(`${stack.url}/api/v1/auth/session`, { headers: browser })).status).toBe(200);

    const revoke = await admin(`/api/v1/admin/tokens/${t.id}`, "DELETE");
    expect(await revoke.json()).toEqual({ status: "revoked", id: t.id, closed_websockets: 1 });
    expect(await closeOf(attached)).toEqual({ code: 4001, reason: "Token revoked" });
    const after = await fetch(`${stack.url}/api/v1/auth/session`, { headers: browser });
    expect(after.status).toBe(401);
    expect(await after.json()).toEqual({ statusCode: 401, error: "Unauthorized", message: "Session expired or signed out: sign in again", code: "UNAUTHORIZED" });
  });

  it("a session lasts no longer than its token", async () => {
    const t = await token("sam", { ttl_s: 120 });
    const { setCookie } = await signIn(t.token);
    const maxAge = Number(/Max-Age=(\d+)/.exec(setCookie)![1]);
    expect(maxAge).toBeGreaterThan(0);
    expect(maxAge).toBeLessThanOrEqual(120);
  });
});

describe("removing access closes the WebSockets it allowed", () => {
  it("deleting a user's grant closes their attach (4003 Access denied); the admin's stays", async () => {
    await user("gil");
    await grant({ user: "gil" }, "write");
    const t = await token("gil");
    const mine = await attach({ bearer: t.token });
    const admins = await attach({ bearer: stack.apiKey }, `?terminal_id=${mine.info!.terminal_id}`);
    const res = await admin("/api/v1/admin/grants?server_id=local&principal_type=user&principal_id=gil", "DELETE");
    expect(await res.json()).toEqual({ status: "deleted", closed_websockets: 1 });
    expect(await closeOf(mine)).toEqual({ code: 4003, reason: "Access denied" });
    admins.input("echo admin-still-here\r");
    await admins.waitForText("admin-still-here");
  });

  it("taking a user out of the group that carried the grant closes theirs; a member who stays keeps theirs", async () => {
    await user("hal");
    await user("ivy");
    expect((await admin("/api/v1/admin/groups", "POST", { id: "crew" })).status).toBe(201);
    for (const u of ["hal", "ivy"]) expect((await admin(`/api/v1/admin/groups/crew/members/${u}`, "PUT")).status).toBe(200);
    await grant({ group: "crew" }, "write");
    const hal = await attach({ bearer: (await token("hal")).token });
    const ivy = await attach({ bearer: (await token("ivy")).token });
    expect((await admin("/api/v1/admin/groups/crew/members/hal", "DELETE")).status).toBe(200);
    expect(await closeOf(hal)).toEqual({ code: 4003, reason: "Access denied" });
    ivy.input("echo ivy-still-here\r");
    await ivy.waitForText("ivy-still-here");
  });

  it("lowering a grant to read closes a writing attach; a read-only one stays", async () => {
    await user("jo");
    await grant({ user: "jo" }, "write");
    const t = await token("jo");
    const writer = await attach({ bearer: t.token });
    const watcher = stack.track(await TermClient.connect(`${stack.url}/api/v1/terminals/local/api/v1/terminal/ws?terminal_id=${writer.info!.terminal_id}&readonly=1`, { apiKey: t.token }));
    await grant({ user: "jo" }, "read");
    expect(await closeOf(writer)).toEqual({ code: 4003, reason: "Read-only access" });
    // The watcher still gets output: an admin types into the same terminal.
    const admins = await attach({ bearer: stack.apiKey }, `?terminal_id=${writer.info!.terminal_id}`);
    admins.input("echo watched-after\r");
    await watcher.waitForText("watched-after");
    expect(watcher.closed).toBeNull();
  });

  it("disabling the server closes users' and share links' attaches (the admin's stay)", async () => {
    await user("kit");
    await grant({ user: "kit" }, "write");
    const kit = await attach({ bearer: (await token("kit")).token });
    const terminalId = kit.info!.terminal_id;
    const share = await admin(`/api/v1/terminals/local/api/v1/terminal/share/${terminalId}`, "POST", {});
    expect(share.status).toBe(201);
    const shareToken = ((await share.json()) as { token: string }).token;
    const shared = stack.track(await TermClient.connect(`${stack.url}/api/v1/terminals/local/api/v1/terminal/ws?terminal_id=${terminalId}`, { apiKey: shareToken }));
    const admins = await attach({ bearer: stack.apiKey }, `?terminal_id=${terminalId}`);
    try {
      expect((await admin("/api/v1/admin/servers/local/enabled", "PUT", { enabled: false })).status).toBe(200);
      expect(await closeOf(kit)).toEqual({ code: 4003, reason: "Terminal server disabled" });
      expect(await closeOf(shared)).toEqual({ code: 4001, reason: "Terminal server disabled" });
      admins.input("echo admin-after-disable\r");
      await admins.waitForText("admin-after-disable");
    } finally {
      expect((await admin("/api/v1/admin/servers/local/enabled", "PUT", { enabled: true })).status).toBe(200);
    }
  });
});

describe("a cookie GET with side effects needs the edge's own origin", () => {
  it("refuses a screenshot saved on the host from another origin of the same site, and takes it from the edge's own", async () => {
    const { cookie } = await signIn(stack.apiKey);
    const created = await admin("/api/v1/terminal/create", "POST", { terminal_id: 311 });
    expect(created.status).toBe(200);
    const otherPort = new URL(stack.url);
    otherPort.port = String(Number(otherPort.port) + 1);
    // An <img> on a sibling port sends no Origin on a GET: only Sec-Fetch-Site and Referer say where from.
    const crossSite: Record<string, string>[] = [
      { Cookie: cookie, "Sec-Fetch-Site": "same-site", Referer: `${otherPort.origin}/page` },
      { Cookie: cookie, Origin: otherPort.origin },
    ];
    for (const prefix of ["", "/api/v1/terminals/local"]) {
      for (const save of ["?terminal_id=311&save=true", "?terminal_id=311"]) {
        for (const headers of crossSite) {
          const res = await fetch(`${stack.url}${prefix}/api/v1/terminal/screenshot${save}`, { headers });
          expect(res.status, `${prefix} ${save} ${JSON.stringify(headers)}`).toBe(403);
          expect(await res.json()).toMatchObject({ statusCode: 403, error: "Forbidden", code: "ORIGIN_CHECK_FAILED" });
        }
      }
      // Not saved: a read, which a cookie may make from anywhere at the top level (the browser
      // keeps the answer); under a server's mount every request is audited, so none is made.
      const unsaved = await fetch(`${stack.url}${prefix}/api/v1/terminal/screenshot?terminal_id=311&save=false`, { headers: crossSite[0] });
      expect(unsaved.status).toBe(prefix === "" ? 200 : 403);
      expect(unsaved.headers.get("X-Screenshot-Path")).toBeNull();
      const own = await fetch(`${stack.url}${prefix}/api/v1/terminal/screenshot?terminal_id=311&save=true`, { headers: { Cookie: cookie, "Sec-Fetch-Site": "same-origin" } });
      expect(own.status).toBe(200);
      expect(own.headers.get("X-Screenshot-Path")).toBeTruthy();
    }
  });
});

describe("a cookie under a server's mount (every request audited) needs the edge's own origin", () => {
  it("refuses a cross-origin cookie GET there before anything is audited; public routes ignore the cookie", async () => {
    const { cookie } = await signIn(stack.apiKey);
    const newest = async () => ((await (await admin("/api/v1/admin/audit?limit=1")).json()) as { events: { id: number }[] }).events[0]?.id;
    const before = await newest();
    const crossSite = { Cookie: cookie, "Sec-Fetch-Site": "same-site" };
    for (const path of ["api/v1/terminal/sessions", "api/terminals", "files/list?directory=.", "api/v1/nope"]) {
      const res = await fetch(`${stack.url}/api/v1/terminals/local/${path}`, { headers: crossSite });
      expect(res.status, path).toBe(403);
      const body = (await res.json()) as Record<string, unknown>;
      expect(body["code"], path).toBe("ORIGIN_CHECK_FAILED");
    }
    expect((await fetch(`${stack.url}/api/v1/terminals/local/health`, { headers: crossSite })).status).toBe(200);
    expect(await newest()).toBe(before);
    // From the edge's own origin it works, and is audited.
    expect((await fetch(`${stack.url}/api/v1/terminals/local/api/v1/terminal/sessions`, { headers: { Cookie: cookie, "Sec-Fetch-Site": "same-origin" } })).status).toBe(200);
    expect(await newest()).not.toBe(before);
  });
});

describe("errors in their family's shape and words", () => {
  it("an unknown session-API path under a server's mount answers in the session API's shape", async () => {
    for (const path of ["/api/v1/terminals/local/api/v1/nope", "/api/v1/terminals/local/api/v1/terminals/x", "/api/v1/terminals/local/api/v1/terminal/nope", "/api/v1/nope", "/api/v1/terminalsx"]) {
      for (const method of ["GET", "POST"]) {
        const res = await admin(path, method);
        expect(res.status, `${method} ${path}`).toBe(404);
        expect(await res.json(), path).toMatchObject({ statusCode: 404, error: "Not Found", code: "NOT_FOUND" });
      }
    }
    // Without credentials under the mount: the session API's 401.
    const anonymous = await fetch(`${stack.url}/api/v1/terminals/local/api/v1/nope`);
    expect(await anonymous.json()).toMatchObject({ statusCode: 401, error: "Unauthorized", code: "UNAUTHORIZED" });
    // An Open Terminal path keeps FastAPI's.
    const ot = await admin("/api/v1/terminals/local/nope");
    expect(await ot.json()).toEqual({ detail: "Not Found", code: "NOT_FOUND" });
  });

  it("a share link is ignored on public routes, not refused", async () => {
    const created = await admin("/api/v1/terminal/create", "POST", { terminal_id: 312 });
    expect(created.status).toBe(200);
    const share = await admin("/api/v1/terminals/local/api/v1/terminal/share/312", "POST", {});
    const shareToken = ((await share.json()) as { token: string }).token;
    for (const path of ["/api/v1/terminals/local/health", "/api/v1/terminals/local/api/config", "/api/v1/terminals/local/openapi.json", "/health", "/api/config"]) {
      const res = await fetch(`${stack.url}${path}`, { headers: { Authorization: `Bearer ${shareToken}` } });
      expect(res.status, path).toBe(200);
    }
  });

  it("a revoked user token is told so, in each family's shape (never 'api key')", async () => {
    await user("lou");
    await grant({ user: "lou" }, "write");
    const t = await token("lou");
    expect((await admin(`/api/v1/admin/tokens/${t.id}`, "DELETE")).status).toBe(200);
    const message = "Invalid, expired or revoked API token";
    const as = (path: string) => fetch(`${stack.url}${path}`, { headers: { Authorization: `Bearer ${t.token}` } });
    expect(await (await as("/api/v1/terminals/")).json()).toEqual({ error: message, code: "UNAUTHORIZED" });
    expect(await (await as("/api/v1/terminals/local/api/v1/terminal/sessions")).json()).toEqual({ statusCode: 401, error: "Unauthorized", message, code: "UNAUTHORIZED" });
    expect(await (await as("/api/v1/terminals/local/api/terminals")).json()).toEqual({ detail: message, code: "UNAUTHORIZED" });
    const signIn = await fetch(`${stack.url}/api/v1/auth/session`, { method: "POST", ...json({ token: t.token }) });
    expect(await signIn.json()).toMatchObject({ statusCode: 401, message });
    // A token cut short is still named for what it was meant to be.
    const cut = await fetch(`${stack.url}/api/v1/terminal/sessions`, { headers: { Authorization: `Bearer ${t.token.slice(0, 12)}` } });
    expect(await cut.json()).toMatchObject({ statusCode: 401, message });
    // No credential at all: the family's own text; the Open Terminal family keeps the reference's.
    expect(await (await fetch(`${stack.url}/api/v1/terminal/sessions`)).json()).toMatchObject({ message: expect.not.stringContaining("api key") });
    expect(await (await fetch(`${stack.url}/api/terminals`)).json()).toEqual({ detail: "Invalid API key", code: "UNAUTHORIZED" });
  });
});

describe("the agent's token", () => {
  const agents: ChildProcess[] = [];
  afterAll(async () => {
    await Promise.all(
      agents.map((a) => new Promise<void>((resolve) => (a.exitCode !== null || a.signalCode !== null ? resolve() : (a.once("exit", () => resolve()), a.kill("SIGTERM"))))),
    );
  });

  /** Every process of this user whose environment or command line holds `secret`. */
  function processesHolding(secret: string): number[] {
    const found: number[] = [];
    for (const pid of readdirSync("/proc").filter((p) => /^\d+$/.test(p))) {
      for (const file of ["environ", "cmdline"]) {
        try {
          if (readFileSync(`/proc/${pid}/${file}`).includes(secret)) found.push(Number(pid));
        } catch {
          // Gone, or another user's.
        }
      }
    }
    return found;
  }

  /** Pids of `root`'s descendants. */
  function descendants(root: number): number[] {
    const parent = new Map<number, number>();
    for (const pid of readdirSync("/proc").filter((p) => /^\d+$/.test(p))) {
      try {
        const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
        parent.set(Number(pid), Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]));
      } catch {
        // Gone meanwhile.
      }
    }
    const out: number[] = [];
    const walk = (p: number) => {
      for (const [child, ppid] of parent) if (ppid === p) (out.push(child), walk(child));
    };
    walk(root);
    return out;
  }

  async function startAgent(server: string, how: "env" | "argv"): Promise<{ agent: ChildProcess; secret: string }> {
    const secret = `scrub-${server}-${Math.random().toString(36).slice(2)}-token`;
    expect((await admin(`/api/v1/admin/servers/${server}`, "PUT", { token: secret })).status).toBe(200);
    const dir = join(stack.stateDir, server);
    mkdirSync(join(dir, "home"), { recursive: true });
    const args = ["bin/edgetty.js", "agent", "--edge", stack.url, "--server", server, "--data-dir", join(dir, "data"), ...(how === "argv" ? ["--token", secret] : [])];
    const agent = spawn(process.execPath, args, {
      env: { ...process.env, HOME: join(dir, "home"), ...(how === "env" ? { EDGETTY_AGENT_TOKEN: secret } : {}) },
      stdio: "ignore",
    });
    agents.push(agent);
    await until(
      `agent ${server} online`,
      async () => {
        const servers = (await (await admin("/api/v1/terminals/")).json()) as { id: string; online: boolean }[];
        return servers.some((s) => s.id === server && s.online);
      },
      { timeoutMs: AGENT_ONLINE_TIMEOUT_MS },
    );
    return { agent, secret };
  }

  it("passed as EDGETTY_AGENT_TOKEN, is gone from /proc/<agent>/environ, and no child inherits it", async () => {
    const { agent, secret } = await startAgent("scrub-env", "env");
    const environ = readFileSync(`/proc/${agent.pid}/environ`, "utf8").split("\0");
    expect(environ.find((v) => v.startsWith("EDGETTY_AGENT_TOKEN="))).toMatch(/^EDGETTY_AGENT_TOKEN=\**$/);
    expect(processesHolding(secret)).toEqual([]);

    const created = await admin("/api/v1/terminals/scrub-env/api/v1/terminal/create", "POST", { terminal_id: 7 });
    expect(created.status).toBe(200);
    const shell = stack.track(await TermClient.connect(`${stack.url}/api/v1/terminals/scrub-env/api/v1/terminal/ws?terminal_id=7`, { apiKey: stack.apiKey }));
    shell.input('echo "token=[${EDGETTY_AGENT_TOKEN-unset}]"\r');
    await shell.waitForText("token=[unset]");
    // A command through /execute (the agent's PTY host runs it) sees it unset too.
    const run = await admin("/api/v1/terminals/scrub-env/execute?wait=10", "POST", { command: 'echo "exec-token=[${EDGETTY_AGENT_TOKEN-unset}]"' });
    expect(run.status).toBe(200);
    expect(JSON.stringify(await run.json())).toContain("exec-token=[unset]");
    const children = descendants(agent.pid!);
    expect(children.length).toBeGreaterThan(0);
    expect(processesHolding(secret)).toEqual([]);
  });

  it("passed as --token, is gone from /proc/<agent>/cmdline", async () => {
    const { agent, secret } = await startAgent("scrub-argv", "argv");
    const cmdline = readFileSync(`/proc/${agent.pid}/cmdline`, "utf8");
    expect(cmdline).toContain("--token [hidden]");
    expect(processesHolding(secret)).toEqual([]);
  });

  it("of the local stack's agent is in no process's environment or command line (it goes by a file)", () => {
    expect(processesHolding(stack.agentToken)).toEqual([]);
  });

  it("removing a server closes users' attaches on it (4004) and its share links' (4001), as disabling does", async () => {
    await startAgent("gone-1", "env");
    await user("max");
    await grant({ user: "max" }, "write", "gone-1");
    const t = await token("max");
    const attached = stack.track(await TermClient.connect(`${stack.url}/api/v1/terminals/gone-1/api/v1/terminal/ws`, { apiKey: t.token }));
    attached.input("echo on-gone-1\r");
    await attached.waitForText("on-gone-1");
    const terminalId = attached.info!.terminal_id;
    const share = await admin(`/api/v1/terminals/gone-1/api/v1/terminal/share/${terminalId}`, "POST", {});
    expect(share.status).toBe(201);
    const shareToken = ((await share.json()) as { token: string }).token;
    const shared = stack.track(await TermClient.connect(`${stack.url}/api/v1/terminals/gone-1/api/v1/terminal/ws?terminal_id=${terminalId}`, { apiKey: shareToken }));
    attached.input("echo shared-on-gone-1\r");
    await shared.waitForText("shared-on-gone-1");
    expect((await admin("/api/v1/admin/servers/gone-1", "DELETE")).status).toBe(200);
    expect(await closeOf(attached)).toEqual({ code: 4004, reason: "Terminal server not found" });
    expect(await closeOf(shared)).toEqual({ code: 4001, reason: "Terminal server removed" });
  });

  it("a new agent token cuts the links the old one opened: control and data, not only the next connect", async () => {
    await startAgent("rot-1", "env");
    const attached = stack.track(await TermClient.connect(`${stack.url}/api/v1/terminals/rot-1/api/v1/terminal/ws`, { apiKey: stack.apiKey }));
    attached.input("echo before-$((1+1))\r");
    await attached.waitForText("before-2");
    // Re-registered without a token: a new one is issued, and the running agent holds the old.
    expect((await admin("/api/v1/admin/servers/rot-1", "PUT", { name: "rotated" })).status).toBe(200);
    await until("rot-1 offline", async () => {
      const servers = (await (await admin("/api/v1/terminals/")).json()) as { id: string; online: boolean }[];
      return servers.some((s) => s.id === "rot-1" && !s.online);
    });
    // The terminal's data link is gone too: input is refused, not delivered to the old agent.
    attached.input("echo after\r");
    await attached.waitFor(() => attached.errors.some((e) => e.code === "AGENT_OFFLINE"), "AGENT_OFFLINE for input after the rotation");
  });
});
