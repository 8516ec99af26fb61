/**
 * What a deployment relies on, through the real local stack: the stats API counts what a
 * scripted session did; the bundled agent package (not the repository) connects and serves a
 * session and runs /execute commands through its PTY host; a redeploy (workerd restarted) while a client types loses no keystroke and repaints
 * the client.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { AGENT_VERSION } from "../../worker/agent/agent.ts";
import { startExtraAgents } from "../../worker/cli/extra-agents.ts";
import { REPO_ROOT } from "../../worker/cli/local-stack.ts";
import type { StatsBody } from "../../shared/stats.ts";
import { useStack } from "../support/stack.ts";
import { TermClient } from "../support/term-client.ts";
import { until, Waiters } from "../support/waiters.ts";

const stack = useStack();
const work = mkdtempSync(join(tmpdir(), "edgetty-deploy-"));

afterAll(() => rmSync(work, { recursive: true, force: true }));

async function json<T>(res: Response): Promise<T> {
  expect(res.status, await res.clone().text()).toBe(200);
  return (await res.json()) as T;
}

/** Polls `probe` (an HTTP read) until it returns a value. */
function poll<T>(what: string, probe: () => Promise<T | null>, timeoutMs = 30_000): Promise<NonNullable<T>> {
  return until(what, probe, { timeoutMs, everyMs: 100 });
}

async function attach(path: string, id: number): Promise<TermClient> {
  const c = await TermClient.connect(`${stack.url}${path}/api/v1/terminal/ws?terminal_id=${id}`, { apiKey: stack.apiKey });
  stack.track(c);
  return c;
}

describe("GET /api/v1/admin/stats", () => {
  it("is for the admin only", async () => {
    const res = await fetch(`${stack.url}/api/v1/admin/stats`);
    expect(res.status).toBe(401);
    expect(await res.json()).toMatchObject({ code: "UNAUTHORIZED" });
  });

  it("counts what a scripted session did, and shows the agent's version and host", async () => {
    expect((await stack.api("/api/v1/terminal/create", { method: "POST", body: JSON.stringify({ terminal_id: 5, shell: "bash" }) })).status).toBe(200);
    const c = await attach("", 5);
    const typed = ["echo stats-''probe\r", "echo $((6 * 7))\r"];
    for (const line of typed) c.input(line);
    await c.waitForText("stats-probe\r\n");
    await c.waitForText("42\r\n");
    c.close();
    expect((await stack.api("/api/v1/terminal/5", { method: "DELETE" })).status).toBe(200);

    const inBytes = Buffer.byteLength(typed.join(""));
    const stats = await poll("the stats to count the session", async () => {
      const body = await json<StatsBody>(await stack.api("/api/v1/admin/stats"));
      const local = body.servers.find((s) => s.id === "local");
      return local && local.bytes_in >= inBytes && local.sessions_created >= 1 ? body : null;
    });
    const local = stats.servers.find((s) => s.id === "local")!;
    expect(local).toMatchObject({
      online: true,
      sessions: 0,
      clients: 0,
      sessions_created: 1,
      client_connects: 1,
      bytes_in: inBytes,
      reconnects: 0,
      errors: 0,
    });
    // The control link and the terminal's data link.
    expect(local.agent_connects).toBe(2);
    // The echo of both lines and their output, at least.
    expect(local.bytes_out).toBeGreaterThan(inBytes + "stats-probe\r\n42\r\n".length);
    expect(stats.totals).toMatchObject({ servers: 1, agents_online: 1, bytes_in: inBytes, sessions_created: 1 });
    expect(local.agent).toMatchObject({ version: AGENT_VERSION, platform: process.platform, facts: { node: process.version, arch: process.arch } });
    expect(Date.parse(local.agent!.facts!.started_at)).toBeLessThanOrEqual(Date.now());
    expect(Date.parse(local.last_seen!)).not.toBeNaN();

    const servers = await json<{ id: string; agent: { version: string; started_at: string; last_seen: string } }[]>(await stack.api("/api/v1/terminals/"));
    expect(servers[0]!.agent).toMatchObject({ version: AGENT_VERSION, started_at: local.agent!.facts!.started_at });
  });
});

describe("the bundled agent package", () => {
  let agent: ChildProcess | null = null;
  const lines: string[] = [];
  const seen = new Waiters();

  afterAll(() => {
    agent?.kill("SIGTERM");
  });

  it("builds, starts outside the repository, connects and serves a session", async () => {
    const pkg = join(work, "agent-package");
    const build = spawnSync(process.execPath, [join(REPO_ROOT, "scripts", "build-agent.mjs"), "--outdir", pkg], { encoding: "utf8" });
    expect(build.status, build.stderr).toBe(0);
    expect(build.stdout).toMatch(/agent bundle: .* KiB \(budget/);
    // What `npm install` of the package would provide: node-pty and nothing else.
    mkdirSync(join(pkg, "node_modules"));
    symlinkSync(join(REPO_ROOT, "node_modules", "node-pty"), join(pkg, "node_modules", "node-pty"));

    const { token } = await json<{ token: string }>(
      await stack.api("/api/v1/admin/servers/bundled", { method: "PUT", body: JSON.stringify({ name: "bundled agent" }) }),
    );
    const tokenFile = join(work, "bundled.token");
    writeFileSync(tokenFile, token + "\n", { mode: 0o600 });
    const home = join(work, "home");
    mkdirSync(home);
    const child = spawn(
      process.execPath,
      [join(pkg, "edgetty-agent.mjs"), "agent", "--edge", stack.url, "--server", "bundled", "--token-file", tokenFile, "--data-dir", join(work, "data"), "--log-format", "json"],
      // Outside the repository: nothing there is on the module path.
      { cwd: work, env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: home }, stdio: ["ignore", "pipe", "pipe"] },
    );
    agent = child;
    let buffered = "";
    const onData = (d: Buffer) => {
      buffered += d.toString();
      const parts = buffered.split("\n");
      buffered = parts.pop()!;
      lines.push(...parts.filter(Boolean));
      seen.notify();
    };
    child.stdout!.on("data", onData);
    child.stderr!.on("data", onData);
    await seen.until(() => lines.some((l) => l.includes(`as server \\"bundled\\"`)), "the bundled agent to connect", 30_000, () => `; output: ${lines.join("\n")}`);

    const prefix = "/api/v1/terminals/bundled";
    expect((await stack.api(`${prefix}/api/v1/terminal/create`, { method: "POST", body: JSON.stringify({ terminal_id: 3, shell: "bash" }) })).status).toBe(200);
    const c = await attach(prefix, 3);
    c.input("echo bundled-$((6 * 7))\r");
    await c.waitForText("bundled-42\r\n");
    // A late joiner's repaint comes from the package's screen thread (edgetty-screen-worker.mjs).
    const late = await attach(prefix, 3);
    await late.waitForScreen("bundled-42");
    expect(lines.join("\n")).not.toContain("screen thread");
    // /files/grep runs in the package's grep thread (edgetty-grep-worker.mjs).
    writeFileSync(join(home, "notes.txt"), "one\nneedle two\n");
    const found = await json<{ matches: unknown[]; truncated: boolean }>(await stack.api(`${prefix}/files/grep?query=needle&path=notes.txt`));
    expect(found).toMatchObject({ matches: [{ file: join(home, "notes.txt"), line: 2, content: "needle two" }], truncated: false });

    // Background /execute commands are forked by the package's PTY host (edgetty-pty-host.mjs),
    // once it is up (until then the agent forks them itself): the command's parent says which.
    const parentOf = async () => {
      const res = await stack.api(`${prefix}/execute?wait=10`, { method: "POST", body: JSON.stringify({ command: 'tr "\\0" " " < /proc/$PPID/cmdline' }) });
      const ran = await json<{ exit_code: number; output: { data: string }[] }>(res);
      expect(ran.exit_code).toBe(0);
      const parent = ran.output.map((o) => o.data).join("");
      return parent.includes("edgetty-pty-host.mjs") ? parent : null;
    };
    expect(await poll("an /execute command forked by the bundled PTY host", parentOf)).not.toContain("edgetty-agent.mjs");

    const servers = await json<{ id: string; online: boolean; agent: { version: string } }[]>(await stack.api("/api/v1/terminals/"));
    expect(servers.find((s) => s.id === "bundled")).toMatchObject({ online: true, agent: { version: AGENT_VERSION } });
    // Journal-friendly: every line one JSON object; the token in none of them.
    for (const line of lines) {
      expect(() => JSON.parse(line), line).not.toThrow();
      expect(JSON.parse(line)).toMatchObject({ component: "agent", server: "bundled" });
    }
    expect(lines.join("\n")).not.toContain(token);
  });
});

describe("extra agents on this machine", () => {
  it("each is its own server, with its own token and HOME", async () => {
    const extra = await startExtraAgents({ url: stack.url, apiKey: stack.apiKey, count: 2, prefix: "extra" });
    try {
      expect(new Set(extra.agents.map((a) => a.token)).size).toBe(2);
      const servers = await json<{ id: string; online: boolean }[]>(await stack.api("/api/v1/terminals/"));
      expect(servers.filter((s) => s.id.startsWith("extra-"))).toEqual([
        expect.objectContaining({ id: "extra-1", online: true }),
        expect.objectContaining({ id: "extra-2", online: true }),
      ]);
      // An agent's token is good for its own server only.
      const wrong = await fetch(`${stack.url}/agent/v1/control?server=extra-1`, { headers: { Authorization: `Bearer ${extra.agents[1]!.token}` } });
      expect(wrong.status).toBe(401);
      const prefix = "/api/v1/terminals/extra-2";
      expect((await stack.api(`${prefix}/api/v1/terminal/create`, { method: "POST", body: JSON.stringify({ terminal_id: 4, shell: "bash" }) })).status).toBe(200);
      const c = await attach(prefix, 4);
      c.input('echo "home=$HOME"\r');
      await c.waitForText(`home=${extra.agents[1]!.home}\r\n`);
      c.close();
    } finally {
      await extra.stop();
    }
    const after = await json<{ id: string }[]>(await stack.api("/api/v1/terminals/"));
    expect(after.some((s) => s.id.startsWith("extra-"))).toBe(false);
  });
});

describe("a redeploy while a client types", () => {
  it("loses no keystroke, duplicates none, and repaints the client", async () => {
    expect((await stack.api("/api/v1/terminal/create", { method: "POST", body: JSON.stringify({ terminal_id: 9, shell: "bash" }) })).status).toBe(200);
    let client = await attach("", 9);
    client.input("echo before-re''deploy\r");
    // Wait for the prompt too: output arriving after this must be an echo of what is typed.
    // (bash marks the prompt's end with OSC 633;B: shell integration).
    await client.waitForText(/before-redeploy\r\n[\s\S]*[$#] (?:\x1b\]633;B\x07)?$/);

    // Typed one keystroke at a time, each confirmed by the shell's echo, while workerd restarts.
    const word = "keystrokes-0123456789-abcdefghijklmnopqrstuvwxyz";
    const line = `echo ${word}`;
    let confirmed = 0;
    let redeployed = false;
    const redeploy = stack.restartEdge().then(() => (redeployed = true));
    while (!redeployed && confirmed < line.length && client.closed === null) {
      const before = client.text().length;
      client.input(line[confirmed]!);
      await client.waitFor(() => client.text().length > before || client.closed !== null, "an echo or a close", 30_000);
      if (client.text().length > before) confirmed++;
    }
    await redeploy;
    expect(client.closed).not.toBeNull();

    // The agent's data link for terminal 9 comes back by itself.
    await poll("terminal 9's data link", async () => {
      const sessions = await json<{ id: number; agent_online: boolean }[]>(await stack.api("/api/v1/terminal/sessions"));
      return sessions.find((s) => s.id === 9)?.agent_online ? true : null;
    });
    client = await attach("", 9);
    expect(client.info).toMatchObject({ terminal_id: 9, agent_online: true });
    // Repainted: the screen as it was, from the agent's own terminal state, down to the half-typed
    // line. What the shell got is exactly a prefix of what was typed (nothing doubled), and at
    // least every keystroke whose echo came back (nothing lost).
    await client.waitForScreen("before-redeploy");
    const screen = await client.screen();
    const cursorRow = screen.findLast((row) => row.includes("$ ") || row.includes("# ")) ?? "";
    const got = cursorRow.slice(Math.max(cursorRow.lastIndexOf("$ "), cursorRow.lastIndexOf("# ")) + 2);
    expect(line.startsWith(got), `screen shows ${JSON.stringify(got)}`).toBe(true);
    expect(got.length).toBeGreaterThanOrEqual(confirmed);
    // The rest of the line, typed after the reconnect, completes the same command.
    client.input(line.slice(got.length) + "\r");
    // The command's output (not the echo of the command line itself).
    await client.waitForText(new RegExp(`(?<!echo )${word}\r\n`));
  });
});
